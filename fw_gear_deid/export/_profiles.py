"""Choosing the profile of a job: the cascade of the destination, and per-subject mapping CSV renders.

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
    load_profile,
    resolve_cascade,
)
from fw_gear_deid.stores import Store


@dataclass
class ChosenProfile:
    """The cascade's outcome for one job."""

    profile: Profile | None
    level: str | None
    source: str | None
    opted_out: bool
    rejected: bool
    issues_by_level: dict[str, list[str]] = field(default_factory=dict)
    #: The chosen level's raw text or data, re-rendered per subject with the mapping CSV.
    raw: str | dict[str, Any] | None = None


def choose_profile(explicit: Path | None, dest: Store) -> ChosenProfile:
    sources: list[ProfileSource] = []
    if explicit is not None:
        try:
            text = Path(explicit).read_text(encoding="utf-8")
        except OSError as error:
            raise DeidError(f"{explicit}: cannot read the profile ({error.strerror})") from error
        sources.append(ProfileSource("explicit", str(explicit), text))
    for stored in dest.profiles():
        sources.append(ProfileSource(stored.level, stored.source, stored.content))
    result = resolve_cascade(sources)
    issues = {
        str(level): [str(issue) for issue in level_issues]
        for level, level_issues in (result.issues_by_level or {}).items()
    }
    profile = result.profile
    raw = None
    for source in sources:
        if source.level == result.level:
            raw = source.text if hasattr(source, "text") else source[2]
    return ChosenProfile(
        profile=profile,
        level=result.level,
        source=getattr(profile, "source", None),
        opted_out=bool(result.opted_out),
        rejected=bool(result.rejected),
        issues_by_level=issues,
        raw=raw,
    )


class SubjectProfiles:
    """Profiles rendered per subject (or per subject and session) from a mapping CSV."""

    def __init__(self, chosen: ChosenProfile, mapping_csv: Path | None, session_level: bool):
        self.chosen = chosen
        self.session_level = session_level
        self.table = MappingTable.from_csv(mapping_csv, session_level) if mapping_csv else None
        self._cache: dict[tuple[str, str | None], Profile | DeidError] = {}

    def for_labels(self, subject: str | None, session: str | None) -> Profile:
        """The profile of a subject (raises :class:`DeidError` with a reason when there is none)."""
        if self.table is None or subject is None or self.chosen.opted_out:
            assert self.chosen.profile is not None
            return self.chosen.profile
        key = (subject, session if self.session_level else None)
        cached = self._cache.get(key)
        if cached is None:
            try:
                row = self.table.row_for(subject, key[1])
                cached = load_profile(
                    self.chosen.raw, source=f"{self.chosen.source} (mapping CSV)", variables=row
                )
            except MappingError as error:
                cached = DeidError(f"mapping CSV: {error}")
            except ProfileError as error:
                first = str(error).splitlines()[0] if str(error) else "invalid"
                cached = DeidError(f"profile rendered from the mapping CSV is invalid: {first}")
            self._cache[key] = cached
        if isinstance(cached, DeidError):
            raise cached
        return cached
