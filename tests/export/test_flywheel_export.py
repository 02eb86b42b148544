"""The end-to-end scenarios against the Flywheel store: real flywheel-sdk over HTTP (tests/fwserver)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from tests.export.conftest import PHI, SECRET, build_source, profile_text, shape, visible_files


def _dest_tree(server, project_id: str) -> dict[str, list[str]]:
    """``label path -> file names`` of everything under a destination project."""
    tree: dict[str, list[str]] = {}

    def walk(container, path):
        tree[path] = sorted(f["name"] for f in container["files"])
        for child in server.children(container["_id"]):
            walk(child, f"{path}/{child['label']}")

    walk(server.containers[project_id], "")
    return tree


def _all_dest_bytes(server, project_id: str) -> bytes:
    chunks = []

    def walk(container):
        chunks.append(
            json.dumps({k: v for k, v in container.items() if k != "files"}, default=str).encode()
        )
        for entry in container["files"]:
            chunks.append(server.blobs[entry["_blob"]])
            chunks.append(
                json.dumps(
                    {k: v for k, v in entry.items() if not k.startswith("_")}, default=str
                ).encode()
            )
        for child in server.children(container["_id"]):
            walk(child)

    walk(server.containers[project_id])
    return b"\n".join(chunks)


@pytest.fixture
def seeded(fw_server, tmp_path):
    local = build_source(tmp_path / "in")
    source = fw_server.seed_from_folder("grp", "src", local)
    dest = fw_server.add_project("grp", "dest")
    return fw_server, source, dest, local


def test_project_export_over_the_sdk_mirrors_and_is_idempotent(seeded, export):
    server, source, dest, local = seeded
    before = server.snapshot()
    source_state = json.dumps(
        {
            k: v
            for k, v in json.loads(before)["containers"].items()
            if v["parents"].get("project") == source["_id"] or k == source["_id"]
        },
        sort_keys=True,
    )
    result = export("fw://grp/src", "fw://grp/dest", api_key=server.api_key, jobs=2)
    assert result.exit_code == 0, [(r.source_file, r.state, r.reason) for r in result.rows]
    tree = _dest_tree(server, dest["_id"])
    assert tree[""] == ["protocol.json"]
    assert tree["/sub-01"] == ["demographics.csv"]
    assert tree["/sub-01/ses-1"] == ["record.xml", "scores.tsv", "visit.json"]
    assert "meta-0.json" in tree["/sub-01/ses-1/acq-1"]
    assert sum(len(v) for v in tree.values()) == len(visible_files(local)) == len(result.rows)
    blob = _all_dest_bytes(server, dest["_id"])
    for value in PHI:
        assert value.encode() not in blob
    (subject,) = [c for c in server.children(dest["_id"]) if c["label"] == "sub-01"]
    assert subject.get("sex") is None  # no flywheel section: subject fields are not copied
    assert len(subject["info"]["export"]["origin_id"]) == 32
    assert "firstname" not in subject or subject["firstname"] is None
    uploaded = server.uploads
    # a second run uploads nothing and creates nothing
    creates = sum(server.creates.values())
    again = export("fw://grp/src", "fw://grp/dest", api_key=server.api_key)
    assert again.exit_code == 0
    assert server.uploads == uploaded
    assert sum(server.creates.values()) == creates
    assert {row.write for row in again.rows} == {"unchanged"}
    after = json.loads(server.snapshot())["containers"]
    assert (
        json.dumps(
            {
                k: v
                for k, v in after.items()
                if v["parents"].get("project") == source["_id"] or k == source["_id"]
            },
            sort_keys=True,
        )
        == source_state
    )
    assert json.loads(server.snapshot())["blobs"].items() >= json.loads(before)["blobs"].items()


def test_profile_from_destination_project_settings_and_a_local_destination(
    seeded, export, tmp_path
):
    server, _source, dest, _local = seeded
    server.project_settings[dest["_id"]] = {"deid_profile": yaml.safe_load(profile_text())}
    result = export("fw://grp/src", "fw://grp/dest", api_key=server.api_key, profile_path=None)
    assert result.exit_code == 0
    assert result.summary["profile"]["level"] == "project"
    # Flywheel source, local destination (by container id: the gear's form)
    local_dest = tmp_path / "local" / "grp" / "dest"
    session = next(
        c for c in server.find("ses-1", "session") if c["parents"]["project"] == _source["_id"]
    )
    by_id = export(f"fw://_id/session/{session['_id']}", local_dest, api_key=server.api_key)
    assert by_id.exit_code == 0
    assert by_id.summary["source_type"] == "session"
    assert (local_dest / "sub-01" / "ses-1" / "visit.json").is_file()


def _deid(*args):
    return [sys.executable, "-m", "fw_gear_deid.cli", "run", "--no-progress", *args]


@pytest.mark.slow
def test_concurrent_file_mode_jobs_over_the_sdk_create_each_container_once(
    seeded, tmp_path, profile_file
):
    server, source, dest, _local = seeded
    acq = next(
        c
        for c in server.find("acq-1", "acquisition")
        if c["parents"]["project"] == source["_id"]
        and server.containers[c["parents"]["subject"]]["label"] == "sub-01"
    )
    file_ids = [f["file_id"] for f in acq["files"]]
    server.list_delay = 0.3  # every job looks before any creates: they race
    created = dict(server.creates)
    env = {**os.environ, "DEID_SECRET": SECRET, "FW_API_KEY": server.api_key}
    processes = [
        subprocess.Popen(
            _deid(
                "--profile",
                str(profile_file),
                "--report-dir",
                str(tmp_path / f"r{n}"),
                "--file",
                file_id,
                "fw://grp/src",
                "fw://grp/dest",
            ),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, file_id in enumerate(file_ids)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        assert server.key not in stderr  # the API key is never printed
    tree = _dest_tree(server, dest["_id"])
    assert sorted(tree) == ["", "/sub-01", "/sub-01/ses-1", "/sub-01/ses-1/acq-1"]
    assert shape(tree["/sub-01/ses-1/acq-1"]) == shape([f["name"] for f in acq["files"]])
    for kind in ("subject", "session", "acquisition"):  # any raced creation was resolved
        assert server.creates[kind] - created[kind] - server.deletes[kind] == 1


@pytest.mark.slow
def test_killed_job_over_the_sdk_resumes_without_duplicates(fw_server, tmp_path, profile_file):
    local = build_source(tmp_path / "in", subjects=2, files_per_acq=60)
    fw_server.seed_from_folder("grp", "src", local)
    dest = fw_server.add_project("grp", "dest")
    env = {**os.environ, "DEID_SECRET": SECRET, "FW_API_KEY": fw_server.api_key}
    args = _deid(
        "--profile",
        str(profile_file),
        "--jobs",
        "2",
        "--report-dir",
        str(tmp_path / "r"),
        "fw://grp/src",
        "fw://grp/dest",
    )
    process = subprocess.Popen(
        args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while fw_server.uploads < 10 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    total = len(visible_files(local))
    assert 0 < fw_server.uploads < total
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    tree = _dest_tree(fw_server, dest["_id"])
    assert sum(len(v) for v in tree.values()) == total
    origins = Counter()
    for container in fw_server.containers.values():
        if container["parents"].get("project") == dest["_id"] or container["_id"] == dest["_id"]:
            for entry in container["files"]:
                origins[entry["info"]["export"]["origin_id"]] += 1
            if container["_id"] != dest["_id"]:
                origins["container:" + container["info"]["export"]["origin_id"]] += 1
    assert max(origins.values()) == 1
