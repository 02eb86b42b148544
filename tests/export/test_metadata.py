"""The `flywheel:` section on container and file metadata (FLYWHEEL.md §A.5, defects fixed)."""

from __future__ import annotations

from fw_gear_deid.export._metadata import container_metadata, file_metadata
from fw_gear_deid.keys import Keys
from fw_gear_deid.stores import Container, FileEntry

KEYS = Keys("metadata-secret")


def _subject(**fields):
    return Container(
        "subject",
        "grp/p/s1",
        "MRN12345",
        info={"notes": "x", "export": {"origin_id": "old"}},
        tags=["t"],
        fields={
            "firstname": "John",
            "lastname": "Doe",
            "date_of_birth": "1961-01-01",
            "sex": "male",
            **fields,
        },
    )


def _run(section, container=None):
    return container_metadata(
        container or _subject(), {"flywheel": section}, KEYS, "origin-1", "MRN12345"
    )


def test_no_section_copies_the_label_only():
    result = _run({})
    assert result.meta.label == "MRN12345"
    assert (result.meta.info, result.meta.tags, result.meta.fields) == ({}, [], {})
    assert result.sensitive == []


def test_remove_on_label_gives_a_keyed_pseudonym_with_all_false_and_true():
    for all_flag in (False, True):
        result = _run({"subject": {"all": all_flag, "fields": [{"name": "label", "remove": True}]}})
        assert result.meta.label == KEYS.pseudonym("origin-1", purpose="label")
        assert "MRN12345" not in result.meta.label
        assert [(s.path, s.value) for s in result.sensitive] == [("subject.label", "MRN12345")]
        assert ("subject.label", "remove") in [(c.path, c.action) for c in result.changes]


def test_all_true_never_copies_names_or_birth_date_unless_kept_explicitly():
    result = _run({"subject": {"all": True}})
    assert result.meta.fields == {"sex": "male"}
    assert result.meta.info == {"notes": "x"}  # the source's own export info is never carried over
    assert result.meta.tags == ["t"]
    kept = _run({"subject": {"all": True, "fields": [{"name": "firstname", "keep": True}]}})
    assert kept.meta.fields == {"sex": "male", "firstname": "John"}


def test_all_false_keeps_only_named_fields_and_remove_does_not_crash():
    result = _run(
        {
            "subject": {
                "fields": [
                    {"name": "sex"},
                    {"name": "info.notes", "remove": True},
                    {"name": "lastname", "remove": True},
                ]
            }
        }
    )
    assert result.meta.fields == {"sex": "male"}
    assert result.meta.info == {}
    assert {s.path for s in result.sensitive} == {"subject.info.notes", "subject.lastname"}


def test_replace_hash_date_shift_and_regex_sub():
    session = Container(
        "session", "grp/p/s1/v", "2020-01-02 MR", fields={"timestamp": "2020-01-02T10:00:00"}
    )
    section = {
        "session": {
            "date-increment": -17,
            "fields": [
                {"name": "timestamp", "increment-datetime": True},
                {
                    "name": "label",
                    "regex-sub": [
                        {
                            "input-regex": r"(?P<day>\d{4}-\d\d-\d\d) (?P<mod>\w+)",
                            "output": "{mod}-{day}",
                            "groups": [{"name": "day", "hash": True}],
                        }
                    ],
                },
            ],
        }
    }
    result = container_metadata(session, {"flywheel": section}, KEYS, "o", "subj")
    assert result.meta.fields["timestamp"] == "2019-12-16T10:00:00"
    mod, digest = result.meta.label.split("-", 1)
    assert mod == "MR"
    assert digest == KEYS.pseudonym("2020-01-02")
    salted = _run({"subject": {"fields": [{"name": "label", "hash": True}]}}, None)
    assert salted.meta.label == KEYS.pseudonym("MRN12345")
    replaced = _run({"subject": {"fields": [{"name": "label", "replace-with": "S-01"}]}})
    assert replaced.meta.label == "S-01"


def test_file_metadata_keeps_structure_drops_info_header_and_origin():
    entry = FileEntry(
        "a.dcm",
        "acquisition",
        "x",
        type="dicom",
        modality="MR",
        classification={"Intent": ["Structural"]},
        info={
            "header": {"dicom": {"PatientName": "Doe^John"}},
            "qa": 1,
            "export": {"origin_id": "source-side"},
        },
        tags=["raw"],
    )
    plain = file_metadata(entry, {}, KEYS, "s")
    assert (plain.meta.type, plain.meta.modality, plain.meta.classification) == (
        "dicom",
        "MR",
        {"Intent": ["Structural"]},
    )
    assert (plain.meta.info, plain.meta.tags) == ({}, [])
    everything = file_metadata(entry, {"flywheel": {"file": {"all": True}}}, KEYS, "s")
    assert everything.meta.info == {"qa": 1}
    assert everything.meta.tags == ["raw"]
    header = file_metadata(
        entry, {"flywheel": {"file": {"all": True, "include-info-header": True}}}, KEYS, "s"
    )
    assert header.meta.info["header"]["dicom"]["PatientName"] == "Doe^John"


def test_container_dates_follow_the_dicom_date_increment_else_the_keyed_offset():
    session = Container("session", "grp/p/s1/v", "v", fields={"timestamp": "2020-01-02T10:00:00"})
    rules = {"session": {"fields": [{"name": "timestamp", "increment-datetime": True}]}}
    with_dicom = container_metadata(
        session, {"flywheel": rules, "dicom": {"date-increment": -21}}, KEYS, "o", "subj"
    )
    assert with_dicom.meta.fields["timestamp"] == "2019-12-12T10:00:00"
    keyed = container_metadata(session, {"flywheel": rules}, KEYS, "o", "subj")
    days = KEYS.date_offset_days("subj")
    import datetime as dt

    expected = (dt.datetime(2020, 1, 2, 10) + dt.timedelta(days=days)).isoformat()
    assert keyed.meta.fields["timestamp"] == expected


def test_jitter_and_hash_on_metadata_are_keyed_so_reruns_agree():
    section = {
        "subject": {
            "fields": [
                {"name": "info.weight", "jitter": True, "jitter-range": 5},
                {"name": "info.mrn", "hash": True},
            ]
        }
    }
    subject = _subject()
    subject.info.update({"weight": 70.5, "mrn": "MRN12345"})
    first, second = _run(section, subject), _run(section, subject)
    assert first.meta.info == second.meta.info
    assert first.meta.info["weight"] != 70.5
    assert abs(first.meta.info["weight"] - 70.5) <= 5
    assert first.meta.info["mrn"] == KEYS.pseudonym("MRN12345")
