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
from typing import Any

from pydicom._uid_dict import UID_dictionary
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_sequence
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR
from pydicom.values import convert_string

from fw_gear_deid.formats.dicom._raw import PIXEL_TAGS, implicit_vr, plain_value, tag_key

_TAG = struct.Struct("<HH")
_ITEM_HEAD = struct.Struct("<HHL")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")
_LONG_VRS = {str(vr).encode(): str(vr) for vr in EXPLICIT_VR_LENGTH_32}
_SHORT_VRS = {str(vr).encode(): str(vr) for vr in STANDARD_VR if vr not in EXPLICIT_VR_LENGTH_32}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
#: The transfer syntaxes read here, exactly as written (no white space: pydicom's UID strips it,
#: and a big-endian syntax with a stray newline must not pass for little endian): the standard
#: little-endian ones, not deflated. Any other value (private, unknown, big endian) goes to pydicom.
_FAST_SYNTAXES = frozenset(
    uid
    for uid, entry in UID_dictionary.items()
    if entry[1] == "Transfer Syntax"
    and UID(uid).is_little_endian
    and not UID(uid).is_deflated
    and uid != ExplicitVRBigEndian
    and "Deflate" not in entry[0]  # the JPIP deflate syntaxes too
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
        if syntax not in _FAST_SYNTAXES:
            return None
        implicit = syntax == ImplicitVRLittleEndian
        if offset < len(data) and _looks_explicit(data, offset) == implicit:
            return None  # the data set disagrees with its transfer syntax: pydicom's heuristics
        elements, pixel_start = _elements(data, offset, implicit=implicit, meta=False)
    except _NotFast:
        return None
    if not elements:
        return None
    charset = elements.get(0x00080005)
    try:
        encoding = (
            convert_encodings(convert_raw_data_element(charset).value)
            if charset is not None
            else default_encoding
        )
    except Exception:  # an unusable character set: pydicom reads (and reports) it
        return None
    dataset = new_dataset(elements, default_encoding, implicit, encoding)
    result = FileDataset(name, dataset, data[:128], meta, implicit, True)
    result.set_original_encoding(implicit, True, dataset._character_set)
    return result, pixel_start


def _looks_explicit(data: bytes, offset: int) -> bool:
    """pydicom's test of the first element: two upper-case letters where an explicit VR would be."""
    vr = data[offset + 4 : offset + 6]
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _elements(
    data: bytes,
    offset: int,
    *,
    implicit: bool,
    meta: bool,
    end: int | None = None,
    item: bool = False,
    encoding: str | list[str] = default_encoding,
) -> tuple[dict[BaseTag, RawDataElement | DataElement], int]:
    """Raw elements from ``offset``: the file meta group (``meta``), the data set up to its pixel
    data element, or (``item``) a sequence item's elements up to ``end`` or, without ``end``, its
    item delimiter. Raises _NotFast on anything pydicom handles specially."""
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    size = len(data) if end is None else end
    # ``encoding``: for sequences read on the way, as pydicom's element generator keeps it
    tag_at, us_at, ul_at = _TAG.unpack_from, _US.unpack_from, _UL.unpack_from
    long_vrs, short_vrs = _LONG_VRS, _SHORT_VRS
    while offset < size:
        if offset + 8 > size:
            raise _NotFast  # a partial element header: pydicom decides what it means
        group, number = tag_at(data, offset)
        if meta and group != 0x0002:
            break
        tag = group << 16 | number
        if tag in PIXEL_TAGS and not item:
            return elements, offset
        if item and tag == _ITEM_END and end is None:
            return elements, offset + 8
        if group == 0xFFFE or (not meta and group == 0x0002):
            raise _NotFast  # delimiters out of place, file meta inside the data set
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
        key = tag_key(tag)
        if key in elements:
            raise _NotFast  # a repeated tag: pydicom's dictionary keeps the last one
        if length == _UNDEFINED:
            if meta or (vr if vr is not None else implicit_vr(tag)) != "SQ":
                raise _NotFast  # undefined-length UN/OB, private or unknown tags: pydicom
            elements[key], offset = _undefined_length_sequence(key, data, start, implicit, encoding)
            continue
        stop = start + length
        if stop > size:
            raise _NotFast
        value = data[start:stop] if length else empty_value_for_VR(vr, raw=True)  # as pydicom
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
        if tag == 0x00080005:
            try:
                encoding = convert_encodings(convert_string(value or b"", True))
            except Exception:  # an unusable character set: pydicom reads (and reports) it
                raise _NotFast from None
        offset = stop
    if (meta or item) and (offset >= size if meta else end is None or offset != end):
        raise _NotFast  # file meta only; an item without its delimiter or running past its end
    return elements, offset


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


def read_sequence_value(raw: RawDataElement, encoding: Any) -> DataElement | None:
    """``convert_raw_data_element(raw, encoding=encoding)`` for a defined-length sequence in little
    endian, built by this reader; None when pydicom must convert it."""
    value = raw.value
    if (
        type(value) is not bytes
        or raw.length in (0, _UNDEFINED)  # pydicom's empty value is a list, not a Sequence
        or not raw.is_little_endian
        or raw.VR not in ("SQ", None)  # a UN value holding items: pydicom re-reads it
    ):
        return None
    implicit = raw.is_implicit_VR
    parent_encoding = encoding or [default_encoding]
    if isinstance(parent_encoding, str):
        parent_encoding = [parent_encoding]  # as pydicom's convert_value
    offset = raw.value_tell or 0
    items = []
    hidden = False
    position, size = 0, len(value)
    try:
        while position < size:
            if position + 8 > size:
                raise _NotFast
            group, number, length = _ITEM_HEAD.unpack_from(value, position)
            tag = group << 16 | number
            if tag == _SEQUENCE_END:
                if position + 8 != size:
                    hidden = True  # bytes after the delimiter: nobody reads them, so drop them
                break
            if tag != _ITEM:
                raise _NotFast
            start = position + 8
            item_implicit = _item_encoding(value, start, implicit)
            end = None if length == _UNDEFINED else start + length
            if end is not None and end > size:
                raise _NotFast
            elements, position = _elements(
                value,
                start,
                implicit=item_implicit,
                meta=False,
                end=end,
                item=True,
                encoding=parent_encoding,
            )
            charset = elements.get(0x00080005)
            item_encoding = (
                convert_encodings(convert_raw_data_element(charset).value)
                if charset is not None
                else parent_encoding
            )
            item = new_dataset(elements, parent_encoding, item_implicit, item_encoding)
            attributes = item.__dict__
            attributes["is_undefined_length_sequence_item"] = end is None
            attributes["seq_item_tell"] = attributes["file_tell"] = start - 8 + offset
            items.append(item)
    except _NotFast:
        return None
    sequence = Sequence(items)
    sequence.is_undefined_length = False
    element = DataElement(raw.tag, "SQ", sequence, raw.value_tell, False, already_converted=True)
    element.needs_encoding = hidden  # type: ignore[attr-defined]
    return element


#: The attributes ``Dataset()`` sets that are not containers (those are made fresh per dataset).
_DATASET_CONSTANTS = {
    name: value
    for name, value in Dataset().__dict__.items()
    if not isinstance(value, dict | list | set)
}


def new_dataset(
    elements: dict[BaseTag, Any], parent_encoding: Any, implicit: bool, encoding: Any
) -> Dataset:
    """``Dataset(elements, parent_encoding=...)`` then ``set_original_encoding(implicit, True,
    encoding)``, without pydicom's ``__setattr__`` (which checks every attribute name against the
    DICOM dictionary): the same ``__dict__``, checked by a test against the real constructor."""
    dataset = Dataset.__new__(Dataset)
    attributes = dataset.__dict__
    attributes.update(_DATASET_CONSTANTS)
    attributes["_dict"] = elements
    attributes["_parent_encoding"] = parent_encoding
    attributes["_private_blocks"] = {}
    attributes["_pixel_array_opts"] = {"use_pdh": False}
    attributes["_pixel_id"] = {}
    attributes["_read_implicit"] = implicit
    attributes["_read_little"] = True
    attributes["_read_charset"] = encoding
    return dataset


def _item_encoding(data: bytes, start: int, implicit: bool) -> bool:
    """pydicom's test at the start of an item (``_is_implicit_vr`` in a sequence): an explicit-VR
    file may hold implicit-VR items; the other way round pydicom warns, and reads it itself."""
    vr = data[start + 4 : start + 6]
    if len(vr) < 2:
        return implicit
    found_implicit = not (0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B)
    if found_implicit == implicit:
        return implicit
    if found_implicit:
        return True
    raise _NotFast


__all__ = ["new_dataset", "read_header", "read_sequence_value"]
