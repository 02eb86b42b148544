"""Zip archives (``*.dicom.zip`` series and the like): every member through its sibling section.

The archive is checked as a whole before anything is extracted: absolute member paths, ``..``
components, symbolic links, encrypted members, duplicate names and decompression bombs (member count,
per-member size, total size, compression ratio; see :class:`ZipLimits`) are refused with an error
naming the member. Members are then extracted one at a time into a private temporary folder
(streamed, never the whole archive in memory), de-identified by the sibling section that matches
them (``HandlerSet.match`` on the member's base name and first bytes) and written into a new archive
under the name that handler gave them (directories hashed with ``hash-subdirectories``).

Fail closed: a member no section matches blocks the whole archive (``validate-zip-members``,
default true; set it to false to drop such members instead; they are never copied raw). Nested
archives are refused. OS cruft (``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``, ``ehthumbs.db``,
``desktop.ini``, AppleDouble ``._*`` files) is dropped rather than failing the archive. The archive
comment is removed unless a ``comment`` field keeps or rewrites it; member comments, extra fields
(owner ids, precise timestamps) and timestamps are not carried over (members are dated 1980-01-01).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fw_gear_deid.errors import MalformedFileError, UnsupportedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome, FormatHandler
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule, RuleHandler
from fw_gear_deid.formats._output import output_file
from fw_gear_deid.formats.filename import FilenameHandler

HEAD_BYTES = 8192
_COPY_CHUNK = 1 << 20
CRUFT_NAMES = {".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"}
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_SYMLINK = 0o120000


@dataclass(frozen=True)
class ZipLimits:
    """Decompression-bomb limits, checked on the declared sizes and again while extracting."""

    max_members: int = 100_000
    max_member_bytes: int = 8 << 30
    max_total_bytes: int = 64 << 30
    #: Largest uncompressed/compressed ratio for members above ``ratio_floor_bytes``.
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 << 20


def is_cruft(name: str, head: bytes = b"") -> bool:
    parts = [p for p in name.split("/") if p]
    if "__MACOSX" in parts:
        return True
    base = parts[-1] if parts else ""
    if base.lower() in CRUFT_NAMES:
        return True
    return base.startswith("._") and (head.startswith(APPLEDOUBLE_MAGIC) or not head)


def check_member(info: zipfile.ZipInfo, limits: ZipLimits) -> str | None:
    """Why a member may not be extracted, or None."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if "\x00" in name:
        return "its name contains a NUL character"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in parts:
        return "path escapes the archive ('..')"
    if ((info.external_attr >> 16) & 0o170000) == _SYMLINK:
        return "symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted member"
    if info.file_size > limits.max_member_bytes:
        return f"uncompressed size {info.file_size} exceeds the {limits.max_member_bytes}-byte member limit"
    if (
        info.file_size > limits.ratio_floor_bytes
        and info.file_size / max(info.compress_size, 1) > limits.max_ratio
    ):
        return f"compression ratio above {limits.max_ratio:g} (decompression bomb?)"
    return None


def member_value(handler: FormatHandler, path: Path, name: str) -> str | None:
    """A field of a de-identified member (its handler's ``record_value``; DICOM keywords read
    with pydicom when the DICOM handler offers none)."""
    reader = getattr(handler, "record_value", None)
    value = reader(path, name) if reader is not None else None
    if value is None and handler.section_name == "dicom":
        import pydicom

        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[name])
        except (pydicom.errors.InvalidDicomError, OSError, ValueError, KeyError):
            return None
        element = dataset.get(name)
        value = None if element is None else str(element)
    return value


class ZipHandler(RuleHandler):
    section_name = "zip"
    shown_options = ("hash-subdirectories", "validate-zip-members")
    default_notes = (
        "drops OS cruft, blocks the archive on a member no section matches, removes the comment",
    )
    default_filters = ("*.zip", "*.ZIP", "*.Zip")
    limits = ZipLimits()

    def matches_signature(self, head: bytes) -> bool:
        return head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"))

    # -- checks -----------------------------------------------------------------------------------
    def _infos(self, archive: zipfile.ZipFile, source: str) -> list[zipfile.ZipInfo]:
        infos = archive.infolist()
        if len(infos) > self.limits.max_members:
            raise MalformedFileError(
                source, f"{len(infos)} members exceed the {self.limits.max_members}-member limit"
            )
        total, seen = 0, set()
        for info in infos:
            reason = check_member(info, self.limits)
            if reason:
                raise MalformedFileError(source, f"member {info.filename!r}: {reason}")
            if info.filename in seen:
                raise MalformedFileError(source, f"member {info.filename!r} appears twice")
            seen.add(info.filename)
            total += info.file_size
        if total > self.limits.max_total_bytes:
            raise MalformedFileError(
                source,
                f"uncompressed total {total} exceeds the {self.limits.max_total_bytes}-byte limit",
            )
        return infos

    def _extract(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, source: str
    ) -> None:
        written = 0
        with archive.open(info) as stream, open(target, "wb") as out:
            while True:
                chunk = stream.read(_COPY_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > info.file_size or written > self.limits.max_member_bytes:
                    raise MalformedFileError(
                        source, f"member {info.filename!r} expands beyond its declared size"
                    )
                out.write(chunk)

    def _member_handler(self, name: str, head: bytes) -> FormatHandler | None:
        if self.siblings is None:
            return None
        try:
            return self.siblings.match(posixpath.basename(name), head)
        except UnsupportedFileError:
            # Content of one format under another section's name: no section takes it (the
            # archive is blocked, or the member dropped with validate-zip-members: false).
            return None

    def _subdir(self, dirname: str, ctx: DeidContext) -> str:
        if not dirname or not self.section.get("hash-subdirectories"):
            return dirname
        rule = Rule(
            {"name": "subdirectory", "hash": True},
            {**self.format_defaults, **self.section},
            self.section_name,
        )
        return "/".join(str(rule.apply(part, ctx)) for part in dirname.split("/") if part)

    # -- work -------------------------------------------------------------------------------------
    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        try:
            with zipfile.ZipFile(src) as archive:
                infos = self._infos(archive, source)
                comment = self._comment(archive.comment, ctx, rec, source)
                with (
                    tempfile.TemporaryDirectory(prefix="deid-zip-") as tmp,
                    output_file(dst) as raw_out,
                ):
                    out = (
                        zipfile.ZipFile(raw_out, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
                        if raw_out
                        else None
                    )
                    try:
                        first = self._members(
                            archive, infos, out, Path(tmp), ctx, outcome, rec, source
                        )
                        if out is not None:
                            out.comment = comment
                    finally:
                        if out is not None:
                            out.close()
                    text = comment.decode("utf-8", "replace")

                    def lookup(name: str) -> str | None:
                        # the archive record first, then the first member's de-identified record
                        # (Flywheel: "{PatientID}.zip" names a DICOM series by its output)
                        if name == "comment":
                            return text
                        return member_value(*first, name) if first else None

                    outcome.output_name = self.output_name(src, ctx, rec, lookup)
        except zipfile.BadZipFile as exc:
            raise MalformedFileError(source, f"not a readable zip archive: {exc}") from exc
        except (
            OSError,
            EOFError,
            zlib.error,
            zipfile.LargeZipFile,
            NotImplementedError,
            RuntimeError,
        ) as exc:
            raise MalformedFileError(source, f"cannot be read: {exc}") from exc
        return outcome

    def _comment(self, comment: bytes, ctx: DeidContext, rec: Recorder, source: str) -> bytes:
        text = comment.decode("utf-8", "replace")
        rule = next(
            (r for r in self.rules if r.name is not None and r.name.lower() == "comment"), None
        )
        if rule is None or rule.is_remove:
            if text:
                rec.change("comment", "remove", text, None, kind="text")
            return b""
        if rule.is_keep:
            return comment
        try:
            result = rule.apply(text, ctx)
        except (ValueError, TypeError) as exc:
            raise MalformedFileError(source, f"comment: {rule.action} failed: {exc}") from exc
        new = "" if result is REMOVED else str(result)
        if new != text:
            rec.change("comment", rule.action, text, new, kind="text")
        return new.encode("utf-8")

    def _members(
        self,
        archive: zipfile.ZipFile,
        infos: list[zipfile.ZipInfo],
        out: zipfile.ZipFile | None,
        tmp: Path,
        ctx: DeidContext,
        outcome: DeidOutcome,
        rec: Recorder,
        source: str,
    ) -> tuple[FormatHandler, Path] | None:
        """De-identify every member into ``out``; returns the first member's handler and its
        output (kept in ``tmp``) for archive ``filenames`` variables."""
        written: set[str] = set()
        first: tuple[FormatHandler, Path] | None = None
        validate = self.section.get("validate-zip-members", True)
        for index, info in enumerate(infos):
            # "./a" and "a//b" name the same place as "a" and "a/b"
            name = "/".join(
                p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")
            )
            if info.is_dir():
                continue  # directories are recreated by the member paths
            member_src = tmp / f"in-{index}"
            self._extract(archive, info, member_src, source)
            with open(member_src, "rb") as stream:
                head = stream.read(HEAD_BYTES)
            if is_cruft(name, head):
                rec.change(f"member {index + 1}", "remove (OS cruft)", name, None, sensitive=False)
                member_src.unlink()
                continue
            handler = self._member_handler(name, head)
            if isinstance(handler, ZipHandler):
                raise MalformedFileError(
                    source, f"member {name!r}: nested archives are not supported"
                )
            if handler is None:
                if validate:
                    raise MalformedFileError(
                        source,
                        f"member {name!r}: no profile section matches it; the archive is blocked "
                        "(fail closed; set validate-zip-members: false to drop such members)",
                    )
                rec.change(
                    f"member {index + 1}", "remove (no section)", name, None, sensitive=False
                )
                member_src.unlink()
                continue
            member_dst = tmp / f"out-{index}" if out is not None else None
            member_ctx = dataclasses.replace(ctx, source_name=posixpath.basename(name))
            try:
                member = handler.deidentify(member_src, member_dst, member_ctx)
            except (MalformedFileError, UnsupportedFileError) as exc:
                raise MalformedFileError(source, f"member {name!r}: {exc.reason}") from exc
            target = posixpath.join(self._subdir(posixpath.dirname(name), ctx), member.output_name)
            if target in written:
                raise MalformedFileError(source, f"two members would both be written as {target!r}")
            written.add(target)
            outcome.members[target] = member
            if out is not None and member_dst is not None:
                self._add(out, info, member_dst, target)
            if first is None and self.section.get("filenames"):
                if member_dst is None:  # preview: the record is read from a scratch output
                    member_dst = tmp / f"out-{index}"
                    handler.deidentify(member_src, member_dst, member_ctx)
                first = (handler, member_dst)
            elif member_dst is not None:
                member_dst.unlink()
            member_src.unlink()
        return first

    @staticmethod
    def _add(out: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, target: str) -> None:
        entry = zipfile.ZipInfo(target, FIXED_DATE)
        entry.compress_type = (
            info.compress_type
            if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            else zipfile.ZIP_DEFLATED
        )
        entry.external_attr = 0o644 << 16
        size = path.stat().st_size
        with open(path, "rb") as stream, out.open(entry, "w", force_zip64=size > (1 << 31)) as sink:
            shutil.copyfileobj(stream, sink, _COPY_CHUNK)

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        with (
            zipfile.ZipFile(path) as archive,
            tempfile.TemporaryDirectory(prefix="deid-zip-scan-") as tmp,
        ):
            if archive.comment:
                yield "comment", archive.comment.decode("utf-8", "replace")
            for index, info in enumerate(self._infos(archive, path.name)):
                if info.is_dir():
                    continue
                yield f"{info.filename} (member name)", info.filename
                target = Path(tmp) / f"m-{index}"
                self._extract(archive, info, target, path.name)
                with open(target, "rb") as stream:
                    head = stream.read(HEAD_BYTES)
                handler = self._member_handler(info.filename, head)
                if handler is None or isinstance(handler, ZipHandler | FilenameHandler):
                    # bytes no handler parses (copied as they are): their readable runs, which the
                    # raw-bytes check cannot see through the archive's compression
                    yield from _printable_runs(info.filename, target)
                else:
                    for inner, text in handler.text_values(target):
                        if inner != "filename":
                            yield f"{info.filename}:{inner}", text
                target.unlink()


_RUN = re.compile(rb"[\x20-\x7e\t]{4,}")
_TRAILING_RUN = re.compile(rb"[\x20-\x7e\t]*\Z")


def _printable_runs(name: str, path: Path) -> Iterator[tuple[str, str]]:
    """Readable ASCII runs of a file, read in chunks (a run crossing a chunk edge is kept whole)."""
    with open(path, "rb") as stream:
        tail = b""
        while chunk := stream.read(_COPY_CHUNK):
            data = tail + chunk
            cut = _TRAILING_RUN.search(data).start()  # type: ignore[union-attr]
            if cut == 0 and len(data) > 4 * _COPY_CHUNK:  # one endless run: emit what we have
                cut = len(data)
            for match in _RUN.finditer(data, 0, cut):
                yield name, match.group(0).decode("ascii")
            tail = data[cut:]
        for match in _RUN.finditer(tail):
            yield name, match.group(0).decode("ascii")
