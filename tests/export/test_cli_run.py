"""`deid run`: options, exit codes, messages (secret and API key never printed)."""

from __future__ import annotations

import pytest

from fw_gear_deid.cli import main
from tests.export.conftest import SECRET, visible_files


def test_run_exports_and_prints_a_summary(source, tmp_path, profile_file, capsys, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    monkeypatch.delenv("DEID_SECRET", raising=False)
    dest = tmp_path / "out" / "grp" / "dest"
    code = main(
        [
            "run",
            "--profile",
            str(profile_file),
            "--secret-file",
            str(secret),
            "--jobs",
            "2",
            "--report-dir",
            str(tmp_path / "rep"),
            "--no-progress",
            "--date-shift-range=-30:-1",
            str(source),
            str(dest),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "progress:" in err
    assert "deid run: exported" in err
    assert SECRET not in err
    assert visible_files(dest)
    assert len(list((tmp_path / "rep").glob("deid-report-*.csv"))) == 1


def test_exit_codes_for_missing_secret_bad_options_and_unmatched_files(
    source, tmp_path, profile_file, capsys, monkeypatch
):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    dest = tmp_path / "out" / "grp" / "dest"
    assert (
        main(
            [
                "run",
                "--profile",
                str(profile_file),
                "--report-dir",
                str(tmp_path / "r"),
                str(source),
                str(dest),
            ]
        )
        == 2
    )
    assert "no de-identification secret" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["run", "--date-shift-range", "5", str(source), str(dest)])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["run", "--conflict", "overwrite", str(source), str(dest)])
    assert main(["run", "--session", "ses-1", str(source), str(dest)]) == 2
    (source / "notes.txt").write_text("x")
    monkeypatch.setenv("DEID_SECRET", SECRET)
    assert (
        main(
            [
                "run",
                "--profile",
                str(profile_file),
                "--report-dir",
                str(tmp_path / "r"),
                str(source),
                str(dest),
            ]
        )
        == 1
    )


def test_api_key_is_never_printed(fw_server, tmp_path, profile_file, capsys, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.setenv("FW_API_KEY", fw_server.api_key)
    fw_server.add_project("grp", "dest")
    code = main(
        [
            "run",
            "--profile",
            str(profile_file),
            "--report-dir",
            str(tmp_path / "r"),
            "fw://grp/missing",
            "fw://grp/dest",
        ]
    )
    out = capsys.readouterr()
    assert code == 2
    assert "cannot resolve" in out.err
    assert fw_server.key not in out.err + out.out
    for report in (tmp_path / "r").iterdir():
        assert fw_server.key not in report.read_text()
