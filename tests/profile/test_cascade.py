"""The cascade: explicit input wins, then project, group, site; invalid levels are skipped."""

from __future__ import annotations

import itertools

import pytest

from fw_gear_deid.profile import CascadeResult, ProfileSource, resolve_cascade

LEVELS = ("explicit", "project", "group", "site")
TEXTS = {
    "valid": "dicom:\n  fields:\n    - name: PatientName\n      remove: true\n",
    "invalid": "dicom:\n  fields:\n    - name: PateintName\n      remove: true\n",
    "blank": "dicom:\n  fields: []\n",
}


def _source(level: str, kind: str) -> ProfileSource | None:
    if kind == "absent":
        return None
    return ProfileSource(level, f"{level}.yaml", TEXTS[kind])


def _resolve(*kinds: str) -> CascadeResult:
    return resolve_cascade(
        *(_source(level, kind) for level, kind in zip(LEVELS, kinds, strict=True))
    )


# (explicit, project, group, site) -> (outcome, level)
TABLE = [
    (("valid", "valid", "valid", "valid"), ("use", "explicit")),
    (("absent", "valid", "valid", "valid"), ("use", "project")),
    (("absent", "absent", "valid", "valid"), ("use", "group")),
    (("absent", "absent", "absent", "valid"), ("use", "site")),
    (("absent", "absent", "absent", "absent"), ("reject", None)),
    (("absent", "invalid", "valid", "valid"), ("use", "group")),
    (("absent", "invalid", "invalid", "valid"), ("use", "site")),
    (("absent", "invalid", "invalid", "invalid"), ("reject", None)),
    (("absent", "blank", "valid", "valid"), ("opt-out", "project")),
    (("absent", "invalid", "blank", "valid"), ("reject", None)),
    (("absent", "absent", "absent", "blank"), ("opt-out", "site")),
    (("blank", "valid", "valid", "valid"), ("opt-out", "explicit")),
    (("valid", "blank", "invalid", "absent"), ("use", "explicit")),
    (("invalid", "valid", "valid", "valid"), ("use", "project")),
    (("invalid", "absent", "absent", "absent"), ("reject", None)),
    (("absent", "valid", "invalid", "blank"), ("use", "project")),
]


@pytest.mark.parametrize(("kinds", "expected"), TABLE, ids=["-".join(k) for k, _ in TABLE])
def test_cascade_table(kinds, expected):
    result = _resolve(*kinds)
    outcome, level = expected
    assert result.level == level
    assert result.rejected == (outcome == "reject")
    assert result.opted_out == (outcome == "opt-out")
    if outcome != "reject":
        assert result.profile is not None
        assert result.profile.level == level
        assert result.profile.source == f"{level}.yaml"


def _oracle(kinds: tuple[str, ...]) -> tuple[str, str | None]:
    """The rule in words: the first valid or blank level of explicit, project, group, site;
    invalid levels are skipped; a blank (opt-out) below an invalid level rejects; nothing usable
    rejects."""
    seen_invalid = False
    for level, kind in zip(LEVELS, kinds, strict=True):
        if kind == "valid":
            return ("use", level)
        if kind == "blank":
            return ("reject", None) if seen_invalid else ("opt-out", level)
        seen_invalid = seen_invalid or kind == "invalid"
    return ("reject", None)


def test_every_combination_follows_the_rule():
    for kinds in itertools.product(("valid", "invalid", "blank", "absent"), repeat=4):
        result = _resolve(*kinds)
        outcome, level = _oracle(kinds)
        got = "reject" if result.rejected else "opt-out" if result.opted_out else "use"
        assert (got, result.level) == (outcome, level), kinds


def test_skipped_invalid_levels_keep_their_errors():
    result = _resolve("absent", "invalid", "invalid", "valid")
    assert set(result.issues_by_level) == {"project", "group"}
    assert [str(issue) for issue in result.issues_by_level["project"]] == [
        "project.yaml:3: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
        "(did you mean 'PatientName'?)"
    ]
    assert result.states == {
        "explicit": "absent",
        "project": "invalid",
        "group": "invalid",
        "site": "used",
    }


def test_rejection_explains_each_level():
    result = _resolve("absent", "invalid", "absent", "invalid")
    assert result.rejected
    assert result.explain().splitlines() == [
        "rejected: no valid de-id profile at any level",
        "  explicit: absent",
        "  project: invalid (1 error)",
        "    project.yaml:3: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
        "(did you mean 'PatientName'?)",
        "  group: absent",
        "  site: invalid (1 error)",
        "    site.yaml:3: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
        "(did you mean 'PatientName'?)",
    ]


def test_opt_out_explains_which_level_opted_out():
    result = _resolve("absent", "absent", "blank", "valid")
    assert result.explain().splitlines()[0] == (
        "opted out by the group profile (group.yaml): files are copied unchanged"
    )
    assert result.states["site"] == "not reached"


def test_invalid_explicit_profile_is_skipped_with_its_errors_kept():
    result = _resolve("invalid", "valid", "absent", "absent")
    assert result.level == "project"
    assert "explicit" in result.issues_by_level


def test_invalid_explicit_profile_rejects_when_fallback_is_off():
    sources = [
        _source(level, kind)
        for level, kind in zip(LEVELS, ("invalid", "valid", "absent", "absent"), strict=True)
    ]
    result = resolve_cascade(*sources, explicit_fallback=False)
    assert result.rejected
    assert result.states["project"] == "not reached"


def test_flywheel_settings_dicts_and_empty_settings():
    result = resolve_cascade(
        None,
        ProfileSource("project", "project settings", {}),
        ProfileSource(
            "group",
            "group settings",
            {"dicom": {"fields": [{"name": "PatientID", "remove": True}]}},
        ),
        ProfileSource("site", "site settings", "   \n"),
    )
    assert result.level == "group"
    assert result.states == {
        "explicit": "absent",
        "project": "absent",
        "group": "used",
        "site": "absent",
    }


def test_template_profiles_are_chosen_and_rendered_later():
    text = "dicom:\n  fields:\n    - name: PatientID\n      replace-with: '{{ NEW_ID }}'\n"
    result = resolve_cascade(None, ProfileSource("project", "p.yaml", text), None, None)
    assert result.profile is not None
    assert result.profile.variables == {"NEW_ID"}
    rendered = result.profile.render({"NEW_ID": "0042"})
    assert rendered.data["dicom"]["fields"][0]["replace-with"] == "0042"
    assert rendered.level == "project"


def test_opt_out_below_an_invalid_level_rejects_instead_of_copying_raw():
    result = _resolve("absent", "invalid", "absent", "blank")
    assert result.rejected
    assert result.states["site"].startswith("opt-out refused")
    assert result.explain().splitlines()[0].startswith("rejected: an opt-out is not honoured")
