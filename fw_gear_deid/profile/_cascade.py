"""Which profile a job uses: explicit input, else project, group, site (FLYWHEEL.md §E)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fw_gear_deid.errors import ProfileError
from fw_gear_deid.profile._issues import ProfileIssue
from fw_gear_deid.profile._profile import Profile, load_profile

ABSENT = "absent"
INVALID = "invalid"
USED = "used"
OPTED_OUT = "opted out"
NOT_REACHED = "not reached"
REFUSED_OPT_OUT = "opt-out refused (a more specific level is invalid)"


@dataclass(frozen=True)
class ProfileSource:
    """A profile at one level: file text, or the dict Flywheel keeps in container settings."""

    level: str
    source: str
    text: str | Mapping[str, Any] | None


@dataclass(frozen=True)
class CascadeResult:
    profile: Profile | None
    level: str | None
    opted_out: bool
    issues_by_level: dict[str, list[ProfileIssue]]
    #: level -> absent / invalid / used / opted out / not reached, in cascade order
    states: dict[str, str] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        """No usable profile: nothing may be written."""
        return self.profile is None

    def explain(self) -> str:
        lines = []
        if self.profile is None and REFUSED_OPT_OUT in self.states.values():
            lines.append(
                "rejected: an opt-out is not honoured below an invalid profile "
                "(fix the invalid level, or opt out there)"
            )
        elif self.profile is None:
            lines.append("rejected: no valid de-id profile at any level")
        elif self.opted_out:
            lines.append(
                f"opted out by the {self.level} profile ({self.profile.source}): "
                "files are copied unchanged"
            )
        else:
            lines.append(f"using the {self.level} profile ({self.profile.source})")
        for level, state in self.states.items():
            issues = self.issues_by_level.get(level, [])
            suffix = f" ({len(issues)} error{'s' if len(issues) != 1 else ''})" if issues else ""
            lines.append(f"  {level}: {state}{suffix}")
            lines.extend(f"    {issue}" for issue in issues)
        return "\n".join(lines)


def _blank(candidate: ProfileSource | None) -> bool:
    if candidate is None or candidate.text is None:
        return True
    if isinstance(candidate.text, str):
        return not candidate.text.strip()
    return not candidate.text


def resolve_cascade(
    explicit: ProfileSource | None,
    project: ProfileSource | None,
    group: ProfileSource | None,
    site: ProfileSource | None,
    *,
    explicit_fallback: bool = True,
) -> CascadeResult:
    """The profile to use and its level, the explicit opt-out, or a rejection with every level's
    errors. Every invalid level is skipped with its errors kept, the explicit one included (the
    product rule: explicit wins, then project, group, site). ``explicit_fallback=False`` makes an
    invalid explicit profile reject the job instead, for callers that must not fall through.
    """
    order = (
        ("explicit", explicit),
        ("project", project),
        ("group", group),
        ("site", site),
    )
    states: dict[str, str] = {}
    issues_by_level: dict[str, list[ProfileIssue]] = {}
    chosen: Profile | None = None
    chosen_level: str | None = None
    for default_level, candidate in order:
        level = candidate.level if candidate is not None and candidate.level else default_level
        if chosen is not None:
            states[level] = ABSENT if _blank(candidate) else NOT_REACHED
            continue
        if _blank(candidate):
            states[level] = ABSENT
            continue
        assert candidate is not None
        try:
            profile = load_profile(text=candidate.text, source=candidate.source, template_ok=True)
        except ProfileError as error:
            states[level] = INVALID
            issues_by_level[level] = list(error.issues)
            if default_level == "explicit" and not explicit_fallback:
                for rest_default, rest in order[1:]:
                    rest_level = rest.level if rest is not None and rest.level else rest_default
                    states[rest_level] = ABSENT if _blank(rest) else NOT_REACHED
                return CascadeResult(None, None, False, issues_by_level, states)
            continue
        chosen = replace(profile, level=level)
        chosen_level = level
        states[level] = OPTED_OUT if profile.is_opt_out else USED
    if chosen is None:
        return CascadeResult(None, None, False, issues_by_level, states)
    if chosen.is_opt_out and issues_by_level:
        # An opt-out copies everything unchanged: it is honoured only when no more specific level
        # was invalid, or a typo in a project profile would turn into a raw copy of the project.
        states[chosen_level] = REFUSED_OPT_OUT
        return CascadeResult(None, None, False, issues_by_level, states)
    return CascadeResult(chosen, chosen_level, chosen.is_opt_out, issues_by_level, states)
