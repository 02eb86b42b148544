"""Planted PHI that a deliberately incomplete profile misses is blocked by the gate in a real export.

The profile removes or replaces some values; the same values are planted where the profile does not
look (a private tag, a free-text comment, the subject label). Each such file must be ``blocked``: not
written, reported with the element path and kind, never the value; the clean files of the batch go on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fw_gear_deid.keys import Keys

from .builders import dataset, write
from .handlers import available_handlers

NAME, PID, DATE = "SIMPSON^HOMER", "PID-887766", "20200102"


def _need(*sections: str) -> None:
    _, missing = available_handlers()
    for section in sections:
        if section in missing:
            pytest.skip(f"handler for '{section}' not available yet ({missing[section]})")


def _export(tmp_path: Path, source: Path, profile: dict):
    from fw_gear_deid.export import ExportJob, run_export

    (source / "deid_profile.yaml").write_text(yaml.safe_dump(profile))
    dest = tmp_path / "dest" / "group" / "deid"
    result = run_export(
        ExportJob(
            source=str(source),
            destination=str(dest),
            report_dir=tmp_path / "report",
            profile_path=source / "deid_profile.yaml",
            keys=Keys("planted-secret"),
        ),
        progress=False,
    )
    rows = {row.source_file: row for row in result.rows}
    return result, rows, dest


def _assert_blocked(row, dest: Path, *where: str) -> None:
    assert row.state == "blocked", f"{row.source_file}: {row.state} ({row.reason})"
    for fragment in where:
        assert fragment in row.reason, row.reason
    for value in ("SIMPSON", "HOMER", "887766", "2020", "01/02"):
        assert value not in row.reason.upper()
    assert not any(p.name == row.source_file for p in dest.rglob("*"))


def _source(tmp_path: Path, subject: str = "subject-1") -> tuple[Path, Path]:
    project = tmp_path / "site" / "group" / "study"
    acq = project / subject / "session-1" / "acq-1"
    acq.mkdir(parents=True)
    return project, acq


# -- formats that run everywhere -------------------------------------------------------------------
def test_json_name_left_in_a_free_text_field_is_blocked(tmp_path: Path) -> None:
    _need("json", "csv")
    project, acq = _source(tmp_path)
    (acq / "leaky.json").write_text(json.dumps({"name": NAME, "notes": "called Homer back"}))
    (acq / "clean.json").write_text(json.dumps({"name": NAME, "notes": "routine"}))
    (acq / "table.csv").write_text("name,score\nSIMPSON^HOMER,3\n")
    profile = {
        "name": "incomplete",
        "json": {"fields": [{"name": "name", "remove": True}]},
        "csv": {"fields": [{"name": "name", "replace-with": "X"}]},
    }
    result, rows, dest = _export(tmp_path, project, profile)
    _assert_blocked(rows["leaky.json"], dest, "notes", "(name)")
    assert rows["clean.json"].state == "exported"
    assert rows["table.csv"].state == "exported"
    assert result.exit_code == 1


def test_subject_label_equal_to_a_removed_id_is_blocked(tmp_path: Path) -> None:
    _need("csv")
    project, acq = _source(tmp_path, subject=PID)
    (acq / "scores.csv").write_text(f"id,score\n{PID},3\n")
    profile = {"name": "incomplete", "csv": {"fields": [{"name": "id", "remove": True}]}}
    _, rows, dest = _export(tmp_path, project, profile)
    # the kind is what the CSV handler reports for a removed cell; the place is what matters here
    _assert_blocked(rows["scores.csv"], dest, "subject.label")


# -- DICOM ---------------------------------------------------------------------------------------
DICOM_PROFILE = {
    "name": "incomplete",
    "dicom": {
        "fields": [
            {"name": "PatientName", "replace-with": "ANON"},
            {"name": "PatientID", "hash": True},
            {"name": "StudyDate", "increment-date": True},
        ]
    },
}


def _planted_dicom(acq: Path) -> None:
    clean = dataset(PatientName=NAME, PatientID=PID, StudyDate=DATE)
    write(clean, acq / "clean.dcm")
    private = dataset(PatientName=NAME, PatientID=PID, StudyDate=DATE)
    private.private_block(0x0033, "MITRA LINKED ATTRIBUTES 1.0", create=True).add_new(
        0x13, "LO", NAME
    )
    write(private, acq / "private.dcm")
    comment = dataset(PatientName=NAME, PatientID=PID, StudyDate=DATE)
    comment.ImageComments = "follow-up of the 01/02/2020 scan"
    write(comment, acq / "comment.dcm")


def test_dicom_name_in_a_private_tag_and_date_in_a_comment_are_blocked(tmp_path: Path) -> None:
    _need("dicom")
    project, acq = _source(tmp_path)
    _planted_dicom(acq)
    profile = {**DICOM_PROFILE}
    profile["dicom"] = {**DICOM_PROFILE["dicom"], "remove-private-tags": False}
    result, rows, dest = _export(tmp_path, project, profile)
    _assert_blocked(rows["private.dcm"], dest, "(0033,1013)", "(name)")
    _assert_blocked(rows["comment.dcm"], dest, "(date)")
    assert rows["clean.dcm"].state == "exported", rows["clean.dcm"].reason
    assert result.exit_code == 1


def test_dicom_subject_label_equal_to_the_patient_id_is_blocked(tmp_path: Path) -> None:
    _need("dicom")
    project, acq = _source(tmp_path, subject=PID)
    write(dataset(PatientName=NAME, PatientID=PID, StudyDate=DATE), acq / "image.dcm")
    _, rows, dest = _export(tmp_path, project, DICOM_PROFILE)
    _assert_blocked(rows["image.dcm"], dest, "subject.label", "(id)")


def test_turning_the_gate_off_is_explicit_logged_and_lets_the_leak_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same incomplete profile with the check off: the leak is exported, and the log says so."""
    import logging

    from fw_gear_deid.export import ExportJob, run_export

    _need("json")
    project, acq = _source(tmp_path)
    (acq / "leaky.json").write_text(json.dumps({"name": NAME, "notes": "called Homer back"}))
    profile = {"name": "incomplete", "json": {"fields": [{"name": "name", "remove": True}]}}
    (project / "deid_profile.yaml").write_text(yaml.safe_dump(profile))
    with caplog.at_level(logging.WARNING):
        result = run_export(
            ExportJob(
                source=str(project),
                destination=str(tmp_path / "dest" / "group" / "deid"),
                report_dir=tmp_path / "report",
                profile_path=project / "deid_profile.yaml",
                keys=Keys("planted-secret"),
                residual_check=False,
            ),
            progress=False,
        )
    assert [row.state for row in result.rows] == ["exported"]
    assert result.summary["residual_check"] is False
    assert any(
        "residual" in r.getMessage().lower() and r.levelno >= logging.WARNING
        for r in caplog.records
    )
