"""Mapping CSV: per-subject (or per-session) values for the profile's ``{{ VAR }}`` variables.

Every cell is kept as the exact string in the file: no YAML or number parsing, no HTML escaping,
so ``012345``, ``&``, quotes and ``<`` reach the profile unchanged (substitution happens on
parsed values, see ``_profile._substitute``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fw_gear_deid.errors import DeidError

SUBJECT_KEY = "subject.label"
SESSION_KEY = "session.label"
#: Variables with these prefixes come from container metadata, not from the CSV.
CONTAINER_PREFIXES = ("project.", "subject.", "session.", "acquisition.")


class MappingError(DeidError):
    """The mapping CSV is unusable, or has no row for a subject/session."""


class MappingReadError(MappingError):
    """The mapping CSV cannot be read at all (missing file, not UTF-8)."""


@dataclass(frozen=True)
class MappingTable:
    """The rows of a mapping CSV, keyed by subject label (and session label)."""

    source: str
    columns: tuple[str, ...]
    session_level: bool
    rows: Mapping[tuple[str, ...], Mapping[str, str]]

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (SUBJECT_KEY, SESSION_KEY) if self.session_level else (SUBJECT_KEY,)

    @property
    def variables(self) -> frozenset[str]:
        """The columns that can fill variables (every column but the key columns)."""
        return frozenset(column for column in self.columns if column not in self.key_columns)

    @classmethod
    def from_csv(cls, path: str | Path, session_level: bool = False) -> MappingTable:
        source = str(path)
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                return cls.from_rows(csv.reader(handle), source, session_level)
        except OSError as error:
            raise MappingReadError(
                f"{source}: cannot read the mapping CSV: {error.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise MappingReadError(f"{source}: the mapping CSV is not UTF-8 text") from None
        except csv.Error as error:
            raise MappingError(f"{source}: malformed CSV: {error}") from None

    @classmethod
    def from_rows(
        cls, rows: Iterable[list[str]], source: str, session_level: bool = False
    ) -> MappingTable:
        iterator = iter(rows)
        header = next(iterator, None)
        if not header:
            raise MappingError(f"{source}: the mapping CSV is empty (no header row)")
        columns = tuple(header)
        duplicated = sorted({column for column in columns if columns.count(column) > 1})
        if duplicated:
            raise MappingError(f"{source}: column {duplicated[0]!r} appears twice in the header")
        keys = (SUBJECT_KEY, SESSION_KEY) if session_level else (SUBJECT_KEY,)
        for key in keys:
            if key not in columns:
                raise MappingError(f"{source}: the mapping CSV has no {key!r} column")
        table: dict[tuple[str, ...], dict[str, str]] = {}
        first_line: dict[tuple[str, ...], int] = {}
        for line, cells in enumerate(iterator, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(columns):
                raise MappingError(
                    f"{source}:{line}: {len(cells)} cells for {len(columns)} columns"
                )
            row = dict(zip(columns, cells, strict=True))
            key = tuple(row[column] for column in keys)
            if any(part == "" for part in key):
                raise MappingError(f"{source}:{line}: empty {' / '.join(keys)}")
            if key in table:
                raise MappingError(
                    f"{source}:{line}: {_describe(key)} is also on line {first_line[key]}: "
                    "keys must be unique"
                )
            table[key] = row
            first_line[key] = line
        return cls(source, columns, session_level, table)

    def row_for(self, subject_label: str, session_label: str | None = None) -> dict[str, str]:
        """The variables of a subject (or session); :class:`MappingError` when it has no row."""
        if self.session_level:
            if session_label is None:
                raise MappingError(
                    f"{self.source}: session-level mapping needs a session label "
                    f"(subject {subject_label!r})"
                )
            key: tuple[str, ...] = (subject_label, session_label)
        else:
            key = (subject_label,)
        row = self.rows.get(key)
        if row is None:
            raise MappingError(f"{self.source}: no row for {_describe(key)}")
        return {column: value for column, value in row.items() if column not in self.key_columns}

    def missing_columns(self, names: Iterable[str]) -> list[str]:
        """Profile variables this CSV cannot fill (container-metadata variables excepted)."""
        return sorted(
            name
            for name in set(names)
            if not name.startswith(CONTAINER_PREFIXES) and name not in self.columns
        )


def container_variables(**containers: Mapping[str, Any] | None) -> dict[str, str]:
    """``project=..., subject=..., session=...`` metadata as ``subject.label``-style variables."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif value is not None and not isinstance(value, list | tuple):
            flat[prefix] = str(value)

    for name, metadata in containers.items():
        if metadata:
            walk(name, metadata)
    return flat


def _describe(key: tuple[str, ...]) -> str:
    if len(key) == 1:
        return f"subject {key[0]!r}"
    return f"subject {key[0]!r} session {key[1]!r}"
