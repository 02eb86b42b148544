"""PNG: metadata chunks edited or dropped while every image chunk is copied byte for byte.

The file is streamed chunk by chunk (IDAT data is never held in memory); each chunk's CRC is checked
on the way in and recomputed for chunks we rewrite.

Field names: a PNG chunk type (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``, ``tIME``, a private type...)
acts on every chunk of that type; any other name acts on the text chunks (tEXt/zTXt/iTXt) whose
keyword it equals, and may carry any action (replace-with, hash, increment-date... an extension:
flywheel-migration only removes whole chunk types).

Fail-closed defaults (documented differences from flywheel-migration): text chunks, ``eXIf`` and
``tIME`` are removed unless a rule keeps them (by type or, for text, by keyword). Private chunks
(lower-case second letter) are kept unless ``remove-private-chunks`` is set, as in Flywheel; the APNG
animation chunks (acTL, fcTL, fdAT) are registered, not private, and are always kept.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule, RuleHandler
from fw_gear_deid.formats._output import output_file

SIGNATURE = b"\x89PNG\r\n\x1a\n"
PUBLIC_CHUNKS = (
    "IHDR",
    "PLTE",
    "IDAT",
    "IEND",
    "bKGD",
    "cHRM",
    "cICP",
    "dSIG",
    "eXIf",
    "gAMA",
    "hIST",
    "iCCP",
    "iTXt",
    "mDCV",
    "cLLI",
    "pHYs",
    "sBIT",
    "sPLT",
    "sRGB",
    "sTER",
    "tEXt",
    "tIME",
    "tRNS",
    "zTXt",
    "acTL",
    "fcTL",
    "fdAT",
    "oFFs",
    "pCAL",
    "sCAL",
    "gIFg",
    "gIFx",
)
_PUBLIC_LOWER = {name.lower(): name for name in PUBLIC_CHUNKS}
CRITICAL = {"IHDR", "PLTE", "IDAT", "IEND"}
TEXT_CHUNKS = ("tEXt", "zTXt", "iTXt")
#: Registered APNG chunks whose names look private (lower-case second letter).
REGISTERED_LOWER_SECOND = {"acTL", "fcTL", "fdAT"}
#: Largest metadata chunk held in memory, and largest decompressed text.
MAX_METADATA_CHUNK = 64 * 1024 * 1024
MAX_TEXT = 16 * 1024 * 1024
_COPY_CHUNK = 1 << 20


def is_private(chunk_type: str) -> bool:
    return chunk_type[1].islower() and chunk_type not in REGISTERED_LOWER_SECOND


@dataclass
class TextChunk:
    """A decoded tEXt/zTXt/iTXt chunk."""

    chunk_type: str
    keyword: str
    text: str
    compressed: bool = False
    language: str = ""
    translated: str = ""

    @classmethod
    def decode(cls, chunk_type: str, data: bytes) -> TextChunk:
        keyword, sep, rest = data.partition(b"\x00")
        if not sep:
            raise ValueError(f"{chunk_type} chunk has no keyword separator")
        name = keyword.decode("latin-1")
        if chunk_type == "tEXt":
            return cls(chunk_type, name, rest.decode("latin-1"))
        if chunk_type == "zTXt":
            return cls(chunk_type, name, _inflate(rest[1:]).decode("latin-1"), compressed=True)
        flag, _method = rest[0], rest[1]
        language, _, rest = rest[2:].partition(b"\x00")
        translated, _, body = rest.partition(b"\x00")
        text = _inflate(body) if flag else body
        return cls(
            chunk_type,
            name,
            text.decode("utf-8", "replace"),
            bool(flag),
            language.decode("latin-1"),
            translated.decode("utf-8", "replace"),
        )

    def encode(self) -> tuple[str, bytes]:
        keyword = self.keyword.encode("latin-1")
        if self.chunk_type in ("tEXt", "zTXt"):
            try:
                raw = self.text.encode("latin-1")
            except UnicodeEncodeError:  # the new value needs UTF-8: iTXt holds it
                return TextChunk("iTXt", self.keyword, self.text, self.compressed).encode()
            if self.chunk_type == "tEXt":
                return "tEXt", keyword + b"\x00" + raw
            return "zTXt", keyword + b"\x00\x00" + zlib.compress(raw)
        body = self.text.encode("utf-8")
        if self.compressed:
            body = zlib.compress(body)
        return "iTXt", (
            keyword
            + b"\x00"
            + bytes([1 if self.compressed else 0, 0])
            + self.language.encode("latin-1")
            + b"\x00"
            + self.translated.encode("utf-8")
            + b"\x00"
            + body
        )


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT)
    if inflater.unconsumed_tail:
        raise ValueError(f"compressed text expands beyond {MAX_TEXT} bytes")
    return out


def _chunk_bytes(chunk_type: str, data: bytes) -> bytes:
    kind = chunk_type.encode("ascii")
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class _ChunkReader:
    """Iterates the chunks of a PNG stream, checking each CRC; big image chunks are streamed."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        if stream.read(8) != SIGNATURE:
            raise ValueError("no PNG signature")

    def __iter__(self) -> Iterator[tuple[str, int]]:
        seen_end = False
        while not seen_end:
            header = self.stream.read(8)
            if len(header) < 8:
                raise ValueError("truncated: no IEND chunk")
            length, raw_type = struct.unpack(">I4s", header)
            if length > 0x7FFFFFFF or not raw_type.isalpha():
                raise ValueError(f"invalid chunk header {raw_type!r}")
            chunk_type = raw_type.decode("ascii")
            seen_end = chunk_type == "IEND"
            yield chunk_type, length

    def read(self, chunk_type: str, length: int) -> bytes:
        if length > MAX_METADATA_CHUNK:
            raise ValueError(f"{chunk_type} chunk of {length} bytes is too large")
        data = self.stream.read(length)
        crc = self.stream.read(4)
        if len(data) != length or len(crc) != 4:
            raise ValueError(f"truncated {chunk_type} chunk")
        if struct.unpack(">I", crc)[0] != zlib.crc32(chunk_type.encode("ascii") + data):
            raise ValueError(f"{chunk_type} chunk has a wrong CRC")
        return data

    def copy(self, chunk_type: str, length: int, out: BinaryIO | None) -> None:
        """Stream a chunk to ``out`` unchanged (or just check it), verifying its CRC."""
        kind = chunk_type.encode("ascii")
        crc = zlib.crc32(kind)
        if out is not None:
            out.write(struct.pack(">I", length) + kind)
        left = length
        while left:
            block = self.stream.read(min(left, _COPY_CHUNK))
            if not block:
                raise ValueError(f"truncated {chunk_type} chunk")
            crc = zlib.crc32(block, crc)
            if out is not None:
                out.write(block)
            left -= len(block)
        stored = self.stream.read(4)
        if len(stored) != 4 or struct.unpack(">I", stored)[0] != crc:
            raise ValueError(f"{chunk_type} chunk has a wrong CRC")
        if out is not None:
            out.write(stored)


def time_text(data: bytes) -> str:
    year, month, day, hour, minute, second = struct.unpack(">HBBBBB", data[:7])
    return f"{year:04d}:{month:02d}:{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


class PngHandler(RuleHandler):
    section_name = "png"
    shown_options = ("remove-private-chunks",)
    default_notes = ("removes tEXt/zTXt/iTXt, eXIf and tIME chunks unless a rule keeps them",)
    default_filters = ("*.png", "*.PNG", "*.Png")
    format_defaults = {"date-format": "%Y:%m:%d", "datetime-format": "%Y:%m:%d %H:%M:%S"}

    def matches_signature(self, head: bytes) -> bool:
        return head.startswith(SIGNATURE)

    def _type_rule(self, chunk_type: str) -> Rule | None:
        for rule in self.rules:
            if rule.name is None:
                continue
            canonical = _PUBLIC_LOWER.get(rule.name.lower(), rule.name)
            if canonical == chunk_type:
                return rule
        return None

    def _keyword_rule(self, keyword: str) -> Rule | None:
        for rule in self.rules:
            if (
                rule.name is not None
                and rule.name.lower() not in _PUBLIC_LOWER
                and rule.name == keyword
            ):
                return rule
        return None

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        texts: dict[str, str] = {}
        try:
            with open(src, "rb") as stream, output_file(dst) as out:
                reader = _ChunkReader(stream)
                if out is not None:
                    out.write(SIGNATURE)
                for chunk_type, length in reader:
                    self._chunk(reader, chunk_type, length, out, ctx, rec, texts, source)
                if stream.read(1):  # bytes appended after IEND (a known hiding place): dropped
                    rec.change("trailer", "remove", "data after IEND", None, sensitive=False)
                outcome.output_name = self.output_name(src, ctx, rec, texts.get)
        except (ValueError, OSError, IndexError, zlib.error, struct.error) as exc:
            raise MalformedFileError(source, f"not a readable PNG: {exc}") from exc
        return outcome

    def _chunk(
        self,
        reader: _ChunkReader,
        chunk_type: str,
        length: int,
        out: BinaryIO | None,
        ctx: DeidContext,
        rec: Recorder,
        texts: dict[str, str],
        source: str,
    ) -> None:
        type_rule = self._type_rule(chunk_type)
        if chunk_type in TEXT_CHUNKS:
            self._text(
                reader.read(chunk_type, length), chunk_type, type_rule, out, ctx, rec, texts, source
            )
            return
        if chunk_type in CRITICAL:
            reader.copy(chunk_type, length, out)
            return
        keep = type_rule is not None and type_rule.is_keep
        if (type_rule is not None and not keep) or (chunk_type in ("eXIf", "tIME") and not keep):
            drop, action = True, "remove"
        elif is_private(chunk_type) and self.section.get("remove-private-chunks") and not keep:
            drop, action = True, "remove-private-chunks"
        else:
            drop, action = False, ""
        if not drop:
            reader.copy(chunk_type, length, out)
            return
        if chunk_type not in ("tIME", "eXIf"):
            # binary payload, possibly huge: skipped in a stream (CRC still checked) and reported,
            # not a value the residual scan could look for
            reader.copy(chunk_type, length, None)
            rec.change(chunk_type, action, f"{length} bytes", None, sensitive=False)
            return
        data = reader.read(chunk_type, length)
        if chunk_type == "tIME" and len(data) >= 7:
            rec.change("tIME", action, time_text(data), None, kind="datetime")
        elif chunk_type == "eXIf":
            for path, text in _exif_texts(data):
                rec.change(path, action, text, None)

    def _text(
        self,
        data: bytes,
        chunk_type: str,
        type_rule: Rule | None,
        out: BinaryIO | None,
        ctx: DeidContext,
        rec: Recorder,
        texts: dict[str, str],
        source: str,
    ) -> None:
        chunk = TextChunk.decode(chunk_type, data)
        path = f"{chunk_type}.{chunk.keyword}"
        rule = self._keyword_rule(chunk.keyword) or type_rule
        if rule is None or rule.is_remove:
            rec.change(path, "remove", chunk.text, None)
            return
        if rule.is_keep:
            texts.setdefault(chunk.keyword, chunk.text)
            if out is not None:
                out.write(_chunk_bytes(chunk_type, data))
            return
        try:
            result = rule.apply(chunk.text, ctx, path=path)
        except (ValueError, TypeError) as exc:
            raise MalformedFileError(source, f"{path}: {rule.action} failed: {exc}") from exc
        if result is REMOVED:
            rec.change(path, rule.action, chunk.text, None)
            return
        rec.change(path, rule.action, chunk.text, str(result))
        chunk.text = str(result)
        texts.setdefault(chunk.keyword, chunk.text)
        if out is not None:
            out.write(_chunk_bytes(*chunk.encode()))

    def record_value(self, path: Path, name: str) -> str | None:
        for inner, text in self.text_values(path):
            if inner.partition(".")[2] == name and inner.split(".")[0] in TEXT_CHUNKS:
                return text
        return None

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        with open(path, "rb") as stream:
            reader = _ChunkReader(stream)
            for chunk_type, length in reader:
                if chunk_type in CRITICAL:
                    reader.copy(chunk_type, length, None)
                    continue
                if length > MAX_METADATA_CHUNK and chunk_type not in TEXT_CHUNKS:
                    reader.copy(chunk_type, length, None)  # opaque and huge: nothing to read
                    continue
                data = reader.read(chunk_type, length)
                if chunk_type in TEXT_CHUNKS:
                    chunk = TextChunk.decode(chunk_type, data)
                    yield f"{chunk_type}.{chunk.keyword}", chunk.text
                    if chunk.translated:
                        yield f"{chunk_type}.{chunk.keyword}.translated", chunk.translated
                elif chunk_type == "tIME" and len(data) >= 7:
                    yield "tIME", time_text(data)
                elif chunk_type == "eXIf":
                    yield from _exif_texts(data)
                else:
                    yield chunk_type, data.decode("latin-1")


def _exif_texts(data: bytes) -> Iterator[tuple[str, str]]:
    import io

    from fw_gear_deid.formats._exif import ifd_labels, text_items
    from fw_gear_deid.formats._tiffio import TiffFormatError, read_tiff

    try:
        structure = read_tiff(io.BytesIO(data), len(data), ("0th", "1st"))
    except TiffFormatError:
        yield "eXIf", data.decode("latin-1")
        return
    yield from text_items(structure, list(ifd_labels(structure, lambda i: f"eXIf.IFD{i}")))
