"""The per-file report (CSV + JSON) and the run summary.

A row names the source file by container path and name, gives its state and reason, where it went, and
the actions applied as ``path: action`` only. No field value (before or after) is ever written here.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

#: Every state a file can end in. Only ``exported`` counts as success.
STATES: tuple[str, ...] = ("exported", "skipped", "blocked", "quarantined", "error")

CSV_COLUMNS: tuple[str, ...] = (
    "source_container",
    "source_type",
    "source_file",
    "in_scope",
    "state",
    "reason",
    "handler",
    "dest_container",
    "dest_container_id",
    "dest_file",
    "dest_file_id",
    "write",
    "actions",
)


@dataclass
class ReportRow:
    """One source file (or one entry the store could not export) and what happened to it."""

    source_container: str
    source_type: str
    source_file: str
    state: str
    reason: str = ""
    #: False for entries that are not data (symlinks, hidden files): reported, but not counted.
    in_scope: bool = True
    handler: str = ""
    dest_container: str = ""
    dest_container_id: str = ""
    dest_file: str = ""
    dest_file_id: str = ""
    #: What the store did: written, replaced, new-version, unchanged, or empty.
    write: str = ""
    #: ``{"path": ..., "action": ...}`` for every field changed (no values).
    actions: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The row as plain data (what ``dataclasses.asdict`` gives, without its deep copy: ~0.1 ms
        a row, the largest part of writing a large report)."""
        row = {name: getattr(self, name) for name in _FIELDS}
        row["actions"] = [dict(action) for action in self.actions]
        return row

    def csv_row(self) -> dict[str, str]:
        row = {key: str(getattr(self, key)) for key in CSV_COLUMNS}
        row["actions"] = "; ".join(f"{a['path']}: {a['action']}" for a in self.actions)
        row["in_scope"] = "yes" if self.in_scope else "no"
        return row


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ReportRow))


def summarize(rows: list[ReportRow]) -> dict[str, Any]:
    counts = Counter(row.state for row in rows if row.in_scope and row.state in STATES)
    return {
        "files": sum(counts.values()),
        "by_state": {state: counts.get(state, 0) for state in STATES},
        "not_in_scope": sum(1 for row in rows if not row.in_scope),
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def write_report(
    report_dir: Path, stem: str, rows: list[ReportRow], summary: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json`` into ``report_dir`` (atomically) and return them."""
    report_dir.mkdir(parents=True, exist_ok=True)
    csv_path = report_dir / f"{stem}.csv"
    json_path = report_dir / f"{stem}.json"

    class _Buffer(list):
        def write(self, text: str) -> None:
            self.append(text)

    buffer = _Buffer()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_row())
    _atomic_write(csv_path, "".join(buffer))
    _atomic_write(json_path, _report_json(summary, rows) + "\n")
    return csv_path, json_path


def _report_json(summary: dict[str, Any], rows: list[ReportRow]) -> str:
    """``json.dumps({"summary": summary, "files": [rows as dicts]}, indent=2, default=str)``, the
    same text, with each row encoded by :func:`_row_json` (``json.dumps`` with ``indent`` runs its
    pure-Python encoder: ~0.5 ms a row, the largest part of writing a large report)."""
    head = json.dumps({"summary": summary}, indent=2, default=str)
    if not rows:
        return head[:-2] + ',\n  "files": []\n}'
    files = ",\n".join(_row_json(row) for row in rows)
    return head[:-2] + ',\n  "files": [\n' + files + "\n  ]\n}"


_STR = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _row_json(row: ReportRow) -> str:
    """One row as ``json.dumps`` indents it at depth 2 (inside the ``files`` list)."""
    parts = []
    for name in _FIELDS:
        value = getattr(row, name)
        if name == "actions":
            text = _actions_json(value)
        elif isinstance(value, str):
            text = _STR(value)
        elif value is True or value is False:
            text = "true" if value else "false"
        else:  # not a type a row holds: let json decide, re-indented to this depth
            text = json.dumps(value, indent=2, default=str).replace("\n", "\n      ")
        parts.append(f"      {_STR(name)}: {text}")
    return "    {\n" + ",\n".join(parts) + "\n    }"


def _actions_json(actions: list[dict[str, str]]) -> str:
    if not actions:
        return "[]"
    items = []
    for action in actions:
        if not action:
            items.append("        {}")
            continue
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in action.items()):
            text = json.dumps(action, indent=2, default=str).replace("\n", "\n        ")
            items.append("        " + text)
            continue
        fields_text = ",\n".join(
            f"          {_STR(key)}: {_STR(value)}" for key, value in action.items()
        )
        items.append("        {\n" + fields_text + "\n        }")
    return "[\n" + ",\n".join(items) + "\n      ]"
