"""Side-by-side benchmark: our engine vs a bare pydicom loop, flywheel-migration, dcmanon and ``cp``.

Every contestant runs in its own process (peers in their own virtual environments under
``bench/.envs/``); runs are interleaved (each repeat visits every contestant, starting one further
along each time) after one untimed warm-up, and the table reports medians. Peak RSS is the largest
single process of the contestant's tree (GNU time's ``%M``, i.e. ``ru_maxrss`` from ``wait4``), plus
a sampled sum over the process tree (what ``--jobs N`` really costs). Results go to
``bench/results/`` (Markdown + JSON).

Usage (from the repository root)::

    .venv/bin/python bench/run.py --setup                 # create the peers' venvs, install pyinstrument
    .venv/bin/python bench/run.py --files 300 --large-size 2M,200M,2G --repeats 5 --large-repeats 3
    .venv/bin/python bench/run.py --quick                 # 50 small files, 20 MB large file, 2 repeats
    .venv/bin/python bench/run.py --hot-profile           # pyinstrument over our per-file loop

See bench/README.md for what each row means and the latest results.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import corpus  # noqa: E402  (bench/ is a folder of scripts, not a package)

ENVS = BENCH / ".envs"
RESULTS = BENCH / "results"
WORKER = BENCH / "worker.py"
PROFILES = BENCH / "profiles"
OUR_PROFILE = PROFILES / "ps315-basic.yaml"
FWM_PROFILE = PROFILES / "flywheel-migration.yaml"
SECRET = "bench-secret-not-for-production"

#: Peers and their exact versions: each gets its own venv under bench/.envs/<name>.
PEER_REQUIREMENTS = {
    "flywheel-migration": ["flywheel-migration==13.10.11"],
    "dcmanon": ["dcmanon==0.3.1"],
}
#: The DICOM helper's reference venv (flywheel-migration for differential tests), reused if present.
REFERENCE_VENV = ROOT / ".venv-reference"


# -- environments ----------------------------------------------------------------------------------------


def our_python() -> Path:
    return ROOT / ".venv" / "bin" / "python"


def venv_python(name: str) -> Path:
    if name == "flywheel-migration" and _imports(
        REFERENCE_VENV / "bin" / "python", "flywheel_migration"
    ):
        return REFERENCE_VENV / "bin" / "python"
    return ENVS / name / "bin" / "python"


def _imports(python: Path, module: str) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", f"import {module}"], capture_output=True, check=False, timeout=120
    )
    return probe.returncode == 0


def setup_envs() -> None:
    """Create the peers' venvs (pinned) and install bench/requirements.txt into the project venv."""
    for name, requirements in PEER_REQUIREMENTS.items():
        python = venv_python(name)
        module = name.replace("-", "_")
        if _imports(python, module):
            print(f"setup: {name}: ready ({python.parent.parent})")
            continue
        env = ENVS / name
        print(f"setup: {name}: creating {env}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
            check=True,
        )
    if not _imports(our_python(), "pyinstrument"):
        print("setup: installing bench/requirements.txt into .venv")
        subprocess.run(
            [
                str(our_python()),
                "-m",
                "pip",
                "install",
                "--quiet",
                "-r",
                str(BENCH / "requirements.txt"),
            ],
            check=True,
        )


def engine_status() -> str | None:
    """None when our DICOM handler and export pipeline import, else why not."""
    probe = subprocess.run(
        [
            str(our_python()),
            "-c",
            "from fw_gear_deid.formats import handler_class; handler_class('dicom');"
            "from fw_gear_deid.export import run_export",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or ["import failed"])[-1]


# -- contestants -----------------------------------------------------------------------------------------


@dataclass
class Contestant:
    """One row of the table: a command run on one corpus."""

    key: str
    label: str
    corpus: str  # "small" or "large-<size>"
    kind: str  # "worker" (reports its own loop time), "deid" (wall minus 1-file probe), "wall"
    argv_template: list[str]
    #: The 1-file probe command for "deid" rows (startup + pool spawn + report), else None.
    probe: bool = False
    env: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None
    #: False when ``wait4`` cannot see all of the command's CPU: `deid run --jobs N`'s workers are
    #: children of a fork server that exits without being waited for.
    cpu_counted: bool = True

    def argv(self, src: Path, dst: Path) -> list[str]:
        return [
            part.format(src=src, dst=dst, report=dst.parent / f"{dst.name}.report")
            for part in self.argv_template
        ]


def worker_argv(python: Path, tool: str, profile: Path | None = None, jobs: int = 1) -> list[str]:
    argv = [str(python), str(WORKER), tool, "--src", "{src}", "--dst", "{dst}"]
    if profile is not None:
        argv += ["--profile", str(profile)]
    if jobs > 1:
        argv += ["--jobs", str(jobs)]
    return argv


def deid_argv(jobs: int) -> list[str]:
    deid = ROOT / ".venv" / "bin" / "deid"
    return [
        str(deid), "run", "{src}", "{dst}", "--profile", str(OUR_PROFILE), "--jobs", str(jobs),
        "--no-progress", "--report-dir", "{report}",
    ]  # fmt: skip


def build_contestants(args: argparse.Namespace, corpora: list[str]) -> list[Contestant]:
    env = {"DEID_SECRET": SECRET}
    ours = our_python()
    engine = engine_status()
    fwm, dcmanon = venv_python("flywheel-migration"), venv_python("dcmanon")
    rows: list[Contestant] = []
    for name in corpora:
        small = name == "small"
        rows.append(
            Contestant(f"ours-1@{name}", "ours, 1 worker (handler loop)", name, "worker",
                       worker_argv(ours, "ours", OUR_PROFILE), env=env, unavailable=engine)
        )  # fmt: skip
        if small:
            rows.append(
                Contestant(f"ours-pool{args.jobs}@{name}", f"ours, {args.jobs} workers (handler pool)",
                           name, "worker", worker_argv(ours, "ours", OUR_PROFILE, args.jobs), env=env,
                           unavailable=engine)
            )  # fmt: skip
        for jobs in (1, args.jobs) if small else (1,):
            rows.append(
                Contestant(f"deid-j{jobs}@{name}", f"`deid run --jobs {jobs}`", name, "deid",
                           deid_argv(jobs), probe=True, env=env, unavailable=engine,
                           cpu_counted=jobs == 1)
            )  # fmt: skip
        rows.append(
            Contestant(f"pydicom@{name}", "bare pydicom dcmread+dcmwrite", name, "worker",
                       worker_argv(ours, "pydicom"))
        )  # fmt: skip
        if small or args.large_peers:
            rows.append(
                Contestant(f"fwm@{name}", "flywheel-migration 13.10.11", name, "worker",
                           worker_argv(fwm, "flywheel-migration", FWM_PROFILE),
                           unavailable=None if fwm.exists() else "venv missing: run --setup")
            )  # fmt: skip
        rows.append(
            Contestant(f"dcmanon@{name}", "dcmanon 0.3.1 (Rust)", name, "worker",
                       worker_argv(dcmanon, "dcmanon"),
                       unavailable=None if dcmanon.exists() else "venv missing: run --setup")
        )  # fmt: skip
        rows.append(
            Contestant(f"cp@{name}", "`cp -r`", name, "wall", ["cp", "-r", "{src}", "{dst}"])
        )
    if args.only:
        wanted = set(args.only.split(","))
        rows = [row for row in rows if row.key.split("@")[0] in wanted or row.key in wanted]
    return rows


# -- running one process ---------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    tree_rss_mb: float
    returncode: int
    report: dict | None
    stderr_tail: str


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(pid: int, skip_root: bool = False) -> int:
    """Summed RSS of ``pid`` and its descendants (without ``pid`` itself when it is GNU time).

    Read from the kernel's own child lists (``/proc/P/task/T/children``) and ``statm``: about
    25 µs a sample. psutil's ``children()`` reads every process's ``stat`` to find them (~0.6 ms),
    CPU taken from the cores the contestant is being timed on.
    """
    total = 0
    stack = [(pid, skip_root)]
    while stack:
        proc, skip = stack.pop()
        # Processes and threads come and go while this reads: each read that fails (gone) skips
        # that one only. A child is listed under the thread that started it, so every thread's.
        if not skip:
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{proc}/statm", "rb") as handle,
            ):
                total += int(handle.read().split()[1]) * _PAGE
        try:
            tasks = os.listdir(f"/proc/{proc}/task")
        except OSError:
            continue
        for task in tasks:
            with (
                contextlib.suppress(OSError, ValueError),
                open(f"/proc/{proc}/task/{task}/children", "rb") as handle,
            ):
                stack.extend((int(child), False) for child in handle.read().split())
    return total


#: GNU time: its ``%M`` is the peak RSS of the command measured from a small parent. ``wait4`` on a
#: child of this (pydicom-importing) Python would also count the parent's image the child had
#: between ``fork`` and ``exec`` (Linux keeps that high-water mark across ``exec``).
GNU_TIME = Path("/usr/bin/time")


def run_process(argv: list[str], env: dict[str, str], scratch: Path, timeout: float) -> Sample:
    """Run ``argv``: wall time, peak RSS (GNU time's ``%M``, else ``wait4``), sampled tree RSS."""
    out_path, err_path, rss_path = (scratch / n for n in ("stdout.txt", "stderr.txt", "rss.txt"))
    rss_path.unlink(missing_ok=True)
    if GNU_TIME.exists():
        argv = [str(GNU_TIME), "-q", "-o", str(rss_path), "-f", "%M", *argv]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **env}, cwd=ROOT)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            # every 50 ms (~25 µs of CPU each): the runner shares the cores with the contestant,
            # and a pool of N workers needs all of them
            while not done.wait(0.05):
                peak[0] = max(peak[0], _tree_rss(proc.pid, skip_root=GNU_TIME.exists()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, rusage = os.wait4(proc.pid, 0)  # blocking: no polling while the contestant runs
        wall = time.perf_counter() - start
        killer.cancel()
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss_kb = rusage.ru_maxrss  # KiB on Linux
    with contextlib.suppress(OSError, ValueError, IndexError):
        maxrss_kb = int(rss_path.read_text().split()[-1])
    report = None
    for line in reversed(out_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except ValueError:
                report = None
            break
    stderr_tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-5:])
    return Sample(
        wall_s=wall,
        cpu_s=rusage.ru_utime + rusage.ru_stime,  # the command and its reaped children
        maxrss_mb=maxrss_kb / 1024,
        tree_rss_mb=peak[0] / 2**20,
        returncode=proc.returncode,
        report=report,
        stderr_tail=stderr_tail,
    )


# -- the run ---------------------------------------------------------------------------------------------


def _read_through(folder: Path) -> None:
    """Read every file under ``folder`` once (into the page cache), 8 MiB at a time."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as handle:
            while handle.read(8 << 20):
                pass


@dataclass
class Corpus:
    name: str
    path: Path
    files: int
    bytes: int
    probe: Path  # a project holding 1 small file: the fixed cost of a "deid" row


def prepare_corpora(args: argparse.Namespace) -> list[Corpus]:
    data = args.data
    out: list[Corpus] = []

    # The probe: one small file in the same layout. `deid run` on it costs what any run costs on
    # top of its files (interpreter, imports, profile, pool start, report, residual-check setup).
    probe = data / "probe-1file"
    target = probe / "sub-P01" / "ses-01" / "acq-01" / "probe.dcm"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        ds = corpus.pydicom.dcmread(corpus.template_path("CT_small.dcm"))
        place = corpus.Placement(
            corpus.make_identity(corpus.random.Random(0), 0),
            "ses-01",
            "acq-01",
            "1.2.3.1",
            "1.2.3.2",
            "1.2.3.3",
            "20200101",
            "ACC1",
        )
        corpus.plant_phi(ds, place, "1.2.3.4", corpus.random.Random(0))
        corpus.write_dataset(ds, target)

    def add(name: str, path: Path) -> None:
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        out.append(Corpus(name, path, len(files), sum(p.stat().st_size for p in files), probe))

    if args.files:
        small = data / "small"
        if not corpus.small_is_cached(small, args.files, args.seed):
            print(f"corpus: generating {args.files} small files ...", flush=True)
            corpus.generate_small(small, args.files, args.seed)
        add("small", small)
    for size in corpus.parse_sizes(args.large_size):
        print(
            f"corpus: large file {corpus.format_size(size)} (cached if unchanged) ...", flush=True
        )
        path = corpus.generate_large(data, size, args.seed)
        add(f"large-{corpus.format_size(size)}", path.parents[3])
    return out


#: Rows whose ratio is a scaling target: (1 worker, N workers) key prefixes. Each pair runs back to
#: back in every pass, so the ratio can be taken per pass (see ``paired_ratio``).
SCALING_PAIRS = (("ours-1@", "ours-pool"), ("deid-j1@", "deid-j"))


def pass_order(rows: list[Contestant], rep: int) -> list[Contestant]:
    """The rows of one pass: rotated by one unit per pass (no row always runs first or after the
    same neighbour), each scaling pair kept back to back as one unit, its two rows in alternate
    order from one pass to the next (neither always runs first)."""
    units: list[list[Contestant]] = []
    for row in rows:
        last = units[-1] if units else None
        if (
            last is not None
            and len(last) == 1
            and last[0].corpus == row.corpus
            and any(
                last[0].key.startswith(one) and row.key.startswith(many) and row.key != last[0].key
                for one, many in SCALING_PAIRS
            )
        ):
            last.append(row)
        else:
            units.append([row])
    if not units:
        return []
    shift = rep % len(units)
    ordered = units[shift:] + units[:shift]
    return [row for unit in ordered for row in (unit if rep % 2 == 0 else unit[::-1])]


def run_all(args: argparse.Namespace, corpora: list[Corpus], rows: list[Contestant]) -> dict:
    # One scratch folder per runner process: two benchmark runs sharing bench/.data must not clean
    # each other's outputs.
    scratch = args.data / f"out-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    by_name = {c.name: c for c in corpora}
    samples: dict[str, list[dict]] = {row.key: [] for row in rows}
    probes: dict[str, list[float]] = {row.key: [] for row in rows if row.probe}
    live = [row for row in rows if not row.unavailable]

    def wanted(row: Contestant, rep: int) -> bool:
        if row.corpus == "small":
            return True
        if rep < 0:  # warming the page cache with one large file needs one reader: cp
            return row.kind == "wall"
        return rep < args.large_repeats

    total = sum(wanted(row, rep) for rep in range(-args.warmup, args.repeats) for row in live)
    done = 0
    for rep in range(-args.warmup, args.repeats):
        order = [row for row in pass_order(live, rep) if wanted(row, rep)]
        for row in order:
            done += 1
            corpus_ = by_name[row.corpus]
            tag = "warm-up" if rep < 0 else f"repeat {rep + 1}/{args.repeats}"
            print(f"[{done}/{total}] {tag}: {row.key}", flush=True)
            for probe_run in (False, True) if row.probe else (False,):
                src = corpus_.probe if probe_run else corpus_.path
                dst = scratch / (row.key.replace("@", "_") + ("_probe" if probe_run else ""))
                shutil.rmtree(dst, ignore_errors=True)
                shutil.rmtree(dst.parent / f"{dst.name}.report", ignore_errors=True)
                if row.kind == "worker" or row.kind == "deid":
                    dst.parent.mkdir(parents=True, exist_ok=True)
                # Untimed: the previous run's output is written back to disk now, not during this
                # run (2 GB of dirty pages made one contestant's copy 0.6 s and the next one's 3 s),
                # and a large source is read once so that every contestant finds it in the page
                # cache, whatever ran before (a peer holding 8 GB can push it out).
                os.sync()
                if row.corpus.startswith("large"):
                    _read_through(src)
                sample = run_process(row.argv(src, dst), row.env, scratch, args.timeout)
                files_out = sum(
                    1 for p in dst.rglob("*") if p.is_file() and not p.name.startswith(".")
                )
                states = _report_states(dst.parent / f"{dst.name}.report")
                shutil.rmtree(dst, ignore_errors=True)
                shutil.rmtree(dst.parent / f"{dst.name}.report", ignore_errors=True)
                if sample.returncode != 0 and not (row.kind == "deid" and sample.returncode == 1):
                    print(f"    exit {sample.returncode}: {sample.stderr_tail}", flush=True)
                if rep < 0:
                    continue
                if probe_run:
                    probes[row.key].append((sample.wall_s, sample.cpu_s))
                else:
                    record = asdict(sample)
                    record["files_out"] = files_out
                    if states:
                        record["states"] = states
                    samples[row.key].append(record)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"samples": samples, "probes": probes}


def _report_states(folder: Path) -> dict[str, int]:
    """File states counted from `deid run`'s report CSV (exported, blocked, error, ...)."""
    import csv
    from collections import Counter

    counts: Counter[str] = Counter()
    for report in folder.glob("*.csv") if folder.is_dir() else ():
        with open(report, newline="", encoding="utf-8") as handle:
            counts.update(row.get("state", "?") for row in csv.DictReader(handle))
    return dict(counts)


def summarise(rows: list[Contestant], corpora: list[Corpus], raw: dict, jobs: int) -> list[dict]:
    by_name = {c.name: c for c in corpora}
    table = []
    for row in rows:
        c = by_name[row.corpus]
        entry: dict = {"key": row.key, "label": row.label, "corpus": row.corpus, "kind": row.kind}
        runs = raw["samples"].get(row.key, [])
        if row.unavailable or not runs:
            entry["unavailable"] = row.unavailable or "no successful run"
            table.append(entry)
            continue
        med = statistics.median
        entry["runs"] = len(runs)
        entry["wall_s"] = med(r["wall_s"] for r in runs)
        entry["maxrss_mb"] = med(r["maxrss_mb"] for r in runs)
        entry["tree_rss_mb"] = med(r["tree_rss_mb"] for r in runs)
        entry["files_out"] = med(r["files_out"] for r in runs)
        entry["exit_codes"] = sorted({r["returncode"] for r in runs})
        files, size = c.files, c.bytes
        if row.kind == "worker":
            reports = [r["report"] for r in runs if r["report"] and "work_s" in r["report"]]
            if not reports:
                entry["unavailable"] = (
                    next((r["report"].get("unavailable") for r in runs if r["report"]), None)
                    or (runs[0]["stderr_tail"].splitlines() or ["no report"])[-1]
                )
                table.append(entry)
                continue
            entry["work_s"] = med(r["work_s"] for r in reports)
            # per pass, None where that pass gave no report (keeps passes aligned for pairing)
            entry["work_s_runs"] = [
                r["report"]["work_s"] if r["report"] and "work_s" in r["report"] else None
                for r in runs
            ]
            entry["work_cpu_s"] = med(r.get("work_cpu_s", r["work_s"]) for r in reports)
            entry["setup_s"] = med(r["setup_s"] for r in reports)
            entry["failed"] = max(r["failed"] for r in reports)
            entry["errors"] = reports[-1]["errors"]
        elif row.kind == "deid":
            # Net of the fixed cost: wall minus the same command on the 1-file probe (whose one
            # file is counted off the small corpus; against a large file it is noise).
            probes = raw["probes"].get(row.key) or [(0.0, 0.0)]
            probe = med(wall for wall, _ in probes)
            entry["probe_wall_s"] = probe
            entry["work_s"] = max(entry["wall_s"] - probe, 0.0)
            entry["work_s_runs"] = [max(r["wall_s"] - probe, 0.0) for r in runs]
            cpu = med(r["cpu_s"] for r in runs)
            entry["work_cpu_s"] = max(cpu - med(c for _, c in probes), 0.0)
            if c.name == "small":
                files, size = files - 1, size - _first_size(c)
            entry["failed"] = max(0, c.files - entry["files_out"])
            states = runs[-1].get("states") or {}
            entry["errors"] = {
                f"deid run state {state}": count
                for state, count in states.items()
                if state != "exported"
            }
        else:
            entry["work_s"] = entry["wall_s"]
            entry["work_cpu_s"] = med(r["cpu_s"] for r in runs)
            entry["failed"] = 0
        if not row.cpu_counted:
            entry["work_cpu_s"] = None
        if row.kind == "deid" and entry["work_s"] < 0.05:
            # Below the run-to-run noise of the fixed cost: no meaningful throughput.
            entry["files_per_s"] = entry["mb_per_s"] = entry["ms_per_file"] = entry[
                "cpu_ms_per_file"
            ] = None
            table.append(entry)
            continue
        entry["files_per_s"] = files / entry["work_s"] if files else None
        entry["mb_per_s"] = size / 1e6 / entry["work_s"]
        entry["ms_per_file"] = 1000 * entry["work_s"] / files if files else None
        cpu = entry["work_cpu_s"]
        entry["cpu_ms_per_file"] = 1000 * cpu / files if files and cpu is not None else None
        table.append(entry)
    # Ratios: our 1-worker handler loop on the same corpus against every row.
    for corpus_name in {row["corpus"] for row in table}:
        ours = next(
            (r for r in table if r["key"] == f"ours-1@{corpus_name}" and "work_s" in r), None
        )
        for r in table:
            if r["corpus"] == corpus_name and ours and "work_s" in r and r["key"] != ours["key"]:
                r["ours_speedup"] = _rate(ours) / _rate(r) if _rate(r) else None
    return table


def paired_ratio(slow: dict, fast: dict) -> float | None:
    """Median over the passes of ``slow``'s time / ``fast``'s time for the same work: the two rows
    of a scaling pair run back to back in every pass (``pass_order``), so each pass's ratio compares
    them under the same conditions, whatever the shared machine does from one pass to the next."""
    pairs = list(zip(slow.get("work_s_runs") or [], fast.get("work_s_runs") or [], strict=False))
    ratios = [a / b for a, b in pairs if a and b]  # None (no report) or 0 (below noise): skipped
    return statistics.median(ratios) if ratios else None


def _first_size(c: Corpus) -> int:
    return sum(p.stat().st_size for p in c.probe.rglob("*") if p.is_file())


def _rate(row: dict) -> float:
    """Throughput in MB/s for large files, files/s for the small corpus."""
    if row["corpus"] == "small":
        return row.get("files_per_s") or 0.0
    return row.get("mb_per_s") or 0.0


def targets(table: list[dict], corpora: list[Corpus], jobs: int) -> list[dict]:
    """The issue's targets; throughput against cp only for large files of 100 MB or more."""

    def get(key: str) -> dict | None:
        return next((r for r in table if r["key"] == key and "work_s" in r), None)

    out = []

    def check(
        name: str, value: float | None, goal: str, ok: bool | None, scope: str = "engine"
    ) -> None:
        # The targets are the engine's; `deid run` rows ("product") are measured against
        # the same goals for reference (the whole product: residual-PHI gate, fsynced writes, report).
        out.append({"target": name, "value": value, "goal": goal, "met": ok, "scope": scope})

    def ratio(a: dict | None, b: dict | None) -> float | None:
        return _rate(a) / _rate(b) if a and b and _rate(a) and _rate(b) else None

    def at_least(value: float | None, goal: float) -> bool | None:
        return None if value is None else value >= goal

    ours, fwm, pyd, dcm = (get(f"{k}@small") for k in ("ours-1", "fwm", "pydicom", "dcmanon"))
    if ours and fwm:
        value = ratio(ours, fwm)
        check("ours vs flywheel-migration (small, files/s)", value, ">= 10x", at_least(value, 10))
    if ours and pyd:
        value = ratio(ours, pyd)
        check(
            "ours 1 worker vs bare pydicom read+write (small)", value, ">= 1.0x", at_least(value, 1)
        )
    for a, b, label, scope in (
        (f"ours-pool{jobs}@small", "ours-1@small", f"handler pool {jobs} vs 1 worker", "engine"),
        (
            f"deid-j{jobs}@small",
            "deid-j1@small",
            f"`deid run --jobs {jobs}` vs `--jobs 1`",
            "product",
        ),
    ):
        ra, rb = get(a), get(b)
        if ra and rb:
            value = paired_ratio(rb, ra)
            check(
                f"{label} (small; median of the passes' ratios)",
                value,
                ">= 1.8x",
                at_least(value, 1.8),
                scope,
            )
            check(
                f"{label} (small; ratio of the medians)", ratio(ra, rb), "(reference)", None, scope
            )
    if ours and dcm:
        value = ratio(ours, dcm)
        check("ours vs dcmanon (small; on the way to 1.0)", value, "-> 1.0x", at_least(value, 1))
    for prefix, who, scope in (("ours-1", "ours", "engine"), ("deid-j1", "`deid run`", "product")):
        rss = []
        for row in table:
            if row["key"].startswith(f"{prefix}@large") and "work_s" in row:
                cp = get(f"cp@{row['corpus']}")
                big = next(c for c in corpora if c.name == row["corpus"]).bytes >= 100e6
                if cp and big and row.get("mb_per_s") and cp.get("mb_per_s"):
                    share = row["mb_per_s"] / cp["mb_per_s"]
                    check(
                        f"{who} vs cp throughput ({row['corpus']})",
                        share,
                        ">= 0.5",
                        share >= 0.5,
                        scope,
                    )
                rss.append(row["maxrss_mb"])
                check(
                    f"{who} peak RSS MB ({row['corpus']})",
                    row["maxrss_mb"],
                    "< 150 MB",
                    row["maxrss_mb"] < 150,
                    scope,
                )
        if len(rss) > 1:
            spread = max(rss) - min(rss)
            check(
                f"{who} peak RSS spread across large sizes, MB (flat)",
                spread,
                "flat (< 10 MB)",
                spread < 10,
                scope,
            )
    return out


# -- output ----------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(meta: dict, table: list[dict], goals: list[dict]) -> str:
    lines = [
        f"Run {meta['started']} on {meta['cpus']} CPUs, load average {meta['load_before']} -> "
        f"{meta['load_after']}; {meta['repeats']} interleaved repeats ({meta['large_repeats']} on large "
        f"files) after {meta['warmup']} warm-up pass, medians.",
        "",
    ]
    for c in meta["corpora"]:
        lines.append(f"- `{c['name']}`: {c['files']} files, {c['bytes'] / 1e6:,.1f} MB")
    lines += [
        "",
        "| corpus | contestant | files/s | MB/s | ms/file | CPU ms/file | wall s | peak RSS MB (max proc / tree) | failed | ours ÷ this (speed) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        if "work_s" not in r:
            lines.append(
                f"| {r['corpus']} | {r['label']} | n/a | | | | | | | ({r.get('unavailable', '')}) |"
            )
            continue
        speed = r.get("ours_speedup")
        lines.append(
            f"| {r['corpus']} | {r['label']} | {_fmt(r['files_per_s'])} | {_fmt(r['mb_per_s'])} | "
            f"{_fmt(r['ms_per_file'], 2)} | {_fmt(r.get('cpu_ms_per_file'), 2)} | "
            f"{_fmt(r['wall_s'], 2)} | "
            f"{_fmt(r['maxrss_mb'], 0)} / {_fmt(r['tree_rss_mb'], 0)} | {r['failed']} | "
            f"{'ref' if r['key'].startswith('ours-1@') else _fmt(speed, 2) + 'x' if speed else '-'} |"
        )
    for scope, title in (
        ("engine", "The issue's targets (the engine: rows `ours`):"),
        ("product", "The whole product (`deid run`) against the same goals, for reference:"),
    ):
        rows = [g for g in goals if g.get("scope", "engine") == scope]
        if not rows:
            continue
        lines += ["", title, "", "| target | measured | goal | met |", "|---|---:|---|---|"]
        for g in rows:
            met = {True: "yes", False: "**no**", None: "-"}[g["met"]]
            lines.append(f"| {g['target']} | {_fmt(g['value'], 2)} | {g['goal']} | {met} |")
    notes = [r for r in table if r.get("errors")]
    if notes:
        lines += ["", "Failures by kind (last repeat):"]
        for r in notes:
            for error, count in r["errors"].items():
                lines.append(f"- {r['key']}: {count} x {error}")
    return "\n".join(lines) + "\n"


def versions() -> dict:
    def ver(python: Path, module: str) -> str | None:
        if not python.exists():
            return None
        code = f"import importlib.metadata as m; print(m.version('{module}'))"
        res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
        return res.stdout.strip() or None

    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "fw-gear-deid": f"{ver(our_python(), 'fw-gear-deid')} ({rev})",
        "pydicom": ver(our_python(), "pydicom"),
        "flywheel-migration": ver(venv_python("flywheel-migration"), "flywheel-migration"),
        "dcmanon": ver(venv_python("dcmanon"), "dcmanon"),
    }


def hot_profile(args: argparse.Namespace, corpora: list[Corpus]) -> None:
    """pyinstrument over our 1-worker handler loop and over `deid run` (inline) on each corpus."""
    for c in corpora:
        stem = RESULTS / f"profile-{c.name}"
        dst = args.data / f"out-{os.getpid()}" / f"profile-{c.name}"
        shutil.rmtree(dst, ignore_errors=True)
        argv = [*worker_argv(our_python(), "ours", OUR_PROFILE), "--pyinstrument", str(stem)]
        argv = [part.format(src=c.path, dst=dst) for part in argv]
        res = subprocess.run(argv, env={**os.environ, "DEID_SECRET": SECRET}, cwd=ROOT, check=False)
        shutil.rmtree(dst, ignore_errors=True)
        if res.returncode == 0:
            print(f"profile: {stem.with_suffix('.txt')} and .html")
        # The whole product path, inline (--jobs 1), so every stage is in one process.
        stem = RESULTS / f"profile-deid-run-{c.name}"
        report = dst.parent / f"{dst.name}.report"
        argv = [
            str(our_python()), "-m", "pyinstrument", "-i", "0.0005", "-r", "text", "-o",
            str(stem.with_suffix(".txt")), "-m", "fw_gear_deid.cli", "run", str(c.path), str(dst),
            "--profile", str(OUR_PROFILE), "--no-progress", "--report-dir", str(report),
        ]  # fmt: skip
        res = subprocess.run(argv, env={**os.environ, "DEID_SECRET": SECRET}, cwd=ROOT, check=False)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(report, ignore_errors=True)
        if stem.with_suffix(".txt").exists():
            print(f"profile: {stem.with_suffix('.txt')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs first")
    parser.add_argument("--data", type=Path, default=BENCH / ".data", help="corpus and scratch")
    parser.add_argument("--files", type=int, default=300, help="small files (0: none)")
    parser.add_argument("--large-size", default="2G", help="comma-separated, e.g. 2M,200M,2G")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--large-repeats",
        type=int,
        help="repeats for the large files (default: --repeats); the slow peers load 2 GB whole",
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="N for the N-worker rows (default 2)")
    parser.add_argument("--only", help="comma-separated row keys, e.g. ours-1,pydicom,cp")
    parser.add_argument(
        "--large-peers", action="store_true", help="also run flywheel-migration on large files"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--quick", action="store_true", help="50 files, 20M large, 2 repeats")
    parser.add_argument(
        "--hot-profile", action="store_true", help="pyinstrument our loop, no table"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.large_size, args.repeats = 50, "20M", 2
    if args.large_repeats is None:
        args.large_repeats = args.repeats
    args.large_repeats = min(args.large_repeats, args.repeats)
    if args.setup:
        setup_envs()
    corpora = prepare_corpora(args)
    if args.hot_profile:
        hot_profile(args, corpora)
        return 0
    rows = build_contestants(args, [c.name for c in corpora])
    for row in rows:
        if row.unavailable:
            print(f"skip {row.key}: {row.unavailable}")
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    raw = run_all(args, corpora, rows)
    table = summarise(rows, corpora, raw, args.jobs)
    goals = targets(table, corpora, args.jobs)
    meta = {
        "started": started,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "repeats": args.repeats,
        "large_repeats": args.large_repeats,
        "warmup": args.warmup,
        "jobs": args.jobs,
        "versions": versions(),
        "corpora": [
            {"name": c.name, "files": c.files, "bytes": c.bytes, "path": str(c.path)}
            for c in corpora
        ],
    }
    text = markdown(meta, table, goals)
    print()
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = started.replace(":", "").replace("-", "")
    payload = {"meta": meta, "table": table, "targets": goals, "raw": raw}
    for name in (f"bench-{stamp}", "latest"):
        (args.results / f"{name}.json").write_text(
            json.dumps(payload, indent=2, default=str) + "\n"
        )
        (args.results / f"{name}.md").write_text(text)
    print(f"results: {args.results / f'bench-{stamp}.md'} (+ .json, latest.*)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
