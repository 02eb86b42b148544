"""A header reader for the common case, faster than ``pydicom.dcmread(stop_before_pixels=True)``.

It builds the same thing pydicom builds (a ``FileDataset`` of ``RawDataElement``s, the file meta,
the original encoding) for a well-formed Part 10 file in little endian, in one tight loop over
bytes already in memory; an undefined-length sequence is read by pydicom's own ``read_sequence``,
as ``dcmread`` does. Anything else (big endian, deflated, no file meta, another undefined-length
element, a VR that is not one, an element running past the end of the file, anything pydicom
would warn about) returns None and the caller uses pydicom, which knows every quirk. Whether both
give the same dataset is checked element by element on every test file (tests/dicom/test_reader.py).
"""

from __future__ import annotations

import struct
import warnings

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR
from pydicom.values import convert_string

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
    """pydicom's test of the first element: two upper-case letters where an explicit VR would be."""
    vr = data[offset + 4 : offset + 6]
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _elements(
    data: bytes, offset: int, *, implicit: bool, meta: bool
) -> tuple[dict[BaseTag, RawDataElement | DataElement], int]:
    """Raw elements from ``offset``: the file meta group (``meta``) or the data set up to its pixel
    data element. Raises _NotFast on anything pydicom handles specially."""
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    size = len(data)
    encoding: str | list[str] = default_encoding  # for sequences read on the way, as pydicom
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
        key = BaseTag(tag)
        if key in elements:
            raise _NotFast  # a repeated tag: pydicom's dictionary keeps the last one
        if length == _UNDEFINED:
            if meta or (vr if vr is not None else _implicit_vr(tag)) != "SQ":
                raise _NotFast  # undefined-length UN/OB, private or unknown tags: pydicom
            elements[key], offset = _undefined_length_sequence(key, data, start, implicit, encoding)
            continue
        end = start + length
        if end > size:
            raise _NotFast
        value = data[start:end] if length else empty_value_for_VR(vr, raw=True)  # as pydicom
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
        if tag == 0x00080005:
            encoding = convert_encodings(convert_string(value or b"", True))
        offset = end
    if meta and offset >= size:
        raise _NotFast
    return elements, offset


def _implicit_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _undefined_length_sequence(
    key: BaseTag, data: bytes, start: int, implicit: bool, encoding: str | list[str]
) -> tuple[DataElement, int]:
    """An undefined-length sequence read as pydicom reads it while reading the file (eagerly, by
    its own ``read_sequence``, with offsets in the file), and where the next element starts."""
    stream = DicomBytesIO(data)
    stream.is_little_endian, stream.is_implicit_VR = True, implicit
    stream.seek(start)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # anything pydicom would warn about: pydicom reads it
            sequence = read_sequence(stream, implicit, True, _UNDEFINED, encoding)
    except Exception:
        raise _NotFast from None
    return DataElement(key, "SQ", sequence, start, is_undefined_length=True), stream.tell()


__all__ = ["read_header"]
