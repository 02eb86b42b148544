"""The DICOM engine: selectors, rules, PS3.15 preset, UID map, provenance, streaming.

Public: :class:`DicomHandler` (the ``dicom`` profile section) and :class:`DicomdirRefusedError`.
The reference is ``docs/dicom.md``.
"""

from fw_gear_deid.formats.dicom._handler import DicomHandler
from fw_gear_deid.formats.dicom._stream import DicomdirRefusedError

__all__ = ["DicomHandler", "DicomdirRefusedError"]
