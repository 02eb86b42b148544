"""DICOM backstop for the gate: every element of an output, at any depth, as text.

The DICOM handler's ``text_values`` is the primary source; this walk is a second, independent reader
so that what the handler does not decode is still scanned, above all private OB/UN blobs such as the
Siemens CSA headers, which carry operator and patient names (PEERS.md §11). Binary values are turned
into text the way ``strings`` does: runs of printable Latin-1 characters.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

import fw_gear_deid._pydicom  # noqa: F401  (never echo element values to logs)
from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.dicom._reader import read_header

#: Pixel-like binary data: numbers, not text; scanning it only makes false positives.
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010, 0x54000110, 0x54001010, 0x00091001})
_BINARY_VRS = frozenset({"OB", "UN", "OW", "OB or OW", "US or OW", "ob", "un"})
#: Printable Latin-1 runs of at least 4 characters (shorter runs are chance in binary data).
_PRINTABLE = re.compile(rb"[\x20-\x7e\xa0-\xff]{4,}")
#: Deep enough for any real file; deeper nesting is hostile and the handler rejects it.
MAX_DEPTH = 64


def tag_path(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _is_pixel_like(tag: BaseTag) -> bool:
    # overlay data (60xx,3000) and curve data (50xx,3000) are bitmaps too
    return int(tag) in _PIXEL_TAGS or (tag.element == 0x3000 and tag.group >> 8 in (0x50, 0x60))


def printable_runs(data: bytes) -> Iterator[str]:
    for run in _PRINTABLE.finditer(data):
        yield run.group().decode("latin-1")


class _TooDeep(Exception):
    pass


@dataclass(frozen=True)
class DicomText:
    """One element of a DICOM file as text: its path, VR, keyword (empty for private) and value."""

    path: str
    vr: str
    keyword: str
    text: str
    binary: bool = False
    private: bool = False


#: VRs whose values pydicom gives as bytes (or that hold items): what the handler may not decode.
_BYTES_OR_ITEMS_VRS = frozenset(
    {"SQ", "OB", "UN", "OW", "OB or OW", "US or OW", "OF", "OD", "OL", "OV"}
)


def _raw_vr(dataset: Dataset, tag: int) -> str:
    """The VR of an element without converting its value (implicit VR: from the dictionary)."""
    raw = dataset.get_item(tag, keep_deferred=True)
    vr = getattr(raw, "VR", None)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"  # unknown private element in implicit VR: bytes
    return str(vr)


def _walk(dataset: Dataset, prefix: str, depth: int, binary_only: bool) -> Iterator[DicomText]:
    if depth > MAX_DEPTH:
        raise _TooDeep
    elements = dataset._dict
    for tag in list(elements):
        # _is_pixel_like, inline: checked before access (reading would load deferred pixels)
        if tag in _PIXEL_TAGS or (tag & 0xFFFF == 0x3000 and tag >> 24 in (0x50, 0x60)):
            continue
        if binary_only:
            # _raw_vr, inline: the element as stored, raw or not, never converted here
            vr = getattr(elements[tag], "VR", None)
            if vr is None:
                vr = _raw_vr(dataset, tag)
            if str(vr) not in _BYTES_OR_ITEMS_VRS:
                continue  # text the handler reads anyway: not even converted here
        elem = dataset[tag]
        path = f"{prefix}{tag_path(elem.tag)}"
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            for i, item in enumerate(elem.value):
                yield from _walk(item, f"{path}[{i}].", depth + 1, binary_only)
            continue
        value = elem.value
        if value is None:
            continue
        keyword = "" if elem.tag.is_private else (elem.keyword or "")
        if isinstance(value, bytes | bytearray):
            if elem.VR in _BINARY_VRS or elem.tag.is_private:
                for run in printable_runs(bytes(value)):
                    yield DicomText(path, str(elem.VR), keyword, run, True, elem.tag.is_private)
            continue
        if binary_only:
            continue
        if isinstance(value, list | tuple | MultiValue):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        yield DicomText(path, str(elem.VR), keyword, text, False, elem.tag.is_private)


class DicomReader:
    """One read of a DICOM output for the gate: its elements, and where its pixel data lies."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._dataset: Dataset | None = None
        #: The pixel data value's byte range, when the fast read found it.
        self._pixels: tuple[int, int] | None = None

    def _read_fast(self) -> Dataset | None:
        """An ordinary small file (what the DICOM handler writes) parsed by the header reader,
        when its pixel data element, if any, is the last element; else None (pydicom reads it)."""
        try:
            if self.path.stat().st_size > _FAST_MAX:
                return None
            data = self.path.read_bytes()
        except OSError:
            return None
        header = read_header(data, str(self.path))
        if header is None:
            return None
        dataset, start = header
        if start < len(data):
            pixels = _pixel_value_range(data, start, dataset.original_encoding[0])
            if pixels is None or pixels[1] != len(data):
                return None  # elements after the pixel data: pydicom reads the whole file
            self._pixels = pixels
        return dataset

    def _read(self) -> Dataset:
        if self._dataset is None:
            fast = self._read_fast()
            if fast is not None:
                self._dataset = fast
                return fast
            # pydicom raises many types on hostile input (NotImplementedError for an unknown VR,
            # KeyError, struct.error...): all of them mean "cannot be scanned", i.e. a block
            try:
                dataset = dcmread(self.path, defer_size="1 MB", force=True)
            except Exception as error:
                raise MalformedFileError(
                    self.path.name, f"not readable as DICOM ({type(error).__name__})"
                ) from None
            # force=True reads files without a preamble, and reads garbage as an empty dataset or
            # as elements of made-up tags: that must not pass as a clean scan
            has_meta = bool(len(getattr(dataset, "file_meta", None) or ()))
            keys = dataset.keys()  # not the dataset itself: iterating it converts every element
            if not has_meta and not any(dictionary_has_tag(tag) for tag in keys):
                raise MalformedFileError(self.path.name, "no DICOM elements could be read")
            self._dataset = dataset
        return self._dataset

    def elements(self, binary_only: bool = False) -> Iterator[DicomText]:
        """Every element (file meta included, sequences at any depth) as text; with
        ``binary_only`` just the byte values (private blobs), as a handler's backup.

        Raises :class:`MalformedFileError` when the file cannot be read as DICOM.
        """
        dataset = self._read()
        try:
            if dataset.file_meta is not None:
                yield from _walk(dataset.file_meta, "", 0, binary_only)
            yield from _walk(dataset, "", 0, binary_only)
        except (RecursionError, _TooDeep):
            raise MalformedFileError(
                self.path.name, f"sequences nested deeper than {MAX_DEPTH}"
            ) from None
        except Exception as error:
            raise MalformedFileError(
                self.path.name, f"element unreadable ({type(error).__name__})"
            ) from None

    def pixel_range(self) -> tuple[int, int] | None:
        """Byte range of the top-level pixel data value (to the end of the file for encapsulated
        data), or None; found without loading the pixels."""
        try:
            dataset = self._read()
            if self._pixels is not None:
                return self._pixels
            for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
                raw = dataset.get_item(tag, keep_deferred=True)
                if raw is not None and getattr(raw, "value_tell", None) is not None:
                    start, length = raw.value_tell, raw.length
                    size = self.path.stat().st_size
                    end = size if length in (None, 0xFFFFFFFF) else min(size, start + length)
                    return start, end
        except Exception:  # the backstop then reads the whole file: safe, only slower
            return None
        return None


_FAST_MAX = 8 << 20
_ITEM, _SEQUENCE_END, _UNDEFINED = 0xFFFEE000, 0xFFFEE0DD, 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})


def _pixel_value_range(data: bytes, start: int, implicit: bool | None) -> tuple[int, int] | None:
    """Where the value of the (little endian) pixel data element at ``start`` lies: to the end of
    its defined length, or past the sequence delimiter of its fragments; None if it does not parse."""
    if implicit is None or start + 12 > len(data):
        return None
    if implicit:
        (length,) = struct.unpack_from("<L", data, start + 4)
        value = start + 8
    elif data[start + 4 : start + 6] in _LONG_VRS:
        (length,) = struct.unpack_from("<L", data, start + 8)
        value = start + 12
    else:
        return None
    if length != _UNDEFINED:
        return value, value + length
    position = value
    while position + 8 <= len(data):
        group, element, item_length = struct.unpack_from("<HHL", data, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return value, position + 8
        if tag != _ITEM or item_length == _UNDEFINED:
            return None
        position += 8 + item_length
    return None


def dicom_elements(path: Path) -> Iterator[DicomText]:
    """Every element of a DICOM file as text (see :meth:`DicomReader.elements`)."""
    return DicomReader(path).elements()


def dicom_texts(path: Path) -> Iterator[tuple[str, str]]:
    """``(element path, text)`` for every element of a DICOM file."""
    for element in dicom_elements(path):
        yield element.path, element.text


def pixel_data_range(path: Path) -> tuple[int, int] | None:
    """See :meth:`DicomReader.pixel_range`."""
    return DicomReader(path).pixel_range()


def looks_like_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"
