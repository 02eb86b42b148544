"""File-format handlers, one module per profile section, all behind :class:`FormatHandler`.

Adding a format is one new module with a ``FormatHandler`` subclass and one line in ``_REGISTRY``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from fw_gear_deid.formats._base import (
    DeidContext,
    DeidOutcome,
    FieldChange,
    FormatHandler,
    HandlerSet,
    SensitiveValue,
)

__all__ = [
    "SECTION_NAMES",
    "DeidContext",
    "DeidOutcome",
    "FieldChange",
    "FormatHandler",
    "HandlerSet",
    "SensitiveValue",
    "build_handlers",
    "handler_class",
]

# Section name -> "module:Class", in matching order. Specific formats first; `zip` before the
# catch-all `filename` section (default filter `*`), which must come last so it never takes a file
# another section would de-identify.
_REGISTRY: dict[str, str] = {
    "dicom": "fw_gear_deid.formats.dicom:DicomHandler",
    "jpg": "fw_gear_deid.formats.jpg:JpgHandler",
    "png": "fw_gear_deid.formats.png:PngHandler",
    "tiff": "fw_gear_deid.formats.tiff:TiffHandler",
    "xml": "fw_gear_deid.formats.xml:XmlHandler",
    "json": "fw_gear_deid.formats.json:JsonHandler",
    "key-value-text-file": "fw_gear_deid.formats.keyvalue:KeyValueHandler",
    "csv": "fw_gear_deid.formats.table:CsvHandler",
    "tsv": "fw_gear_deid.formats.table:TsvHandler",
    "zip": "fw_gear_deid.formats.zip:ZipHandler",
    "filename": "fw_gear_deid.formats.filename:FilenameHandler",
}

#: Every file section of the profile grammar, in matching order.
SECTION_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def handler_class(section_name: str) -> type[FormatHandler]:
    """The handler class of a profile section (imported on first use)."""
    module_name, _, class_name = _REGISTRY[section_name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_handlers(sections: Mapping[str, Any]) -> HandlerSet:
    """Handlers for every file section present in a validated profile, in matching order.

    ``sections`` is the validated profile data (other top-level keys such as ``name`` or
    ``flywheel`` are ignored here). A file no handler matches is skipped by the caller: fail closed.
    """
    handlers = HandlerSet()
    for name in SECTION_NAMES:
        section = sections.get(name)
        if section is not None:
            handlers.add(handler_class(name)(section, handlers))
    return handlers
