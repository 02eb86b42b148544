"""The per-file work done in worker processes: match a handler, de-identify, scan for residual PHI.

Workers receive local paths and plain data, never a store. Handlers are built once per profile in each
worker (cached by the profile's sha256), so a job with one profile builds them once per worker.
Sensitive source values stay inside the worker: only paths, actions and hit kinds come back.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fw_gear_deid.check import guarded
from fw_gear_deid.errors import DeidError, MalformedFileError, UnsupportedFileError
from fw_gear_deid.formats import (
    DeidContext,
    DeidOutcome,
    HandlerSet,
    SensitiveValue,
    build_handlers,
)
from fw_gear_deid.keys import Keys

#: Bytes read from the start of a file to match handler signatures (DICOM needs 132).
HEAD_BYTES = 8192

_STATE: dict[str, Any] = {"keys": None, "handlers": {}}


@dataclass
class Task:
    index: int
    src: str
    source_name: str
    #: Where the de-identified output goes (a file name in the job's temporary folder).
    out_path: str
    profile_key: str
    #: The validated profile data; None for an opt-out (files copied unchanged).
    profile_data: dict[str, Any] | None
    subject: str | None
    date_offset_days: int | None
    #: Destination metadata the file will sit under, as ``(kind, record)``, for the residual scan.
    metadata: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: What the ``flywheel:`` rules removed from the file's containers: the file must not hold it.
    chain_sensitive: list[SensitiveValue] = field(default_factory=list)
    residual_check: bool = True
    #: Hash the output here (a worker process, in parallel with the others). False where nothing
    #: would use the digest, or where the store hashes it while the output is fsynced (``--jobs 1``).
    hash_output: bool = True
    #: fsync the output here too (workers in parallel): a local store then only renames it, and
    #: its one writer thread is not the bottleneck of a ``--jobs N`` run.
    sync_output: bool = False


@dataclass
class TaskResult:
    index: int
    #: ``ok``, ``unsupported``, ``quarantined``, ``blocked`` or ``error``.
    state: str
    reason: str = ""
    handler: str = ""
    output_name: str = ""
    output_path: str = ""
    sha256: str = ""
    #: The output's content is on disk (fsynced by the worker).
    synced: bool = False
    changes: list[tuple[str, str]] = field(default_factory=list)
    hits: list[tuple[str, str]] = field(default_factory=list)


def init_worker(keys: Keys) -> None:
    """Process initializer: keep the job's keys; handlers are built on first use per profile."""
    _STATE["keys"] = keys
    _STATE["handlers"] = {}


def _allowed(profile_key: str, profile_data: dict[str, Any]) -> tuple[str, ...]:
    """Every ``replace-with`` constant of the profile: written by design, so never a leak even when
    the source already held it (re-running on de-identified data)."""
    cache: dict[str, tuple[str, ...]] = _STATE.setdefault("allow", {})
    if profile_key not in cache:
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "replace-with" and isinstance(value, str | int | float):
                        found.append(str(value))
                    else:
                        walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk({k: v for k, v in profile_data.items() if k != "flywheel"})
        cache[profile_key] = tuple(dict.fromkeys(found))
    return cache[profile_key]


def _handlers(profile_key: str, profile_data: dict[str, Any]) -> HandlerSet:
    cache: dict[str, HandlerSet] = _STATE["handlers"]
    handlers = cache.get(profile_key)
    if handlers is None:
        handlers = cache[profile_key] = build_handlers(profile_data)
    return handlers


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _flatten_outcome(
    outcome: DeidOutcome, prefix: str = ""
) -> tuple[list[tuple[str, str]], list[SensitiveValue]]:
    changes = [(prefix + change.path, change.action) for change in outcome.changes]
    sensitive = list(outcome.sensitive)
    for name, member in outcome.members.items():
        sub_changes, sub_sensitive = _flatten_outcome(member, f"{prefix}{name}:")
        changes += sub_changes
        sensitive += sub_sensitive
    return changes, sensitive


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def process(task: Task) -> TaskResult:
    """De-identify one file into ``task.out_path``; never raises (every failure is a state)."""
    try:
        return _process(task)
    except MalformedFileError as error:
        return TaskResult(task.index, "quarantined", reason=error.reason)
    except UnsupportedFileError as error:
        return TaskResult(task.index, "unsupported", reason=error.reason)
    except DeidError as error:
        return TaskResult(task.index, "error", reason=_first_line(error))
    except Exception as error:  # one bad file never stops the others; no traceback to the user
        # Library messages can quote file data: only the exception type goes to the report.
        return TaskResult(task.index, "error", reason=f"unexpected {type(error).__name__}")


def _process(task: Task) -> TaskResult:
    keys: Keys = _STATE["keys"]
    src = Path(task.src)
    if task.profile_data is None:  # opt-out: the file goes out unchanged
        return TaskResult(
            task.index,
            "ok",
            reason="profile opted out: copied unchanged",
            handler="opt-out",
            output_name=task.source_name,
            output_path=str(src),
            sha256=_sha256(src),
        )
    handlers = _handlers(task.profile_key, task.profile_data)
    with open(src, "rb") as stream:
        head = stream.read(HEAD_BYTES)
    handler = handlers.match(task.source_name, head)
    if handler is None:
        return TaskResult(
            task.index, "unsupported", reason="no profile section matches this file (not copied)"
        )
    ctx = DeidContext(
        keys=keys,
        subject=task.subject,
        date_offset_days=task.date_offset_days,
        source_name=task.source_name,
    )
    dst = Path(task.out_path)
    # guarded: any parser exception becomes a value-free MalformedFileError; partial output removed.
    with guarded(task.source_name, cleanup=[dst]):
        outcome = handler.deidentify(src, dst, ctx)
    if not dst.is_file():
        raise MalformedFileError(
            task.source_name, f"{handler.section_name} handler wrote no output"
        )
    changes, sensitive = _flatten_outcome(outcome)
    result = TaskResult(
        task.index,
        "ok",
        handler=handler.section_name,
        output_name=outcome.output_name or task.source_name,
        output_path=str(dst),
        changes=changes,
    )
    if task.residual_check:
        from fw_gear_deid.check import ResidualGate

        gate = ResidualGate(
            [*sensitive, *task.chain_sensitive],
            allow=_allowed(task.profile_key, task.profile_data),
        )
        # a plain file's handler may hand over the text values it wrote (no second parse)
        text_values = None if outcome.members else outcome.text_values
        hits = list(gate.scan_file(handler, dst, text_values=text_values))
        hits += list(gate.scan_name(result.output_name))
        for kind, record in task.metadata:
            hits += list(gate.scan_metadata(kind, record))
        if hits:
            dst.unlink(missing_ok=True)
            result.state = "blocked"
            result.hits = [(hit.path, hit.kind) for hit in hits]
            where = ", ".join(f"{path} ({kind})" for path, kind in result.hits[:10])
            more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
            result.reason = f"residual PHI at {where}{more}"
            result.output_path = ""
            return result
    if task.hash_output:
        result.sha256 = _sha256(dst)
    if task.sync_output:
        with open(dst, "rb") as stream:
            os.fsync(stream.fileno())
        result.synced = True
    return result
