"""Shared machinery of the non-DICOM handlers: field rules, output names, outcome bookkeeping.

Every non-DICOM section has the same shape (``fields``, ``filenames``, date formats, ``salt``...). The
value transforms themselves live in :mod:`fw_gear_deid.actions` (one implementation for every format,
DICOM included); this module only selects fields, calls those transforms and records what changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathvalidate

from fw_gear_deid import actions
from fw_gear_deid.errors import MalformedFileError, UnsupportedFileError
from fw_gear_deid.formats._base import (
    DeidContext,
    DeidOutcome,
    FieldChange,
    FormatHandler,
    SensitiveValue,
)

#: Shorter values (GPS "N", flags) identify no one and would only make the residual scan noisy.
MIN_SENSITIVE = 2
_OUTPUT_VAR = re.compile(r"\{([^{}]+)\}")
_T2STAR = re.compile(r"(t2 ?_?)\*", re.IGNORECASE)
_NAME_HINTS = (
    "name",
    "artist",
    "author",
    "creator",
    "owner",
    "by-line",
    "byline",
    "writer",
    "person",
    "contact",
)


def action_of(field: Mapping[str, Any]) -> str:
    """The action key of a field entry (``keep`` when only a selector is given)."""
    return actions.action_key(field)


def sensitive_kind(action: str, name: str, value: str = "") -> str:
    """The residual-scan kind of a value a rule removed or replaced (a best guess from the rule)."""
    if action == "increment-date":
        return "date"
    if action == "increment-datetime":
        return "datetime"
    if action == "hashuid":
        return "uid"
    if action == "jitter":
        return "other"
    lowered = name.lower()
    if any(hint in lowered for hint in _NAME_HINTS):
        return "name"  # a hashed name is still a name: the scan then also looks for its parts
    if action == "hash":
        return "id"
    if "date" in lowered or "time" in lowered:
        return "datetime" if re.search(r"\d[:T ]\d", value) else "date"
    return "text"


#: What :meth:`Rule.apply` returns when the rule deletes the value (the shared sentinel).
REMOVED = actions.REMOVE


class Rule:
    """One ``fields`` entry of a section: its selector, its action and the compiled transform.

    The transform comes from :func:`fw_gear_deid.actions.compile_field_action`; it is compiled on
    first use and dropped when pickled, so handlers stay cheap to send to worker processes.
    """

    def __init__(self, field: Mapping[str, Any], section: Mapping[str, Any], section_name: str):
        self.field = dict(field)
        self.name: str | None = field.get("name")
        pattern = field.get("regex")
        self.regex: re.Pattern[str] | None = re.compile(pattern) if pattern is not None else None
        self.action = action_of(field)
        self.section = section
        self.section_name = section_name
        self._compiled: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_compiled"] = None
        return state

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"regex:{self.regex.pattern}"  # type: ignore[union-attr]

    @property
    def is_keep(self) -> bool:
        return self.action == "keep"

    @property
    def is_remove(self) -> bool:
        return self.action == "remove"

    def apply(
        self,
        value: str,
        ctx: DeidContext,
        lookup: Callable[[str], str | None] | None = None,
        path: str | None = None,
    ) -> Any:
        """The new value of ``value`` (:data:`REMOVED` when the rule deletes it). ``path`` names the
        value inside the file (it keys jitter draws, so two fields jitter independently)."""
        if self.action == "keep":
            return value
        if self.action == "remove":
            return REMOVED
        if self._compiled is None:
            self._compiled = actions.compile_field_action(
                self.field, self.section, section_name=self.section_name
            )
        result = self._compiled.apply(value, ctx, lookup=lookup, path=path)
        if result is REMOVED:
            return REMOVED
        if result is None:  # replace-with: null
            return ""
        return str(result)

    def normalise_date(self, value: str) -> str:
        """For a date action: ``value`` in the rule's format, read with dateutil when it is written
        another way (flywheel-migration does this for file-name groups and XML values)."""
        if self.action not in ("increment-date", "increment-datetime"):
            return value
        from datetime import datetime

        from dateutil import parser as date_parser

        compiled = actions.compile_field_action(
            self.field, self.section, section_name=self.section_name
        )
        fmt = compiled.date_format if self.action == "increment-date" else compiled.datetime_format
        try:
            datetime.strptime(value, fmt)
            return value
        except ValueError:
            try:
                return date_parser.parse(value).strftime(fmt)
            except (ValueError, OverflowError):
                return value  # the action reports the unparsable value

    def describe(self) -> str:
        return f"{self.label}: {self.action}"


def compile_rules(
    section: Mapping[str, Any], section_name: str, defaults: Mapping[str, Any] | None = None
) -> list[Rule]:
    """The section's field rules, ``regex-sub`` first (Flywheel runs them before the others)."""
    merged: dict[str, Any] = dict(defaults or {})
    merged.update(section)
    rules = [Rule(field, merged, section_name) for field in section.get("fields", []) or []]
    return [r for r in rules if r.action == "regex-sub"] + [
        r for r in rules if r.action != "regex-sub"
    ]


def sanitize_output_name(name: str, source: str) -> str:
    """A file name valid on every platform: ``t2*`` becomes ``t2star``; nothing left is an error."""
    name = _T2STAR.sub(r"\1star", name)
    clean = pathvalidate.sanitize_filename(name, replacement_text="_", platform="universal")
    if not clean or clean in {".", ".."}:
        raise MalformedFileError(source, f"the output name {name!r} is empty once sanitised")
    return clean


@dataclass
class Recorder:
    """Collects changes and sensitive values of one file (before/after only for previews)."""

    outcome: DeidOutcome
    preview: bool

    def change(
        self,
        path: str,
        action: str,
        before: str | None = None,
        after: str | None = None,
        *,
        kind: str | None = None,
        sensitive: bool = True,
    ) -> None:
        if self.preview:
            self.outcome.changes.append(FieldChange(path, action, before, after))
        else:
            self.outcome.changes.append(FieldChange(path, action))
        if (
            sensitive
            and before is not None
            and len(before.strip()) >= MIN_SENSITIVE
            and before != after
        ):
            self.outcome.sensitive.append(
                SensitiveValue(kind or sensitive_kind(action, path, before), before, path)
            )

    def sensitive(self, kind: str, value: str, path: str) -> None:
        if len(value.strip()) >= MIN_SENSITIVE:
            self.outcome.sensitive.append(SensitiveValue(kind, value, path))


def render_output(template: str, values: Mapping[str, str], source: str) -> str:
    """Fill ``{var}`` / ``{var:spec}`` of a ``filenames`` output from ``values``."""

    def fill(match: re.Match[str]) -> str:
        var, _, spec = match.group(1).partition(":")
        if var not in values:
            raise MalformedFileError(
                source, f"filenames output needs {{{var}}}, which the file does not have"
            )
        if not spec:
            return values[var]
        for candidate in (values[var], _as_number(values[var])):
            try:  # "{n:>4}" formats text, "{n:03d}" a number: try the text, then the number
                return format(candidate, spec)
            except (ValueError, TypeError):
                continue
        raise MalformedFileError(
            source, f"filenames output {{{var}:{spec}}} cannot format {values[var]!r}"
        )

    return _OUTPUT_VAR.sub(fill, template)


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


class RuleHandler(FormatHandler):
    """Base of the non-DICOM handlers: compiled field rules and ``filenames`` output names."""

    #: Date formats of the section when the profile sets none. Empty: the shared actions apply the
    #: reference's per-section defaults (``fw_gear_deid.actions.DEFAULT_FORMATS``).
    format_defaults: Mapping[str, Any] = {}

    def __init__(self, section: Mapping[str, Any], siblings=None):
        super().__init__(section, siblings)
        self.rules = compile_rules(section, self.section_name, self.format_defaults)

    # -- names ------------------------------------------------------------------------------------
    def output_name(
        self,
        src: Path,
        ctx: DeidContext,
        recorder: Recorder,
        lookup: Callable[[str], str | None] = lambda _name: None,
    ) -> str:
        """The output file name per the section's ``filenames`` rules (first matching rule wins)."""
        source = ctx.source_name or src.name
        base = Path(source).name
        rules = self.section.get("filenames") or []
        if not rules:
            return sanitize_output_name(base, source)
        for index, rule in enumerate(rules):
            match = re.match(rule["input-regex"], base)
            if not match:
                continue
            groups = {g["name"]: g for g in rule.get("groups", []) or []}
            values: dict[str, str] = {}
            for gname, gvalue in match.groupdict().items():
                text = gvalue or ""
                if gname in groups:
                    group_rule = Rule(
                        groups[gname], {**self.format_defaults, **self.section}, self.section_name
                    )
                    try:
                        result = group_rule.apply(group_rule.normalise_date(text), ctx)
                    except (ValueError, TypeError) as exc:
                        raise MalformedFileError(
                            source, f"filenames[{index}] group {gname}: {exc}"
                        ) from exc
                    new = "" if result is REMOVED else str(result)
                    if new != text:
                        recorder.change(
                            f"filename.{gname}",
                            group_rule.action,
                            text,
                            new,
                            kind=sensitive_kind(group_rule.action, gname, text),
                        )
                    text = new
                values[gname] = text
            for var in _OUTPUT_VAR.findall(rule["output"]):
                name = var.partition(":")[0]
                if name not in values:
                    found = lookup(name)
                    if found is None:
                        raise MalformedFileError(
                            source,
                            f"filenames output needs {{{name}}}, which the file does not have",
                        )
                    values[name] = found
            return sanitize_output_name(render_output(rule["output"], values, source), source)
        raise UnsupportedFileError(source, "no filenames input-regex matches the file name")

    def record_value(self, path: Path, name: str) -> str | None:
        """The value of field ``name`` in a (de-identified) file, for ``filenames`` variables of an
        enclosing archive (Flywheel reads them from the first member). None: no such field."""
        return None

    #: What the handler removes when no rule says otherwise (shown by ``describe``).
    default_notes: tuple[str, ...] = ()
    #: Section options worth showing in ``describe`` when set.
    shown_options: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        name = self.section_name
        lines = [f"{name}: {rule.describe()}" for rule in self.rules] or [f"{name}: no field rules"]
        lines += [
            f"{name}: {option}: {self.section[option]!r}"
            for option in self.shown_options
            if self.section.get(option) not in (None, False)
        ]
        lines += [f"{name}: by default {note}" for note in self.default_notes]
        return lines
