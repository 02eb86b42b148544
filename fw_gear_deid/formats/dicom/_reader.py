"""A header reader for the common case, faster than ``pydicom.dcmread(stop_before_pixels=True)``.

It builds the same thing pydicom builds (a ``FileDataset`` of ``RawDataElement``s, the file meta,
the original encoding) for a well-formed Part 10 file in little endian with defined-length
top-level elements, in one tight loop over bytes already in memory. Anything else (big endian,
deflated, no file meta, an undefined length, a VR that is not one, an element running past the end
of the file) returns None and the caller uses pydicom, which knows every quirk. Whether both give
the same dataset is checked element by element on every test file (tests/dicom/test_reader.py).
"""

from __future__ import annotations

import struct

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

from fw_gear_deid.formats.dicom._raw import plain_value

_TAG = struct.Struct("<HH")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")
_LONG_VRS = {str(vr).encode(): str(vr) for vr in EXPLICIT_VR_LENGTH_32}
_SHORT_VRS = {str(vr).encode(): str(vr) for vr in STANDARD_VR if vr not in EXPLICIT_VR_LENGTH_32}
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_UNDEFINED = 0xFFFFFFFF
#: Transfer syntaxes pydicom itself reads in another way (or that we leave to it).
_NOT_FAST = frozenset(
    {ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, *map(str, PrivateTransferSyntaxes)}
)


class _NotFast(Exception):
    """The file needs pydicom's reader."""


def read_header(data: bytes, name: str) -> tuple[FileDataset, int] | None:
    """The header dataset of a whole file in ``data`` and where its pixel data element starts (the
    file's size when it has none), or None when pydicom must read it."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    try:
        meta_elements, offset = _elements(data, 132, implicit=False, meta=True)
        meta = FileMetaDataset(meta_elements)
        syntax = plain_value(meta_elements.get(0x00020010), "UI")
        if not isinstance(syntax, str) or not syntax or syntax in _NOT_FAST:
            return None
        implicit = syntax == ImplicitVRLittleEndian
        if offset < len(data) and _looks_explicit(data, offset) == implicit:
            return None  # the data set disagrees with its transfer syntax: pydicom's heuristics
        elements, pixel_start = _elements(data, offset, implicit=implicit, meta=False)
    except _NotFast:
        return None
    if not elements:
        return None
    dataset = Dataset(elements)
    charset = elements.get(0x00080005)
    if charset is not None:
        value = convert_raw_data_element(charset).value
        encoding = convert_encodings(value)
    else:
        encoding = default_encoding
    dataset.set_original_encoding(implicit, True, encoding)
    result = FileDataset(name, dataset, data[:128], meta, implicit, True)
    result.set_original_encoding(implicit, True, dataset._character_set)
    return result, pixel_start


def _looks_explicit(data: bytes, offset: int) -> bool:
    vr = data[offset + 4 : offset + 6]
    return vr in _LONG_VRS or vr in _SHORT_VRS


def _elements(
    data: bytes, offset: int, *, implicit: bool, meta: bool
) -> tuple[dict[BaseTag, RawDataElement], int]:
    """Raw elements from ``offset``: the file meta group (``meta``) or the data set up to its pixel
    data element. Raises _NotFast on anything pydicom handles specially."""
    elements: dict[BaseTag, RawDataElement] = {}
    size = len(data)
    tag_at, us_at, ul_at = _TAG.unpack_from, _US.unpack_from, _UL.unpack_from
    long_vrs, short_vrs = _LONG_VRS, _SHORT_VRS
    while offset < size:
        if offset + 8 > size:
            raise _NotFast  # a partial element header: pydicom decides what it means
        group, number = tag_at(data, offset)
        if meta and group != 0x0002:
            break
        tag = group << 16 | number
        if tag in _PIXEL_TAGS:
            return elements, offset
        if group == 0xFFFE or (not meta and group == 0x0002):
            raise _NotFast  # delimiters at the top level, file meta inside the data set
        if implicit:
            vr = None
            length = ul_at(data, offset + 4)[0]
            start = offset + 8
        else:
            code = data[offset + 4 : offset + 6]
            vr = short_vrs.get(code)
            if vr is not None:
                length = us_at(data, offset + 6)[0]
                start = offset + 8
            else:
                vr = long_vrs.get(code)
                if vr is None or offset + 12 > size:
                    raise _NotFast
                length = ul_at(data, offset + 8)[0]
                start = offset + 12
        end = start + length
        if length == _UNDEFINED or end > size:
            raise _NotFast
        key = BaseTag(tag)
        if key in elements:
            raise _NotFast  # a repeated tag: pydicom's dictionary keeps the last one
        value = data[start:end] if length else empty_value_for_VR(vr, raw=True)  # as pydicom
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
        offset = end
    if meta and offset >= size:
        raise _NotFast
    return elements, offset


__all__ = ["read_header"]
