"""The one interface every file-format handler implements.

A handler is built once per profile section (``DicomHandler(section, siblings)``), which compiles the
section's rules; it is then applied to many files, possibly in worker processes, so it must be picklable
and keep no per-file state. The export pipeline knows only this interface.
"""

from __future__ import annotations

import fnmatch
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fw_gear_deid.errors import UnsupportedFileError
from fw_gear_deid.keys import Keys


@dataclass(frozen=True)
class FieldChange:
    """One element, key, column or chunk a handler changed.

    ``before``/``after`` carry values for the preview only; reports keep just ``path`` and ``action``.
    """

    path: str
    action: str
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class SensitiveValue:
    """A source value the profile removed or replaced: the residual-PHI gate looks for it in outputs.

    ``kind`` is one of ``name``, ``id``, ``date``, ``datetime``, ``uid``, ``address``, ``text``, ``other``.
    """

    kind: str
    value: str
    path: str


@dataclass
class DeidOutcome:
    """What de-identifying one file produced."""

    output_name: str
    changes: list[FieldChange] = field(default_factory=list)
    sensitive: list[SensitiveValue] = field(default_factory=list)
    #: Members of an archive (name -> outcome), empty for plain files.
    members: dict[str, DeidOutcome] = field(default_factory=dict)
    #: Optional: what ``text_values(dst)`` would yield, from the data the handler just wrote (no
    #: second parse of the output). The residual-PHI gate uses it in place of re-reading ``dst``; its
    #: independent readers (DICOM binary walk, raw-bytes backstop) still read the written file. A
    #: zero-argument callable so that callers that do not scan pay nothing.
    text_values: Callable[[], Iterable[tuple[str, str]]] | None = field(
        default=None, repr=False, compare=False
    )


@dataclass(frozen=True)
class DeidContext:
    """Per-file inputs that do not come from the profile section."""

    keys: Keys
    #: Key of the subject the file belongs to (its source label or id): selects the date offset.
    subject: str | None = None
    #: Date offset in days chosen for the subject by the mapping CSV; None: keyed from ``subject``.
    date_offset_days: int | None = None
    #: The source file name (used by ``filenames`` rules and error messages).
    source_name: str = ""

    def date_offset(self, section: Mapping[str, Any]) -> int:
        """Days to add to dates: the section's ``date-increment``, else the CSV's, else the keyed one."""
        if section.get("date-increment") is not None:
            return int(section["date-increment"])
        if self.date_offset_days is not None:
            return self.date_offset_days
        return self.keys.date_offset_days(self.subject or "")


class FormatHandler(ABC):
    """De-identifies the files of one type according to one profile section."""

    #: The profile key of the section this handler implements (``dicom``, ``jpg``, ...).
    section_name: ClassVar[str]
    #: Globs matched against the file name when the section sets no ``file-filter``.
    default_filters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, section: Mapping[str, Any], siblings: HandlerSet | None = None):
        self.section = section
        self.siblings = siblings

    # -- matching ---------------------------------------------------------------------------------
    def matches(self, name: str, head: bytes) -> bool:
        """Whether this handler takes the file: by its ``file-filter`` or, unless
        ``enforce-file-filter`` is set, by the signature in its first bytes."""
        if self.matches_name(name):
            return True
        if self.section.get("enforce-file-filter"):
            return False
        return self.matches_signature(head)

    def matches_name(self, name: str) -> bool:
        filters = self.section.get("file-filter", self.default_filters)
        if isinstance(filters, str):
            filters = [filters]
        base = Path(name).name
        for pattern in filters:
            if pattern.startswith("r!"):
                if re.fullmatch(pattern[2:], base):
                    return True
            elif fnmatch.fnmatchcase(base, pattern):
                return True
        return False

    def matches_signature(self, head: bytes) -> bool:
        """Whether the first bytes of a file identify this format (override per format)."""
        return False

    # -- work -------------------------------------------------------------------------------------
    @abstractmethod
    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        """De-identify ``src`` into ``dst`` (a temporary path the caller renames into place).

        With ``dst`` None nothing is written: the outcome's changes carry before/after values for a
        preview. Raises :class:`fw_gear_deid.errors.MalformedFileError` for a file it cannot handle.
        """

    @abstractmethod
    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        """Every text value of a (de-identified) file as ``(path, text)``, for the residual-PHI scan."""

    def describe(self) -> list[str]:
        """One line per rule this handler applies, for ``deid preview`` and the report."""
        return [f"{self.section_name}: {len(self.section.get('fields', []))} field rule(s)"]


def sniff_binary_format(head: bytes) -> str | None:
    """The profile section of a binary format recognised by its first bytes, else None."""
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return None


class HandlerSet:
    """The handlers of one profile, in matching order; the first that matches a file takes it."""

    def __init__(self, handlers: Iterable[FormatHandler] = ()):
        self.handlers: list[FormatHandler] = list(handlers)

    def add(self, handler: FormatHandler) -> None:
        handler.siblings = self
        self.handlers.append(handler)

    def match(self, name: str, head: bytes) -> FormatHandler | None:
        """The handler that takes the file, or None when no section matches (fail closed).

        Raises :class:`UnsupportedFileError` when the content is a binary format (DICOM, JPEG,
        PNG, TIFF, zip) but the name matched another section: a DICOM named ``*.csv`` must never
        go out through the csv, key-value or filename handler, which would copy its bytes."""
        sniffed = sniff_binary_format(head)
        for handler in self.handlers:
            if handler.matches(name, head):
                if sniffed is not None and handler.section_name != sniffed:
                    raise UnsupportedFileError(
                        name,
                        f"the content is {sniffed} but the file name matches the "
                        f"{handler.section_name} section: not copied (the profile needs a "
                        f"{sniffed} section that takes this file)",
                    )
                return handler
        return None

    def __iter__(self) -> Iterator[FormatHandler]:
        return iter(self.handlers)
