"""The profile loader on random and mutated text fails only with ProfileError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from fw_gear_deid.errors import ProfileError

from .strategies import mutated
from .targets import PROFILE

_SEED = PROFILE.encode()
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        ["remove", "keep", "hash", "PatientName", "(0010,0010)", "r!.*", "*", "{{ X }}"]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(["fields", "name", "dicom"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def _load_text(text: str) -> None:
    from fw_gear_deid.profile import load_profile

    try:
        load_profile(text=text, source="fuzz.yaml")
    except ProfileError as error:
        assert "fuzz.yaml" in str(error)  # noqa: PT017 - raising is one valid outcome


@given(text=st.text(max_size=400))
def test_random_text_is_valid_or_a_profile_error(text: str) -> None:
    _load_text(text)


@given(data=st.data())
def test_mutated_profile_files_are_valid_or_a_profile_error(data: st.DataObject) -> None:
    from fw_gear_deid.profile import load_profile

    payload = data.draw(mutated([_SEED], focus=len(_SEED)), label="payload")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.yaml"
        path.write_bytes(payload)
        try:
            load_profile(path)
        except ProfileError as error:
            assert "profile.yaml" in str(error)  # noqa: PT017 - raising is one valid outcome


@given(
    section=st.sampled_from(["dicom", "csv", "json", "zip", "flywheel", "name", "xyz"]),
    value=_VALUES,
)
def test_structured_garbage_in_a_valid_profile_is_a_profile_error(
    section: str, value: object
) -> None:
    data = yaml.safe_load(PROFILE)
    data[section] = value
    _load_text(yaml.safe_dump(data))
    _load_text(yaml.safe_dump({"dicom": {"fields": [value]}}))
