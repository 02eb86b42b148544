"""``deid preview``: before/after table per file, nothing written, clear exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fw_gear_deid.cli import main

PROFILE = """\
name: preview test
dicom:
  preset: ps3.15-basic
  fields:
    - name: PatientID
      replace-with: SUBJ-01
"""


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE)
    return path


def test_preview_prints_before_and_after_and_writes_nothing(
    profile, ct_small, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("DEID_SECRET", "preview-secret")
    before = sorted(tmp_path.iterdir())
    assert main(["preview", "--profile", str(profile), str(ct_small)]) == 0
    text = capsys.readouterr().out
    assert "PatientID" in text
    assert "1CT1" in text
    assert "SUBJ-01" in text
    assert "CompressedSamples^CT1" in text
    assert ".CT.dcm [dicom]" in text
    assert sorted(tmp_path.iterdir()) == before


def test_preview_of_a_file_no_section_takes_exits_1(profile, tmp_path, capsys):
    stray = tmp_path / "notes.txt"
    stray.write_text("hello")
    assert main(["preview", "--profile", str(profile), str(stray)]) == 1
    assert "no profile section matches" in capsys.readouterr().out


def test_preview_of_a_truncated_dicom_reports_the_reason(profile, ct_small, tmp_path, capsys):
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(ct_small.read_bytes()[:20000])
    assert main(["preview", "--profile", str(profile), str(cut)]) == 1
    assert "truncated" in capsys.readouterr().out


def test_preview_with_invalid_profile_exits_2(tmp_path, ct_small, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dicom:\n  fields:\n    - name: PateintName\n      remove: true\n")
    assert main(["preview", "--profile", str(bad), str(ct_small)]) == 2
    assert "PatientName" in capsys.readouterr().err
