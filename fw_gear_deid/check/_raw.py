"""The raw-bytes backstop: long literals searched in the bytes of an output file.

Handlers decode what they know; this pass catches what they do not decode (an XMP packet, a PDF in an
encapsulated document, a vendor blob). It only uses long, letter-bearing literals and whole UIDs (see
:class:`~fw_gear_deid.check.matchers.MatchPolicy.raw_min_length`) because it also reads bytes that are
not text: 8-bit pixels in the ASCII range make short words appear by chance. The file is read in
chunks, so memory stays flat whatever its size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 4 * 1024 * 1024
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True)
class _Literal:
    data: bytes  # lowercased (ASCII) bytes
    kind: str
    bounded: bool  # check token boundaries (single-byte encodings only)
    uid: bool


class RawScanner:
    """Searches a file's bytes for the gate's raw literals in UTF-8, Latin-1 and UTF-16."""

    def __init__(self, literals: dict[str, set[str]], uid_literals: Iterable[str] = ()):
        uid_set = set(uid_literals)
        seen: set[tuple[bytes, str]] = set()
        self._literals: list[_Literal] = []
        for text, kinds in literals.items():
            encodings: list[tuple[bytes, bool]] = [(text.encode("utf-8"), True)]
            with contextlib.suppress(UnicodeEncodeError):
                encodings.append((text.encode("latin-1"), True))
            encodings += [(text.encode("utf-16-le"), False), (text.encode("utf-16-be"), False)]
            for data, bounded in encodings:
                for kind in sorted(kinds):
                    if (data.lower(), kind) in seen:
                        continue
                    seen.add((data.lower(), kind))
                    self._literals.append(_Literal(data.lower(), kind, bounded, text in uid_set))
        self.overlap = max((len(lit.data) for lit in self._literals), default=0) + 1

    def __bool__(self) -> bool:
        return bool(self._literals)

    def __len__(self) -> int:
        return len(self._literals)

    def _bounded(self, lit: _Literal, chunk: bytes, at: int) -> bool:
        if not lit.bounded:
            return True
        before = chunk[at - 1] if at > 0 else None
        end = at + len(lit.data)
        after = chunk[end] if end < len(chunk) else None
        if lit.uid:
            # a UID must not continue: no digit before, no digit or ".digit" after
            if before is not None and before in _DIGITS:
                return False
            if after is not None and after in _DIGITS:
                return False
            return not (after == 0x2E and end + 1 < len(chunk) and chunk[end + 1] in _DIGITS)
        return (before is None or before not in _ALNUM) and (after is None or after not in _ALNUM)

    def scan(self, path: Path, skip: tuple[int, int] | None = None) -> Iterator[tuple[int, str]]:
        """``(offset, kind)`` of the first occurrence of each kind found; ``skip`` is a byte range
        not to read (DICOM pixel data, which the element-level scan does not need either)."""
        if not self._literals:
            return
        reported: set[str] = set()
        with path.open("rb") as handle:
            for base, chunk in self._chunks(handle, skip):
                lowered = chunk.lower()
                for lit in self._literals:
                    if lit.kind in reported:
                        continue
                    at = lowered.find(lit.data)
                    while at != -1:
                        if self._bounded(lit, lowered, at):
                            reported.add(lit.kind)
                            yield base + at, lit.kind
                            break
                        at = lowered.find(lit.data, at + 1)

    def _chunks(self, handle, skip: tuple[int, int] | None) -> Iterator[tuple[int, bytes]]:
        ranges: list[tuple[int, int | None]]
        ranges = [(0, None)] if skip is None else [(0, skip[0]), (skip[1], None)]
        for start, stop in ranges:
            handle.seek(start)
            position = start
            tail = b""
            while stop is None or position < stop:
                size = _CHUNK if stop is None else min(_CHUNK, stop - position)
                data = handle.read(size)
                if not data:
                    break
                yield position - len(tail), tail + data
                position += len(data)
                tail = (tail + data)[-self.overlap :]
