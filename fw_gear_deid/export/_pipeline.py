"""The export pipeline: walk the source, plan, de-identify in workers, check, write, report.

The parent process does every store operation (reads, lookups, container creation, writes); worker
processes only de-identify local files and scan the outputs. Idempotency rests on keyed origin ids:
each destination container and file records one, and a file whose origin id is already at the
destination is not processed again (``--conflict skip``) or is rewritten only when its bytes changed.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from fw_gear_deid import STANDARD_EDITION, __version__
from fw_gear_deid.errors import DeidError
from fw_gear_deid.export._metadata import MetadataResult, container_metadata, file_metadata
from fw_gear_deid.export._report import ReportRow, summarize, write_report
from fw_gear_deid.export._worker import Task, TaskResult, init_worker, process
from fw_gear_deid.formats import SensitiveValue, build_handlers
from fw_gear_deid.keys import DateShiftRange, Keys
from fw_gear_deid.stores import (
    CONFLICT_POLICIES,
    Container,
    FileEntry,
    FileMeta,
    Store,
    is_flywheel_location,
    open_store,
    with_origin,
)

log = logging.getLogger("fw_gear_deid.export")
#: State of a row not processed yet (never in a finished report).
PENDING = "pending"
#: Finished files whose destination write may wait in the writer thread's queue.
_MAX_PENDING_WRITES = 8


@dataclass
class ExportJob:
    """Everything one export needs. ``source``/``destination`` are store locations (see
    :mod:`fw_gear_deid.stores`); the destination is a project."""

    source: str
    destination: str
    report_dir: Path
    profile_path: Path | None = None
    mapping_csv: Path | None = None
    session_level: bool = False
    conflict: str = "skip"
    jobs: int = 1
    #: The job's keys; None: ``$DEID_SECRET``, else the profile's ``salt`` (logged), else refused.
    keys: Keys | None = None
    residual_check: bool = True
    dry_run: bool = False
    #: File mode: a local path (absolute, or relative to the source location) or a Flywheel file id.
    file: str | None = None
    api_key: str | None = None
    #: Used only when the keys are built here (from the environment or the salt).
    date_shift: DateShiftRange | None = None
    #: Name a subject (and session) of a project source by label.
    subject: str | None = None
    session: str | None = None
    #: A separate API key for a Flywheel destination (default: ``api_key``).
    dest_api_key: str | None = None
    #: How an existing destination container is recognised: ``origin-id`` (the keyed id of its
    #: source container; a container with the same label and no origin id is adopted) or ``label``
    #: (any container with the same de-identified label, e.g. one subject exported from two
    #: source projects under one mapped label).
    match_by: str = "origin-id"

    def __repr__(self) -> str:  # keys and API keys are never shown
        return f"ExportJob(source={self.source!r}, destination={self.destination!r})"


@dataclass
class ExportResult:
    exit_code: int
    summary: dict[str, Any]
    report_csv: Path
    report_json: Path
    rows: list[ReportRow] = field(default_factory=list)


@dataclass
class _Item:
    index: int
    chain: list[Container]
    entry: FileEntry
    row: ReportRow
    file_origin: str = ""
    profile: Any = None
    file_meta: FileMeta | None = None
    metas: list[MetadataResult] = field(default_factory=list)
    stack: contextlib.ExitStack | None = None
    out_path: str = ""
    attempts: int = 0


def _profile_salt(profile_data: dict[str, Any]) -> str | None:
    """The profile's hash ``salt`` (set per file section; the dicom one first), if any."""
    sections = [profile_data.get("dicom"), *profile_data.values()]
    for section in sections:
        if isinstance(section, dict) and section.get("salt"):
            return str(section["salt"])
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _worker_context() -> BaseContext:
    """How worker processes start: from a fork server that has imported the worker module once
    (each worker then starts in milliseconds, not after its own half second of imports), else by
    spawning. Neither inherits the parent's threads, sockets or SDK client."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["fw_gear_deid.export._worker"])
    return context


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _Exporter:
    def __init__(self, job: ExportJob, progress: bool | None):
        self.job = job
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.rows: list[ReportRow] = []
        self.summary: dict[str, Any] = {
            "tool": "fw-gear-deid",
            "version": __version__,
            "standard_edition": STANDARD_EDITION,
            "started": _now(),
            "conflict": job.conflict,
            "jobs": job.jobs,
            "residual_check": job.residual_check,
            "dry_run": job.dry_run,
            "mode": "file" if job.file else "container",
            "mapping_csv": Path(job.mapping_csv).name if job.mapping_csv else None,
        }
        self.source: Store | None = None
        self.dest: Store | None = None
        self.keys: Keys | None = None
        self._dest_containers: dict[str, Container | None] = {}
        self._meta_cache: dict[tuple[str, str], MetadataResult] = {}
        self._names_written: dict[tuple[str, str], str] = {}
        self._dest_index: dict[str, dict[str | None, FileEntry]] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._hash_in_worker = True
        self._writes: collections.deque[Future[None]] = collections.deque()

    # -- setup ------------------------------------------------------------------------------------
    def _open(self) -> None:
        job = self.job
        if job.conflict not in CONFLICT_POLICIES:
            raise DeidError(f"conflict policy must be one of {', '.join(CONFLICT_POLICIES)}")
        self.source = open_store(
            job.source,
            read_only=True,
            subject=job.subject,
            session=job.session,
            api_key=job.api_key,
        )
        src_dir = getattr(self.source, "project_dir", None)
        if src_dir is not None and not is_flywheel_location(job.destination):
            # Before anything is created: a destination inside the source tree would change it.
            self._check_overlap(src_dir, Path(job.destination).expanduser().absolute().resolve())
        # Read-only until the profile is accepted: a rejected job (or one with no secret) creates
        # nothing, not even the destination project folder.
        self.dest = open_store(
            job.destination,
            read_only=True,
            api_key=job.dest_api_key or job.api_key,
            create=True,
        )
        if self.dest.location.type != "project":
            raise DeidError(f"{self.dest.describe()}: the destination must be a project")
        self._check_not_same()
        self.summary["source"] = self.source.describe()
        self.summary["destination"] = self.dest.describe()
        self.summary["source_type"] = self.source.location.type

    def _check_not_same(self) -> None:
        assert self.source is not None
        assert self.dest is not None
        if self.source.identity != self.dest.identity:
            return
        src_dir = getattr(self.source, "project_dir", None)
        dest_dir = getattr(self.dest, "project_dir", None)
        if src_dir is not None and dest_dir is not None:
            self._check_overlap(src_dir, dest_dir)
        elif self.source.project().id == self.dest.project().id:
            raise DeidError(
                "the destination project is the source project; refusing to write into it"
            )

    @staticmethod
    def _check_overlap(src_dir: Path, dest_dir: Path) -> None:
        for inner, outer in ((dest_dir, src_dir), (src_dir, dest_dir)):
            with contextlib.suppress(ValueError):
                Path(inner).relative_to(outer)
                raise DeidError("source and destination project folders overlap; refusing")

    def _resolve_keys(self, profile_data: dict[str, Any] | None) -> Keys:
        if self.job.keys is not None:
            return self.job.keys
        keys = Keys.from_env(self.job.date_shift)
        if keys is not None:
            return keys
        salt = _profile_salt(profile_data or {})
        if salt:
            log.warning(
                "no secret given: keyed pseudonyms, UIDs and date offsets are derived from the "
                "profile's salt, so they are only as secret as the profile"
            )
            self.summary["keys_from"] = "profile salt"
            return Keys(str(salt), self.job.date_shift)
        raise DeidError(
            "no de-identification secret: give --secret-file or set $DEID_SECRET "
            "(or set `salt` in the profile)"
        )

    # -- origin ids -------------------------------------------------------------------------------
    def _origin(self, *parts: str) -> str:
        assert self.keys is not None
        assert self.source is not None
        return self.keys.pseudonym("|".join((self.source.identity, *parts)), 32, "origin")

    def container_origin(self, container: Container) -> str:
        return self._origin(container.type, container.id)

    def file_origin(self, container: Container, entry: FileEntry) -> str:
        return self._origin("file", container.type, container.id, entry.name)

    # -- planning ---------------------------------------------------------------------------------
    def _label_path(self, chain: list[Container]) -> str:
        return "/".join(container.label for container in chain)

    def _walk(self) -> Iterator[tuple[list[Container], FileEntry]]:
        assert self.source is not None
        if self.job.file:
            container, entry = self.source.find_file(self.job.file)
            chain = [*self.source.parents(container), container]
            if self.source.location.id not in {c.id for c in chain}:
                raise DeidError(f"{self.job.file}: not under the source {self.source.describe()}")
            yield chain, entry
            return
        location = self.source.location
        yield from self._walk_container([*self.source.parents(location), location])

    def _walk_container(
        self, chain: list[Container]
    ) -> Iterator[tuple[list[Container], FileEntry]]:
        assert self.source is not None
        container = chain[-1]
        for name, reason, in_scope in self.source.skipped_entries(container):
            self.rows.append(
                ReportRow(
                    self._label_path(chain), container.type, name, "skipped", reason, in_scope
                )
            )
        for entry in self.source.files(container):
            yield chain, entry
        for child in self.source.children(container):
            yield from self._walk_container([*chain, child])

    # -- metadata and destination containers ------------------------------------------------------
    def _subject_key(self, chain: list[Container]) -> str | None:
        return chain[1].label if len(chain) > 1 else None

    def _container_meta(
        self, container: Container, profile: Any, chain: list[Container]
    ) -> MetadataResult:
        assert self.keys is not None
        key = (container.id, getattr(profile, "sha256", ""))
        cached = self._meta_cache.get(key)
        if cached is None:
            data = {} if profile is None else profile.data
            cached = container_metadata(
                container,
                data,
                self.keys,
                self.container_origin(container),
                self._subject_key(chain) or "",
            )
            self._meta_cache[key] = cached
        return cached

    def _dest_chain(self, item: _Item, create: bool) -> list[Container] | None:
        """The destination containers of ``item``'s chain below the project (created when asked)."""
        assert self.dest is not None
        parent = self.dest.location
        result = [parent]
        for container, meta in zip(item.chain[1:], item.metas, strict=True):
            known = self._dest_containers.get(container.id)
            if known is None:
                origin = self.container_origin(container)
                if create:
                    known = self.dest.ensure_child(
                        parent,
                        container.type,
                        origin,
                        meta.meta,
                        match_label=self.job.match_by == "label",
                    )
                else:
                    known = self.dest.find_child(parent, container.type, origin)
                    if known is None:
                        return None
                self._dest_containers[container.id] = known
            parent = known
            result.append(parent)
        return result

    # -- per item ---------------------------------------------------------------------------------
    def _prepare(self, item: _Item, profiles: Any, opted_out: bool) -> bool:
        """Fill in the item's profile and metadata; False when a row state is already decided."""
        chain = item.chain
        subject = chain[1].label if len(chain) > 1 else None
        try:
            item.profile = profiles.for_chain(chain)
        except DeidError as error:
            item.row.state, item.row.reason = "error", str(error)
            return False
        item.metas = [self._container_meta(c, item.profile, chain) for c in chain[1:]]
        if self.job.residual_check and not opted_out:
            from fw_gear_deid.check import ResidualGate

            # Every container is scanned for what any container of the chain removed: a session
            # label repeating the subject's removed MRN is a leak too.
            chain_gate = ResidualGate(self._chain_sensitive(item))
            for container, meta in zip(chain[1:], item.metas, strict=True):
                hits = list(chain_gate.scan_metadata(container.type, meta.record()))
                if hits:
                    where = ", ".join(f"{hit.path} ({hit.kind})" for hit in hits[:10])
                    item.row.state = "blocked"
                    item.row.reason = f"residual PHI in {container.type} metadata at {where}"
                    return False
        assert self.keys is not None
        fmeta = file_metadata(
            item.entry,
            item.profile.data if item.profile is not None else {},
            self.keys,
            subject or "",
            opted_out=opted_out,
        )
        item.file_origin = self.file_origin(chain[-1], item.entry)
        item.file_meta = fmeta.meta
        item.file_meta.info = with_origin(fmeta.meta.info, item.file_origin)
        item.row.actions = [{"path": c.path, "action": c.action} for c in fmeta.changes]
        for meta in item.metas:
            item.row.actions += [{"path": c.path, "action": c.action} for c in meta.changes]
        return True

    @staticmethod
    def _chain_sensitive(item: _Item) -> list[SensitiveValue]:
        return [value for meta in item.metas for value in meta.sensitive]

    def _already_exported(self, item: _Item) -> bool:
        if self.job.conflict != "skip":
            return False
        assert self.dest is not None
        dest_chain = self._dest_chain(item, create=False)
        if dest_chain is None:
            return False
        container = dest_chain[-1]
        index = self._dest_index.get(container.id)
        if index is None:  # one listing per destination container, not one per file
            index = {e.origin_id: e for e in self.dest.files(container) if e.origin_id}
            self._dest_index[container.id] = index
        by_origin = index.get(item.file_origin)
        if by_origin is None:
            return False
        self._fill_dest(item.row, dest_chain, by_origin.name, by_origin.id)
        item.row.state, item.row.reason = "exported", "already exported (same origin id)"
        item.row.write = "unchanged"
        return True

    def _fill_dest(self, row: ReportRow, chain: list[Container], name: str, file_id: str) -> None:
        row.dest_container = self._label_path(chain)
        row.dest_container_id = chain[-1].id
        row.dest_file, row.dest_file_id = name, file_id

    def _task(self, item: _Item, tmp_root: Path, opted_out: bool) -> Task:
        assert self.source is not None
        item.stack = contextlib.ExitStack()
        src = item.stack.enter_context(self.source.local_file(item.entry))
        item.out_path = str(tmp_root / f"item-{item.index}.out")
        metadata = [(c.type, m.record()) for c, m in zip(item.chain[1:], item.metas, strict=True)]
        assert item.file_meta is not None
        metadata.append(("file", MetadataResult(item.file_meta).record()))
        profile = item.profile
        return Task(
            index=item.index,
            src=str(src),
            source_name=item.entry.name,
            out_path=item.out_path,
            profile_key=getattr(profile, "sha256", ""),
            profile_data=None if opted_out else profile.data,
            subject=self._subject_key(item.chain),
            # One offset per subject across formats: the dicom section's date-increment (often
            # rendered from the mapping CSV) for sections that set none; else the keyed offset.
            date_offset_days=None if opted_out else _subject_offset(profile.data),
            metadata=metadata,
            chain_sensitive=self._chain_sensitive(item),
            residual_check=self.job.residual_check and not opted_out,
            hash_output=self._hash_in_worker,
            sync_output=self._hash_in_worker,  # the same case: local destination, N workers
        )

    def _finish(self, item: _Item, result: TaskResult) -> None:
        row = item.row
        row.handler = result.handler
        row.actions = [{"path": p, "action": a} for p, a in result.changes] + row.actions
        try:
            if result.state == "ok":
                self._write(item, result)
            elif result.state == "unsupported":
                row.state, row.reason = "skipped", result.reason
            else:
                row.state, row.reason = result.state, result.reason
        except Exception as error:  # a store failure affects this file only
            row.state, row.reason = "error", f"writing the destination failed: {_first_line(error)}"
        finally:
            if item.stack is not None:
                item.stack.close()
            Path(item.out_path).unlink(missing_ok=True)

    def _write(self, item: _Item, result: TaskResult) -> None:
        assert self.dest is not None
        assert item.file_meta is not None
        row = item.row
        if self.job.dry_run:
            row.state, row.reason = "exported", "dry run: nothing written"
            row.dest_file = result.output_name
            return
        dest_chain = self._dest_chain(item, create=True)
        assert dest_chain is not None
        container = dest_chain[-1]
        name = result.output_name
        other = self._names_written.get((container.id, name))
        if other is not None and other != item.file_origin:
            row.state = "error"
            row.reason = f"another source file in this run produced the output name {name!r}"
            return
        by_origin, by_name = self.dest.find_dest_file(container, name, item.file_origin)
        if (
            by_name is not None
            and by_name.origin_id != item.file_origin
            and self.job.conflict == "skip"
        ):
            self._fill_dest(row, dest_chain, by_name.name, by_name.id)
            row.state = "skipped"
            row.reason = (
                "a different file with this name is at the destination (conflict policy skip)"
            )
            return
        if by_origin is not None and self.job.conflict == "skip":
            self._fill_dest(row, dest_chain, by_origin.name, by_origin.id)
            row.state, row.reason, row.write = (
                "exported",
                "already exported (same origin id)",
                "unchanged",
            )
            return
        from fw_gear_deid.stores.local import LocalStore

        # the worker hashed its output already: a local store need not read it again
        known: dict[str, Any] = (
            {"sha256": result.sha256} if result.sha256 and isinstance(self.dest, LocalStore) else {}
        )
        if isinstance(self.dest, LocalStore) and result.output_path == item.out_path:
            known["move"] = True  # our scratch output (never an opted-out source file): rename it
            known["synced"] = result.synced
        written = self.dest.write_file(
            container,
            name,
            Path(result.output_path),
            item.file_meta,
            self.job.conflict,
            existing=by_origin or by_name,
            **known,
        )
        self._names_written[(container.id, name)] = item.file_origin
        self._fill_dest(row, dest_chain, written.entry.name, written.entry.id)
        row.state, row.write = "exported", written.action
        if result.reason:
            row.reason = result.reason

    def note_copied_labels(self) -> None:
        """Say how many destination labels are source labels copied without a rule: the gate checks
        them only against the identifiers of each file written under them."""
        copied = {key[0] for key, meta in self._meta_cache.items() if meta.label_copied}
        self.summary["labels_copied_without_rule"] = len(copied)
        if copied and not self.summary.get("profile", {}).get("opted_out"):
            log.warning(
                "%d container label(s) were copied from the source (no flywheel: rule names label); "
                "the residual-PHI check compares them with each file's own identifiers only",
                len(copied),
            )

    # -- run --------------------------------------------------------------------------------------
    def run(self) -> int:
        from fw_gear_deid.export._profiles import SubjectProfiles, choose_profile

        self._open()
        assert self.dest is not None
        chosen = choose_profile(self.job.profile_path, self.dest)
        self.summary["profile"] = {
            "level": chosen.level,
            "source": chosen.source,
            "sha256": getattr(chosen.profile, "sha256", None),
            "opted_out": chosen.opted_out,
            "rejected": chosen.rejected,
            "issues_by_level": chosen.issues_by_level,
            "states": chosen.states,
        }
        if chosen.rejected or chosen.profile is None:
            self.summary["reason"] = "no valid profile at any level: nothing written"
            return 1
        if chosen.opted_out:
            log.info("profile at level %s opts out: files are copied unchanged", chosen.level)
        elif not chosen.profile.is_template:
            # Build the handlers once here so a section no handler can take fails the job up front
            # (exit 2) instead of failing every file in the workers.
            try:
                build_handlers(chosen.profile.data)
            except Exception as error:
                raise DeidError(f"the profile cannot be applied: {_first_line(error)}") from None
        from fw_gear_deid.check import GateConfig

        if chosen.opted_out:
            # Nothing is de-identified, so there is nothing to check against: say so plainly.
            gate_config = GateConfig.disabled(f"the {chosen.level} profile opts out")
        elif self.job.residual_check:
            gate_config = GateConfig()
        else:
            gate_config = GateConfig.disabled("turned off by request (--no-residual-check)")
        gate_config.announce(log)
        self.summary.update(gate_config.report_fields())
        self.keys = self._resolve_keys(chosen.profile.data)
        self.summary["keys_fingerprint"] = self.keys.fingerprint
        profiles = SubjectProfiles(chosen, self.job.mapping_csv, self.job.session_level)
        # Walk the source first: a source error (no such file in file mode) leaves no destination.
        items: list[_Item] = []
        for chain, entry in self._walk():
            row = ReportRow(self._label_path(chain), chain[-1].type, entry.name, PENDING)
            item = _Item(len(items), chain, entry, row)
            items.append(item)
        self.rows.extend(item.row for item in items)
        if not self.job.dry_run:
            self.dest.close()
            self.dest = open_store(
                self.job.destination,
                read_only=False,
                api_key=self.job.dest_api_key or self.job.api_key,
                create=True,
            )
        self._process_all(items, profiles, chosen.opted_out)
        return 0

    def _process_all(self, items: list[_Item], profiles: Any, opted_out: bool) -> None:
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), unit="file", file=sys.stderr, dynamic_ncols=True)
        done = 0
        step = max(1, len(items) // 20)

        tick_lock = threading.Lock()

        def tick() -> None:  # called from the main thread and the writer thread
            nonlocal done
            with tick_lock:
                done += 1
                if bar is not None:
                    bar.update(1)
                elif done % step == 0 or done == len(items):
                    counts = summarize(self.rows)["by_state"]
                    detail = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                    log.info("progress: %d/%d files (%s)", done, len(items), detail)

        pending: list[_Item] = []
        for item in items:
            try:
                done_already = not self._prepare(item, profiles, opted_out) or (
                    self._already_exported(item)
                )
            except Exception as error:  # e.g. an unreadable destination sidecar: this file only
                item.row.state = "error"
                item.row.reason = f"checking the destination failed: {_first_line(error)}"
                done_already = True
            if done_already:
                tick()
            else:
                pending.append(item)
        # Process (and so create destination containers) in keyed order, not source order: creation
        # order is visible at the destination and source order can follow dates or names.
        pending.sort(key=lambda item: item.file_origin)
        from fw_gear_deid.stores.local import LocalStore

        # A local destination holds the outputs on its own file system, so each is renamed into
        # place, not copied; elsewhere (Flywheel, dry run) they go to the system temp folder.
        scratch = (
            self.dest.scratch_dir()
            if isinstance(self.dest, LocalStore) and not self.job.dry_run
            else tempfile.TemporaryDirectory(prefix="deid-export-")
        )
        # Only a local destination reads the worker's digest. Inline (``--jobs 1``), the store hashes
        # the output itself while the kernel writes it out (one pass that overlaps the fsync).
        self._hash_in_worker = (
            isinstance(self.dest, LocalStore) and not self.job.dry_run and self.job.jobs > 1
        )
        with scratch as tmp:
            tmp_root = Path(tmp)
            self._start_writer()
            try:
                if self.job.jobs <= 1:
                    init_worker(self.keys)  # type: ignore[arg-type]
                    for item in pending:
                        self._run_inline(item, tmp_root, opted_out, tick)
                else:
                    self._run_pool(pending, tmp_root, opted_out, tick)
            finally:
                self._stop_writer()  # every write done (or failed) before the report is written
        if bar is not None:
            bar.close()

    # -- the writer thread ------------------------------------------------------------------------
    def _start_writer(self) -> None:
        """With worker processes, destination writes of a local-to-local job run in one background
        thread, in order, so the parent keeps the workers fed while a file is copied and fsynced
        (the fsyncs release the GIL). Each write is the same atomic, fsynced sequence as inline;
        only one thread ever touches the destination store and its caches. Other stores, and
        ``--jobs 1`` (where the thread measured no faster: it competes with the de-identification
        for the GIL), write inline."""
        from fw_gear_deid.stores.local import LocalStore

        self._writes.clear()
        if (
            self.job.jobs > 1
            and isinstance(self.source, LocalStore)
            and isinstance(self.dest, LocalStore)
        ):
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="deid-writer")

    def _finish_later(self, item: _Item, result: TaskResult, tick: Any) -> None:
        """:meth:`_finish` then ``tick``, in the writer thread when there is one."""

        def finish() -> None:
            self._finish(item, result)
            tick()

        if self._writer is None:
            finish()
            return
        self._writes.append(self._writer.submit(finish))
        while self._writes and self._writes[0].done():
            self._writes.popleft().result()  # re-raises what _finish itself did not catch
        while len(self._writes) > _MAX_PENDING_WRITES:  # bounded: outputs wait in the temp folder
            self._writes.popleft().result()

    def _stop_writer(self) -> None:
        if self._writer is None:
            return
        try:
            while self._writes:
                self._writes.popleft().result()
        finally:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _run_inline(self, item: _Item, tmp_root: Path, opted_out: bool, tick: Any) -> None:
        try:
            task = self._task(item, tmp_root, opted_out)
        except Exception as error:
            item.row.state, item.row.reason = (
                "error",
                f"reading the source failed: {_first_line(error)}",
            )
            tick()
            return
        self._finish_later(item, process(task), tick)

    def _run_pool(self, pending: list[_Item], tmp_root: Path, opted_out: bool, tick: Any) -> None:
        context = _worker_context()
        queue = list(reversed(pending))
        limit = self.job.jobs * 2
        while queue:
            pool = ProcessPoolExecutor(self.job.jobs, context, init_worker, (self.keys,))
            running: dict[Future[TaskResult], _Item] = {}
            broken: list[_Item] = []
            try:
                while queue or running:
                    while queue and len(running) < limit and not broken:
                        item = queue.pop()
                        try:
                            task = self._task(item, tmp_root, opted_out)
                        except Exception as error:
                            item.row.state = "error"
                            item.row.reason = f"reading the source failed: {_first_line(error)}"
                            tick()
                            continue
                        try:
                            running[pool.submit(process, task)] = item
                        except BrokenProcessPool:
                            broken.append(item)
                    if broken:
                        broken += list(running.values())
                        running.clear()
                        break
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        item = running.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken.append(item)
                            continue
                        self._finish_later(item, result, tick)
                    if broken:
                        broken += list(running.values())
                        running.clear()
                        break
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            # A worker died (killed, out of memory, crashed in native code): retry each file it may
            # have held once, alone, so one bad file cannot fail its neighbours.
            for item in broken:
                if item.stack is not None:
                    item.stack.close()
                if item.attempts >= 1:
                    item.row.state, item.row.reason = (
                        "error",
                        "the worker process died on this file",
                    )
                    Path(item.out_path).unlink(missing_ok=True)
                    tick()
                else:
                    item.attempts += 1
                    self._run_isolated(item, tmp_root, opted_out, tick)

    def _run_isolated(self, item: _Item, tmp_root: Path, opted_out: bool, tick: Any) -> None:
        context = _worker_context()
        with ProcessPoolExecutor(1, context, init_worker, (self.keys,)) as pool:
            try:
                task = self._task(item, tmp_root, opted_out)
                result = pool.submit(process, task).result()
            except BrokenProcessPool:
                if item.stack is not None:
                    item.stack.close()
                item.row.state, item.row.reason = "error", "the worker process died on this file"
            except Exception as error:
                if item.stack is not None:
                    item.stack.close()
                item.row.state, item.row.reason = "error", _first_line(error)
            else:
                self._finish_later(item, result, tick)
                return
        tick()


def run_export(job: ExportJob, progress: bool | None = None) -> ExportResult:
    """Run one export job and write its report; never raises for a problem with the data.

    Exit codes: 0 every in-scope file exported; 1 some file was not (or the profile was rejected);
    2 the job could not start (unreadable location, no secret, bad option).
    """
    exporter = _Exporter(job, progress)
    try:
        code = exporter.run()
    except DeidError as error:
        exporter.summary["reason"] = _first_line(error)
        log.error("%s", _first_line(error))
        code = 2
    except Exception as error:  # a bug or an unexpected store failure: report it, no traceback
        exporter.summary["reason"] = f"unexpected {type(error).__name__}: {_first_line(error)}"
        log.error("%s", exporter.summary["reason"])
        code = 2
    finally:
        for store in (exporter.source, exporter.dest):
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()
    rows = exporter.rows
    exporter.note_copied_labels()
    for row in rows:
        if row.state == PENDING:  # the job stopped before this file (a store failure): say so
            row.state, row.reason = "error", "not processed: the job stopped early"
    exporter.summary.update(summarize(rows))
    if code == 0 and any(row.state != "exported" for row in rows if row.in_scope):
        code = 1
    exporter.summary["finished"] = _now()
    exporter.summary["exit_code"] = code
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"deid-report-{stamp}-{uuid.uuid4().hex[:6]}"
    csv_path, json_path = write_report(Path(job.report_dir), stem, rows, exporter.summary)
    return ExportResult(code, exporter.summary, csv_path, json_path, rows)


def _subject_offset(profile_data: Mapping[str, Any]) -> float | None:
    dicom = profile_data.get("dicom")
    if isinstance(dicom, Mapping) and dicom.get("date-increment") is not None:
        return float(dicom["date-increment"])
    return None
