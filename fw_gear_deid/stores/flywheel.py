"""The Flywheel store, on flywheel-sdk 23 (plain SDK calls; no Python-level workarounds).

Locations: ``fw://GROUP/PROJECT[/SUBJECT[/SESSION]]`` (resolved with ``lookup``) or
``fw://_id/TYPE/ID`` (the gear knows container ids). A destination must be an existing project.

Origin ids live in ``info.export.origin_id`` of every exported container and file (as in the reference
gear). Creation races between concurrent jobs are detected and resolved: after creating a container the
store re-queries the parent by origin id; when several exist, every job keeps the oldest (by
``created``, then id) and the job that created a newer one deletes it before using it, so exactly one
survives. The API key is handed to the SDK and never logged or stored anywhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    child_type,
    origin_of,
    parent_type,
    sha256_file,
    with_origin,
)

log = logging.getLogger("fw_gear_deid.stores.flywheel")

SCHEME = "fw://"
ID_PREFIX = "_id"
#: Where the sha256 of an exported file's bytes is recorded (to detect an unchanged re-export).
SHA_INFO_KEY = "sha256"
_RETRIES = 3


def _api_error_status(error: Exception) -> int | None:
    return getattr(error, "status", None)


def _value(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _plain(value: Any) -> Any:
    """SDK models and datetimes as plain JSON-able data."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value  # enums
    return value


class FlywheelStore(Store):
    """A Flywheel project, subject or session reached through flywheel-sdk."""

    #: Container ids are unique across a Flywheel site, so the identity needs no host: a site reached
    #: under another URL keeps its origin ids.
    identity = "flywheel"

    def __init__(
        self,
        location: str,
        read_only: bool,
        api_key: str | None,
        subject: str | None = None,
        session: str | None = None,
        client: Any = None,
    ):
        super().__init__(read_only)
        if client is None:
            if not api_key:
                raise StoreError(f"{location}: a Flywheel location needs an API key")
            import flywheel

            try:
                client = flywheel.Client(api_key)
            except Exception as error:  # the SDK raises its own ApiException types
                raise StoreError(f"cannot connect to Flywheel: {_first(error)}") from None
        self.client = client
        self._location = self._resolve(location, subject, session)
        suffix = "/".join(p for p in (subject, session) if p)
        self._describe = f"{location} ({suffix})" if suffix else location

    # -- resolution -------------------------------------------------------------------------------
    def _resolve(self, location: str, subject: str | None, session: str | None) -> Container:
        if not location.startswith(SCHEME):
            raise StoreError(f"{location}: not a Flywheel location (fw://...)")
        parts = [p for p in location[len(SCHEME) :].split("/") if p]
        try:
            if parts and parts[0] == ID_PREFIX:
                if len(parts) != 3 or parts[1] not in ("project", "subject", "session"):
                    raise StoreError(
                        f"{location}: expected fw://_id/<project|subject|session>/<id>"
                    )
                container = self.get_container(parts[1], parts[2])
                if subject or session:
                    container = self._descend(container, subject, session)
                return container
            if len(parts) < 2 or len(parts) > 4:
                raise StoreError(f"{location}: expected fw://GROUP/PROJECT[/SUBJECT[/SESSION]]")
            path = [*parts, *(p for p in (subject, session) if p)]
            if len(path) > 4:
                raise StoreError(f"{location}: --subject/--session go below a project location")
            node = self.client.lookup(path)  # a list: labels may contain "/"
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(f"{location}: cannot resolve ({_first(error)})") from None
        kind = _value(node, "container_type") or CONTAINER_TYPES[len(path) - 2]
        return self.get_container(kind, _value(node, "id"))

    def _descend(self, container: Container, subject: str | None, session: str | None) -> Container:
        for kind, label in (("subject", subject), ("session", session)):
            if label is None:
                continue
            matches = [c for c in self.children(container) if c.label == label and c.type == kind]
            if not matches:
                raise StoreError(f"no {kind} {label!r} in {container.type} {container.id}")
            container = matches[0]
        return container

    # -- conversions ------------------------------------------------------------------------------
    def _container(self, kind: str, obj: Any) -> Container:
        fields = {}
        for key in CONTAINER_FIELDS.get(kind, ()):
            value = _value(obj, key)
            if value is not None:
                fields[key] = _plain(value)
        parents = _value(obj, "parents")
        parent_key = parent_type(kind) if kind != "project" else "group"
        parent_id = _value(parents, parent_key) if parents is not None else None
        if parent_id is None and kind == "project":
            parent_id = _value(obj, "group")
        return Container(
            type=kind,
            id=str(_value(obj, "id") or _value(obj, "_id")),
            label=str(_value(obj, "label") or ""),
            parent_id=parent_id,
            info=_plain(_value(obj, "info") or {}),
            tags=list(_value(obj, "tags") or []),
            fields=fields,
        )

    def _file(self, container: Container, obj: Any) -> FileEntry:
        info = _plain(_value(obj, "info") or {})
        return FileEntry(
            name=_value(obj, "name"),
            parent_type=container.type,
            parent_id=container.id,
            size=_value(obj, "size"),
            type=_value(obj, "type"),
            modality=_value(obj, "modality"),
            classification=_plain(_value(obj, "classification") or {}),
            info=info,
            tags=list(_value(obj, "tags") or []),
            id=str(_value(obj, "file_id") or ""),
            version=int(_value(obj, "version") or 1),
            sha256=(info.get("export") or {}).get(SHA_INFO_KEY) if isinstance(info, dict) else None,
        )

    def _get(self, kind: str, container_id: str) -> Any:
        getter = getattr(self.client, f"get_{kind}")
        try:
            return getter(container_id)
        except Exception as error:
            raise StoreError(f"{kind} {container_id}: {_first(error)}") from None

    # -- Store: location --------------------------------------------------------------------------
    @property
    def location(self) -> Container:
        return self._location

    def project(self) -> Container:
        if self._location.type == "project":
            return self._location
        obj = self._get(self._location.type, self._location.id)
        project_id = _value(_value(obj, "parents"), "project")
        return self.get_container("project", project_id)

    def describe(self) -> str:
        return self._describe

    # -- Store: reading ---------------------------------------------------------------------------
    def get_container(self, kind: str, container_id: str) -> Container:
        if kind not in CONTAINER_TYPES:
            raise StoreError(f"{kind}: not a container type")
        return self._container(kind, self._get(kind, container_id))

    def children(self, container: Container) -> list[Container]:
        kind = child_type(container.type)
        if kind is None:
            return []
        return sorted(
            (self._container(kind, obj) for obj in self._list(container, kind)),
            key=lambda c: (c.label, c.id),
        )

    def _list(self, parent: Container, kind: str, filter: str | None = None) -> list[Any]:
        method = getattr(self.client, f"get_{parent.type}_{kind}s")
        # List outputs leave ``info`` out unless asked; origin ids and metadata live there.
        kwargs: dict[str, Any] = {"include_all_info": True}
        if filter:
            kwargs["filter"] = filter
        try:
            return list(method(parent.id, **kwargs))
        except Exception as error:
            raise StoreError(
                f"listing {kind}s of {parent.type} {parent.id}: {_first(error)}"
            ) from None

    def files(self, container: Container) -> list[FileEntry]:
        obj = self._get(container.type, container.id)
        entries = [self._file(container, f) for f in (_value(obj, "files") or [])]
        return sorted(entries, key=lambda e: e.name)

    def skipped_entries(self, container: Container) -> list[tuple[str, str, bool]]:
        return []  # analyses are not exported (as in the reference gear); nothing else to skip

    def parents(self, container: Container) -> list[Container]:
        if container.type == "project":
            return []
        obj = self._get(container.type, container.id)
        parents = _value(obj, "parents")
        chain = []
        for kind in CONTAINER_TYPES[: CONTAINER_TYPES.index(container.type)]:
            chain.append(self.get_container(kind, _value(parents, kind)))
        return chain

    @contextlib.contextmanager
    def local_file(self, entry: FileEntry) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="deid-fw-"))
        try:
            target = folder / "download"
            try:
                self.client.download_file_from_container(entry.parent_id, entry.name, str(target))
            except Exception as error:
                raise StoreError(f"downloading {entry.name}: {_first(error)}") from None
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def find_file(self, ref: str) -> tuple[Container, FileEntry]:
        try:
            obj = self.client.get_file(ref)
        except Exception as error:
            raise StoreError(f"file {ref}: {_first(error)}") from None
        parent_ref = _value(obj, "parent_ref")
        container = self.get_container(_value(parent_ref, "type"), _value(parent_ref, "id"))
        return container, self._file(container, obj)

    def profiles(self) -> list[ProfileText]:
        project = self.project()
        result = []
        try:
            settings = self.client.get_project_settings(project.id)
            result.append(self._profile("project", f"project {project.label}", settings))
            group_id = project.parent_id
            group = self.client.get_group(group_id)
            result.append(self._profile("group", f"group {group_id}", _value(group, "settings")))
            result.append(self._profile("site", "site", self.client.get_site_settings()))
        except Exception as error:
            raise StoreError(f"reading de-id profile settings: {_first(error)}") from None
        return result

    @staticmethod
    def _profile(level: str, source: str, settings: Any) -> ProfileText:
        profile = _value(settings, "deid_profile") if settings is not None else None
        profile = _plain(profile)
        if isinstance(profile, str):
            return ProfileText(level, source, profile or None)
        return ProfileText(level, source, profile if profile else None)

    # -- Store: writing ---------------------------------------------------------------------------
    def _by_origin(self, parent: Container, kind: str, origin_id: str) -> list[Container]:
        found = self._list(parent, kind, filter=f'info.export.origin_id="{origin_id}"')
        objs = sorted(found, key=lambda o: (str(_value(o, "created") or ""), str(_value(o, "id"))))
        return [
            self._container(kind, o)
            for o in objs
            if origin_of(_plain(_value(o, "info"))) == origin_id
        ]

    def find_child(self, parent: Container, kind: str, origin_id: str) -> Container | None:
        matches = self._by_origin(parent, kind, origin_id)
        return matches[0] if matches else None

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
        if kind not in CHILD_TYPES or parent.type != parent_type(kind):
            raise StoreError(f"cannot create a {kind} under a {parent.type}")
        info = with_origin(meta.info, origin_id)
        existing = self.find_child(parent, kind, origin_id) or self._adoptable(
            parent, kind, meta.label, any_origin=match_label
        )
        if existing is not None:
            if existing.origin_id not in (None, origin_id):
                # Matched by label: it stays the container of the source it came from first.
                info = with_origin(meta.info, existing.origin_id)
            self._update(existing, meta, info)
            return self._resolve_race(parent, kind, origin_id, existing.id, meta, created=False)
        body = {parent.type: parent.id, "label": meta.label, "info": info}
        body.update({k: v for k, v in meta.fields.items() if v is not None})
        try:
            created_id = str(getattr(self.client, f"add_{kind}")(body))
        except Exception as error:
            # The create may have succeeded server-side: look before failing (reference A.9).
            again = self.find_child(parent, kind, origin_id)
            if again is None:
                raise StoreError(f"creating {kind}: {_first(error)}") from None
            created_id = again.id
        return self._resolve_race(parent, kind, origin_id, created_id, meta, created=True)

    def _resolve_race(
        self,
        parent: Container,
        kind: str,
        origin_id: str,
        mine: str,
        meta: ContainerMeta,
        created: bool,
    ) -> Container:
        """Every job converges on the oldest container with this origin id; a job that just created
        a newer one deletes it (it is still empty: nothing was put in it yet). A container this
        call did not create is never deleted."""
        matches = self._by_origin(parent, kind, origin_id)
        keep = matches[0] if matches else self.get_container(kind, mine)
        if keep.id != mine and created:
            log.info("resolved a concurrent creation of a %s: keeping the older one", kind)
            with contextlib.suppress(Exception):
                getattr(self.client, f"delete_{kind}")(mine)
        for tag in meta.tags:
            if tag not in keep.tags:
                self._add_tag(keep.id, tag)
        return self.get_container(kind, keep.id)

    def _adoptable(
        self, parent: Container, kind: str, label: str, any_origin: bool = False
    ) -> Container | None:
        """The oldest child with this label and no origin id (made by hand or by the reference
        gear, which matches by label): adopted rather than duplicated."""
        quoted = label.replace("\\", "\\\\").replace(",", "\\,").replace('"', '\\"')
        found = self._list(parent, kind, filter=f'label="{quoted}"')
        candidates = [
            self._container(kind, o)
            for o in sorted(
                found, key=lambda o: (str(_value(o, "created") or ""), str(_value(o, "id")))
            )
        ]
        candidates = [
            c for c in candidates if c.label == label and (any_origin or c.origin_id is None)
        ]
        return candidates[0] if candidates else None

    def _add_tag(self, container_id: str, tag: str) -> None:
        try:
            self.client.add_container_tag(container_id, {"value": tag})
        except Exception as error:
            if _api_error_status(error) != 409:  # 409: already there (another job added it)
                raise StoreError(f"tagging {container_id}: {_first(error)}") from None

    def _update(self, container: Container, meta: ContainerMeta, info: dict[str, Any]) -> None:
        changes: dict[str, Any] = {}
        if container.label != meta.label:
            changes["label"] = meta.label
        for key, value in meta.fields.items():
            if container.fields.get(key) != value:
                changes[key] = value
        try:
            if changes:
                getattr(self.client, f"modify_{container.type}")(container.id, changes)
            if container.info != info:
                self.client.modify_container_info(container.id, {"replace": info})
        except Exception as error:
            raise StoreError(f"updating {container.type} {container.id}: {_first(error)}") from None
        for tag in meta.tags:
            if tag not in container.tags:
                self._add_tag(container.id, tag)

    def find_dest_file(
        self, container: Container, name: str, origin_id: str
    ) -> tuple[FileEntry | None, FileEntry | None]:
        by_origin = by_name = None
        for entry in self.files(container):
            if entry.origin_id == origin_id and (by_origin is None or entry.name == name):
                by_origin = entry
            if entry.name == name:
                by_name = entry
        return by_origin, by_name

    def write_file(
        self,
        container: Container,
        name: str,
        path: Path,
        meta: FileMeta,
        conflict: str,
        existing: FileEntry | None = None,
    ) -> WriteResult:
        self._check_writable()
        if not name or "/" in name:
            raise StoreError(f"{name!r}: not a valid destination file name")
        digest = sha256_file(path)
        info = dict(meta.info)
        info["export"] = {**(info.get("export") or {}), SHA_INFO_KEY: digest}
        _, current = self.find_dest_file(container, name, origin_of(info) or "")
        if (
            current is not None
            and current.sha256 == digest
            and current.origin_id == origin_of(info)
        ):
            return WriteResult(current, "unchanged")
        action = (
            "written"
            if current is None
            else ("new-version" if conflict == "new-version" else "replaced")
        )
        metadata = {
            "name": name,
            "type": meta.type,
            "modality": meta.modality,
            "classification": meta.classification,
            "info": info,
            "tags": list(meta.tags),
        }
        metadata = {k: v for k, v in metadata.items() if v is not None}
        staging = Path(tempfile.mkdtemp(prefix="deid-up-"))
        try:
            staged = staging / name
            try:
                os.link(path, staged)
            except OSError:
                shutil.copyfile(path, staged)
            self._upload(container, staged, metadata, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._ensure_file_meta(container, name, meta, info)
        if existing is not None and existing.name != name and conflict == "replace":
            with contextlib.suppress(
                Exception
            ):  # the old copy of this source file under its old name
                self.client.delete_container_file(container.id, existing.name)
        _, entry = self.find_dest_file(container, name, origin_of(info) or "")
        if entry is None:
            raise StoreError(f"{name}: not found after upload")
        return WriteResult(entry, action)

    def _upload(
        self, container: Container, staged: Path, metadata: dict[str, Any], digest: str
    ) -> None:
        for attempt in range(_RETRIES):
            try:
                # Metadata goes with the upload, so the file never exists without its origin id.
                self.client.upload_file_to_container(
                    container.id, str(staged), signed=False, metadata=json.dumps(metadata)
                )
                return
            except Exception as error:
                _, entry = self.find_dest_file(container, staged.name, "")
                if entry is not None and entry.sha256 == digest:
                    return  # the upload went through before the error
                if attempt + 1 == _RETRIES:
                    raise StoreError(f"uploading {staged.name}: {_first(error)}") from None
                time.sleep(2**attempt)

    def _ensure_file_meta(
        self, container: Container, name: str, meta: FileMeta, info: dict[str, Any]
    ) -> None:
        """Set type/modality/classification/info explicitly where the upload did not apply them."""
        _, entry = self.find_dest_file(container, name, "")
        if entry is None:
            return
        try:
            changes = {
                k: v
                for k, v in (("type", meta.type), ("modality", meta.modality))
                if v is not None and getattr(entry, k) != v
            }
            if changes:
                self.client.modify_container_file(container.id, name, changes)
            if meta.classification and entry.classification != meta.classification:
                self.client.modify_container_file_classification(
                    container.id, name, {"replace": meta.classification}
                )
            if entry.info != info:
                self.client.modify_container_file_info(container.id, name, {"replace": info})
        except Exception as error:
            raise StoreError(f"{name}: writing file metadata failed: {_first(error)}") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.shutdown()


def _first(error: Exception) -> str:
    status = _api_error_status(error)
    reason = getattr(error, "reason", None) or getattr(error, "detail", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
