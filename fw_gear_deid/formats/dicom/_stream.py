"""Header-only reading and raw pixel copying: a DICOM file is parsed up to its pixel data, the pixel
data element is located by its length (or by walking its fragment items), and copied byte for byte
after the edited header; elements after the pixel data (rare: trailing padding, a vendor group) are
parsed and de-identified like the header. Pixel data is never decoded and never held in memory.

Deflated files are the exception: the whole dataset is one zlib stream, so it is inflated, edited and
re-deflated by pydicom in memory (such files are small in practice; documented in docs/dicom.md).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from fw_gear_deid import __version__
from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.dicom._raw import (
    HEAD_IMPLICIT,
    HEAD_LONG,
    ITEM_TAG,
    PIXEL_TAGS,
    UL,
    encode_element,
    encode_plain,
    peek_value,
    store_raw,
)
from fw_gear_deid.formats.dicom._reader import read_header

#: Implementation Class UID written in the file meta of every output (keyed on nothing: a constant
#: under the 2.25 root identifying this software, not the source).
IMPLEMENTATION_CLASS_UID = "2.25.186517463390137542226331632519914733210"
IMPLEMENTATION_VERSION_NAME = f"FWGEARDEID_{__version__}"[:16]

_CHUNK = 1 << 20
#: Files up to this size are read whole (and parsed by ``_reader`` when it can).
_IN_MEMORY = 8 << 20
_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN"})
_ITEM = 0xFFFEE000
_SEQ_DELIMITER = 0xFFFEE0DD
# Past this size a trailing region (after pixel data) is refused rather than read into memory.
_MAX_TRAILING = 64 << 20


class DicomdirRefusedError(MalformedFileError):
    """A DICOMDIR is not de-identified: it indexes source paths and UIDs and must be regenerated
    from the de-identified files."""


@dataclass
class SourceFile:
    """A parsed source: header dataset (file meta attached), where the raw pixel bytes are, and the
    dataset of any elements after them."""

    path: Path
    dataset: Dataset
    transfer_syntax: str
    implicit_vr: bool
    little_endian: bool
    had_file_meta: bool
    pixel_start: int = 0
    pixel_end: int = 0
    trailing: Dataset | None = None
    deflated: bool = False
    #: The raw pixel data element when it is small (read once, no second open at write time).
    pixel_bytes: bytes | None = None
    #: The source bytes before the pixel data: untouched top-level elements are copied from here.
    header_bytes: bytes | None = None

    @property
    def has_raw_pixels(self) -> bool:
        return self.pixel_end > self.pixel_start


def _looks_like_dicom(head: bytes) -> bool:
    """A Part 10 file (``DICM`` at 128) or a bare dataset starting with group 0002/0008 (either endian)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_le = struct.unpack("<H", head[:2])[0]
    group_be = struct.unpack(">H", head[:2])[0]
    return group_le in (0x0002, 0x0008) or group_be in (0x0002, 0x0008)


def read_source(path: Path, *, name: str | None = None) -> SourceFile:
    """Parse the header of ``path`` (never its pixel data) or raise MalformedFileError."""
    label = name or path.name
    size = os.path.getsize(path)
    if size == 0:
        raise MalformedFileError(label, "empty file")
    with open(path, "rb") as file:
        # A small file is read whole (and parsed by our reader when it is an ordinary one: every
        # value then has its full length); anything else is parsed by pydicom.
        data = file.read() if size <= _IN_MEMORY else None
        handle: BinaryIO = file if data is None else io.BytesIO(data)
        if not _looks_like_dicom(data[:512] if data is not None else file.read(512)):
            raise MalformedFileError(label, "not a DICOM file (no DICM marker, no DICOM header)")
        fast = read_header(data, str(path)) if data is not None else None
        if fast is not None:
            dataset, pixel_start = fast
        else:
            handle.seek(0)
            try:
                dataset = pydicom.dcmread(handle, stop_before_pixels=True, force=True)
                pixel_start = handle.tell()
            except Exception as error:  # pydicom raises many types for broken input
                raise MalformedFileError(label, f"unreadable DICOM header: {error}") from None
        meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
        had_meta = "TransferSyntaxUID" in meta
        if len(dataset) == 0:
            raise MalformedFileError(label, "no data elements")
        if (
            meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage
            or "DirectoryRecordSequence" in dataset
        ):
            raise DicomdirRefusedError(
                label,
                "DICOMDIR is not de-identified: it indexes source file paths and UIDs; "
                "regenerate it from the de-identified files",
            )
        implicit, little = dataset.original_encoding
        if implicit is None:
            raise MalformedFileError(label, "cannot determine the transfer syntax")
        syntax = str(meta.get("TransferSyntaxUID", "")) if had_meta else ""
        if not syntax:
            syntax = (
                ImplicitVRLittleEndian
                if implicit
                else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
            )
        source = SourceFile(path, dataset, syntax, implicit, little, had_meta)
        if syntax == DeflatedExplicitVRLittleEndian:
            return _read_deflated(path, label, source)
        if data is not None:
            source.header_bytes = data[:pixel_start]
        else:
            handle.seek(0)
            source.header_bytes = handle.read(pixel_start)
        if pixel_start < size:
            _locate_pixels(handle, label, source, pixel_start, size)
        elif fast is None:
            _check_complete(dataset, label, size)
        if fast is None:
            _check_values_readable(dataset, label)
    return source


def _check_complete(dataset: Dataset, label: str, size: int) -> None:
    """pydicom stops quietly at a partial element header: bytes after the last complete element of
    a file without pixel data mean the file was cut (or has garbage appended)."""
    if not dataset._dict:
        return
    last = dataset._dict[max(dataset._dict)]
    tell = getattr(last, "value_tell", None)
    length = getattr(last, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:
        return
    end = tell + length
    if end < size:
        raise MalformedFileError(
            label, f"truncated or corrupt: {size - end} byte(s) after the last complete element"
        )


def _check_values_readable(dataset: Dataset, label: str) -> None:
    """Fail here, not mid-write, on a header cut short: every raw value must have its full length.
    (Decoding every value would double the cost of a file; values the rules read are decoded later
    and a decoding error there is reported the same way.)"""
    for elem in dataset._dict.values():
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if (
            isinstance(value, bytes)
            and length is not None
            and length != 0xFFFFFFFF
            and len(value) != length
        ):
            raise MalformedFileError(label, f"data element {elem.tag} is truncated")


def _read_deflated(path: Path, label: str, source: SourceFile) -> SourceFile:
    try:
        source.dataset = pydicom.dcmread(path, force=True)
        _ = source.dataset.get("PixelData")
    except Exception as error:
        raise MalformedFileError(label, f"unreadable deflated DICOM: {error}") from None
    source.deflated = True
    return source


def _locate_pixels(handle: BinaryIO, label: str, source: SourceFile, start: int, size: int) -> None:
    """Find where the pixel data element at ``start`` ends; parse whatever follows it."""
    endian = "<" if source.little_endian else ">"
    handle.seek(start)
    header = handle.read(12)
    if len(header) < 8:
        raise MalformedFileError(label, "truncated before the pixel data element")
    group, element = struct.unpack(endian + "HH", header[:4])
    tag = group << 16 | element
    if tag not in PIXEL_TAGS:
        raise MalformedFileError(
            label, f"unexpected element ({group:04X},{element:04X}) at {start}"
        )
    if source.implicit_vr:
        length = struct.unpack(endian + "L", header[4:8])[0]
        value_start = start + 8
    elif header[4:6] in _LONG_VRS:
        if len(header) < 12:
            raise MalformedFileError(label, "truncated pixel data element header")
        length = struct.unpack(endian + "L", header[8:12])[0]
        value_start = start + 12
    else:
        length = struct.unpack(endian + "H", header[6:8])[0]
        value_start = start + 8
    if length == 0xFFFFFFFF:
        end = _skip_fragments(handle, label, value_start, size, endian)
    else:
        end = value_start + length
        if end > size:
            raise MalformedFileError(
                label, f"pixel data is truncated ({size - value_start} of {length} bytes)"
            )
    source.pixel_start, source.pixel_end = start, end
    if end - start <= _CHUNK:
        handle.seek(start)
        source.pixel_bytes = handle.read(end - start)
    if end < size:
        if size - end > _MAX_TRAILING:
            raise MalformedFileError(label, "more than 64 MiB of data after the pixel data")
        handle.seek(end)
        rest = handle.read()
        try:
            source.trailing = read_dataset(
                io.BytesIO(rest), source.implicit_vr, source.little_endian
            )
            _check_values_readable(source.trailing, label)
        except MalformedFileError:
            raise
        except Exception as error:
            raise MalformedFileError(
                label, f"unreadable data after the pixel data: {error}"
            ) from None


def _skip_fragments(handle: BinaryIO, label: str, position: int, size: int, endian: str) -> int:
    """End offset of an encapsulated pixel data value: walk item headers up to the delimiter."""
    while True:
        handle.seek(position)
        header = handle.read(8)
        if len(header) < 8:
            raise MalformedFileError(label, "encapsulated pixel data has no sequence delimiter")
        group, element, length = struct.unpack(endian + "HHL", header)
        tag = group << 16 | element
        if tag == _SEQ_DELIMITER:
            return position + 8
        if tag != _ITEM or length == 0xFFFFFFFF:
            raise MalformedFileError(
                label, f"bad item ({group:04X},{element:04X}) in encapsulated pixel data"
            )
        position += 8 + length
        if position > size:
            raise MalformedFileError(label, "encapsulated pixel data is truncated")


#: File meta elements not carried over: the sender's devices and private information.
_META_DROPPED = frozenset({0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102})


def build_file_meta(source: SourceFile, dataset: Dataset) -> FileMetaDataset:
    """The output's file meta: the source's (already de-identified) plus the required elements, with
    MediaStorageSOPInstanceUID = SOPInstanceUID and this software's implementation identity.

    Values are read and set as raw bytes where plain (see ``_raw``): the dataset keeps its raw
    elements, so the writer copies them."""
    meta = FileMetaDataset()
    elements = meta._dict
    old = getattr(dataset, "file_meta", None)
    if old is not None:
        # the elements as stored (raw ones are converted when read or written, as before)
        for tag, elem in old._dict.items():
            if tag & 0xFFFF != 0 and tag not in _META_DROPPED:  # group length: recomputed
                elements[tag] = elem
    sop_class = peek_value(dataset, 0x00080016, "UI")
    sop_instance = peek_value(dataset, 0x00080018, "UI")
    required = (
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", sop_class or None),
        (0x00020003, "UI", sop_instance or None),
        (0x00020010, "UI", source.transfer_syntax),
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
        (0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),
    )
    for tag, vr, value in required:
        if value is None:
            if peek_value(meta, tag, vr):
                continue  # the source's, already de-identified
            # required, and the source had none: a class (SC) and an instance UID naming nothing
            value = "1.2.840.10008.5.1.4.1.1.7" if tag == 0x00020002 else "2.25.0"
        if isinstance(value, str):
            value = str(value)  # a UID object is its text
        encoded = value if isinstance(value, bytes) else encode_plain(vr, value)
        if encoded is None:
            setattr(meta, keyword_for_tag(tag), value)  # not plain ASCII: pydicom encodes it
        else:
            store_raw(meta, tag, vr, encoded)
    return meta


def write_output(dst: Path, source: SourceFile, dataset: Dataset, trailing: Dataset | None) -> None:
    """Write the edited header, the raw pixel bytes and the edited trailing elements to ``dst``."""
    dataset.file_meta = build_file_meta(source, dataset)
    dataset.preamble = (
        b"\x00" * 128
    )  # the source preamble may hold anything (TIFF/DICOM dual files)
    with open(dst, "wb") as out:
        if source.deflated or source.header_bytes is None:
            pydicom.dcmwrite(
                out,
                dataset,
                enforce_file_format=True,
                implicit_vr=source.implicit_vr,
                little_endian=source.little_endian,
            )
        else:
            out.write(encode_header(source, dataset))
        if source.deflated:
            return
        if source.pixel_bytes is not None:
            out.write(source.pixel_bytes)
        elif source.has_raw_pixels:
            _copy_range(source.path, out, source.pixel_start, source.pixel_end)
        if trailing is not None and len(trailing):
            buffer = DicomFileLike(out)
            buffer.is_implicit_VR = source.implicit_vr
            buffer.is_little_endian = source.little_endian
            charset = dataset.get("SpecificCharacterSet", "iso8859")
            write_dataset(buffer, trailing, parent_encoding=charset)


def _copy_range(path: Path, out: BinaryIO, start: int, end: int) -> None:
    """Copy bytes [start, end) of ``path`` to ``out``: in the kernel when possible, else in 1 MiB
    chunks; memory use does not depend on the size."""
    remaining = end - start
    with open(path, "rb") as src:
        out.flush()
        if hasattr(os, "copy_file_range"):
            offset = start
            try:
                while remaining:
                    copied = os.copy_file_range(src.fileno(), out.fileno(), remaining, offset)
                    if copied == 0:
                        break
                    offset += copied
                    remaining -= copied
            except OSError:
                pass  # e.g. across file systems on old kernels: fall back below
            out.seek(0, os.SEEK_END)
            start = end - remaining
        src.seek(start)
        while remaining:
            chunk = src.read(min(_CHUNK, remaining))
            if not chunk:
                raise OSError("source shrank while copying pixel data")
            out.write(chunk)
            remaining -= len(chunk)


def encode_header(source: SourceFile, dataset: Dataset) -> bytes:
    """Preamble, file meta and the header dataset, in the source encoding, as bytes.

    The same bytes pydicom's ``dcmwrite`` produces, faster: an element still raw (untouched) at the top
    level is copied from the source header as is; changed elements and sequences the engine walked are
    encoded by pydicom. Group length elements (gggg,0000) past group 0002 are dropped, as pydicom does.
    """
    buffer = DicomBytesIO()
    buffer.is_little_endian = source.little_endian
    buffer.is_implicit_VR = source.implicit_vr
    buffer.write(dataset.preamble or b"\x00" * 128)
    buffer.write(b"DICM")
    buffer.write(_encode_file_meta(dataset.file_meta))
    buffer.is_little_endian = source.little_endian
    buffer.is_implicit_VR = source.implicit_vr
    header = source.header_bytes or b""
    encodings = convert_encodings(dataset._character_set)
    elements = dataset._dict
    # Untouched elements next to each other in the source are copied as one slice.
    run_start = run_end = 0
    for tag in sorted(elements, key=int):  # int keys: BaseTag.__lt__ is Python code
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        elem = elements[tag]
        raw = type(elem) is RawDataElement
        span = _raw_span(elem, source) if raw else None
        if span is not None:
            if span[0] != run_end:
                buffer.write(header[run_start:run_end])
                run_start = span[0]
            run_end = span[1]
            continue
        buffer.write(header[run_start:run_end])
        run_start = run_end = 0
        if raw:
            encoded = _encode_raw(elem, source.little_endian, source.implicit_vr)
        elif elem.VR == "SQ":
            encoded = _encode_sequence(elem, source.little_endian, source.implicit_vr, encodings)
        else:
            encoded = None
        if encoded is not None:
            buffer.write(encoded)
        else:
            write_data_element(buffer, dataset.get_item(tag), encodings)
    buffer.write(header[run_start:run_end])
    return buffer.getvalue()


def _raw_span(elem: RawDataElement, source: SourceFile) -> tuple[int, int] | None:
    """Where an untouched top-level element lies in the source header, if it can be copied."""
    if elem.length == 0xFFFFFFFF or elem.value_tell is None or elem.value is None:
        return None
    if len(elem.value) != elem.length:
        return None
    if source.implicit_vr:
        head = 8
    elif elem.VR is None:
        return None
    else:
        head = 12 if elem.VR.encode() in _LONG_VRS else 8
    start, end = elem.value_tell - head, elem.value_tell + elem.length
    header = source.header_bytes or b""
    if start < 0 or end > len(header):
        return None
    # The bytes there must be this element's tag: never copy a span that is not the element.
    endian = "<" if source.little_endian else ">"
    group, element = struct.unpack(endian + "HH", header[start : start + 4])
    if (group << 16 | element) != elem.tag:
        return None
    return start, end


def _encode_raw(elem: RawDataElement, little: bool, implicit: bool) -> bytes | None:
    """A raw element with a defined-length value (e.g. one the engine stored pre-encoded), encoded
    as pydicom's ``write_data_element`` writes it (tag, VR, length, value as is); None when pydicom
    must write it (undefined length, deferred value, unknown VR, a short-VR value over 64 KiB)."""
    value = elem.value
    if type(value) is not bytes or elem.length == 0xFFFFFFFF or elem.tag in PIXEL_TAGS:
        return None
    return encode_element(elem.tag, elem.VR, value, little, implicit)


_ITEM_END = {True: b"\xfe\xff\x0d\xe0\x00\x00\x00\x00", False: b"\xff\xfe\xe0\x0d\x00\x00\x00\x00"}
_SEQ_END = {True: b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", False: b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"}


def _encode_sequence(
    elem: DataElement, little: bool, implicit: bool, encodings: str | list[str] | None
) -> bytes | None:
    """A sequence element as pydicom's ``write_data_element`` encodes it (items with their defined
    or undefined lengths and delimiters), raw elements inside copied as they are; None when an item
    needs pydicom's conversions (created in memory, another encoding or character set)."""
    encodings = convert_encodings(encodings or [default_encoding])
    parts = []
    for item in elem.value or []:
        body = _encode_dataset(item, little, implicit, encodings)
        if body is None:
            return None
        undefined = getattr(item, "is_undefined_length_sequence_item", False)
        parts.append(ITEM_TAG[little])
        parts.append(UL[little].pack(0xFFFFFFFF if undefined else len(body)))
        parts.append(body)
        if undefined:
            parts.append(_ITEM_END[little])
    content = b"".join(parts)
    undefined = elem.is_undefined_length
    length = 0xFFFFFFFF if undefined else len(content)
    tag = elem.tag
    if implicit:
        head = HEAD_IMPLICIT[little].pack(tag >> 16, tag & 0xFFFF, length)
    else:
        head = HEAD_LONG[little].pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, length)
    return head + content + (_SEQ_END[little] if undefined else b"")


def _encode_dataset(
    dataset: Dataset, little: bool, implicit: bool, parent_encoding: str | list[str]
) -> bytes | None:
    """A sequence item's elements as pydicom's ``write_dataset`` encodes them, or None when
    pydicom would convert them first (the item was not read with this encoding and character set)."""
    if (
        dataset.original_encoding != (implicit, little)
        or dataset.original_character_set != dataset._character_set
    ):
        return None
    # dataset.get("SpecificCharacterSet", parent_encoding), without the keyword look-up
    charset = dataset._dict.get(0x00080005)
    dataset_encoding = parent_encoding if charset is None else dataset[0x00080005].value
    parts = []
    elements = dataset._dict
    for tag in sorted(elements, key=int):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths are not written
        elem = elements[tag]
        if isinstance(elem, RawDataElement):
            encoded = _encode_raw(elem, little, implicit)
        elif elem.VR == "SQ":
            encoded = _encode_sequence(elem, little, implicit, dataset_encoding)
        else:
            encoded = None
        if encoded is None:
            buffer = DicomBytesIO()
            buffer.is_little_endian = little
            buffer.is_implicit_VR = implicit
            write_data_element(buffer, dataset.get_item(tag), dataset_encoding)
            encoded = buffer.getvalue()
        parts.append(encoded)
    return b"".join(parts)


_GROUP_LENGTH_HEAD = struct.pack("<HH2sH", 0x0002, 0x0000, b"UL", 4)


def _encode_file_meta(meta: FileMetaDataset) -> bytes:
    """The file meta group as ``write_file_meta_info(..., enforce_standard=True)`` writes it
    (``build_file_meta`` made the required elements; group length first and set in ``meta``),
    without pydicom's whole-dataset re-encoding pass: explicit VR little endian, raw values copied."""
    parts = []
    encoding = None
    for tag in sorted(meta._dict, key=int):
        if tag == 0x00020000:
            continue
        elem = meta._dict[tag]
        encoded = None
        if (
            type(elem) is RawDataElement
            and elem.is_little_endian
            and not elem.is_implicit_VR
            and elem.VR != "UN"  # pydicom gives it its dictionary VR
            and not len(elem.value or b"") % 2  # pydicom pads an odd length
        ):
            encoded = _encode_raw(elem, True, False)
        if encoded is None:
            body = DicomBytesIO()
            body.is_little_endian = True
            body.is_implicit_VR = False
            if encoding is None:
                encoding = meta.get("SpecificCharacterSet", default_encoding)
            write_data_element(body, meta[tag], encoding)
            encoded = body.getvalue()
        parts.append(encoded)
    data = b"".join(parts)
    store_raw(meta, 0x00020000, "UL", struct.pack("<L", len(data)))
    return _GROUP_LENGTH_HEAD + struct.pack("<L", len(data)) + data
