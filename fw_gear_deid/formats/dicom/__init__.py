"""The DICOM engine: selectors, rules, PS3.15 preset, UID map, provenance, streaming.

Public: :class:`DicomHandler` (the ``dicom`` profile section) and :class:`DicomdirRefusedError`.
The reference is ``docs/dicom.md``.
"""

import fw_gear_deid._pydicom  # noqa: F401  (never echo element values to logs)
from fw_gear_deid.formats.dicom._handler import DicomHandler
from fw_gear_deid.formats.dicom._stream import DicomdirRefusedError

__all__ = ["DicomHandler", "DicomdirRefusedError"]
