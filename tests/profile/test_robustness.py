"""Any mistake in a valid profile gives a ProfileError with located issues, never a crash."""

from __future__ import annotations

import copy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fw_gear_deid.profile import ProfileError, load_profile

DATA = Path(__file__).parent / "data"
BASE = load_profile(DATA / "every_construct.yaml").data
VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1.5,
        "",
        "x",
        "{{ V }}",
        [],
        {},
        [None],
        [{}],
        {"a": 1},
        ["x"],
        '(0019,"A",10)',
        "PatientName",
        "%Q",
        "r!(",
        ".csv",
        2**70,
        [{"name": 1}],
        {"name": []},
    ]
)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


PATHS = [path for path in _paths(BASE) if path]


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_mutated_profile_is_valid_or_a_profile_error_with_lines(edits):
    data = copy.deepcopy(BASE)
    for path, value in edits:
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    issues = []
    try:
        load_profile(text=data, source="mutated")
    except ProfileError as error:
        issues = error.issues or [None]
    assert all(issue.line >= 1 and issue.source == "mutated" for issue in issues)
