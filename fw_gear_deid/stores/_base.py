"""The one interface every store implements: containers, files, metadata, origin ids, profiles.

The export pipeline talks only to :class:`Store`. A store is opened on a *location* (a project, subject
or session container); a source store is opened read-only and refuses every write, a destination store
is a project into which containers are found or created by origin id.

Adding a store is one new module with a :class:`Store` subclass and one branch in
:func:`fw_gear_deid.stores.open_store`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fw_gear_deid.errors import StoreError

#: Container types below the project, in hierarchy order.
CHILD_TYPES: tuple[str, ...] = ("subject", "session", "acquisition")
#: Every container type a store walks.
CONTAINER_TYPES: tuple[str, ...] = ("project", *CHILD_TYPES)
#: Where the keyed origin id of an exported container or file is kept (dotted path in ``info``).
ORIGIN_INFO_KEY = ("export", "origin_id")
#: Conflict policies for a destination file that already exists.
CONFLICT_POLICIES: tuple[str, ...] = ("skip", "replace", "new-version")
#: Container fields a store keeps besides label/info/tags (the Flywheel data model, FLYWHEEL.md §E).
CONTAINER_FIELDS: dict[str, tuple[str, ...]] = {
    "project": ("description",),
    "subject": (
        "firstname",
        "lastname",
        "date_of_birth",
        "sex",
        "cohort",
        "mlset",
        "ethnicity",
        "race",
        "species",
        "strain",
        "type",
    ),
    "session": ("age", "operator", "timestamp", "timezone", "uid", "weight"),
    "acquisition": ("timestamp", "timezone", "uid"),
}


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened read-only (the source)."""


def parent_type(kind: str) -> str:
    """The container type directly above ``kind``."""
    return CONTAINER_TYPES[CONTAINER_TYPES.index(kind) - 1]


def child_type(kind: str) -> str | None:
    """The container type directly below ``kind`` (None for acquisitions)."""
    index = CONTAINER_TYPES.index(kind)
    return CONTAINER_TYPES[index + 1] if index + 1 < len(CONTAINER_TYPES) else None


def origin_of(info: dict[str, Any] | None) -> str | None:
    """The origin id recorded in a container's or file's ``info`` (None when there is none)."""
    node: Any = info or {}
    for key in ORIGIN_INFO_KEY:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def with_origin(info: dict[str, Any] | None, origin_id: str) -> dict[str, Any]:
    """A copy of ``info`` with the origin id set (other ``info.export`` keys kept)."""
    result = dict(info or {})
    export = dict(result.get(ORIGIN_INFO_KEY[0]) or {})
    export[ORIGIN_INFO_KEY[1]] = origin_id
    result[ORIGIN_INFO_KEY[0]] = export
    return result


@dataclass
class Container:
    """A project, subject, session or acquisition as a store sees it.

    ``id`` is the store's own id (local store: the folder path relative to the site root; Flywheel: the
    container id); ``fields`` holds the type-specific fields of :data:`CONTAINER_FIELDS` that are set.
    """

    type: str
    id: str
    label: str
    parent_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def origin_id(self) -> str | None:
        return origin_of(self.info)


@dataclass
class FileEntry:
    """A file attached to a container."""

    name: str
    parent_type: str
    parent_id: str
    size: int | None = None
    type: str | None = None
    modality: str | None = None
    classification: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    #: Store id of the file (local: relative path; Flywheel: file_id).
    id: str = ""
    version: int = 1
    #: sha256 of the content when the store records it (local sidecar), else None.
    sha256: str | None = None

    @property
    def origin_id(self) -> str | None:
        return origin_of(self.info)


@dataclass
class FileMeta:
    """Metadata written with a destination file (its origin id lives in ``info.export.origin_id``)."""

    type: str | None = None
    modality: str | None = None
    classification: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass
class ContainerMeta:
    """Metadata of a destination container: what the ``flywheel:`` section let through."""

    label: str
    info: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileText:
    """A de-id profile stored at one level of a store (``project``, ``group`` or ``site``).

    ``content`` is YAML text (local store) or a dict (Flywheel ``settings.deid_profile``); None when the
    level has no profile at all.
    """

    level: str
    source: str
    content: str | dict[str, Any] | None


@dataclass
class WriteResult:
    """What :meth:`Store.write_file` did."""

    entry: FileEntry
    #: ``written`` (new), ``replaced``, ``new-version`` or ``unchanged`` (same content already there).
    action: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Store(ABC):
    """One place data lives. Implementations: :mod:`.local`, :mod:`.flywheel`."""

    #: Identifies the store in origin ids (``local``, ``flywheel:<host>``); stable across runs.
    identity: str = ""

    def __init__(self, read_only: bool):
        self.read_only = read_only

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStoreError(
                "the source store is opened read-only; refusing to write to it"
            )

    # -- location ---------------------------------------------------------------------------------
    @property
    @abstractmethod
    def location(self) -> Container:
        """The container the store was opened on (project, subject or session)."""

    @abstractmethod
    def project(self) -> Container:
        """The project of :attr:`location`."""

    @abstractmethod
    def describe(self) -> str:
        """A human-readable name of the location, for logs and reports (never a secret)."""

    # -- reading ----------------------------------------------------------------------------------
    @abstractmethod
    def get_container(self, kind: str, container_id: str) -> Container:
        """A container by type and store id (raises :class:`StoreError` when it does not exist)."""

    @abstractmethod
    def children(self, container: Container) -> list[Container]:
        """The containers directly below ``container`` (subjects of a project, ...), by label."""

    @abstractmethod
    def files(self, container: Container) -> list[FileEntry]:
        """The files attached to ``container`` (not to its children), by name."""

    @abstractmethod
    def skipped_entries(self, container: Container) -> list[tuple[str, str, bool]]:
        """Entries under ``container`` the store cannot export, as ``(name, reason, in_scope)``.

        ``in_scope`` is True for data that was not exported (a symbolic link, a folder below the
        acquisition level): it makes the job's exit code non-zero. OS cruft and hidden names are
        reported with ``in_scope`` False."""

    @abstractmethod
    def parents(self, container: Container) -> list[Container]:
        """The containers from the project down to ``container``'s parent (empty for a project)."""

    @abstractmethod
    def local_file(self, entry: FileEntry) -> AbstractContextManager[Path]:
        """A local path holding ``entry``'s bytes for the duration of the ``with`` block."""

    @abstractmethod
    def find_file(self, ref: str) -> tuple[Container, FileEntry]:
        """A file for file mode (local: a path; Flywheel: a file id) and its parent container."""

    @abstractmethod
    def profiles(self) -> list[ProfileText]:
        """The de-id profiles of the project, its group and the site, in cascade order."""

    # -- writing (destination) --------------------------------------------------------------------
    @abstractmethod
    def find_child(self, parent: Container, kind: str, origin_id: str) -> Container | None:
        """The child of ``parent`` of type ``kind`` that records ``origin_id`` (the oldest one)."""

    @abstractmethod
    def ensure_child(
        self,
        parent: Container,
        kind: str,
        origin_id: str,
        meta: ContainerMeta,
        *,
        match_label: bool = False,
    ) -> Container:
        """Find the child with ``origin_id`` or create it with ``meta``: exactly once, even when
        several processes or jobs do it at the same time. An existing container is updated to
        ``meta`` (label, info, tags, fields) when it differs.

        A child with ``meta.label`` and no origin id is adopted; with ``match_label`` any child with
        that label is (the oldest), whatever origin id it records."""

    @abstractmethod
    def find_dest_file(
        self, container: Container, name: str, origin_id: str
    ) -> tuple[FileEntry | None, FileEntry | None]:
        """``(file with that origin id, file with that name)`` in ``container`` (either may be None)."""

    @abstractmethod
    def write_file(
        self,
        container: Container,
        name: str,
        path: Path,
        meta: FileMeta,
        conflict: str,
        existing: FileEntry | None = None,
    ) -> WriteResult:
        """Write ``path`` as ``name`` in ``container`` with ``meta`` (which carries the origin id),
        atomically: a crash never leaves a half-written file or a file without its origin id.

        ``existing`` is the destination file the caller decided to replace or version (by name or
        origin id); with ``skip`` the caller does not call this for an existing file."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for stores without connections
        """Release connections (nothing for the local store)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers shared by implementations ---------------------------------------------------------
    def walk(self, container: Container) -> Iterator[Container]:
        """``container`` and every container below it, depth first, parents before children."""
        yield container
        for child in self.children(container):
            yield from self.walk(child)
