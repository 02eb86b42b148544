"""Container and file metadata through the profile's ``flywheel:`` section (FLYWHEEL.md §A.5).

Same grammar as the reference gear, with its defects fixed:

- ``remove`` (or an empty result) on ``label`` gives a keyed pseudonym of the source container, never
  the source label; with no rule on ``label`` the label is copied and the residual-PHI gate decides.
- ``all: false`` keeps only the fields the rules name (plus the label) and never crashes on ``remove``.
- ``firstname``, ``lastname`` and ``date_of_birth`` are never copied unless a rule keeps them by name,
  even with ``all: true``.
- File ``type``, ``modality`` and ``classification`` are structural and copied by default; file
  ``info`` is copied only with ``all: true`` or rules, and ``info.header`` only with
  ``include-info-header: true``.

Every value a rule removed or replaced is returned as a :class:`SensitiveValue` so the residual-PHI
gate can look for it in the destination metadata. Report actions carry the dotted path and the action,
never a value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dateutil import parser as date_parser

from fw_gear_deid import actions
from fw_gear_deid.formats import FieldChange, SensitiveValue
from fw_gear_deid.keys import Keys
from fw_gear_deid.stores import CONTAINER_FIELDS, Container, ContainerMeta, FileEntry, FileMeta

#: Fields copied only when a rule keeps them by name (never by ``all: true``).
EXPLICIT_ONLY = frozenset({"firstname", "lastname", "date_of_birth"})
#: Fields of a file record (the reference gear's allow-list).
FILE_FIELDS = ("type", "modality", "classification", "info", "tags")
_FILE_DEFAULTS = ("type", "modality", "classification")
#: Flywheel caps container labels at 64 characters.
LABEL_MAX = 64
_DATE_FORMAT = "%Y-%m-%d"
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_KIND_BY_FIELD = {
    "label": "id",
    "firstname": "name",
    "lastname": "name",
    "date_of_birth": "date",
    "timestamp": "datetime",
    "uid": "uid",
    "operator": "name",
}


@dataclass
class MetadataResult:
    """The destination metadata of one container or file, and what the rules did."""

    meta: ContainerMeta | FileMeta
    changes: list[FieldChange] = field(default_factory=list)
    sensitive: list[SensitiveValue] = field(default_factory=list)
    #: The source label went out unchanged because no rule names ``label``.
    label_copied: bool = False

    def record(self) -> dict[str, Any]:
        """The destination metadata as one dict, for the residual-PHI scan."""
        meta = self.meta
        if isinstance(meta, ContainerMeta):
            return {"label": meta.label, "info": meta.info, "tags": meta.tags, **meta.fields}
        return {
            "type": meta.type,
            "modality": meta.modality,
            "classification": meta.classification,
            "info": meta.info,
            "tags": meta.tags,
        }


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path, value in flat.items():
        node = result
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return result


def _kind(path: str, value: Any = None) -> str:
    """The residual-PHI kind of a removed/replaced metadata value.

    Known fields have fixed kinds. A value a rule removed from ``info`` or ``tags`` was judged
    identifying by the profile author: a short one is matched as a name (letters) or an ID (with
    digits), wherever it appears; only long prose is matched as free text."""
    known = _KIND_BY_FIELD.get(path.split(".")[-1])
    if known is not None:
        return known
    words = str(value).split() if value is not None else []
    if 0 < len(words) <= 4:
        return "id" if any(ch.isdigit() for ch in str(value)) else "name"
    return "text"


class _Rules:
    """Applies one ``flywheel.<type>`` section to a flat record."""

    def __init__(
        self,
        section: Mapping[str, Any],
        top: Mapping[str, Any],
        keys: Keys,
        subject_key: str,
        salt: str | None,
        date_offset: float | None,
    ):
        self.section = section
        self.keys = keys
        self.subject_key = subject_key
        increment = section.get("date-increment", top.get("date-increment"))
        if increment is not None:
            self.offset = float(increment)
        elif date_offset is not None:
            self.offset = float(date_offset)
        else:
            self.offset = float(keys.date_offset_days(subject_key))
        self.salt = section.get("salt", salt)
        self.digits = int(section.get("hash-digits", 16))

    def _hash_section(self) -> dict[str, Any]:
        section: dict[str, Any] = {"hash-digits": self.digits}
        if self.salt is not None:
            section["salt"] = self.salt
        return section

    def hash(self, value: Any) -> str:
        # The same keyed function as every file format (salted: Flywheel-compatible).
        return actions.hash_for(self._hash_section(), str(value), self.keys)

    def shift(self, value: Any, rule: Mapping[str, Any], with_time: bool) -> Any:
        fmt = rule.get("datetime-format" if with_time else "date-format")
        fmt = fmt or self.section.get("datetime-format" if with_time else "date-format")
        text = str(value)
        try:
            parsed = dt.datetime.strptime(text, fmt) if fmt else date_parser.isoparse(text)
        except ValueError:
            parsed = date_parser.parse(text)
        days = float(rule.get("date-increment-override", self.offset))
        shifted = parsed + dt.timedelta(days=days)
        if fmt:
            return shifted.strftime(fmt)
        if not with_time and len(text) <= 10:
            return shifted.strftime(_DATE_FORMAT)
        return shifted.isoformat()

    def apply(self, action: str, rule: Mapping[str, Any], value: Any) -> Any:
        if action == "replace-with":
            return rule["replace-with"]
        if action == "hash":
            return self.hash(value)
        if action == "hashuid":
            return actions.hashuid_for(self._hash_section(), str(value), self.keys)
        if action == "increment-date":
            return self.shift(value, rule, with_time=False)
        if action == "increment-datetime":
            return self.shift(value, rule, with_time=True)
        if action == "jitter":
            # Keyed, never random: a re-run or another upload of the subject gets the same value.
            return actions.jitter(
                value,
                self.keys,
                "metadata",
                str(rule.get("name", rule.get("regex", ""))),
                self.subject_key,
                str(value),
                jitter_range=rule.get("jitter-range", self.section.get("jitter-range", 2)),
                jitter_type=rule.get("jitter-type", self.section.get("jitter-type", "float")),
                minimum=rule.get("jitter-min"),
                maximum=rule.get("jitter-max"),
            )
        if action == "regex-sub":
            return self.regex_sub(value, rule["regex-sub"])
        raise ValueError(f"action {action!r} is not supported on container metadata")

    def regex_sub(self, value: Any, subs: list[Mapping[str, Any]]) -> Any:
        text = str(value)
        for sub in subs:
            match = re.fullmatch(sub["input-regex"], text) or re.search(sub["input-regex"], text)
            if not match:
                continue
            variables = dict(match.groupdict())
            for group in sub.get("groups") or []:
                name = group["name"]
                action = _action_of(group)
                if action not in (None, "keep", "identity"):
                    variables[name] = self.apply(action, group, variables.get(name, ""))
            return str(sub["output"]).format(**variables)
        raise ValueError("value does not match any input-regex")


_ACTIONS = actions.ACTION_KEYS


def _action_of(rule: Mapping[str, Any]) -> str | None:
    for action in _ACTIONS:
        if action in rule:
            return action
    return None


def _paths_for(rule: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    if "regex" in rule:
        pattern = re.compile(rule["regex"])
        return [path for path in record if pattern.fullmatch(path) or pattern.search(path)]
    name = str(rule.get("name", ""))
    prefix = name + "."
    nested = [path for path in record if path.startswith(prefix)]
    if name in record:
        return [name]
    return nested or [name]


def _run_rules(
    kind: str,
    record: dict[str, Any],
    out: dict[str, Any],
    section: Mapping[str, Any],
    rules: _Rules,
    result_changes: list[FieldChange],
    sensitive: list[SensitiveValue],
) -> None:
    fields = list(section.get("fields") or [])
    # regex-sub runs before the other actions, as in the reference engine.
    fields.sort(key=lambda rule: 0 if "regex-sub" in rule else 1)
    for rule in fields:
        action = _action_of(rule) or "keep"
        for path in _paths_for(rule, record):
            present = path in record and record[path] is not None
            if action in ("keep", "identity"):
                if present:
                    out[path] = record[path]
                result_changes.append(FieldChange(f"{kind}.{path}", "keep"))
                continue
            if action == "remove":
                out.pop(path, None)
                for nested in [p for p in out if p.startswith(path + ".")]:
                    out.pop(nested)
                if present:
                    sensitive.append(
                        SensitiveValue(
                            _kind(path, record[path]), str(record[path]), f"{kind}.{path}"
                        )
                    )
                result_changes.append(FieldChange(f"{kind}.{path}", "remove"))
                continue
            if not present and action != "replace-with":
                continue
            out[path] = rules.apply(action, rule, record.get(path))
            if present and str(out[path]) != str(record[path]):
                sensitive.append(
                    SensitiveValue(_kind(path, record[path]), str(record[path]), f"{kind}.{path}")
                )
            result_changes.append(FieldChange(f"{kind}.{path}", action))


def _section(
    profile_data: Mapping[str, Any], kind: str
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    top = profile_data.get("flywheel") or {}
    return (top.get(kind) or {}), top


def _rules(
    section: Mapping[str, Any],
    top: Mapping[str, Any],
    keys: Keys,
    subject_key: str,
    profile_data: Mapping[str, Any],
    date_offset: int | None,
) -> _Rules:
    """The rules of one ``flywheel.<type>`` section, with the profile's salt and date offset."""
    return _Rules(
        section,
        top,
        keys,
        subject_key,
        profile_data.get("salt"),
        _offset(profile_data, date_offset),
    )


def _offset(profile_data: Mapping[str, Any], date_offset: int | None) -> float | None:
    """The subject's date offset for metadata when the ``flywheel:`` section sets none: the DICOM
    section's ``date-increment`` (often rendered from the mapping CSV), so container dates move with
    the files' dates; else ``date_offset``; else (None) the keyed offset of the subject."""
    if date_offset is not None:
        return date_offset
    dicom = profile_data.get("dicom")
    if isinstance(dicom, Mapping) and dicom.get("date-increment") is not None:
        return float(dicom["date-increment"])
    return None


def container_metadata(
    container: Container,
    profile_data: Mapping[str, Any],
    keys: Keys,
    origin_id: str,
    subject_key: str,
    date_offset: int | None = None,
) -> MetadataResult:
    """The destination metadata of a source subject, session or acquisition."""
    kind = container.type
    section, top = _section(profile_data, kind)
    record: dict[str, Any] = {"label": container.label}
    for key in CONTAINER_FIELDS.get(kind, ()):
        if container.fields.get(key) is not None:
            record[key] = container.fields[key]
    if container.tags:
        record["tags"] = list(container.tags)
    info = {k: v for k, v in container.info.items() if k != "export"}
    _flatten(info, "info", record)
    record = {k: v for k, v in record.items() if not (k == "info" and v == {})}

    out: dict[str, Any] = {"label": container.label}
    if section.get("all"):
        out.update({k: v for k, v in record.items() if k not in EXPLICIT_ONLY})
    changes: list[FieldChange] = []
    sensitive: list[SensitiveValue] = []
    rules = _rules(section, top, keys, subject_key, profile_data, date_offset)
    _run_rules(kind, record, out, section, rules, changes, sensitive)

    label_ruled = any(change.path == f"{kind}.label" for change in changes)
    label = out.pop("label", None)
    if label in (None, ""):
        # A removed label never falls back to the source label: a keyed pseudonym of the container.
        label = keys.pseudonym(origin_id, purpose="label")
        changes.append(FieldChange(f"{kind}.label", "pseudonym"))
    label = str(label)[:LABEL_MAX]
    tags = out.pop("tags", [])
    info_flat = {k: v for k, v in out.items() if k == "info" or k.startswith("info.")}
    fields = {k: v for k, v in out.items() if k not in info_flat}
    nested_info = _unflatten(info_flat).get("info", {}) if info_flat else {}
    meta = ContainerMeta(
        label=label,
        info=nested_info if isinstance(nested_info, dict) else {},
        tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
        fields={k: v for k, v in fields.items() if k in CONTAINER_FIELDS.get(kind, ())},
    )
    return MetadataResult(meta, changes, sensitive, label_copied=not label_ruled)


def file_metadata(
    entry: FileEntry,
    profile_data: Mapping[str, Any],
    keys: Keys,
    subject_key: str,
    date_offset: int | None = None,
    opted_out: bool = False,
) -> MetadataResult:
    """The destination metadata of a source file (its origin id is added by the caller)."""
    section, top = _section(profile_data, "file")
    record: dict[str, Any] = {}
    for key in ("type", "modality"):
        if getattr(entry, key):
            record[key] = getattr(entry, key)
    if entry.classification:
        record["classification"] = entry.classification
    if entry.tags:
        record["tags"] = list(entry.tags)
    info = {k: v for k, v in entry.info.items() if k != "export"}
    if not section.get("include-info-header"):
        info.pop("header", None)
    _flatten(info, "info", record)
    record = {k: v for k, v in record.items() if not (k == "info" and v == {})}

    out = {k: record[k] for k in _FILE_DEFAULTS if k in record}
    if section.get("all"):
        out.update(record)
    changes: list[FieldChange] = []
    sensitive: list[SensitiveValue] = []
    if not opted_out:
        rules = _rules(section, top, keys, subject_key, profile_data, date_offset)
        _run_rules("file", record, out, section, rules, changes, sensitive)
    info_flat = {k: v for k, v in out.items() if k.startswith("info.")}
    nested_info = _unflatten(info_flat).get("info", {}) if info_flat else {}
    classification = out.get("classification")
    tags = out.get("tags") or []
    meta = FileMeta(
        type=out.get("type"),
        modality=out.get("modality"),
        classification=classification if isinstance(classification, dict) else {},
        info=nested_info if isinstance(nested_info, dict) else {},
        tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
    )
    return MetadataResult(meta, changes, sensitive)
