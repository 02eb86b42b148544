"""fw_gear_deid.gear.run with a real GearToolkitContext on a gear folder, export stubbed out.

These check what the gear does around the export: config errors exit 2 before anything runs, the exit
code is the export's, the summary goes into output/.metadata.json for the analysis, and neither the
secret nor the API key reaches the log or the outputs. tests/gear/test_gear_e2e.py runs the real export.
"""

from __future__ import annotations

import json
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fw_gear_deid import gear

ROOT = Path(__file__).resolve().parents[2]
SECRET = "run-test-secret-abcdef"
API_KEY = "127.0.0.1:9:__force_insecure:api-key-value-xyz"


@dataclass
class FakeResult:
    exit_code: int
    summary: dict
    report_csv: Path
    report_json: Path
    rows: list = field(default_factory=list)


@pytest.fixture
def fake_export(monkeypatch):
    """Replace fw_gear_deid.export with a recorder returning ``state['exit_code']``."""
    state = {"jobs": [], "exit_code": 0}
    module = types.ModuleType("fw_gear_deid.export")

    class ExportJob:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    def run_export(job):
        state["jobs"].append(job)
        report_dir = Path(job.report_dir)
        csv_path = report_dir / "deid-report-x.csv"
        json_path = report_dir / "deid-report-x.json"
        csv_path.write_text("source_file,state\n", encoding="utf-8")
        summary = {"files": 1, "by_state": {"exported": 1 - state["exit_code"]}}
        json_path.write_text(json.dumps({"summary": summary, "files": []}), encoding="utf-8")
        return FakeResult(state["exit_code"], summary, csv_path, json_path)

    module.ExportJob = ExportJob
    module.run_export = run_export
    monkeypatch.setitem(sys.modules, "fw_gear_deid.export", module)
    return state


def make_gear_dir(tmp_path: Path, config: dict, inputs: dict | None = None, **extra) -> Path:
    gear_dir = tmp_path / "gear"
    gear_dir.mkdir()
    (gear_dir / "manifest.json").write_text((ROOT / "manifest.json").read_text(), encoding="utf-8")
    document = {
        "config": config,
        "inputs": inputs or {},
        "destination": {"type": "analysis", "id": "analysis01"},
        **extra,
    }
    (gear_dir / "config.json").write_text(json.dumps(document), encoding="utf-8")
    return gear_dir


def run_in(gear_dir: Path, environ: dict | None = None) -> tuple[int, dict | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from flywheel_gear_toolkit import GearToolkitContext

        with GearToolkitContext(gear_path=gear_dir) as context:
            code = gear.run(context, environ or {})
    metadata_path = gear_dir / "output" / ".metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else None
    return code, metadata


def local_config(tmp_path: Path, **extra) -> dict:
    return {
        "source_path": str(tmp_path / "src"),
        "destination_project": str(tmp_path / "dst"),
        **extra,
    }


def test_success_records_the_summary_on_the_analysis(tmp_path, fake_export):
    code, metadata = run_in(
        make_gear_dir(tmp_path, local_config(tmp_path)), {"DEID_SECRET": SECRET}
    )
    assert code == 0
    job = fake_export["jobs"][0]
    assert job.source == str(tmp_path / "src")
    assert job.report_dir == tmp_path / "gear" / "output"
    deid_info = metadata["analysis"]["info"]["deid"]
    assert deid_info["exit_code"] == 0
    assert deid_info["summary"]["files"] == 1
    assert deid_info["mode"] == "export"
    names = {entry["name"]: entry for entry in metadata["analysis"]["files"]}
    assert names["deid-report-x.csv"]["type"] == "tabular data"


def test_the_exit_code_is_the_exports(tmp_path, fake_export):
    fake_export["exit_code"] = 1
    code, metadata = run_in(make_gear_dir(tmp_path, local_config(tmp_path)))
    assert code == 1
    assert metadata["analysis"]["info"]["deid"]["exit_code"] == 1


def test_a_config_error_exits_2_before_the_export(tmp_path, fake_export, capfd):
    gear_dir = make_gear_dir(tmp_path, local_config(tmp_path, conflict="overwrite"))
    code, metadata = run_in(gear_dir)
    assert code == gear.EXIT_CONFIG_ERROR
    assert fake_export["jobs"] == []
    assert "config conflict" in capfd.readouterr().err
    assert metadata is None


def test_an_unexpected_export_failure_exits_1_without_its_message(tmp_path, monkeypatch, capfd):
    module = types.ModuleType("fw_gear_deid.export")
    module.ExportJob = lambda **kwargs: kwargs

    def explode(job):
        raise RuntimeError("value QUILLFEATHER^ROSALIND in the message")

    module.run_export = explode
    monkeypatch.setitem(sys.modules, "fw_gear_deid.export", module)
    code, _ = run_in(make_gear_dir(tmp_path, local_config(tmp_path)))
    assert code == 1
    captured = capfd.readouterr()
    assert "RuntimeError" in captured.err
    assert "QUILLFEATHER" not in captured.out + captured.err


def test_secret_and_api_key_never_reach_log_or_outputs(tmp_path, fake_export, capfd):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET, encoding="utf-8")
    inputs = {
        "api-key": {"base": "api-key", "key": API_KEY},
        "secret_file": {
            "base": "file",
            "location": {"path": str(secret_file), "name": "secret.txt"},
            "object": {"file_id": "f1"},
        },
        "input_file": {
            "base": "file",
            "hierarchy": {"type": "subject", "id": "sub01"},
            "location": {"path": str(secret_file), "name": "secret.txt"},
            "object": {"file_id": "file42"},
        },
    }
    config = {"destination_project": "grp/dest", "debug": True}
    gear_dir = make_gear_dir(tmp_path, config, inputs)
    code, metadata = run_in(gear_dir)
    assert code == 0
    captured = capfd.readouterr()
    assert "Secret from the secret_file input, fingerprint" in captured.out + captured.err
    job = fake_export["jobs"][0]
    assert (job.source, job.file, job.api_key) == ("fw://_id/subject/sub01", "file42", API_KEY)
    assert metadata["analysis"]["info"]["deid"]["mode"] == "file"
    for text in [
        captured.out,
        captured.err,
        *(p.read_text() for p in (gear_dir / "output").rglob("*") if p.is_file()),
    ]:
        assert SECRET not in text
        assert "api-key-value-xyz" not in text


def test_a_failure_to_record_metadata_is_not_a_success(tmp_path, fake_export, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("metadata")

    monkeypatch.setattr(gear, "record_metadata", broken)
    code, _ = run_in(make_gear_dir(tmp_path, local_config(tmp_path)))
    assert code == 1
