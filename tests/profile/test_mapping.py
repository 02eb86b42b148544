"""Mapping CSV and {{ VAR }} variables: exact strings, numbers only where the schema wants them."""

from __future__ import annotations

import textwrap

import pytest

from fw_gear_deid.profile import (
    MappingError,
    MappingReadError,
    MappingTable,
    ProfileError,
    container_variables,
    load_profile,
)

TEMPLATE = textwrap.dedent(
    """\
    dicom:
      date-increment: "{{ OFFSET }}"
      fields:
        - name: PatientID
          replace-with: "{{ NEW_ID }}"
        - name: PatientComments
          replace-with: "site {{ SITE }} / {{ NEW_ID }}"
    flywheel:
      subject:
        fields:
          - name: label
            replace-with: "{{ NEW_ID }}"
    """
)


def _csv(tmp_path, text: str, name: str = "map.csv"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path) -> MappingTable:
    return MappingTable.from_csv(
        _csv(
            tmp_path,
            """\
            subject.label,NEW_ID,SITE,OFFSET
            sub-01,012345,A&B <x> 'q' "dq",-21
            sub-02,yes,null,1.5
            sub-03,{{ NEW_ID }},: x,abc
            """,
        )
    )


def test_leading_zeros_and_markup_characters_survive_exactly(table):
    profile = load_profile(text=TEMPLATE, source="t.yaml", variables=table.row_for("sub-01"))
    fields = profile.data["dicom"]["fields"]
    assert fields[0]["replace-with"] == "012345"
    assert fields[1]["replace-with"] == "site A&B <x> 'q' \"dq\" / 012345"
    assert profile.data["flywheel"]["subject"]["fields"][0]["replace-with"] == "012345"


def test_number_variable_becomes_a_number_where_the_schema_wants_one(table):
    first = load_profile(text=TEMPLATE, source="t.yaml", variables=table.row_for("sub-01"))
    assert first.data["dicom"]["date-increment"] == -21
    second = load_profile(text=TEMPLATE, source="t.yaml", variables=table.row_for("sub-02"))
    assert second.data["dicom"]["date-increment"] == 1.5


def test_yaml_looking_values_stay_strings(table):
    profile = load_profile(text=TEMPLATE, source="t.yaml", variables=table.row_for("sub-02"))
    assert profile.data["dicom"]["fields"][0]["replace-with"] == "yes"
    assert profile.data["dicom"]["fields"][1]["replace-with"] == "site null / yes"


def test_values_are_substituted_once_never_re_expanded(table):
    profile = load_profile(
        text=TEMPLATE.replace('"{{ OFFSET }}"', "-1"),
        source="t.yaml",
        variables=table.row_for("sub-03"),
    )
    assert profile.data["dicom"]["fields"][0]["replace-with"] == "{{ NEW_ID }}"


def test_non_numeric_value_where_a_number_is_wanted_is_an_error_without_the_value(table):
    with pytest.raises(ProfileError) as caught:
        load_profile(text=TEMPLATE, source="t.yaml", variables=table.row_for("sub-03"))
    assert [str(issue) for issue in caught.value.issues] == [
        "t.yaml:2: dicom.date-increment: the value of variable 'OFFSET' is not a number, "
        "as needed here"
    ]


def test_csv_false_for_a_boolean_action_is_the_remove_false_error():
    text = "dicom:\n  fields:\n    - name: PatientName\n      remove: '{{ DROP }}'\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(text=text, source="t.yaml", variables={"DROP": "false"})
    assert caught.value.issues[0].message.startswith("remove: false is not allowed")
    kept = load_profile(text=text, source="t.yaml", variables={"DROP": "true"})
    assert kept.data["dicom"]["fields"][0]["remove"] is True


def test_rendered_value_is_still_checked_against_the_vr():
    text = "dicom:\n  fields:\n    - name: StudyDate\n      replace-with: '{{ D }}'\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(text=text, source="t.yaml", variables={"D": "2020-01-02"})
    assert "is not a valid DA value" in caught.value.issues[0].message


def test_variable_missing_from_the_values_is_an_error():
    with pytest.raises(ProfileError) as caught:
        load_profile(text=TEMPLATE, source="t.yaml", variables={"NEW_ID": "1", "OFFSET": "1"})
    assert [str(issue) for issue in caught.value.issues] == [
        "t.yaml:7: dicom.fields[1].replace-with: variable 'SITE' has no value (not a mapping "
        "CSV column nor container field)"
    ]


def test_missing_subject_is_an_explicit_error_naming_it(table):
    with pytest.raises(MappingError, match=r"no row for subject 'sub-99'"):
        table.row_for("sub-99")


def test_duplicate_subject_rows_are_refused(tmp_path):
    path = _csv(tmp_path, "subject.label,NEW_ID\nsub-01,1\nsub-02,2\nsub-01,3\n")
    with pytest.raises(MappingError) as caught:
        MappingTable.from_csv(path)
    assert str(caught.value) == (
        f"{path}:4: subject 'sub-01' is also on line 2: keys must be unique"
    )


def test_missing_key_column_is_refused(tmp_path):
    path = _csv(tmp_path, "subject,NEW_ID\nsub-01,1\n")
    with pytest.raises(MappingError, match=r"has no 'subject\.label' column"):
        MappingTable.from_csv(path)


def test_session_level_needs_the_session_column_and_unique_pairs(tmp_path):
    path = _csv(tmp_path, "subject.label,NEW_ID\nsub-01,1\n")
    with pytest.raises(MappingError, match=r"has no 'session\.label' column"):
        MappingTable.from_csv(path, session_level=True)
    path = _csv(
        tmp_path,
        "subject.label,session.label,NEW_ID\nsub-01,ses-1,a\nsub-01,ses-2,b\nsub-01,ses-1,c\n",
        name="sessions.csv",
    )
    with pytest.raises(MappingError, match="subject 'sub-01' session 'ses-1' is also on line 2"):
        MappingTable.from_csv(path, session_level=True)


def test_session_level_rows_are_found_by_subject_and_session(tmp_path):
    path = _csv(
        tmp_path,
        "subject.label,session.label,NEW_ID\nsub-01,ses-1,a\nsub-01,ses-2,b\n",
    )
    table = MappingTable.from_csv(path, session_level=True)
    assert table.row_for("sub-01", "ses-2") == {"NEW_ID": "b"}
    with pytest.raises(MappingError, match="no row for subject 'sub-01' session 'ses-3'"):
        table.row_for("sub-01", "ses-3")
    with pytest.raises(MappingError, match="needs a session label"):
        table.row_for("sub-01")


def test_every_profile_variable_must_be_a_column(table):
    assert table.variables == {"NEW_ID", "SITE", "OFFSET"}
    assert table.missing_columns({"NEW_ID", "AGE", "subject.label", "session.info.x"}) == ["AGE"]


def test_duplicate_header_and_ragged_rows_are_refused(tmp_path):
    with pytest.raises(MappingError, match="column 'A' appears twice"):
        MappingTable.from_csv(_csv(tmp_path, "subject.label,A,A\ns,1,2\n"))
    with pytest.raises(MappingError, match=r":2: 3 cells for 2 columns"):
        MappingTable.from_csv(_csv(tmp_path, "subject.label,A\ns,1,2\n", name="ragged.csv"))


def test_utf8_bom_is_ignored_and_unreadable_csv_is_a_read_error(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffsubject.label,X\ns,é\n".encode())
    assert MappingTable.from_csv(path).row_for("s") == {"X": "é"}
    with pytest.raises(MappingReadError):
        MappingTable.from_csv(tmp_path / "absent.csv")


def test_container_metadata_variables_are_flattened_with_dots():
    variables = container_variables(
        project={"label": "P", "info": {"site": "S1"}},
        subject={"label": "sub-01", "sex": None},
        session=None,
    )
    assert variables == {"project.label": "P", "project.info.site": "S1", "subject.label": "sub-01"}
    text = "dicom:\n  fields:\n    - name: PatientID\n      replace-with: '{{ subject.label }}-{{ project.info.site }}'\n"
    profile = load_profile(text=text, source="t.yaml", variables=variables)
    assert profile.data["dicom"]["fields"][0]["replace-with"] == "sub-01-S1"
