"""`deid validate`: exit 0 all valid, 1 any invalid, 2 a file cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fw_gear_deid.cli import main

VALID = "dicom:\n  fields:\n    - name: PatientName\n      remove: true\n"
INVALID = "dicom:\n  hash-salt: x\n  fields:\n    - name: PateintName\n      remove: true\n"


@pytest.fixture
def profiles(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in (("valid.yaml", VALID), ("invalid.yaml", INVALID)):
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    paths["missing.yaml"] = tmp_path / "missing.yaml"
    return paths


def test_valid_profile_exits_0_and_says_valid(profiles, capsys):
    assert main(["validate", str(profiles["valid.yaml"])]) == 0
    assert capsys.readouterr().out == f"{profiles['valid.yaml']}: valid\n"


def test_invalid_profile_exits_1_with_one_line_per_error(profiles, capsys):
    path = profiles["invalid.yaml"]
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:2: dicom.hash-salt: unknown key 'hash-salt' (did you mean 'salt'?)",
        f"{path}:4: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
        "(did you mean 'PatientName'?)",
    ]


def test_one_invalid_among_several_exits_1(profiles):
    assert main(["validate", str(profiles["valid.yaml"]), str(profiles["invalid.yaml"])]) == 1


def test_unreadable_file_exits_2_even_with_invalid_ones(profiles, capsys):
    code = main(["validate", str(profiles["invalid.yaml"]), str(profiles["missing.yaml"])])
    assert code == 2
    assert "cannot read the profile" in capsys.readouterr().err


def test_template_profile_is_valid_and_its_variables_are_named(tmp_path, capsys):
    path = tmp_path / "template.yaml"
    path.write_text("dicom:\n  date-increment: '{{ OFFSET }}'\n")
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid (uses variables OFFSET)\n"


def test_mapping_csv_rows_are_rendered_and_checked(tmp_path, capsys):
    path = tmp_path / "template.yaml"
    path.write_text("dicom:\n  date-increment: '{{ OFFSET }}'\n")
    good = tmp_path / "good.csv"
    good.write_text("subject.label,OFFSET\ns1,-7\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("subject.label,OFFSET\ns1,-7\ns2,soon\n")
    missing = tmp_path / "missing.csv"
    missing.write_text("subject.label,OTHER\ns1,x\n")
    assert main(["validate", str(path), "--mapping-csv", str(good)]) == 0
    assert main(["validate", str(path), "--mapping-csv", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{path}:2: dicom.date-increment: the value of variable 'OFFSET' is not a number, "
        "as needed here [mapping row s2]"
    )
    assert main(["validate", str(path), "--mapping-csv", str(missing)]) == 1
    assert capsys.readouterr().out == (f"{path}: variable 'OFFSET' is not a column of {missing}\n")
    assert main(["validate", str(path), "--mapping-csv", str(tmp_path / "none.csv")]) == 2


def test_deid_validate_runs_as_a_command(profiles):
    completed = subprocess.run(
        [sys.executable, "-m", "fw_gear_deid.cli", "validate", str(profiles["invalid.yaml"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "did you mean 'PatientName'?" in completed.stdout
