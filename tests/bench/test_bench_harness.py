"""Smoke tests of the benchmark harness (bench/): the corpus generator and the runner on a tiny corpus.

Not timed tests: they only check that the harness works, so CI catches a broken bench. No peer
virtual environments are created here (the peers' rows are skipped or report "unavailable").
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus():
    return _load("corpus")


def test_sizes_parse_and_format(corpus):
    assert corpus.parse_size("2G") == 2 << 30
    assert corpus.parse_size("200M") == 200 << 20
    assert corpus.parse_size("512k") == 512 << 10
    assert corpus.parse_size("1000") == 1000
    assert corpus.format_size(2 << 30) == "2G"
    assert corpus.parse_sizes("2M, 20M") == [2 << 20, 20 << 20]
    with pytest.raises(Exception, match="not a size"):
        corpus.parse_size("big")


def test_small_corpus_is_seeded_layered_and_carries_phi(corpus, tmp_path):
    first = corpus.generate_small(tmp_path / "a" / "small", 8, seed=7)
    second = corpus.generate_small(tmp_path / "b" / "small", 8, seed=7)
    assert len(first) == 8
    # subject/session/acquisition/file below the project folder
    assert all(len(p.relative_to(tmp_path / "a" / "small").parts) == 4 for p in first)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    syntaxes = set()
    for path in first:
        ds = pydicom.dcmread(path)
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        assert "BENCH" in str(ds.PatientName)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.OtherPatientIDsSequence[0].PatientID.startswith("OTH")
        block = ds.private_block(corpus.PRIVATE_GROUP, corpus.PRIVATE_CREATOR)
        value = block[0x11].value  # UN (bytes) in implicit VR files: no private dictionary
        assert (value.decode() if isinstance(value, bytes) else value).strip() == ds.PatientID
    assert len(syntaxes) > 1  # several transfer syntaxes even in a tiny corpus
    assert corpus.small_is_cached(tmp_path / "a" / "small", 8, 7)
    assert not corpus.small_is_cached(tmp_path / "a" / "small", 9, 7)


def test_every_template_is_available_offline(corpus):
    for name, _ in corpus.TEMPLATES:
        assert corpus.template_path(name).is_file(), name


def test_large_file_is_streamed_valid_and_cached(corpus, tmp_path):
    path = corpus.generate_large(tmp_path, 2 << 20, seed=3)
    ds = pydicom.dcmread(path, defer_size=1024)
    frame = corpus.LARGE_ROWS * corpus.LARGE_COLUMNS * 2
    assert int(ds.NumberOfFrames) == (2 << 20) // frame - 1  # whole frames, header fits in one
    assert len(ds.PixelData) == int(ds.NumberOfFrames) * frame
    assert "BENCH" in str(ds.PatientName)
    assert path.stat().st_size <= 2 << 20
    stamp = path.stat().st_mtime_ns
    assert corpus.generate_large(tmp_path, 2 << 20, seed=3) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
    # the parameters live beside the project folder, so the store sees one file only
    project = path.parents[3]
    assert [p for p in project.rglob("*") if p.is_file()] == [path]


def test_runner_produces_a_table_on_a_tiny_corpus(tmp_path):
    results = tmp_path / "results"
    cmd = [
        sys.executable, str(BENCH / "run.py"), "--data", str(tmp_path / "data"),
        "--files", "4", "--large-size", "1M", "--repeats", "1", "--warmup", "0",
        "--only", "ours-1,ours-pool2,pydicom,cp", "--results", str(results), "--timeout", "120",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    payload = json.loads((results / "latest.json").read_text())
    rows = {row["key"]: row for row in payload["table"]}
    assert set(rows) == {
        f"{k}@{c}" for k in ("ours-1", "pydicom", "cp") for c in ("small", "large-1M")
    } | {"ours-pool2@small"}  # the pool's scaling is measured on small files only
    for key in ("pydicom@small", "cp@small", "pydicom@large-1M"):
        assert rows[key]["files_per_s"] > 0, rows[key]
        assert rows[key]["maxrss_mb"] > 0
    assert rows["pydicom@small"]["failed"] == 0
    engine = _load("run").engine_status()  # None: our package imports, so our rows must run
    for key in ("ours-1@small", "ours-pool2@small"):
        if engine is not None:
            assert rows[key].get("unavailable"), rows[key]
            continue
        assert "work_s" in rows[key], rows[key]
        assert rows[key]["failed"] == 0, rows[key]
        assert rows[key]["files_out"] == 4, rows[key]
        # every file processed once: the workers' own count, not only the outputs left behind
        for sample in payload["raw"]["samples"][key]:
            assert sample["report"]["files"] == 4, sample["report"]
    assert "| corpus | contestant |" in (results / "latest.md").read_text()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


#: A process tree like a pool's: the root starts a child from a thread (the kernel lists it under
#: that thread only), and the child starts a grandchild. The grandchild writes "CHILD GRANDCHILD".
_TREE_SCRIPT = """
import os, sys, threading, time
block = bytearray(48 << 20)
def spawn():
    if os.fork() == 0:
        mine = bytearray(16 << 20)
        if os.fork() == 0:
            grand = bytearray(32 << 20)
            with open(sys.argv[1] + ".tmp", "w") as out:
                out.write(f"{os.getppid()} {os.getpid()}")
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        time.sleep(60)
        os._exit(0)
    time.sleep(60)  # alive: the child stays listed under this thread
threading.Thread(target=spawn, daemon=True).start()
time.sleep(60)
"""


def test_tree_rss_counts_children_of_every_thread_and_grandchildren(tmp_path):
    """The runner's memory sampler finds a pool's whole tree itself, as the kernel lists it."""
    run = _load("run")
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _TREE_SCRIPT, str(ready)])
    pids = [proc.pid]
    try:
        for _ in range(500):
            if ready.exists():
                break
            time.sleep(0.02)
        pids += [int(pid) for pid in ready.read_text().split()]
        expected = [_rss(pid) for pid in pids]
        whole = run._tree_rss(proc.pid)
        children_only = run._tree_rss(proc.pid, skip_root=True)
    finally:
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    slack = 4 << 20  # the interpreters' own pages move a little between the two reads
    assert expected[2] >= (48 + 16 + 32) << 20  # the grandchild really holds its memory
    assert abs(whole - sum(expected)) < slack
    assert abs(children_only - sum(expected[1:])) < slack


def test_pool_workers_drain_every_file_exactly_once(tmp_path):
    """The handler pool's shared counter hands out each file once, whoever asks first."""
    import multiprocessing

    worker = _load("worker")
    jobs = [(tmp_path / f"{n}.dcm", tmp_path, Path(f"{n}.dcm")) for n in range(200)]
    for src, _, _ in jobs:
        src.write_bytes(b"x")
    seen: list[str] = []

    def one(src, dst_dir, rel):
        seen.append(src.name)
        time.sleep(0.0005 if int(src.stem) % 7 else 0.002)  # uneven costs
        return 1

    counter = multiprocessing.get_context("fork").Value("q", 0)
    worker._STATE.update(one=one, jobs=jobs, next=counter)
    parts: list = []
    drains = [threading.Thread(target=lambda: parts.append(worker._pool_drain(0))) for _ in "ab"]
    for drain in drains:
        drain.start()
    for drain in drains:
        drain.join()
    indexes = sorted(index for _, done in parts for index, _ in done)
    assert indexes == list(range(len(jobs)))
    assert sorted(seen) == sorted(src.name for src, _, _ in jobs)
    assert all(done for _, done in parts)  # both took a share
    assert all(result == (1, 1, None) for _, done in parts for _, result in done)


def test_scaling_pairs_run_back_to_back_in_every_pass_in_alternate_order():
    run = _load("run")
    keys = [
        "ours-1@small", "ours-pool2@small", "deid-j1@small", "deid-j2@small", "pydicom@small",
        "cp@small", "ours-1@large-2G", "deid-j1@large-2G", "pydicom@large-2G", "cp@large-2G",
    ]  # fmt: skip
    rows = [run.Contestant(key, key, key.split("@")[1], "worker", []) for key in keys]
    orders = [[row.key for row in run.pass_order(rows, rep)] for rep in range(-1, 9)]
    for order in orders:
        assert sorted(order) == sorted(keys)  # every row once per pass
        for one, many in (("ours-1@small", "ours-pool2@small"), ("deid-j1@small", "deid-j2@small")):
            assert abs(order.index(one) - order.index(many)) == 1, order
    # neither row of a pair always runs first; rows that are no pair are rotated apart
    assert {o.index("ours-1@small") < o.index("ours-pool2@small") for o in orders} == {True, False}
    assert len({o[0] for o in orders}) >= 6  # the pass starts with a different row each time
    assert any(abs(o.index("deid-j1@large-2G") - o.index("ours-1@large-2G")) != 1 for o in orders)


def test_paired_ratio_is_the_median_of_the_passes_ratios():
    run = _load("run")
    single = {"work_s_runs": [1.0, 2.0, 1.0, None, 1.0]}
    pool = {"work_s_runs": [0.5, 1.0, 0.8, 0.5, 0.4]}
    # passes: 2.0, 2.0, 1.25, (no report: skipped), 2.5 -> median of four values
    assert run.paired_ratio(single, pool) == 2.0
    assert run.paired_ratio({"work_s_runs": []}, pool) is None
