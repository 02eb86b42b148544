"""Raw element values without pydicom's conversion.

pydicom converts a raw element the first time it is read through the dataset (``ds[tag]``,
``ds.Keyword``, ``ds.get``) and stores the converted ``DataElement`` in its place; the writer then
has to encode it again. These helpers read or set the common plain-ASCII values straight from and
to their bytes, so elements the engine only looks at keep their raw bytes (and are copied, not
re-encoded, when the output is written). Anything unusual (non-ASCII or ISO 2022 bytes, a VR the
conversion could change, numbers) is left to pydicom.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

import pydicom.config
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

#: Returned when a raw value needs pydicom's conversion.
UNDECODED: Any = object()

# Raw VRs decoded directly (ASCII values), as pydicom's converters return them: str or list of str.
_STRING_VRS = frozenset({"UI", "DA", "DT", "TM", "CS", "AS"})  # padding stripped, then split
_TEXT_VRS = frozenset({"LO", "SH", "UC"})  # split, then each value's padding stripped
_PN = "PN"  # padding stripped, then split (PersonName objects whose str() is the text)
_DECODED_VRS = _STRING_VRS | _TEXT_VRS | {_PN}
_ESC = 0x1B  # ISO 2022 escape: 7-bit bytes that are not ASCII text
#: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


def plain_value(raw: Any, vr: str) -> Any:
    """The value pydicom's conversion gives a raw element of a plain ASCII VR, as ``str`` (one
    value) or a list of ``str`` (several; a person name as its text), without building a
    DataElement; ``UNDECODED`` when the element needs pydicom (non-ASCII or ISO 2022 bytes, other
    VRs, a VR that conversion could change)."""
    if type(raw) is not RawDataElement or (raw.VR is not None and vr != raw.VR):
        return UNDECODED
    if vr not in _DECODED_VRS:
        return UNDECODED
    data = raw.value
    if raw.length == 0 and not data:
        if pydicom.config.use_none_as_empty_text_VR_value or vr == _PN:
            return UNDECODED
        return ""
    if type(data) is not bytes or len(data) != raw.length or not data.isascii() or _ESC in data:
        return UNDECODED
    if vr in _TEXT_VRS:
        items = [item.rstrip("\x00 ") for item in data.decode("ascii").split("\\")]
    else:
        if pydicom.config.datetime_conversion and vr in ("DA", "DT", "TM"):
            return UNDECODED
        items = data.decode("ascii").rstrip(" \x00").split("\\")
        if vr == "UI" and any(item != item.strip() for item in items):
            return UNDECODED  # pydicom's UID strips every kind of white space
        if vr == _PN and any(item.endswith("=") for item in items):
            return UNDECODED  # PersonName drops empty trailing component groups
    return items[0] if len(items) == 1 else items


def peek_value(dataset: Dataset, tag: int, vr: str) -> Any:
    """The value of ``dataset[tag]`` (None when absent); a plain value of ``vr`` is read from the
    raw bytes and the element stays raw. Anything else is converted by pydicom as ``dataset[tag]``
    does (and stays converted: e.g. a UN element gets its dictionary VR, as in pydicom's output)."""
    item = dataset._dict.get(tag)
    if item is None:
        return None
    value = plain_value(item, vr)
    if value is not UNDECODED:
        return value
    return dataset[tag].value


def encode_plain(vr: str, value: Any) -> bytes | None:
    """The bytes pydicom would write for a generated ASCII text value of ``vr``, else None."""
    if type(value) is str:
        parts = [value]
    elif type(value) is list and all(type(v) is str for v in value):
        parts = value
    else:
        return None
    for part in parts:
        # non-ASCII, or padding pydicom would strip when decoding: kept as a DataElement, so the
        # value read back in memory is exactly the one set
        if not part.isascii() or part != part.strip(" \x00\t\r\n"):
            return None
    text = "\\".join(parts)
    if len(text) % 2:
        text += "\x00" if vr == "UI" else " "
    return text.encode("ascii")


_KEYS: dict[int, BaseTag] = {}


@lru_cache(maxsize=8192)
def implicit_vr(tag: int) -> str | None:
    """The dictionary VR pydicom gives an implicit-VR public element (None: pydicom decides)."""
    if (tag >> 16) & 1 or not dictionary_has_tag(tag):
        return None
    return dictionary_VR(tag)


def tag_key(tag: int) -> BaseTag:
    """One ``BaseTag`` per tag value (up to 65,536 of them): dict keys made by the reader and by
    the engine are then the same object, and look-ups match on identity instead of calling
    ``BaseTag.__eq__``, which is Python code."""
    key = _KEYS.get(tag)
    if key is None:
        key = BaseTag(tag)
        if len(_KEYS) < 65536:
            _KEYS[tag] = key
    return key


def store_raw(dataset: Dataset, tag: int, vr: str, encoded: bytes) -> None:
    """``dataset[tag] = RawDataElement(...)`` holding ``encoded`` (explicit VR little endian
    flags; the value bytes are the same in every transfer syntax for text VRs); a public
    non-pixel tag goes straight into the element dict (all pydicom's ``__setitem__`` does)."""
    key = tag_key(tag)
    raw = RawDataElement(key, vr, len(encoded), encoded, None, False, True)
    if (tag >> 16) & 1 or tag in PIXEL_TAGS:
        dataset[key] = raw  # private creator look-up, pixel caches
    else:
        dataset._dict[key] = raw


HEAD_IMPLICIT = {True: struct.Struct("<HHL"), False: struct.Struct(">HHL")}
_HEAD_SHORT = {True: struct.Struct("<HH2sH"), False: struct.Struct(">HH2sH")}
HEAD_LONG = {True: struct.Struct("<HH2sHL"), False: struct.Struct(">HH2sHL")}
_VR_LONG = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_VR_ALL = frozenset(str(vr) for vr in STANDARD_VR)
ITEM_TAG = {True: b"\xfe\xff\x00\xe0", False: b"\xff\xfe\xe0\x00"}
UL = {True: struct.Struct("<L"), False: struct.Struct(">L")}


def encode_element(tag: int, vr: str, value: bytes, little: bool, implicit: bool) -> bytes | None:
    """One element with a defined-length value as pydicom's ``write_data_element`` writes it (tag,
    VR, length, value as is); None when pydicom must write it (unknown VR, a short-VR value over
    64 KiB)."""
    size = len(value)
    if implicit:
        return HEAD_IMPLICIT[little].pack(tag >> 16, tag & 0xFFFF, size) + value
    if vr not in _VR_ALL:
        return None
    if vr in _VR_LONG:
        return HEAD_LONG[little].pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, size) + value
    if size > 0xFFFF:
        return None
    return _HEAD_SHORT[little].pack(tag >> 16, tag & 0xFFFF, vr.encode(), size) + value


def encode_items(
    items: list[list[tuple[int, str, Any]]], little: bool, implicit: bool
) -> bytes | None:
    """The value of a sequence of new items (each a sorted list of (tag, VR, ASCII text)) as
    pydicom writes one built in memory: defined-length items, no delimiters; None when a value
    is not plain ASCII text."""
    parts = []
    for item in items:
        body = []
        for tag, vr, text in item:
            encoded = encode_plain(vr, text)
            element = (
                None if encoded is None else encode_element(tag, vr, encoded, little, implicit)
            )
            if element is None:
                return None
            body.append(element)
        content = b"".join(body)
        parts += [ITEM_TAG[little], UL[little].pack(len(content)), content]
    return b"".join(parts)


def store_raw_sequence(
    dataset: Dataset, tag: int, value: bytes, little: bool, implicit: bool
) -> None:
    """``dataset[tag]`` = a sequence still encoded (``value``: its items), decoded by pydicom only
    if something reads it. ``value_tell`` 0: pydicom's item offsets need a number, and no writer
    mistakes it for a place in the source."""
    key = BaseTag(tag)
    dataset._dict[key] = RawDataElement(key, "SQ", len(value), value, 0, implicit, little)
