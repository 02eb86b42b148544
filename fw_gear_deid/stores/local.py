"""The local folder store: ``SITE/GROUP/PROJECT/SUBJECT/SESSION/ACQUISITION/file``.

Layout and sidecars (documented in docs/stores.md):

- A folder's depth below the project folder gives its type (1 subject, 2 session, 3 acquisition).
  Files directly in a project, subject or session folder belong to that container.
- ``.container.json`` in a container folder (optional): ``{"container_type", "label", "info",
  "tags", <fields>}``.
  Without it the label is the folder name and info/tags are empty, so a plain folder of files is a
  valid source.
- ``.<name>.meta.json`` next to a file (optional): ``{"type", "modality", "classification", "info",
  "tags", "version", "sha256"}``. Destination files always get one; it carries the origin id in
  ``info.export.origin_id`` and is renamed into place *before* the file, so a file never exists
  without its origin id.
- ``deid_profile.yaml`` in the site root, a group folder and the project folder.
- ``.deid.lock`` (destination only): ``flock``-ed while a child container is found-or-created or a
  file is written, so concurrent jobs create each container exactly once.
- ``.versions/<name>/v<N>`` (destination only): earlier versions kept by ``--conflict new-version``.

Every other name starting with ``.`` and every symbolic link is reported as skipped, never followed.
A store opened read-only (the source) never creates, locks or changes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pathvalidate import sanitize_filename

from fw_gear_deid.errors import StoreError
from fw_gear_deid.stores._base import (
    CHILD_TYPES,
    CONTAINER_FIELDS,
    CONTAINER_TYPES,
    Container,
    ContainerMeta,
    FileEntry,
    FileMeta,
    ProfileText,
    Store,
    WriteResult,
    sha256_file,
    with_origin,
)

CONTAINER_SIDECAR = ".container.json"
#: Key of the container type in ``.container.json`` (``type`` is the subject field human/animal/...).
TYPE_KEY = "container_type"
PROFILE_NAME = "deid_profile.yaml"
LOCK_NAME = ".deid.lock"
VERSIONS_DIR = ".versions"
_TMP_PREFIX = ".tmp-"
#: From this size a moved file is hashed while it is fsynced (a thread); below, one after the other.
_OVERLAP_BYTES = 8 << 20
_META_SUFFIX = ".meta.json"
_MAX_SIDECAR_BYTES = 16 << 20


def file_sidecar_name(name: str) -> str:
    return f".{name}{_META_SUFFIX}"


def _is_store_metadata(name: str) -> bool:
    """Whether a hidden name is one of this store's own sidecars (not data, not reported)."""
    return (
        name in (CONTAINER_SIDECAR, LOCK_NAME, VERSIONS_DIR)
        or name.startswith(_TMP_PREFIX)
        or (name.startswith(".") and name.endswith(_META_SUFFIX))
    )


def _read_json(path: Path) -> dict[str, Any]:
    """A sidecar's JSON object, or {} when absent. A broken sidecar is an error, never ignored."""
    try:
        if path.is_symlink():
            raise StoreError(f"{path}: sidecar is a symbolic link; refusing to follow it")
        with open(path, "rb") as stream:
            raw = stream.read(_MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise StoreError(f"{path}: cannot read sidecar: {error.strerror}") from error
    if len(raw) > _MAX_SIDECAR_BYTES:
        raise StoreError(f"{path}: sidecar larger than {_MAX_SIDECAR_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise StoreError(f"{path}: sidecar is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise StoreError(f"{path}: sidecar must hold a JSON object")
    return data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}{_META_SUFFIX}")
    with open(tmp, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, sort_keys=True, default=str)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def _copy_synced(src: Path, dst: Path) -> None:
    """Copy ``src`` to a new ``dst`` (in the kernel when it can) and fsync it."""
    with open(src, "rb") as reader, open(dst, "xb") as writer:
        remaining = os.fstat(reader.fileno()).st_size
        if hasattr(os, "copy_file_range"):
            try:
                while remaining > 0:
                    copied = os.copy_file_range(reader.fileno(), writer.fileno(), remaining)
                    if copied == 0:
                        break
                    remaining -= copied
            except OSError:
                pass  # e.g. across file systems on old kernels: the loop below goes on from here
        # the rest (or all of it without copy_file_range), from where the kernel copy stopped
        reader.seek(writer.seek(0, os.SEEK_END))
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())


def _folder_name(label: str) -> str:
    """A safe folder name for a destination container label (never hidden, never empty)."""
    name = sanitize_filename(label, platform="universal", replacement_text="_").strip()
    if not name or name.startswith("."):
        name = f"_{name}"
    return name[:200]


_SWEPT: set[str] = set()


def _in_use(folder: Path) -> bool:
    """Whether a live job holds the ``flock`` of the scratch folder ``folder``."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except OSError:
        return False  # no lock file: not a scratch folder, or one left by a killed job
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.deid.lock`` (process-wide and across processes).

    Every temporary name in ``folder`` is made while holding this lock, so one found here now was
    left by a killed job: it is removed (once per folder and process: a folder can be large).
    """
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stale_names = () if str(folder) in _SWEPT else folder.glob(f"{_TMP_PREFIX}*")
        _SWEPT.add(str(folder))
        for stale in stale_names:
            if stale.is_dir() and not stale.is_symlink():
                if _in_use(stale):
                    continue  # a running job's scratch folder (see LocalStore.scratch_dir)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class LocalStore(Store):
    """A folder store opened on a project, subject or session folder.

    ``subject``/``session`` name a sub-container of the project by folder name (or sidecar label); a
    ``.container.json`` whose ``container_type`` is ``subject``/``session`` in ``path`` does the same. With
    ``create`` a missing destination project folder is created (never for a read-only store).
    """

    identity = "local"

    def __init__(
        self,
        path: str | os.PathLike[str],
        read_only: bool,
        subject: str | None = None,
        session: str | None = None,
        create: bool = False,
    ):
        super().__init__(read_only)
        self._origin_index: dict[str, dict[str | None, str]] = {}
        given = Path(path).expanduser().absolute()
        if not given.exists() and create and not read_only:
            given.mkdir(parents=True, exist_ok=True)
        # A read-only look at a destination that does not exist yet (dry run): an empty project.
        missing_ok = create and read_only and not given.exists() and not given.is_symlink()
        if not given.is_dir() and not missing_ok:
            raise StoreError(f"{given}: not a folder")
        given = given.resolve()
        kind = _read_json(given / CONTAINER_SIDECAR).get(TYPE_KEY, "project")
        if kind not in ("project", "subject", "session"):
            raise StoreError(
                f"{given}: a location must be a project, subject or session folder, not {kind!r}"
            )
        depth = CONTAINER_TYPES.index(kind)
        self._project_dir = given.parents[depth - 1] if depth else given
        self.site_root = self._project_dir.parent.parent
        location_dir = given
        for option_kind, label in (("subject", subject), ("session", session)):
            if label is None:
                continue
            current = CONTAINER_TYPES[len(location_dir.relative_to(self._project_dir).parts)]
            if CONTAINER_TYPES.index(option_kind) != CONTAINER_TYPES.index(current) + 1:
                raise StoreError(
                    f"--{option_kind} {label!r} cannot be used with a {current} location"
                )
            location_dir = self._child_dir_by_label(location_dir, label, option_kind)
        self._location = self._container_at(location_dir)

    # -- paths and ids ----------------------------------------------------------------------------
    def _dir(self, container_id: str) -> Path:
        path = (self.site_root / container_id) if container_id else self.site_root
        try:
            path.relative_to(self._project_dir)
        except ValueError:
            raise StoreError(f"{container_id}: outside the project {self._project_dir}") from None
        return path

    def _id(self, path: Path) -> str:
        return path.relative_to(self.site_root).as_posix()

    def _kind_of(self, folder: Path) -> str:
        depth = len(folder.relative_to(self._project_dir).parts)
        if depth >= len(CONTAINER_TYPES):
            raise StoreError(f"{folder}: deeper than an acquisition folder")
        return CONTAINER_TYPES[depth]

    def _child_dir_by_label(self, folder: Path, label: str, kind: str) -> Path:
        # Only a plain name is tried as a folder: "..", "a/b" never leave the project tree.
        plain = bool(label) and not label.startswith(".") and "/" not in label and "\\" not in label
        candidate = folder / label
        if plain and candidate.is_dir() and not candidate.is_symlink():
            return candidate
        for child in self._child_dirs(folder):
            if child.label == label:
                return self._dir(child.id)
        raise StoreError(f"{folder}: no {kind} {label!r}")

    def _container_at(self, folder: Path) -> Container:
        kind = self._kind_of(folder)
        data = _read_json(folder / CONTAINER_SIDECAR)
        if data.get(TYPE_KEY, kind) != kind:
            raise StoreError(
                f"{folder / CONTAINER_SIDECAR}: says {data.get(TYPE_KEY)!r} but the folder is a {kind}"
            )
        label = data.get("label")
        info = data.get("info") or {}
        tags = data.get("tags") or []
        if not isinstance(info, dict) or not isinstance(tags, list):
            raise StoreError(f"{folder / CONTAINER_SIDECAR}: info must be an object, tags a list")
        fields = {key: data[key] for key in CONTAINER_FIELDS[kind] if data.get(key) is not None}
        parent_id = self._id(folder.parent)
        return Container(
            type=kind,
            id=self._id(folder),
            label=str(label) if label not in (None, "") else folder.name,
            parent_id=parent_id,
            info=info,
            tags=[str(tag) for tag in tags],
            fields=fields,
        )

    def _child_dirs(self, folder: Path) -> list[Container]:
        if self._kind_of(folder) == "acquisition":
            return []
        result = []
        if not folder.is_dir():
            return result
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    try:
                        result.append(self._container_at(Path(entry.path)))
                    except StoreError:
                        if not self.read_only:
                            raise  # a destination container we cannot read: never duplicate it
                        # a source container with a broken sidecar: reported by skipped_entries
        return sorted(result, key=lambda c: (c.label, c.id))

    # -- Store: location --------------------------------------------------------------------------
    @property
    def location(self) -> Container:
        return self._location

    def project(self) -> Container:
        return self._container_at(self._project_dir)

    def describe(self) -> str:
        return str(self._dir(self._location.id))

    @property
    def project_dir(self) -> Path:
        return self._project_dir

    def container_dir(self, container: Container) -> Path:
        return self._dir(container.id)

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A temporary folder on the destination's file system (``<location>/.tmp-<uuid>``), so a
        caller's output in it can be *moved* into place by :meth:`write_file` (``move=True``)
        instead of copied. It is hidden from listings; this job holds its ``flock`` while it is in
        use, so another job's sweep leaves it alone, and a killed job's is swept like any other
        temporary name. Removed with what is left in it on exit."""
        self._check_writable()
        folder = self._dir(self._location.id)  # where this store writes (project or below)
        with _locked(folder):  # temporary names are made under the folder's lock (see _locked)
            scratch = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            scratch.mkdir()
            fd = os.open(scratch / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            os.close(fd)

    # -- Store: reading ---------------------------------------------------------------------------
    def get_container(self, kind: str, container_id: str) -> Container:
        folder = self._dir(container_id)
        if not folder.is_dir() or folder.is_symlink():
            raise StoreError(f"{container_id}: no such {kind} folder")
        container = self._container_at(folder)
        if container.type != kind:
            raise StoreError(f"{container_id}: is a {container.type}, not a {kind}")
        return container

    def children(self, container: Container) -> list[Container]:
        return self._child_dirs(self._dir(container.id))

    def _file_entry(self, folder: Path, name: str, container: Container) -> FileEntry:
        path = folder / name
        meta = _read_json(folder / file_sidecar_name(name))
        classification = meta.get("classification") or {}
        return FileEntry(
            name=name,
            parent_type=container.type,
            parent_id=container.id,
            size=path.stat(follow_symlinks=False).st_size,
            type=meta.get("type"),
            modality=meta.get("modality"),
            classification=classification if isinstance(classification, dict) else {},
            info=meta.get("info") if isinstance(meta.get("info"), dict) else {},
            tags=[str(tag) for tag in meta.get("tags") or []],
            id=self._id(path),
            version=int(meta.get("version") or 1),
            sha256=meta.get("sha256"),
        )

    def _scan(self, container: Container) -> tuple[list[FileEntry], list[tuple[str, str, bool]]]:
        folder = self._dir(container.id)
        files: list[FileEntry] = []
        skipped: list[tuple[str, str, bool]] = []
        if not folder.is_dir():
            return files, skipped
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                if _is_store_metadata(name):
                    continue
                if entry.is_symlink():
                    skipped.append((name, "symbolic link (not followed)", True))
                elif name.startswith("."):
                    skipped.append((name, "hidden file or folder", False))
                elif entry.is_dir(follow_symlinks=False):
                    if container.type == "acquisition":
                        skipped.append((f"{name}/", "folder below acquisition level", True))
                    elif self.read_only:
                        try:
                            self._container_at(Path(entry.path))
                        except StoreError as error:
                            skipped.append((f"{name}/", f"not exported: {error}", True))
                elif not stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
                    skipped.append((name, "not a regular file", True))
                elif container.type == "project" and name == PROFILE_NAME:
                    continue  # the project's de-id profile, not data
                else:
                    try:
                        files.append(self._file_entry(folder, name, container))
                    except StoreError as error:
                        if not self.read_only:
                            raise
                        skipped.append((name, f"not exported: {error}", True))
        return files, skipped

    def files(self, container: Container) -> list[FileEntry]:
        return self._scan(container)[0]

    def skipped_entries(self, container: Container) -> list[tuple[str, str, bool]]:
        return self._scan(container)[1]

    def parents(self, container: Container) -> list[Container]:
        folder = self._dir(container.id)
        chain = []
        while folder != self._project_dir:
            folder = folder.parent
            chain.append(self._container_at(folder))
        return list(reversed(chain))

    @contextlib.contextmanager
    def local_file(self, entry: FileEntry) -> Iterator[Path]:
        path = self.site_root / entry.id
        if path.is_symlink() or not path.is_file():
            raise StoreError(f"{entry.id}: not a regular file (symbolic links are not followed)")
        yield path  # read in place: handlers only read their source

    def find_file(self, ref: str) -> tuple[Container, FileEntry]:
        candidate = Path(ref).expanduser()
        if not candidate.is_absolute():
            inside = self._dir(self._location.id) / candidate
            candidate = inside if inside.exists() or inside.is_symlink() else candidate.absolute()
        if candidate.is_symlink():
            raise StoreError(f"{ref}: symbolic link (not followed)")
        if not candidate.exists():
            raise StoreError(f"{ref}: no such file")
        folder = candidate.parent.resolve()
        try:
            folder.relative_to(self._project_dir)
        except ValueError:
            raise StoreError(f"{ref}: not inside the source project {self._project_dir}") from None
        if not (folder / candidate.name).is_file():
            raise StoreError(f"{ref}: no such file")
        if _is_store_metadata(candidate.name) or candidate.name.startswith("."):
            raise StoreError(f"{ref}: a hidden or sidecar file is not data")
        container = self._container_at(folder)
        return container, self._file_entry(folder, candidate.name, container)

    def profiles(self) -> list[ProfileText]:
        result = []
        for level, folder in (
            ("project", self._project_dir),
            ("group", self._project_dir.parent),
            ("site", self.site_root),
        ):
            path = folder / PROFILE_NAME
            text = None
            if path.is_file() and not path.is_symlink():
                text = path.read_text(encoding="utf-8")
            result.append(ProfileText(level, str(path), text))
        return result

    # -- Store: writing ---------------------------------------------------------------------------
    def find_child(self, parent: Container, kind: str, origin_id: str) -> Container | None:
        matches = [
            child
            for child in self.children(parent)
            if child.type == kind and child.origin_id == origin_id
        ]
        return min(matches, key=lambda c: c.id) if matches else None

    def ensure_child(
        self,
        parent: Container,
        kind: str,
        origin_id: str,
        meta: ContainerMeta,
        *,
        match_label: bool = False,
    ) -> Container:
        self._check_writable()
        if kind not in CHILD_TYPES:
            raise StoreError(f"cannot create a {kind} container")
        folder = self._dir(parent.id)
        data = {
            TYPE_KEY: kind,
            "label": meta.label,
            "info": with_origin(meta.info, origin_id),
            "tags": list(meta.tags),
            **{key: value for key, value in meta.fields.items() if value is not None},
        }
        # The lock makes find-then-create one step for every process sharing this file system.
        with _locked(folder):
            existing = self.find_child(parent, kind, origin_id)
            if existing is None:
                # A container with this label and no origin id (made by hand, or by the reference
                # gear, which matches by label) is adopted rather than duplicated.
                existing = self._adoptable(parent, kind, meta.label, any_origin=match_label)
            if existing is not None:
                if existing.origin_id not in (None, origin_id):
                    # Matched by label: it stays the container of the source it came from first.
                    data["info"] = with_origin(meta.info, existing.origin_id)
                path = self._dir(existing.id)
                if _read_json(path / CONTAINER_SIDECAR) != json.loads(
                    json.dumps(data, default=str)
                ):
                    _write_json_atomic(path / CONTAINER_SIDECAR, data)
                return self._container_at(path)
            base = _folder_name(meta.label)
            name, number = base, 1
            while (folder / name).exists() or (folder / name).is_symlink():
                number += 1
                name = f"{base}~{number}"
            # Build the folder with its sidecar under a temporary name, then rename it into place:
            # a crash leaves either nothing or a complete container with its origin id.
            tmp = folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            tmp.mkdir()
            _write_json_atomic(tmp / CONTAINER_SIDECAR, data)
            os.rename(tmp, folder / name)
            _fsync_dir(folder)
            return self._container_at(folder / name)

    def _adoptable(
        self, parent: Container, kind: str, label: str, any_origin: bool = False
    ) -> Container | None:
        matches = [
            child
            for child in self.children(parent)
            if child.type == kind
            and child.label == label
            and (any_origin or child.origin_id is None)
        ]
        return min(matches, key=lambda c: c.id) if matches else None

    def find_dest_file(
        self, container: Container, name: str, origin_id: str
    ) -> tuple[FileEntry | None, FileEntry | None]:
        folder = self._dir(container.id)
        by_name = None
        if name and (folder / name).is_file() and not (folder / name).is_symlink():
            by_name = self._file_entry(folder, name, container)
        if by_name is not None and by_name.origin_id == origin_id:
            return by_name, by_name
        # Origin ids are indexed once per folder (a folder can hold thousands of files); the entry
        # found is re-read so a stale index never answers.
        index = self._origin_index.get(container.id)
        if index is None:
            index = {e.origin_id: e.name for e in self.files(container) if e.origin_id}
            self._origin_index[container.id] = index
        by_origin = None
        known = index.get(origin_id)
        if known is not None and (folder / known).is_file():
            entry = self._file_entry(folder, known, container)
            if entry.origin_id == origin_id:
                by_origin = entry
        return by_origin, by_name

    def write_file(
        self,
        container: Container,
        name: str,
        path: Path,
        meta: FileMeta,
        conflict: str,
        existing: FileEntry | None = None,
        *,
        sha256: str | None = None,
        move: bool = False,
        synced: bool = False,
    ) -> WriteResult:
        """See :meth:`Store.write_file`; ``sha256`` is the hex digest of ``path`` when the caller
        already has it (the export worker hashes its output), else it is computed here. With
        ``move`` the caller gives ``path`` up (a file in :meth:`scratch_dir`): on the destination's
        file system it is fsynced and renamed into place, not copied; elsewhere it is copied.
        ``synced``: the caller fsynced ``path`` already (an export worker), so a move only renames."""
        self._check_writable()
        if not name or "/" in name or "\\" in name or name.startswith(".") or name == PROFILE_NAME:
            raise StoreError(f"{name!r}: not a valid destination file name")
        folder = self._dir(container.id)
        info = os.stat(path)
        moved = move and info.st_dev == os.stat(folder).st_dev
        synced = synced and moved
        if moved and not synced and not sha256 and info.st_size >= _OVERLAP_BYTES:
            # Hash while the kernel writes the content out: both release the GIL, and both are
            # needed (the digest for the sidecar and `unchanged`, the fsync before the rename).
            syncing = ThreadPoolExecutor(1, thread_name_prefix="deid-fsync")
            try:
                pending = syncing.submit(_fsync_file, path)
                digest = sha256_file(path)
                pending.result()
            finally:
                syncing.shutdown(wait=True)
            synced = True
        else:
            digest = sha256 or sha256_file(path)
        with _locked(folder):
            final = folder / name
            current = self._file_entry(folder, name, container) if final.is_file() else None
            version = 1
            action = "written"
            if current is not None:
                if current.sha256 == digest and current.origin_id == (
                    meta.info.get("export") or {}
                ).get("origin_id"):
                    return WriteResult(current, "unchanged")
                if conflict == "new-version":
                    self._keep_version(folder, current)
                    version, action = current.version + 1, "new-version"
                else:
                    action = "replaced"
            data = {
                "type": meta.type,
                "modality": meta.modality,
                "classification": meta.classification,
                "info": meta.info,
                "tags": list(meta.tags),
                "version": version,
                "sha256": digest,
            }
            tmp = path if moved else folder / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            try:
                if moved:
                    if not synced:
                        _fsync_file(tmp)  # the content is on disk before it gets its final name
                else:
                    _copy_synced(path, tmp)
                # Sidecar first: the file never appears under its final name without its origin id.
                _write_json_atomic(folder / file_sidecar_name(name), data)
                os.replace(tmp, final)
            finally:
                if not moved:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
            if (
                existing is not None
                and existing.name != name
                and existing.parent_id == container.id
            ):
                # The same source file was exported before under another name: retire that copy.
                old = folder / existing.name
                if conflict == "new-version":
                    self._keep_version(folder, existing)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        old.unlink()
                        (folder / file_sidecar_name(existing.name)).unlink()
            self._origin_index.setdefault(container.id, {})[
                meta.info.get("export", {}).get("origin_id")
            ] = name
            return WriteResult(self._file_entry(folder, name, container), action)

    def _keep_version(self, folder: Path, entry: FileEntry) -> None:
        keep = folder / VERSIONS_DIR / entry.name
        keep.mkdir(parents=True, exist_ok=True)
        target = keep / f"v{entry.version}"
        os.replace(folder / entry.name, target)
        sidecar = folder / file_sidecar_name(entry.name)
        with contextlib.suppress(FileNotFoundError):
            os.replace(sidecar, keep / f"v{entry.version}{_META_SUFFIX}")


__all__ = ["CONTAINER_SIDECAR", "PROFILE_NAME", "LocalStore", "file_sidecar_name"]
