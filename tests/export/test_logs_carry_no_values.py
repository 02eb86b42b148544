"""Job logs carry no source values: pydicom's validation warnings quote the offending value."""

from __future__ import annotations

import os
import subprocess
import sys

import pydicom

PLANTED_UID = "1.2.3.4.QUIXOTE123"
PLANTED_DA = "ZEBULON1"


def test_invalid_source_values_never_reach_stdout_or_stderr(ct_small, tmp_path):
    source = tmp_path / "site" / "grp" / "proj"
    (source / "sub1" / "ses1" / "acq1").mkdir(parents=True)
    dataset = pydicom.dcmread(ct_small)
    dataset.StudyInstanceUID = PLANTED_UID  # not a valid UID: pydicom warns, quoting it
    dataset.StudyDate = PLANTED_DA  # not a valid DA
    dataset.save_as(source / "sub1" / "ses1" / "acq1" / "ct.dcm")
    profile = tmp_path / "profile.yaml"
    profile.write_text("dicom:\n  preset: ps3.15-basic\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "fw_gear_deid.cli",
            "run",
            "--profile",
            str(profile),
            "--jobs",
            "2",
            "--report-dir",
            str(tmp_path / "reports"),
            str(source),
            str(tmp_path / "out" / "grp" / "dest"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DEID_SECRET": "logs-test", "PYTHONWARNINGS": "default"},
        timeout=300,
    )
    logs = completed.stdout + completed.stderr
    assert "QUIXOTE" not in logs
    assert PLANTED_DA not in logs
    preview = subprocess.run(
        [
            sys.executable,
            "-m",
            "fw_gear_deid.cli",
            "preview",
            "--profile",
            str(profile),
            str(source / "sub1" / "ses1" / "acq1" / "ct.dcm"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DEID_SECRET": "logs-test", "PYTHONWARNINGS": "default"},
        timeout=300,
    )
    # The preview shows before/after values on purpose (stdout), but no warning echoes them.
    assert "QUIXOTE" not in preview.stderr
