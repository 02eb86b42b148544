"""End-to-end exports on the local folder store: mirrored tree, report, idempotency, policies, modes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fw_gear_deid import STANDARD_EDITION, __version__
from fw_gear_deid.export import CSV_COLUMNS
from fw_gear_deid.keys import Keys
from tests.export.conftest import (
    ACTIONS_AVAILABLE,
    HAS_DICOM,
    SECRET,
    assert_no_phi,
    profile_text,
    tree_digest,
    visible_files,
)


def _states(result) -> dict[str, str]:
    return {f"{row.source_container}/{row.source_file}": row.state for row in result.rows}


def test_project_export_mirrors_the_tree_and_reports(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    before = tree_digest(source)
    result = export(source, dest, jobs=2)
    assert result.exit_code == 0, [(r.source_file, r.state, r.reason) for r in result.rows]
    expected = {
        "protocol.json",
        "sub-01/demographics.csv",
        "sub-01/ses-1/visit.json",
        "sub-01/ses-1/scores.tsv",
        "sub-01/ses-1/record.xml",
        "sub-01/ses-1/acq-1/bundle.zip",
        "sub-01/ses-1/acq-1/meta-0.json",
        "sub-01/ses-1/acq-1/photo.jpg",
        "sub-02/demographics.csv",
        "sub-02/ses-1/visit.json",
        "sub-02/ses-1/scores.tsv",
        "sub-02/ses-1/record.xml",
        "sub-02/ses-1/acq-1/bundle.zip",
        "sub-02/ses-1/acq-1/meta-0.json",
        "sub-02/ses-1/acq-1/photo.jpg",
    }
    files = set(visible_files(dest))
    assert expected <= files
    if HAS_DICOM:
        assert len(files) == len(expected) + 2
    else:
        assert files == expected
    assert json.loads((dest / "sub-01/ses-1/acq-1/meta-0.json").read_text()) == {"Value": 7}
    assert (dest / "sub-01/demographics.csv").read_text() == "id,score\n1,007\n"
    assert (dest / "sub-01/ses-1/scores.tsv").read_text() == "id\tscore\n1\t007\n"
    assert "<Value>7</Value>" in (dest / "sub-01/ses-1/record.xml").read_text()
    assert_no_phi(dest, result.report_csv, result.report_json)
    assert tree_digest(source) == before  # not one source byte or sidecar changed

    # every destination container and file records its keyed origin id
    subject_sidecar = json.loads((dest / "sub-01" / ".container.json").read_text())
    assert len(subject_sidecar["info"]["export"]["origin_id"]) == 32
    assert subject_sidecar["label"] == "sub-01"
    assert "firstname" not in subject_sidecar  # never copied without an explicit keep
    file_sidecar = json.loads((dest / "sub-01/ses-1/acq-1/.meta-0.json.meta.json").read_text())
    assert len(file_sidecar["info"]["export"]["origin_id"]) == 32

    summary = result.summary
    assert summary["by_state"]["exported"] == summary["files"] == len(files)
    assert summary["version"] == __version__
    assert summary["standard_edition"] == STANDARD_EDITION
    assert summary["keys_fingerprint"] == Keys(SECRET).fingerprint
    assert summary["profile"]["level"] == "explicit"
    assert len(summary["profile"]["sha256"]) == 64
    with open(result.report_csv, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == CSV_COLUMNS
    meta_row = next(
        r for r in rows if r["source_file"] == "meta-0.json" and "sub-01" in r["source_container"]
    )
    assert meta_row["state"] == "exported"
    assert meta_row["dest_container"] == "dest/sub-01/ses-1/acq-1"
    assert "PatientName: remove" in meta_row["actions"]
    document = json.loads(result.report_json.read_text())
    assert document["summary"]["exit_code"] == 0
    assert {"path": "PatientName", "action": "remove"} in next(
        f["actions"] for f in document["files"] if f["source_file"] == "meta-0.json"
    )


def test_second_run_changes_nothing(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    assert export(source, dest).exit_code == 0
    first = tree_digest(dest, skip_locks=True)
    again = export(source, dest, jobs=2)
    assert again.exit_code == 0
    assert tree_digest(dest, skip_locks=True) == first
    assert {row.write for row in again.rows} == {"unchanged"}
    assert {row.reason for row in again.rows} == {"already exported (same origin id)"}
    # replace re-processes but writes nothing when the bytes are identical
    third = export(source, dest, conflict="replace")
    assert third.exit_code == 0
    assert {row.write for row in third.rows} == {"unchanged"}
    assert tree_digest(dest, skip_locks=True) == first
    # the same with workers (they hash their outputs) and the renaming writer thread
    fourth = export(source, dest, conflict="replace", jobs=2)
    assert fourth.exit_code == 0
    assert {row.write for row in fourth.rows} == {"unchanged"}
    assert tree_digest(dest, skip_locks=True) == first


def test_unmatched_symlinked_and_hidden_files_are_reported_never_copied(source, tmp_path, export):
    acq = source / "sub-01" / "ses-1" / "acq-1"
    (acq / "notes.txt").write_text("Doe^John called")
    (acq / "link.json").symlink_to(tmp_path / "elsewhere.json")
    (acq / ".DS_Store").write_bytes(b"\0")
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest)
    assert result.exit_code == 1  # an in-scope file was not exported
    rows = {row.source_file: row for row in result.rows}
    assert (rows["notes.txt"].state, rows["notes.txt"].in_scope) == ("skipped", True)
    assert "no profile section matches" in rows["notes.txt"].reason
    assert (rows["link.json"].state, rows["link.json"].in_scope) == ("skipped", True)
    assert "symbolic link" in rows["link.json"].reason
    assert rows[".DS_Store"].in_scope is False
    assert not (dest / "sub-01/ses-1/acq-1/notes.txt").exists()
    assert not (dest / "sub-01/ses-1/acq-1/link.json").exists()
    assert result.summary["by_state"]["skipped"] == 2
    assert result.summary["not_in_scope"] == 1


def test_malformed_file_is_quarantined_and_others_go_on(source, tmp_path, export):
    (source / "sub-02" / "ses-1" / "broken.json").write_text('{"PatientName": "Doe^John", ')
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, jobs=2)
    assert result.exit_code == 1
    states = _states(result)
    assert states["src/sub-02/ses-1/broken.json"] == "quarantined"
    assert list(states.values()).count("exported") == len(states) - 1
    assert_no_phi(result.report_csv, result.report_json)


def test_conflict_policies(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    assert export(source, dest).exit_code == 0
    target = dest / "sub-01/ses-1/acq-1/meta-0.json"
    sidecar = target.with_name(".meta-0.json.meta.json")
    # another file under the same name (a different origin): skip leaves it and says so
    data = json.loads(sidecar.read_text())
    data["info"]["export"]["origin_id"] = "someone-else"
    sidecar.write_text(json.dumps(data))
    target.write_text("{}")
    skipped = export(source, dest)
    assert skipped.exit_code == 1
    row = next(
        r for r in skipped.rows if r.dest_file == "meta-0.json" and "sub-01" in r.source_container
    )
    assert (row.state, row.write) == ("skipped", "")
    assert "conflict policy skip" in row.reason
    assert target.read_text() == "{}"
    replaced = export(source, dest, conflict="replace")
    assert replaced.exit_code == 0
    assert json.loads(target.read_text()) == {"Value": 7}
    # new-version keeps the previous bytes
    target.write_text('{"stale": 1}')
    data = json.loads(sidecar.read_text())
    data["sha256"] = "0" * 64
    sidecar.write_text(json.dumps(data))
    versioned = export(source, dest, conflict="new-version")
    assert versioned.exit_code == 0
    assert json.loads(target.read_text()) == {"Value": 7}
    assert (dest / "sub-01/ses-1/acq-1/.versions/meta-0.json/v1").read_text() == '{"stale": 1}'
    assert json.loads(sidecar.read_text())["version"] == 2


def test_subject_session_and_file_modes_go_to_the_mirrored_place(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, subject="sub-02", session="ses-1")
    assert result.exit_code == 0
    assert result.summary["source_type"] == "session"
    assert "sub-02/ses-1/acq-1/bundle.zip" in visible_files(dest)
    assert all(path.startswith("sub-02/ses-1/") for path in visible_files(dest))
    single = export(source, dest, file="sub-01/ses-1/acq-1/meta-0.json")
    assert single.exit_code == 0
    assert [row.source_file for row in single.rows] == ["meta-0.json"]
    assert (dest / "sub-01/ses-1/acq-1/meta-0.json").is_file()
    assert not (dest / "sub-01/demographics.csv").exists()
    parent = json.loads((dest / "sub-01" / ".container.json").read_text())  # parents' metadata too
    assert (parent["label"], parent["container_type"]) == ("sub-01", "subject")
    assert parent["info"]["export"]["origin_id"]
    # a subject location given by its sidecar type
    sub = export(source / "sub-01", tmp_path / "out2" / "grp" / "dest")
    assert sub.exit_code == 0
    assert sub.summary["source_type"] == "subject"
    assert "sub-01/demographics.csv" in visible_files(tmp_path / "out2" / "grp" / "dest")


def test_flywheel_section_relabels_and_fixes_reference_defects(source, tmp_path, export):
    profile = tmp_path / "fw.yaml"
    profile.write_text(
        (tmp_path / "profile.yaml").read_text()
        + """\
flywheel:
  subject:
    all: true
    fields:
      - name: label
        remove: true
  session:
    fields:
      - name: label
        replace-with: visit
"""
    )
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, profile_path=profile)
    assert result.exit_code == 0, [(r.source_file, r.reason) for r in result.rows]
    subjects = sorted(p for p in dest.iterdir() if p.is_dir())
    labels = [json.loads((p / ".container.json").read_text())["label"] for p in subjects]
    assert len(labels) == 2
    assert not {"sub-01", "sub-02"} & set(labels)  # a removed label is a keyed pseudonym
    assert all(len(label) == 16 for label in labels)
    sidecar = json.loads((subjects[0] / ".container.json").read_text())
    assert sidecar["sex"] == "female"  # all: true copies the allowed fields...
    assert sidecar["info"]["site"] == "A"
    assert "firstname" not in sidecar  # ...but never names unless kept explicitly
    sessions = [
        json.loads((p / ".container.json").read_text())["label"]
        for p in subjects[0].iterdir()
        if p.is_dir() and not p.name.startswith(".")
    ]
    assert sessions == ["visit"]
    # same pseudonyms on a second run (keyed, not random)
    assert export(source, dest, profile_path=profile).exit_code == 0
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == [p.name for p in subjects]


def test_residual_gate_blocks_a_file_whose_container_label_carries_its_phi(
    source, tmp_path, export
):
    sidecar = source / "sub-01" / ".container.json"
    data = json.loads(sidecar.read_text())
    data["label"] = "MRN12345"
    sidecar.write_text(json.dumps(data))
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest)
    assert result.exit_code == 1
    blocked = [row for row in result.rows if row.state == "blocked"]
    assert blocked
    assert all("MRN12345" in row.source_container for row in blocked)
    assert all("residual PHI" in row.reason and "subject.label" in row.reason for row in blocked)
    assert not (dest / "MRN12345").exists()
    assert_no_phi(dest)
    assert result.summary["labels_copied_without_rule"] == 6  # 2 subjects, 2 sessions, 2 acqs
    unchecked = export(source, tmp_path / "out3" / "grp" / "dest", residual_check=False)
    assert unchecked.summary["residual_check"] is False
    assert unchecked.exit_code == 0


def test_mapping_csv_missing_subject_is_reported_never_silent(
    source, tmp_path, export, profile_file
):
    mapping = tmp_path / "map.csv"
    mapping.write_text("subject.label,CODE\nsub-01,0042\n")
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, mapping_csv=mapping)
    assert result.exit_code == 1
    sub02 = [row for row in result.rows if "sub-02" in row.source_container]
    assert sub02
    for row in sub02:
        assert row.state == "error"
        assert "no row for subject 'sub-02'" in row.reason
    assert not (dest / "sub-02").exists()
    assert (dest / "sub-01/ses-1/visit.json").is_file()
    assert (dest / "protocol.json").is_file()  # project files need no subject row


@pytest.mark.skipif(
    not ACTIONS_AVAILABLE, reason="replace-with needs fw_gear_deid.actions (not committed yet)"
)
def test_mapping_csv_renders_a_profile_per_subject(source, tmp_path, export):
    profile = tmp_path / "mapped.yaml"
    profile.write_text(
        'json:\n  fields:\n    - name: PatientName\n      replace-with: "{{ CODE }}"\n'
        "    - name: PatientID\n      remove: true\n    - name: BirthDate\n      remove: true\n"
        "csv:\n  fields:\n    - name: mrn\n      remove: true\n"
        "zip: {}\n"
        + (
            "dicom:\n  fields:\n    - name: PatientName\n      replace-with: X\n    - name: PatientID\n"
            "      remove: true\n    - name: PatientBirthDate\n      remove: true\n"
            if HAS_DICOM
            else ""
        )
    )
    mapping = tmp_path / "map.csv"
    mapping.write_text("subject.label,CODE\nsub-01,0042\nsub-02,0043\n")
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, profile_path=profile, mapping_csv=mapping)
    rows = {f"{r.source_container}/{r.source_file}": r for r in result.rows}
    # a template cannot be rendered for project files (no subject row): reported, not guessed
    assert rows["src/protocol.json"].state == "error"
    assert "no subject row" in rows["src/protocol.json"].reason
    assert json.loads((dest / "sub-01/ses-1/visit.json").read_text())["PatientName"] == "0042"
    assert json.loads((dest / "sub-02/ses-1/visit.json").read_text())["PatientName"] == "0043"


def test_cascade_opt_out_and_rejection(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    dest.mkdir(parents=True)
    (dest / "deid_profile.yaml").write_text("dicom: {fields: []}\n")
    opted = export(source, dest, profile_path=None)
    assert opted.summary["profile"]["opted_out"] is True
    assert opted.summary["profile"]["level"] == "project"
    assert opted.exit_code == 0
    assert (dest / "sub-01/ses-1/visit.json").read_bytes() == (
        source / "sub-01/ses-1/visit.json"
    ).read_bytes()

    other = tmp_path / "out2" / "grp" / "dest"
    other.mkdir(parents=True)
    (other / "deid_profile.yaml").write_text(
        "json:\n  fields:\n    - name: X\n      remove: false\n"
    )
    (other.parent / "deid_profile.yaml").write_text("jsn: {}\n")
    rejected = export(source, other, profile_path=None)
    assert rejected.exit_code == 1
    assert rejected.summary["profile"]["rejected"] is True
    assert set(rejected.summary["profile"]["issues_by_level"]) == {"project", "group"}
    assert visible_files(other) == ["deid_profile.yaml"]  # nothing written
    assert rejected.rows == []
    nowhere = tmp_path / "out3" / "grp" / "dest"
    nowhere.parent.mkdir(parents=True)
    (nowhere.parent / "deid_profile.yaml").write_text("jsn: {}\n")
    assert export(source, nowhere, profile_path=None).exit_code == 1
    assert not nowhere.exists()  # a rejected job creates nothing, not even the project folder

    fallback = tmp_path / "out4" / "grp" / "dest"
    fallback.parent.mkdir(parents=True)
    (fallback.parent / "deid_profile.yaml").write_text((tmp_path / "profile.yaml").read_text())
    group_level = export(source, fallback, profile_path=None)
    assert group_level.summary["profile"]["level"] == "group"
    assert group_level.exit_code == 0
    assert (fallback / "sub-01/ses-1/visit.json").is_file()  # the missing project folder is created


def test_dry_run_writes_nothing_and_no_secret_is_refused(source, tmp_path, export, monkeypatch):
    dest = tmp_path / "out" / "grp" / "dest"
    dry = export(source, dest, dry_run=True)
    assert dry.exit_code == 0
    assert not dest.exists()
    monkeypatch.delenv("DEID_SECRET", raising=False)
    refused = export(source, dest, keys=None)
    assert refused.exit_code == 2
    assert "no de-identification secret" in refused.summary["reason"]
    assert visible_files(dest) == []
    assert not dest.exists()
    salted = tmp_path / "salted.yaml"
    salted.write_text(profile_text().replace("json:\n", "json:\n  salt: pepper\n", 1))
    with_salt = export(source, dest, keys=None, profile_path=salted)
    assert with_salt.exit_code == 0
    assert with_salt.summary["keys_from"] == "profile salt"
    assert with_salt.summary["keys_fingerprint"] == Keys("pepper").fingerprint


def test_destination_inside_the_source_is_refused(source, export):
    before = tree_digest(source)
    result = export(source, source / "sub-01" / "inner")
    assert result.exit_code == 2
    assert "overlap" in result.summary["reason"]
    assert tree_digest(source) == before


@pytest.mark.parametrize("jobs", [1, 3])
def test_source_checksums_unchanged_with_workers(source, tmp_path, export, jobs):
    before = tree_digest(source)
    assert export(source, tmp_path / "out" / "grp" / "dest", jobs=jobs).exit_code == 0
    assert tree_digest(source) == before
    assert not list(Path(source).rglob(".deid.lock"))


def test_progress_bar_on_request_and_plain_lines_otherwise(
    source, tmp_path, profile_file, capsys, caplog
):
    from fw_gear_deid.export import ExportJob, run_export

    job = ExportJob(
        source=str(source),
        destination=str(tmp_path / "o" / "g" / "d"),
        report_dir=tmp_path / "r",
        profile_path=profile_file,
        keys=Keys(SECRET),
    )
    assert run_export(job, progress=True).exit_code == 0
    err = capsys.readouterr().err
    assert "100%" in err
    assert "file/s" in err or "s/file" in err
    with caplog.at_level("INFO", logger="fw_gear_deid.export"):
        assert run_export(job, progress=False).exit_code == 0
    assert "100%" not in capsys.readouterr().err
    assert any(record.getMessage().startswith("progress: ") for record in caplog.records)


def test_session_level_mapping_needs_a_row_per_session(source, tmp_path, export):
    mapping = tmp_path / "sessions.csv"
    mapping.write_text("subject.label,session.label,CODE\nsub-01,ses-1,A\n")
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest, mapping_csv=mapping, session_level=True)
    assert result.exit_code == 1
    by_place = {(r.source_container, r.source_file): r for r in result.rows}
    assert by_place[("src/sub-01/ses-1", "visit.json")].state == "exported"
    assert by_place[("src/sub-02/ses-1", "visit.json")].state == "error"
    assert "session 'ses-1'" in by_place[("src/sub-02/ses-1", "visit.json")].reason
    # subject files have no session: a session-level mapping cannot place them, and says so
    assert by_place[("src/sub-01", "demographics.csv")].state == "error"
    assert "session" in by_place[("src/sub-01", "demographics.csv")].reason


def test_a_broken_source_sidecar_stops_only_its_own_subtree(source, tmp_path, export):
    (source / "sub-01" / ".container.json").write_text("{broken")
    dest = tmp_path / "out" / "grp" / "dest"
    result = export(source, dest)
    assert result.exit_code == 1
    (row,) = [r for r in result.rows if r.source_file == "sub-01/"]
    assert (row.state, row.in_scope) == ("skipped", True)
    assert "not valid JSON" in row.reason
    assert (dest / "sub-02" / "ses-1" / "visit.json").is_file()
    assert not (dest / "sub-01").exists()


def test_an_unreadable_destination_sidecar_fails_its_files_not_the_job(source, tmp_path, export):
    dest = tmp_path / "out" / "grp" / "dest"
    assert export(source, dest).exit_code == 0
    (dest / "sub-01" / ".container.json").write_text("{broken")
    again = export(source, dest)
    assert again.exit_code == 1
    for row in again.rows:
        if row.source_container == "src":  # project files need no subject lookup
            assert row.state == "exported"
        else:  # which subject holds which origin cannot be told: no subject is written to
            assert row.state == "error"
            assert "not valid JSON" in row.reason
    assert not [p for p in dest.iterdir() if p.name.startswith("sub-01~")]  # never duplicated
