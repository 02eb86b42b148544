"""A batch with broken and hostile files: each is quarantined with a reason, the rest is exported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from fw_gear_deid.keys import Keys

from .corpus import CASES
from .handlers import PROFILE_TEXT, available_handlers

GOOD_CSV = b"name,id\nDOE^JOHN,1\n"
GOOD_JSON = b'{"name": "DOE", "study": "x"}\n'
# small, fast cases: a broken file of every format whose handler is committed (no bombs here:
# their handler-level tests cover them; here we check the batch goes on)
BATCH_CASE_IDS = {
    "dicom-empty",
    "dicom-not-dicom",
    "dicom-truncated-header",
    "dicom-deep-sequences",
    "jpg-not-jpeg",
    "png-truncated",
    "tiff-ifd-loop",
    "xml-billion-laughs",
    "json-deep-nesting",
    "json-truncated",
    "zip-slip",
    "zip-corrupt",
}


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str]]:
    """A source project with good files, broken ones and symbolic links; returns the broken names."""
    _, missing = available_handlers()
    project = tmp_path / "site" / "group" / "project"
    acq = project / "subject-1" / "session-1" / "acq-1"
    acq.mkdir(parents=True)
    (acq / "good.csv").write_bytes(GOOD_CSV)
    (acq / "good.json").write_bytes(GOOD_JSON)
    broken = []
    for case in CASES:
        if case.id in BATCH_CASE_IDS and case.section not in missing:
            path = case.write(acq)
            broken.append(path.name)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"name\nSECRET^OUTSIDE\n")
    os.symlink(outside, acq / "link.csv")
    os.symlink(tmp_path, acq / "loop")
    # only the sections whose handler is committed (the pipeline refuses a profile it cannot apply)
    data = {k: v for k, v in yaml.safe_load(PROFILE_TEXT).items() if k not in missing}
    (project / "deid_profile.yaml").write_text(yaml.safe_dump(data))
    return project, broken


def test_broken_files_are_quarantined_and_the_batch_completes(
    source: tuple[Path, list[str]], tmp_path: Path
) -> None:
    from fw_gear_deid.export import ExportJob, run_export

    project, broken = source
    dest = tmp_path / "dest" / "group" / "deid-project"
    report_dir = tmp_path / "report"
    result = run_export(
        ExportJob(
            source=str(project),
            destination=str(dest),
            report_dir=report_dir,
            profile_path=project / "deid_profile.yaml",
            keys=Keys("batch-secret"),
        ),
        progress=False,
    )
    rows = {row.source_file: row for row in result.rows}
    assert rows["good.csv"].state == "exported"
    assert rows["good.json"].state == "exported"
    for name in broken:
        row = rows[name]
        assert row.state == "quarantined", f"{name}: {row.state} ({row.reason})"
        assert row.reason
        assert "Traceback" not in row.reason
        assert "\n" not in row.reason
    # symbolic links are reported, never followed or copied
    for name in ("link.csv", "loop"):
        row = next(r for key, r in rows.items() if key.rstrip("/") == name)
        assert not row.in_scope or row.state == "skipped"
    assert result.exit_code != 0  # not everything was exported
    # nothing half-written, no broken file and no link target in the destination
    written = [p for p in dest.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert not any(p.name.startswith(".tmp-") for p in written)
    assert not names & set(broken)
    assert all(b"SECRET^OUTSIDE" not in p.read_bytes() for p in written)
    report = json.loads(result.report_json.read_text())
    assert "Traceback" not in json.dumps(report)
