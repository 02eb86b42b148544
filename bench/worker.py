"""One benchmark contestant, run in its own process (and virtual environment) by ``bench/run.py``.

Standard library only at import time, so any tool's venv can run it::

    <venv>/bin/python bench/worker.py TOOL --src DIR_OR_FILE --dst DIR [--profile P] [--jobs N]

TOOL is ``ours`` (our engine through its public API: ``build_handlers(profile.data)`` then
``handler.deidentify(src, dst, ctx)`` per file), ``pydicom`` (bare ``dcmread`` + ``dcmwrite``),
``flywheel-migration`` (``DeIdProfile.process_file``) or ``dcmanon`` (``Anonymizer().anonymize``).

Prints one JSON line: files, failures, input/output bytes, ``setup_s`` (imports + profile loading)
and ``work_s`` (the per-file loop only). Peak memory is measured by the parent (``wait4``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

T0 = time.perf_counter()

#: Worker-side state for ``--jobs N`` pools (set in the parent before it forks the workers).
_STATE: dict = {}
#: How long the pool's parent and workers wait for each other's warm-up before giving up.
_READY_TIMEOUT_S = 600


def list_files(src: Path) -> list[Path]:
    """Every file under ``src`` (or ``src`` itself), sorted, hidden names and sidecars excluded."""
    if src.is_file():
        return [src]
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root, n) for n in sorted(names) if not n.startswith("."))
    return files


def relative(path: Path, src: Path) -> Path:
    return Path(path.name) if src.is_file() else path.relative_to(src)


# -- contestants: each returns a function (src_file, dst_dir, rel) -> bytes written ------------------------


def setup_ours(args: argparse.Namespace) -> Callable[[Path, Path, Path], int]:
    from fw_gear_deid.formats import DeidContext, build_handlers
    from fw_gear_deid.keys import Keys
    from fw_gear_deid.profile import load_profile

    profile = load_profile(args.profile)
    handlers = build_handlers(profile.data)
    keys = Keys(os.environ.get("DEID_SECRET") or "bench-secret-not-for-production")

    def one(src: Path, dst_dir: Path, rel: Path) -> int:
        with open(src, "rb") as handle:
            head = handle.read(132)
        handler = handlers.match(src.name, head)
        if handler is None:
            raise LookupError("no handler matches")
        subject = rel.parts[0] if len(rel.parts) > 1 else None
        ctx = DeidContext(keys=keys, subject=subject, source_name=src.name)
        tmp = dst_dir / f".{src.name}.tmp"
        outcome = handler.deidentify(src, tmp, ctx)
        final = dst_dir / (outcome.output_name or src.name)
        os.replace(tmp, final)
        return final.stat().st_size

    return one


def setup_pydicom(args: argparse.Namespace) -> Callable[[Path, Path, Path], int]:
    import pydicom

    def one(src: Path, dst_dir: Path, rel: Path) -> int:
        ds = pydicom.dcmread(src)
        dst = dst_dir / src.name
        pydicom.dcmwrite(dst, ds)
        return dst.stat().st_size

    return one


def setup_flywheel_migration(args: argparse.Namespace) -> Callable[[Path, Path, Path], int]:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from flywheel_migration.deidentify import load_profile
    from fs.osfs import OSFS

    profile = load_profile(str(args.profile))
    filesystems: dict[Path, OSFS] = {}

    def osfs(path: Path) -> OSFS:
        fs = filesystems.get(path)
        if fs is None:
            fs = filesystems[path] = OSFS(str(path))
        return fs

    def one(src: Path, dst_dir: Path, rel: Path) -> int:
        # process_file returns False for DICOM even on success (DicomFileProfile.process_files
        # drops the return value): outputs are counted from the destination tree afterwards.
        profile.process_file(osfs(src.parent), src.name, osfs(dst_dir))
        return 0

    return one


def setup_dcmanon(args: argparse.Namespace) -> Callable[[Path, Path, Path], int]:
    from dcmanon import Anonymizer

    anonymizer = Anonymizer()

    def one(src: Path, dst_dir: Path, rel: Path) -> int:
        data = anonymizer.anonymize(str(src))
        with open(dst_dir / src.name, "wb") as handle:
            handle.write(data)
        return len(data)

    return one


SETUPS = {
    "ours": setup_ours,
    "pydicom": setup_pydicom,
    "flywheel-migration": setup_flywheel_migration,
    "dcmanon": setup_dcmanon,
}


# -- the loop ---------------------------------------------------------------------------------------------


def _pool_ready() -> None:
    """Pool initializer: one untimed call of this worker's own, then wait for the others.

    A forked worker's first files copy the parent's pages it writes to (reference counts, caches):
    a cost paid once per worker, which a project of thousands of files does not notice but a
    300-file corpus would count as a per-file cost. The parent starts its clock after the barrier.
    """
    warm_up(_STATE["one"], _STATE["jobs"], _STATE["scratch"] / f".warm-up-{os.getpid()}")
    _STATE["ready"].wait(timeout=_READY_TIMEOUT_S)


def _pool_drain(_: int) -> tuple[float, list[tuple[int, tuple[int, int, str | None]]]]:
    """Take the next file from the shared counter until none is left: no per-file round trip
    through the parent (which shares the cores), and no worker idles while the other still has a
    queue, whatever the files cost. Returns this worker's CPU seconds for the loop and its results.
    """
    one, jobs, counter = _STATE["one"], _STATE["jobs"], _STATE["next"]
    cpu = time.process_time()
    done = []
    while True:
        with counter.get_lock():
            index = counter.value
            counter.value = index + 1
        if index >= len(jobs):
            return time.process_time() - cpu, done
        done.append((index, _run_one(one, *jobs[index])))


def _run_one(one: Callable, src: Path, dst_dir: Path, rel: Path) -> tuple[int, int, str | None]:
    size = src.stat().st_size
    try:
        return size, one(src, dst_dir, rel), None
    except Exception as error:
        # One line per kind of failure: the file's own name/path is masked so failures group.
        text = (str(error).splitlines() or [""])[0][:200]
        text = text.replace(str(src), "<file>").replace(src.name, "<file>")
        return size, 0, f"{type(error).__name__}: {text}"


def warm_up(one: Callable, jobs: list[tuple[Path, Path, Path]], scratch: Path) -> None:
    """One untimed call on the first file, into a scratch folder that is then removed: lazy imports
    and first-use caches (every contestant has some) are set up before the timed loop, and before a
    pool forks, so N workers do not each pay for them. The loop then measures the steady state that
    a project of thousands of files sees."""
    if not jobs:
        return
    src, _, rel = jobs[0]
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        _run_one(one, src, scratch, rel)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def jobs_for(files: list[Path], src: Path, dst: Path) -> Iterator[tuple[Path, Path, Path]]:
    made: set[Path] = set()
    for path in files:
        rel = relative(path, src)
        dst_dir = dst / rel.parent
        if dst_dir not in made:
            dst_dir.mkdir(parents=True, exist_ok=True)
            made.add(dst_dir)
        yield path, dst_dir, rel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark contestant")
    parser.add_argument("tool", choices=sorted(SETUPS))
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (ours only)")
    parser.add_argument(
        "--pyinstrument", type=Path, help="profile the loop; write text+HTML to this path stem"
    )
    args = parser.parse_args(argv)
    files = list_files(args.src)
    args.dst.mkdir(parents=True, exist_ok=True)
    jobs = list(jobs_for(files, args.src, args.dst))

    try:
        one = SETUPS[args.tool](args)
        warm_up(one, jobs, args.dst / ".warm-up")
        if args.jobs > 1:
            # Set up once, then fork: every worker starts with the handlers built (copy-on-write),
            # so the timed loop holds no per-worker setup.
            import multiprocessing

            context = multiprocessing.get_context("fork")
            _STATE.update(
                one=one,
                jobs=jobs,
                scratch=args.dst,
                next=context.Value("q", 0),
                ready=context.Barrier(args.jobs + 1),
            )
            # Objects built so far move to a permanent generation: the workers' collections then
            # do not touch (and so copy) the pages they share with the parent.
            gc.freeze()
            pool = context.Pool(args.jobs, initializer=_pool_ready)
            try:
                _STATE["ready"].wait(timeout=_READY_TIMEOUT_S)
            except threading.BrokenBarrierError:
                pool.terminate()
                raise RuntimeError(
                    f"the {args.jobs} pool workers were not all ready after their warm-up call "
                    f"within {_READY_TIMEOUT_S} s (one died or hung)"
                ) from None
            one = None
    except Exception as error:
        print(
            json.dumps({"tool": args.tool, "unavailable": f"{type(error).__name__}: {error}"}),
            flush=True,
        )
        traceback.print_exc()
        return 3

    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    setup_s = time.perf_counter() - T0
    start = time.perf_counter()
    # this process's CPU, plus that of any child a contestant waits for inside the loop
    cpu_start = time.process_time(), sum(os.times()[2:4])
    workers_cpu_s = 0.0
    if one is not None:
        results = [_run_one(one, src, dst_dir, rel) for src, dst_dir, rel in jobs]
    else:
        # One task per worker, each draining the shared queue of files (see _pool_drain).
        parts = pool.map(_pool_drain, range(args.jobs), chunksize=1)
        workers_cpu_s = sum(cpu for cpu, _ in parts)
        drained = sorted((pair for _, done in parts for pair in done), key=lambda pair: pair[0])
        results = [result for _, result in drained]
    # The clock stops when the last result is in: the pool's shutdown below, like a single worker's
    # exit, is not per-file work (nor are the workers' warm-up calls, outside their loop's CPU).
    work_s = time.perf_counter() - start
    # The pool's workers are not reaped yet (no children CPU from them): they report their own.
    work_cpu_s = (
        time.process_time() - cpu_start[0] + sum(os.times()[2:4]) - cpu_start[1] + workers_cpu_s
    )
    if one is None:
        pool.close()
        pool.join()
    if profiler is not None:
        profiler.stop()
        args.pyinstrument.parent.mkdir(parents=True, exist_ok=True)
        args.pyinstrument.with_suffix(".txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False)
        )
        args.pyinstrument.with_suffix(".html").write_text(profiler.output_html())

    out_files = list_files(args.dst)
    errors = Counter(error for _, _, error in results if error)
    failed = sum(errors.values())
    print(
        json.dumps(
            {
                "tool": args.tool,
                "jobs": args.jobs,
                "files": len(results),
                "failed": failed,
                "bytes_in": sum(size for size, _, error in results),
                "bytes_in_ok": sum(size for size, _, error in results if not error),
                "files_out": len(out_files),
                "bytes_out": sum(path.stat().st_size for path in out_files),
                "setup_s": setup_s,
                "work_s": work_s,
                "work_cpu_s": work_cpu_s,
                "errors": dict(errors.most_common(8)),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
