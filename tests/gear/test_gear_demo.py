"""The demo's sample data and profile (the full demo run is in test_gear_demo_run)."""

from __future__ import annotations

import json
import zipfile

from pydicom import dcmread

from fw_gear_deid.demo import DEMO_PROFILE, FAKE_PATIENTS, build_source, find_identifiers
from fw_gear_deid.profile import validate_profile_text


def test_the_demo_profile_is_valid_and_uses_the_ps315_preset():
    assert validate_profile_text(DEMO_PROFILE, source="demo_profile.yaml") == []
    assert "preset: ps3.15-basic" in DEMO_PROFILE


def test_the_sample_source_plants_fake_phi_everywhere(tmp_path):
    source = build_source(tmp_path)
    kinds = {path.suffix for path in source.files}
    assert kinds == {
        ".dcm",
        ".zip",
        ".jpg",
        ".png",
        ".tiff",
        ".json",
        ".xml",
        ".txt",
        ".csv",
        ".tsv",
    }
    assert len(source.files) == 20
    patient = FAKE_PATIENTS[0]
    ct = next(p for p in source.files if p.name == "CT_small.dcm" and patient.label in str(p))
    ds = dcmread(ct)
    assert str(ds.PatientName) == patient.dicom_name
    assert ds.PatientID == patient.label
    assert ds.private_block(0x0033, "FAKE SCANNER NOTES")[0x10].value == patient.dicom_name
    archive = next(p for p in source.files if p.suffix == ".zip")
    with zipfile.ZipFile(archive) as members:
        assert len(members.namelist()) == 2
    subject = json.loads((source.project / patient.label / ".container.json").read_text())
    assert subject["lastname"] == patient.last
    # Every planted identifier is findable in the source: the destination check is meaningful.
    found = {value for _, value in find_identifiers(source.project, source.identifiers())}
    assert found == set(source.identifiers())


def test_building_again_starts_over(tmp_path):
    build_source(tmp_path)
    stray = tmp_path / "source-site" / "radiology" / "study-a" / "stray.txt"
    stray.write_text("x")
    build_source(tmp_path)
    assert not stray.exists()


def test_the_demo_exports_everything_with_no_planted_identifier_left(tmp_path, capsys, monkeypatch):
    from fw_gear_deid.demo import main

    monkeypatch.delenv("DEID_SECRET", raising=False)
    assert main([str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Gear exit code: 0" in printed
    assert "Planted identifiers found in the destination: 0" in printed
    assert "One CT file, before -> after" in printed
    assert "PatientIdentityRemoved" in printed
    report = next((tmp_path / "out" / "gear" / "output").glob("deid-report-*.json"))
    summary = json.loads(report.read_text())["summary"]
    assert summary["by_state"]["exported"] == summary["files"] == 20
    destination = tmp_path / "out" / "destination-site" / "shared" / "study-a-deid"
    dicoms = sorted(destination.rglob("*.dcm"))
    assert len(dicoms) == 4
    ds = dcmread(dicoms[0])
    assert ds.PatientIdentityRemoved == "YES"
    assert str(ds.PatientName) not in {p.dicom_name for p in FAKE_PATIENTS}
