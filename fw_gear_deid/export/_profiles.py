"""Choosing the profile of a job: the cascade of the destination, and per-subject renders.

This is the only module of the export that calls :mod:`fw_gear_deid.profile`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fw_gear_deid.errors import DeidError, ProfileError
from fw_gear_deid.profile import (
    MappingError,
    MappingTable,
    Profile,
    ProfileSource,
    container_variables,
    resolve_cascade,
)
from fw_gear_deid.stores import Container, Store


@dataclass
class ChosenProfile:
    """The cascade's outcome for one job."""

    profile: Profile | None
    level: str | None
    source: str | None
    opted_out: bool
    rejected: bool
    issues_by_level: dict[str, list[str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)


def choose_profile(explicit: Path | None, dest: Store) -> ChosenProfile:
    """The explicit profile, else the destination project's, group's, site's (first valid)."""
    explicit_source = None
    if explicit is not None:
        try:
            text = Path(explicit).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as error:
            raise DeidError(
                f"{explicit}: cannot read the profile ({type(error).__name__})"
            ) from None
        explicit_source = ProfileSource("explicit", str(explicit), text)
    levels = {
        stored.level: ProfileSource(stored.level, stored.source, stored.content)
        for stored in dest.profiles()
    }
    result = resolve_cascade(
        explicit_source, levels.get("project"), levels.get("group"), levels.get("site")
    )
    issues = {
        str(level): [str(issue) for issue in level_issues]
        for level, level_issues in (result.issues_by_level or {}).items()
    }
    return ChosenProfile(
        profile=result.profile,
        level=result.level,
        source=result.profile.source if result.profile is not None else None,
        opted_out=bool(result.opted_out),
        rejected=bool(result.rejected),
        issues_by_level=issues,
        states=dict(result.states),
    )


def _metadata(container: Container | None) -> dict[str, Any] | None:
    if container is None:
        return None
    return {"label": container.label, "info": container.info, **container.fields}


class SubjectProfiles:
    """The profile of each subject (or session): the chosen profile, rendered when it has
    ``{{ VAR }}`` placeholders with the container metadata and the mapping-CSV row."""

    def __init__(self, chosen: ChosenProfile, mapping_csv: Path | None, session_level: bool):
        self.chosen = chosen
        self.session_level = session_level
        try:
            self.table = MappingTable.from_csv(mapping_csv, session_level) if mapping_csv else None
        except MappingError as error:
            raise DeidError(f"mapping CSV: {error}") from None
        self._cache: dict[tuple[str | None, ...], Profile | DeidError] = {}

    def for_chain(self, chain: list[Container]) -> Profile:
        """The profile for files under ``chain`` (raises :class:`DeidError` with a reason)."""
        base = self.chosen.profile
        assert base is not None
        if self.chosen.opted_out or (self.table is None and not base.is_template):
            return base
        project = chain[0]
        subject = chain[1] if len(chain) > 1 else None
        session = chain[2] if len(chain) > 2 else None
        key = (
            subject.id if subject else None,
            session.id if session and self.session_level else None,
        )
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render(base, project, subject, session)
            self._cache[key] = cached
        if isinstance(cached, DeidError):
            raise cached
        return cached

    def _render(
        self,
        base: Profile,
        project: Container,
        subject: Container | None,
        session: Container | None,
    ) -> Profile | DeidError:
        variables = container_variables(
            project=_metadata(project),
            subject=_metadata(subject),
            session=_metadata(session) if self.session_level else None,
        )
        if self.table is not None:
            if subject is None:
                if not base.is_template:
                    return base  # project files: no subject row needed
                return DeidError("mapping CSV: project-level files have no subject row")
            try:
                row = self.table.row_for(subject.label, session.label if session else None)
            except MappingError as error:
                return DeidError(f"mapping CSV: {error}")
            variables.update(row)
        try:
            return base.render(variables)
        except ProfileError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "invalid"
            return DeidError(f"profile rendered for this subject is invalid: {first}")
