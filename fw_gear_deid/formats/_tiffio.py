"""A small lossless reader/writer of TIFF structures (TIFF files and the EXIF block of JPEG/PNG).

Why our own: Pillow re-encodes on save and piexif cannot carry strips, tiles or unknown tag types.
Here every IFD is parsed into entries (raw value bytes kept as they are), the caller edits entries,
and :func:`write_tiff` lays the file out afresh: image data blocks (strips, tiles, the EXIF thumbnail)
are copied byte for byte, streamed in chunks, then every IFD with its out-of-line values. Nothing of
the source that is not referenced by a kept entry reaches the output, so a removed value cannot
survive as unreferenced bytes (an in-place edit would leave it behind).

Classic TIFF and BigTIFF (64-bit offsets) are both read and written back in their own layout.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

#: Bytes per value of each TIFF field type (1 BYTE ... 13 IFD).
TYPE_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,  # BigTIFF LONG8, SLONG8, IFD8
}
_NUMBER_FORMATS = {
    1: "B",
    3: "H",
    4: "I",
    6: "b",
    8: "h",
    9: "i",
    11: "f",
    12: "d",
    13: "I",
    16: "Q",
    17: "q",
    18: "Q",
}
TYPE_ASCII, TYPE_UNDEFINED, TYPE_BYTE, TYPE_SHORT, TYPE_LONG, TYPE_IFD = 2, 7, 1, 3, 4, 13
TYPE_LONG8, TYPE_IFD8 = 16, 18
_POINTER_TYPES = (TYPE_LONG, TYPE_IFD, TYPE_LONG8, TYPE_IFD8)

#: Tags whose values are offsets of child IFDs, with the kind of the child.
SUBIFD_TAGS = {34665: "Exif", 34853: "GPS", 40965: "Interop", 330: "SubIFD"}
#: Offset tag -> byte-count tag of the image data blocks an IFD references.
DATA_TAGS = {273: 279, 324: 325, 513: 514}
#: Offsets of free space (may hold stale data): never carried over.
FREE_TAGS = (288, 289)
#: Old-style JPEG table offsets: data we cannot size safely, refused.
UNSUPPORTED_OFFSET_TAGS = {519: "JPEGQTables", 520: "JPEGDCTables", 521: "JPEGACTables"}
#: Tags whose BYTE values are UCS-2 text (Windows XP* tags).
XP_TAGS = {40091, 40092, 40093, 40094, 40095}
USER_COMMENT = 37510
THUMBNAIL_TAG = 513

_PRINTABLE_RUN = re.compile(r"[\x20-\x7e\xa0-\xff\t\r\n]{4,}")
MAX_ENTRIES = 4096
MAX_IFDS = 100_000
MAX_VALUE_BYTES = 64 * 1024 * 1024
_COPY_CHUNK = 1 << 20


class TiffFormatError(ValueError):
    """The bytes are not a TIFF structure this module can rewrite losslessly."""


@dataclass
class Entry:
    tag: int
    type: int
    count: int
    #: The value bytes exactly as stored (count * type size bytes, file byte order).
    data: bytes


@dataclass
class Ifd:
    kind: str
    entries: dict[int, Entry] = field(default_factory=dict)
    #: Child IFDs by pointer tag (Exif, GPS, Interop, SubIFDs).
    children: dict[int, list[Ifd]] = field(default_factory=dict)
    #: Image data blocks by offset tag: (source offset, byte count).
    blocks: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    #: Entries dropped while reading (unknown type, free space), reported by callers.
    dropped: list[int] = field(default_factory=list)

    def walk(self) -> Iterator[Ifd]:
        yield self
        for tag in sorted(self.children):
            for child in self.children[tag]:
                yield from child.walk()


@dataclass(frozen=True)
class Layout:
    """Field sizes of classic TIFF (32-bit offsets) or BigTIFF (64-bit offsets)."""

    big: bool
    count_format: str  # entries per IFD
    entry_size: int
    inline: int  # values up to this size sit in the entry itself
    offset_format: str
    offset_size: int
    long_type: int  # type written for offsets (LONG / LONG8)

    @property
    def header_size(self) -> int:
        return 16 if self.big else 8

    def ifd_size(self, entries: int) -> int:
        return (
            struct.calcsize("=" + self.count_format) + self.entry_size * entries + self.offset_size
        )


CLASSIC = Layout(False, "H", 12, 4, "I", 4, TYPE_LONG)
BIG = Layout(True, "Q", 20, 8, "Q", 8, TYPE_LONG8)


@dataclass
class TiffStructure:
    order: str  # "<" little endian (II), ">" big endian (MM)
    pages: list[Ifd]
    layout: Layout = CLASSIC

    def walk(self) -> Iterator[Ifd]:
        for page in self.pages:
            yield from page.walk()


class _Source:
    def __init__(self, stream: BinaryIO, size: int):
        self.stream = stream
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise TiffFormatError(f"a value at offset {offset} (+{length}) lies outside the data")
        self.stream.seek(offset)
        data = self.stream.read(length)
        if len(data) != length:
            raise TiffFormatError(f"truncated value at offset {offset}")
        return data


def unpack_numbers(order: str, entry: Entry) -> list[int | float]:
    fmt = _NUMBER_FORMATS.get(entry.type)
    if entry.type in (5, 10):
        code = "I" if entry.type == 5 else "i"
        return list(struct.unpack(f"{order}{2 * entry.count}{code}", entry.data))
    if fmt is None:
        return list(entry.data)
    return list(struct.unpack(f"{order}{entry.count}{fmt}", entry.data))


def read_tiff(
    stream: BinaryIO, size: int, first_kinds: tuple[str, ...] = ("page",)
) -> TiffStructure:
    """Parse every IFD reachable from the header. ``first_kinds`` names the chain's IFDs in order
    (EXIF: ``("0th", "1st")``); the last name repeats for longer chains."""
    source = _Source(stream, size)
    head = source.read(0, 8) if size >= 8 else b""
    if head[:2] == b"II":
        order = "<"
    elif head[:2] == b"MM":
        order = ">"
    else:
        raise TiffFormatError("no TIFF byte-order mark (II/MM)")
    magic = struct.unpack(f"{order}H", head[2:4])[0]
    if magic == 43:
        big = source.read(0, 16)
        if struct.unpack(f"{order}HH", big[4:8]) != (8, 0):
            raise TiffFormatError("BigTIFF header with an unknown offset size")
        layout = BIG
        offset = struct.unpack(f"{order}Q", big[8:16])[0]
    elif magic == 42:
        layout = CLASSIC
        offset = struct.unpack(f"{order}I", head[4:8])[0]
    else:
        raise TiffFormatError(f"TIFF magic number is {magic}, not 42 (or 43, BigTIFF)")
    visited: set[int] = set()
    pages: list[Ifd] = []
    while offset:
        if len(pages) >= MAX_IFDS:
            raise TiffFormatError("too many IFDs")
        kind = first_kinds[min(len(pages), len(first_kinds) - 1)]
        ifd, offset = _read_ifd(source, order, layout, offset, kind, visited, depth=0)
        pages.append(ifd)
    if not pages:
        raise TiffFormatError("the file has no IFD")
    return TiffStructure(order, pages, layout)


def _child_kind(parent: str, tag: int) -> str:
    if tag == 330:
        return "SubIFD"
    return SUBIFD_TAGS[tag]


def _read_ifd(
    source: _Source,
    order: str,
    layout: Layout,
    offset: int,
    kind: str,
    visited: set[int],
    depth: int,
) -> tuple[Ifd, int]:
    if offset in visited:
        raise TiffFormatError(f"IFD at offset {offset} is referenced twice (loop)")
    if depth > 8:
        raise TiffFormatError("IFDs nested too deeply")
    visited.add(offset)
    count_size = struct.calcsize("=" + layout.count_format)
    count = struct.unpack(f"{order}{layout.count_format}", source.read(offset, count_size))[0]
    if count > MAX_ENTRIES:
        raise TiffFormatError(f"IFD at offset {offset} claims {count} entries")
    size = layout.entry_size
    table = source.read(offset + count_size, size * count)
    # some writers (piexif among them) end the last IFD without its next-IFD pointer: read it as 0
    end = offset + count_size + size * count
    pointer = layout.offset_size
    table += source.read(end, pointer) if end + pointer <= source.size else b"\x00" * pointer
    entry_head = f"{order}HH{layout.offset_format}"
    ifd = Ifd(kind)
    for index in range(count):
        start = size * index
        tag, typ, n = struct.unpack(entry_head, table[start : start + 4 + pointer])
        raw = table[start + 4 + pointer : start + size]
        if (
            typ not in TYPE_SIZES
            or tag in FREE_TAGS
            or (typ in (TYPE_IFD, TYPE_IFD8) and tag not in SUBIFD_TAGS)
        ):
            # unknown types, free space and IFD pointers we do not follow (their target would
            # be left behind): dropped and reported
            ifd.dropped.append(tag)
            continue
        length = n * TYPE_SIZES[typ]
        if length > MAX_VALUE_BYTES:
            raise TiffFormatError(f"tag {tag} claims a {length}-byte value")
        if length <= layout.inline:
            data = raw[:length]
        else:
            data = source.read(struct.unpack(f"{order}{layout.offset_format}", raw)[0], length)
        ifd.entries[tag] = Entry(tag, typ, n, data)
    next_offset = struct.unpack(f"{order}{layout.offset_format}", table[size * count :])[0]

    for tag, name in UNSUPPORTED_OFFSET_TAGS.items():
        if tag in ifd.entries:
            raise TiffFormatError(f"old-style JPEG tables ({name}) are not supported")
    for off_tag, count_tag in DATA_TAGS.items():
        if off_tag not in ifd.entries:
            continue
        try:
            ifd.blocks[off_tag] = _blocks(source, order, ifd, off_tag, count_tag)
        except TiffFormatError:
            if off_tag != THUMBNAIL_TAG:
                raise  # strips and tiles are the image: a file without them is broken
            # a broken EXIF thumbnail is dropped, not a reason to lose the rest of the metadata
            ifd.entries.pop(off_tag, None)
            ifd.entries.pop(count_tag, None)
            ifd.dropped.append(off_tag)
    for tag in SUBIFD_TAGS:
        entry = ifd.entries.get(tag)
        if entry is None:
            continue
        try:
            if entry.type not in _POINTER_TYPES:
                raise TiffFormatError(f"IFD pointer tag {tag} has type {entry.type}")
            children = []
            for child_offset in unpack_numbers(order, entry):
                child, _next = _read_ifd(
                    source,
                    order,
                    layout,
                    int(child_offset),
                    _child_kind(kind, tag),
                    visited,
                    depth + 1,
                )
                children.append(child)
        except TiffFormatError:
            # an unreadable sub-IFD (EXIF, GPS...) cannot be edited tag by tag: it is dropped with
            # its pointer (fail closed on its content); the page itself stays usable
            ifd.entries.pop(tag)
            ifd.dropped.append(tag)
            continue
        ifd.children[tag] = children
    return ifd, next_offset


def _blocks(
    source: _Source, order: str, ifd: Ifd, off_tag: int, count_tag: int
) -> list[tuple[int, int]]:
    offsets = unpack_numbers(order, ifd.entries[off_tag])
    if count_tag not in ifd.entries:
        raise TiffFormatError(f"tag {off_tag} has no byte counts (tag {count_tag})")
    counts = unpack_numbers(order, ifd.entries[count_tag])
    if len(offsets) != len(counts):
        raise TiffFormatError(f"tags {off_tag}/{count_tag} differ in length")
    blocks = []
    for block_offset, block_count in zip(offsets, counts, strict=True):
        block_offset, block_count = int(block_offset), int(block_count)
        if block_offset < 0 or block_count < 0 or block_offset + block_count > source.size:
            raise TiffFormatError(f"image data at offset {block_offset} lies outside the file")
        blocks.append((block_offset, block_count))
    return blocks


# -- values as text --------------------------------------------------------------------------------
def entry_text(order: str, entry: Entry) -> str | None:
    """A readable text of an entry (None for image-data offsets and IFD pointers)."""
    if entry.tag in DATA_TAGS or entry.tag in DATA_TAGS.values() or entry.tag in SUBIFD_TAGS:
        return None
    if entry.type == TYPE_ASCII:
        return entry.data.rstrip(b"\x00").replace(b"\x00", b" ").decode("utf-8", "replace")
    if entry.tag in XP_TAGS and entry.type == TYPE_BYTE:
        return entry.data.decode("utf-16-le", "replace").rstrip("\x00")
    if entry.tag == USER_COMMENT and entry.type == TYPE_UNDEFINED:
        prefix, body = entry.data[:8], entry.data[8:]
        if prefix.startswith(b"UNICODE"):
            codec = "utf-16-be" if order == ">" else "utf-16-le"
            return body.decode(codec, "replace").rstrip("\x00 ")
        return body.decode("latin-1").rstrip("\x00 ")
    if entry.type in (TYPE_UNDEFINED, TYPE_BYTE, 6):
        text = entry.data.decode("latin-1").rstrip("\x00")
        if _PRINTABLE_RUN.fullmatch(text):
            return text
        # binary blob (tables, profiles): only its printable runs can carry readable identifiers
        return " ".join(_PRINTABLE_RUN.findall(text))
    numbers = unpack_numbers(order, entry)
    if entry.type in (5, 10):
        return " ".join(f"{numbers[i]}/{numbers[i + 1]}" for i in range(0, len(numbers), 2))
    return " ".join(repr(n) if isinstance(n, float) else str(n) for n in numbers)


def text_entry(order: str, entry: Entry, text: str) -> Entry:
    """A copy of ``entry`` holding ``text`` in the entry's own encoding."""
    if entry.type == TYPE_ASCII:
        data = text.encode("utf-8") + b"\x00"
        return Entry(entry.tag, TYPE_ASCII, len(data), data)
    if entry.tag in XP_TAGS and entry.type == TYPE_BYTE:
        data = text.encode("utf-16-le") + b"\x00\x00"
        return Entry(entry.tag, TYPE_BYTE, len(data), data)
    if entry.tag == USER_COMMENT and entry.type == TYPE_UNDEFINED:
        try:
            data = b"ASCII\x00\x00\x00" + text.encode("ascii")
        except UnicodeEncodeError:
            codec = "utf-16-be" if order == ">" else "utf-16-le"
            data = b"UNICODE\x00" + text.encode(codec)
        return Entry(entry.tag, TYPE_UNDEFINED, len(data), data)
    if entry.type in (TYPE_UNDEFINED, TYPE_BYTE, 6):
        data = text.encode("latin-1", "replace")
        return Entry(entry.tag, entry.type, len(data), data)
    parts = text.replace(",", " ").split()
    if entry.type in (5, 10):
        numbers: list[int | float] = []
        for part in parts:
            num, _, den = part.partition("/")
            numbers += [int(num), int(den or "1")]
        code = "I" if entry.type == 5 else "i"
        return Entry(
            entry.tag,
            entry.type,
            len(numbers) // 2,
            struct.pack(f"{order}{len(numbers)}{code}", *numbers),
        )
    fmt = _NUMBER_FORMATS[entry.type]
    values: list[int | float] = [float(p) if fmt in "fd" else int(float(p)) for p in parts]
    return Entry(
        entry.tag, entry.type, len(values), struct.pack(f"{order}{len(values)}{fmt}", *values)
    )


def ascii_entry(tag: int, text: str) -> Entry:
    data = text.encode("utf-8") + b"\x00"
    return Entry(tag, TYPE_ASCII, len(data), data)


# -- writing ---------------------------------------------------------------------------------------
class _Writer:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.pos = 0

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def align(self) -> None:
        if self.pos % 2:
            self.write(b"\x00")


def write_tiff(
    structure: TiffStructure, source_stream: BinaryIO, source_size: int, out: BinaryIO
) -> None:
    """Write ``structure`` afresh into ``out`` (classic TIFF or BigTIFF, as the source was),
    copying its image data from the source."""
    order, layout = structure.order, structure.layout
    source = _Source(source_stream, source_size)
    start = out.tell()
    writer = _Writer(out)
    mark = b"II" if order == "<" else b"MM"
    if layout.big:
        writer.write(mark + struct.pack(f"{order}HHHQ", 43, 8, 0, 0))
    else:
        writer.write(mark + struct.pack(f"{order}HI", 42, 0))
    ifds = list(structure.walk())

    # 1. image data blocks, byte for byte (shared blocks are written once)
    new_offsets: dict[int, dict[int, list[int]]] = {}
    copied: dict[tuple[int, int], int] = {}
    for ifd in ifds:
        per_tag: dict[int, list[int]] = {}
        for tag, blocks in ifd.blocks.items():
            if tag not in ifd.entries:
                continue
            offsets = []
            for block in blocks:
                if block not in copied:
                    writer.align()
                    copied[block] = writer.pos
                    _copy(source, block, writer)
                offsets.append(copied[block])
            per_tag[tag] = offsets
        new_offsets[id(ifd)] = per_tag
    writer.align()

    # 2. layout: each IFD table followed by its out-of-line values
    positions: dict[int, int] = {}
    pos = writer.pos
    for ifd in ifds:
        positions[id(ifd)] = pos
        pos += layout.ifd_size(len(ifd.entries))
        for entry in ifd.entries.values():
            size = _final_size(entry, layout)
            if size > layout.inline:
                pos += size + (size % 2)
    if not layout.big and pos >= 1 << 32:
        raise TiffFormatError("the output would exceed 4 GiB, the classic TIFF limit")

    # 3. serialise
    chain = {
        id(page): (structure.pages[i + 1] if i + 1 < len(structure.pages) else None)
        for i, page in enumerate(structure.pages)
    }
    pointer = f"{order}{layout.offset_format}"
    for ifd in ifds:
        if writer.pos != positions[id(ifd)]:
            raise TiffFormatError("internal layout error")  # never expected; refuse to write
        entries = [
            _final_entry(order, layout, e, ifd, new_offsets[id(ifd)], positions)
            for e in ifd.entries.values()
        ]
        entries.sort(key=lambda e: e.tag)
        value_pos = writer.pos + layout.ifd_size(len(entries))
        table = [struct.pack(f"{order}{layout.count_format}", len(entries))]
        payload = []
        for entry in entries:
            head = struct.pack(
                f"{order}HH{layout.offset_format}", entry.tag, entry.type, entry.count
            )
            if len(entry.data) <= layout.inline:
                table.append(head + entry.data.ljust(layout.inline, b"\x00"))
            else:
                table.append(head + struct.pack(pointer, value_pos))
                padded = entry.data + (b"\x00" if len(entry.data) % 2 else b"")
                payload.append(padded)
                value_pos += len(padded)
        following = chain.get(id(ifd))
        table.append(struct.pack(pointer, positions[id(following)] if following is not None else 0))
        writer.write(b"".join(table))
        for chunk in payload:
            writer.write(chunk)
    out.seek(start + (8 if layout.big else 4))
    out.write(struct.pack(pointer, positions[id(structure.pages[0])]))
    out.seek(0, 2)


def _final_size(entry: Entry, layout: Layout) -> int:
    if entry.tag in DATA_TAGS or entry.tag in SUBIFD_TAGS:
        return layout.offset_size * entry.count  # rewritten as LONG/LONG8 offsets
    return len(entry.data)


def _final_entry(
    order: str,
    layout: Layout,
    entry: Entry,
    ifd: Ifd,
    offsets: dict[int, list[int]],
    positions: dict[int, int],
) -> Entry:
    code = layout.offset_format
    if entry.tag in DATA_TAGS:
        values = offsets.get(entry.tag, [])
        data = struct.pack(f"{order}{len(values)}{code}", *values)
        return Entry(entry.tag, layout.long_type, len(values), data)
    if entry.tag in SUBIFD_TAGS:
        values = [positions[id(child)] for child in ifd.children.get(entry.tag, [])]
        pointer_type = TYPE_IFD8 if layout.big else TYPE_IFD
        typ = pointer_type if entry.type in (TYPE_IFD, TYPE_IFD8) else layout.long_type
        data = struct.pack(f"{order}{len(values)}{code}", *values)
        return Entry(entry.tag, typ, len(values), data)
    return entry


def _copy(source: _Source, block: tuple[int, int], writer: _Writer) -> None:
    offset, length = block
    if offset + length > source.size:
        raise TiffFormatError(f"image data at offset {offset} lies outside the file")
    source.stream.seek(offset)
    left = length
    while left:
        chunk = source.stream.read(min(left, _COPY_CHUNK))
        if not chunk:
            raise TiffFormatError(f"truncated image data at offset {offset}")
        writer.write(chunk)
        left -= len(chunk)


def remove_entry(ifd: Ifd, tag: int) -> None:
    """Drop an entry with whatever it points to (child IFDs, image data)."""
    ifd.entries.pop(tag, None)
    ifd.children.pop(tag, None)
    ifd.blocks.pop(tag, None)
    for off_tag, count_tag in DATA_TAGS.items():
        if tag == count_tag:
            ifd.entries.pop(off_tag, None)
            ifd.blocks.pop(off_tag, None)
        if tag == off_tag:
            ifd.entries.pop(count_tag, None)
