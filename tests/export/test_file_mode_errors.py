"""File mode with a file that does not exist: a clear error and no destination left behind."""

from __future__ import annotations

from fw_gear_deid.errors import DeidError
from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.keys import Keys


def test_missing_file_says_so_and_creates_no_destination(tmp_path, monkeypatch):
    source = tmp_path / "site" / "grp" / "proj"
    (source / "sub1").mkdir(parents=True)
    (source / "sub1" / "a.json").write_text("{}")
    profile = tmp_path / "profile.yaml"
    profile.write_text("json:\n  fields:\n    - name: a\n      remove: true\n")
    dest = tmp_path / "out" / "grp" / "dest"
    monkeypatch.chdir(tmp_path)
    job = ExportJob(
        source=str(source),
        destination=str(dest),
        profile_path=profile,
        keys=Keys("k"),
        report_dir=tmp_path / "reports",
        file="nonexistent.dcm",
    )
    try:
        result = run_export(job, progress=False)
    except DeidError as error:
        message = str(error)
    else:
        assert result.exit_code != 0
        message = result.summary.get("reason", "")
    assert "no such file" in message
    assert not dest.exists()
