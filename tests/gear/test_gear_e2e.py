"""The gear's run path with the real export, in-process (no Docker): a GearToolkitContext on a gear
folder (as run.py opens it) over a local store: a subject-level run with a mapping CSV, file mode, then
export mode (no duplicate), then ``conflict: replace``."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread

from fw_gear_deid import gear
from fw_gear_deid.demo import DEMO_PROFILE, FAKE_PATIENTS, build_source, find_identifiers
from fw_gear_deid.gear import local_config_json

ROOT = Path(__file__).resolve().parents[2]
SECRET = "gear-e2e-secret-7f3a"
MAPPED_PROFILE = DEMO_PROFILE.replace(
    "    - name: PatientID\n      hash: true",
    "    - name: PatientID\n      replace-with: '{{ NEW_ID }}'",
)


def run_job(
    tmp_path: Path, name: str, config: dict, inputs: dict[str, Path], input_file: Path | None = None
) -> tuple[int, dict]:
    """Lay out a gear folder like the engine (inputs copied under input/), run it, return
    ``(exit code, report)``. ``input_file`` is a file of the local source store (file mode)."""
    gear_dir = tmp_path / name
    (gear_dir / "output").mkdir(parents=True)
    shutil.copy(ROOT / "manifest.json", gear_dir / "manifest.json")
    for input_name, path in inputs.items():
        target = gear_dir / "input" / input_name / path.name
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
    document = local_config_json(config, inputs, gear_root=gear_dir)
    if input_file is not None:
        document["inputs"]["input_file"] = {
            "base": "file",
            "location": {"path": str(input_file), "name": input_file.name},
            "object": {},
        }
    (gear_dir / "config.json").write_text(json.dumps(document), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from flywheel_gear_toolkit import GearToolkitContext

        with GearToolkitContext(gear_path=gear_dir, log_metadata=False) as context:
            code = gear.run(context, {"DEID_SECRET": SECRET})
    report = next((gear_dir / "output").glob("deid-report-*.json"))
    return code, json.loads(report.read_text(encoding="utf-8"))


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


@pytest.fixture
def sample(tmp_path):
    source = build_source(tmp_path / "store")
    destination = tmp_path / "store" / "destination-site" / "shared" / "study-a-deid"
    profile = tmp_path / "demo_profile.yaml"
    profile.write_text(DEMO_PROFILE, encoding="utf-8")
    return source, destination, profile


def test_subject_runs_with_a_mapping_csv(tmp_path, sample):
    source, destination, _ = sample
    profile = tmp_path / "mapped.yaml"
    profile.write_text(MAPPED_PROFILE, encoding="utf-8")
    mapping = tmp_path / "mapping.csv"
    with open(mapping, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject.label", "NEW_ID"])
        for number, patient in enumerate(FAKE_PATIENTS, start=1):
            writer.writerow([patient.label, f"SUBJ-{number:03d}"])
    inputs = {"deid_profile": profile, "mapping_csv": mapping}
    for number, patient in enumerate(FAKE_PATIENTS, start=1):
        config = {
            "source_path": str(source.project / patient.label),
            "destination_project": str(destination),
            "workers": 1,
        }
        code, report = run_job(tmp_path, f"subject{number}", config, inputs)
        assert code == 0, report["files"]
        assert report["summary"]["source_type"] == "subject"
        assert report["summary"]["mapping_csv"] == "mapping.csv"
    ids = {str(dcmread(p, stop_before_pixels=True).PatientID) for p in destination.rglob("*.dcm")}
    assert ids == {"SUBJ-001", "SUBJ-002"}
    assert find_identifiers(destination, source.identifiers()) == []


def test_file_mode_then_export_mode_then_replace(tmp_path, sample):
    source, destination, profile = sample
    mr = next(p for p in source.files if p.name == "MR_small.dcm")
    config = {"source_path": str(source.project), "destination_project": str(destination)}

    # A gear rule's job: only the input file, at its mirrored place.
    code, report = run_job(tmp_path, "file", config, {"deid_profile": profile}, input_file=mr)
    assert code == 0, report["files"]
    assert report["summary"]["mode"] == "file"
    assert [p.suffix for p in data_files(destination)] == [".dcm"]

    # Export mode afterwards fills in the rest; the file exported in file mode is not duplicated.
    code, report = run_job(tmp_path, "export", config, {"deid_profile": profile})
    assert code == 0, report["files"]
    rows = [row for row in report["files"] if row["in_scope"]]
    assert len(rows) == len(source.files)
    assert sum(row["write"] == "unchanged" for row in rows) == 1
    assert len(data_files(destination)) == len(source.files)

    # conflict: replace writes again; still exactly one destination file per source file.
    replace = {**config, "conflict": "replace"}
    code, report = run_job(tmp_path, "replace", replace, {"deid_profile": profile})
    assert code == 0, report["files"]
    assert len(data_files(destination)) == len(source.files)
