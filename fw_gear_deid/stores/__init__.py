"""Stores: where data lives. One interface (:class:`Store`), one module per implementation.

Locations:

- a local folder path: a project folder unless ``subject``/``session`` (or the folder's
  ``.container.json``) say otherwise (:mod:`.local`);
- ``fw://GROUP/PROJECT[/SUBJECT[/SESSION]]``: a Flywheel container by resolver path;
- ``fw://_id/TYPE/ID``: a Flywheel container by type and id (the gear knows ids, not paths; ``_id``
  can never be a Flywheel group id, which must start with a letter or digit) (:mod:`.flywheel`).
"""

from __future__ import annotations

from fw_gear_deid.stores._base import (
    CHILD_TYPES,
    CONFLICT_POLICIES,
    CONTAINER_FIELDS,
    CONTAINER_TYPES,
    Container,
    ContainerMeta,
    FileEntry,
    FileMeta,
    ProfileText,
    ReadOnlyStoreError,
    Store,
    WriteResult,
    origin_of,
    sha256_file,
    with_origin,
)

FLYWHEEL_SCHEME = "fw://"

__all__ = [
    "CHILD_TYPES",
    "CONFLICT_POLICIES",
    "CONTAINER_FIELDS",
    "CONTAINER_TYPES",
    "FLYWHEEL_SCHEME",
    "Container",
    "ContainerMeta",
    "FileEntry",
    "FileMeta",
    "ProfileText",
    "ReadOnlyStoreError",
    "Store",
    "WriteResult",
    "is_flywheel_location",
    "open_store",
    "origin_of",
    "sha256_file",
    "with_origin",
]


def is_flywheel_location(location: str) -> bool:
    return location.startswith(FLYWHEEL_SCHEME)


def open_store(
    location: str,
    read_only: bool,
    subject: str | None = None,
    session: str | None = None,
    api_key: str | None = None,
    create: bool = False,
) -> Store:
    """Open a source (``read_only``) or destination store on ``location``.

    ``create`` makes a missing local destination project folder. ``api_key`` is required for a
    Flywheel location; it is handed to the SDK and never logged.
    """
    if is_flywheel_location(location):
        from fw_gear_deid.stores.flywheel import FlywheelStore

        return FlywheelStore(location, read_only, api_key=api_key, subject=subject, session=session)
    from fw_gear_deid.stores.local import LocalStore

    return LocalStore(location, read_only, subject=subject, session=session, create=create)
