"""`deid run` as real processes: killed mid-run and resumed, a worker killed, concurrent file-mode jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.export.conftest import SECRET, build_source, shape, tree_digest, visible_files

pytestmark = pytest.mark.slow


def _deid(*args: str) -> list[str]:
    return [sys.executable, "-m", "fw_gear_deid.cli", "run", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "DEID_SECRET": SECRET}


def _wait_for_files(dest: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = len(visible_files(dest)) if dest.exists() else 0
        except FileNotFoundError:  # a temporary folder vanished mid-listing: the job is live
            continue
        if found >= count or process.poll() is not None:
            return found
        time.sleep(0.01)
    raise AssertionError("the export did not progress")


def _origin_ids(dest: Path) -> Counter:
    ids: Counter = Counter()
    for sidecar in dest.rglob(".*.meta.json"):
        if ".versions" not in sidecar.parts and not sidecar.name.startswith(".tmp-"):
            ids[json.loads(sidecar.read_text())["info"]["export"]["origin_id"]] += 1
    return ids


def _expected_outputs(source: Path) -> list[str]:
    return shape(visible_files(source))  # DICOM outputs are named by their UIDs


def test_job_killed_mid_run_then_rerun_completes_without_duplicates(tmp_path, profile_file):
    source = build_source(tmp_path / "in", subjects=2, files_per_acq=120)
    before = tree_digest(source)
    dest = tmp_path / "out" / "grp" / "dest"
    args = _deid(
        "--profile",
        str(profile_file),
        "--jobs",
        "2",
        "--report-dir",
        str(tmp_path / "r"),
        str(source),
        str(dest),
    )
    process = subprocess.Popen(
        args,
        env=_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    written = _wait_for_files(dest, 15, process)
    os.killpg(process.pid, signal.SIGKILL)  # the job and all its workers, at once
    process.wait()
    expected = _expected_outputs(source)
    assert 0 < written < len(expected), "kill the job mid-run (raise files_per_acq if it finished)"
    assert len(visible_files(dest)) < len(expected)

    rerun = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert shape(visible_files(dest)) == expected
    ids = _origin_ids(dest)
    assert len(ids) == len(expected)
    assert max(ids.values()) == 1  # no file twice
    assert not [p for p in dest.rglob("*") if p.is_dir() and "~" in p.name]  # no container twice
    assert tree_digest(source) == before


def _worker_processes(parent: psutil.Process) -> list[psutil.Process]:
    """The export's worker processes: forked by the fork server (a child of the fork server with
    its command line), or spawned (``spawn_main``) where there is no fork server."""
    workers = []
    for child in parent.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            parent_cmdline = " ".join(child.parent().cmdline())
        except (psutil.Error, AttributeError):
            continue
        forked = "forkserver" in cmdline and "forkserver" in parent_cmdline
        if forked or ("spawn_main" in cmdline and "resource_tracker" not in cmdline):
            workers.append(child)
    return workers


def test_a_killed_worker_process_does_not_stop_the_others(tmp_path, profile_file):
    source = build_source(tmp_path / "in", subjects=2, files_per_acq=120)
    dest = tmp_path / "out" / "grp" / "dest"
    report_dir = tmp_path / "r"
    args = _deid(
        "--profile",
        str(profile_file),
        "--jobs",
        "2",
        "--report-dir",
        str(report_dir),
        str(source),
        str(dest),
    )
    process = subprocess.Popen(
        args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _wait_for_files(dest, 10, process)
    workers = _worker_processes(psutil.Process(process.pid))
    assert workers, "no worker process found"
    workers[0].kill()
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert shape(visible_files(dest)) == _expected_outputs(source)
    assert "Traceback" not in stderr


def test_concurrent_file_mode_jobs_create_each_container_once(tmp_path, profile_file):
    source = build_source(tmp_path / "in", subjects=1, files_per_acq=6)
    dest = tmp_path / "out" / "grp" / "dest"
    processes = [
        subprocess.Popen(
            _deid(
                "--profile",
                str(profile_file),
                "--report-dir",
                str(tmp_path / f"r{n}"),
                "--file",
                f"sub-01/ses-1/acq-1/meta-{n}.json",
                str(source),
                str(dest),
            ),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    folders = sorted(
        p.relative_to(dest).as_posix()
        for p in dest.rglob("*")
        if p.is_dir() and not any(part.startswith(".") for part in p.relative_to(dest).parts)
    )
    assert folders == ["sub-01", "sub-01/ses-1", "sub-01/ses-1/acq-1"]
    assert visible_files(dest) == [f"sub-01/ses-1/acq-1/meta-{n}.json" for n in range(6)]
