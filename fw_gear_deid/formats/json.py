"""JSON: dotted paths (list indexes, ``*``) and ``regex`` over every path; order and numbers kept.

Keys keep their order and every number keeps its literal text (``1.50`` stays ``1.50``, ``1e3`` stays
``1e3``): numbers are parsed into :class:`Number`, a ``str`` holding the literal, and written back
verbatim by our own serialiser, which also reproduces the source's indentation style. Duplicate keys
are refused (a second value could otherwise hide behind the first). A ``regex`` must match a whole
dotted path (flywheel-migration matches a prefix, so ``a`` there also selects ``a.b``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule, RuleHandler, sensitive_kind
from fw_gear_deid.formats._output import output_file

Key = str | int
JsonPath = tuple[Key, ...]


class Number(str):
    """A JSON number, kept as its literal text."""


class _DuplicateKeyError(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads(text: str) -> Any:
    return json.loads(
        text, object_pairs_hook=_pairs, parse_float=Number, parse_int=Number, parse_constant=Number
    )


@dataclass(frozen=True)
class Style:
    """How the source was laid out, so the output looks the same."""

    indent: str | None
    item_sep: str
    key_sep: str
    ensure_ascii: bool
    newline_at_end: bool

    @classmethod
    def of(cls, text: str) -> Style:
        indent_match = re.search(r"[\[{]\s*?\n([ \t]+)\S", text)
        key_match = re.search(r'"\s*(:\s*)', text)
        item_match = re.search(r"[\]}\"\deltruna](,[ \t]*)(?=[\"\[{\-\dtfn])", text)
        non_ascii = any(ord(ch) > 127 for ch in text)
        return cls(
            indent=indent_match.group(1) if indent_match else None,
            item_sep=item_match.group(1) if item_match and not indent_match else ",",
            key_sep=key_match.group(1) if key_match else ": ",
            ensure_ascii="\\u" in text and not non_ascii,
            newline_at_end=text.endswith("\n"),
        )


def dumps(value: Any, style: Style) -> str:
    out: list[str] = []
    _dump(value, style, 0, out)
    if style.newline_at_end:
        out.append("\n")
    return "".join(out)


def _dump(value: Any, style: Style, level: int, out: list[str]) -> None:
    if isinstance(value, Number):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=style.ensure_ascii))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, dict | list):
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        if not value:
            out.append(opening + closing)
            return
        out.append(opening)
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        for index, (key, item) in enumerate(items):
            if index:
                out.append("," if style.indent is not None else style.item_sep)
            if style.indent is not None:
                out.append("\n" + style.indent * (level + 1))
            if isinstance(value, dict):
                out.append(json.dumps(key, ensure_ascii=style.ensure_ascii) + style.key_sep)
            _dump(item, style, level + 1, out)
        if style.indent is not None:
            out.append("\n" + style.indent * level)
        out.append(closing)
    else:  # numbers inserted by replace-with
        out.append(json.dumps(value))


def walk(value: Any, prefix: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """Every node below ``value`` (not ``value`` itself) with its path, parents first."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        path = (*prefix, key)
        yield path, item
        yield from walk(item, path)


def leaf_text(value: Any) -> str | None:
    if isinstance(value, str):
        return str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    return None


def get(document: Any, path: JsonPath) -> Any:
    node = document
    for key in path:
        node = node[key]
    return node


class JsonHandler(RuleHandler):
    section_name = "json"
    shown_options = ("separator",)
    default_filters = ("*.json", "*.JSON", "*.Json")

    def matches_signature(self, head: bytes) -> bool:
        return False  # JSON has no signature; a text file starting with "{" is not proof enough

    @property
    def separator(self) -> str:
        return str(self.section.get("separator") or ".")

    def _dotted(self, path: JsonPath) -> str:
        return self.separator.join(str(part) for part in path)

    def _select(self, document: Any, rule: Rule) -> list[JsonPath]:
        if rule.regex is not None:
            return [p for p, _v in walk(document) if rule.regex.fullmatch(self._dotted(p))]
        found: list[JsonPath] = [()]
        for part in str(rule.name).split(self.separator):
            following: list[JsonPath] = []
            for path in found:
                node = get(document, path)
                if isinstance(node, dict):
                    keys: list[Key] = list(node) if part == "*" else [part] if part in node else []
                elif isinstance(node, list):
                    if part == "*":
                        keys = list(range(len(node)))
                    elif re.fullmatch(r"-?\d+", part) and -len(node) <= int(part) < len(node):
                        keys = [int(part) % len(node)]
                    else:
                        keys = []
                else:
                    keys = []
                following += [(*path, key) for key in keys]
            found = following
        return [p for p in found if p]

    def _load(self, src: Path, source: str) -> tuple[Any, Style, bytes]:
        try:
            raw = src.read_bytes()
            text = raw.decode("utf-8-sig")
            bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
            return loads(text), Style.of(text), bom
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedFileError(source, f"not valid JSON: {exc}") from exc

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        document, style, bom = self._load(src, source)
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        try:
            for rule in self.rules:
                self._apply(document, rule, ctx, rec, source)
            changed = bool(outcome.changes)
            outcome.output_name = self.output_name(
                src, ctx, rec, lambda name: self._lookup(document, name)
            )
            text = dumps(document, style) if dst is not None and changed else ""
        except RecursionError as exc:  # nesting json.loads accepted but our walk cannot follow
            raise MalformedFileError(source, "JSON nested too deeply") from exc
        if dst is not None:
            with output_file(dst) as out:
                # nothing changed: the source bytes, not our rendering of them
                out.write(bom + text.encode("utf-8") if changed else src.read_bytes())  # type: ignore[union-attr]
        return outcome

    def _lookup(self, document: Any, name: str) -> str | None:
        try:
            paths = self._select(document, Rule({"name": name}, {}, self.section_name))
        except (KeyError, IndexError, TypeError):
            return None
        for path in paths:
            text = leaf_text(get(document, path))
            if text is not None:
                return text
        return None

    def _apply(
        self, document: Any, rule: Rule, ctx: DeidContext, rec: Recorder, source: str
    ) -> None:
        if rule.is_keep:
            return
        paths = self._select(document, rule)
        if (
            not paths
            and rule.action == "replace-with"
            and rule.name
            and self.section.get("replace-with-insert", True)
        ):
            self._insert(document, rule, ctx, rec)
            return
        removals: list[JsonPath] = []
        for path in paths:
            dotted = self._dotted(path)
            node = get(document, path)
            if rule.is_remove:
                removals.append(path)
                self._record_removed(dotted, path, node, rec)
                continue
            if rule.action == "replace-with":
                self._replace(document, path, node, rule, rec)
                continue
            before = leaf_text(node)
            if before is None:
                continue  # containers and nulls have no value to transform
            try:
                result = rule.apply(
                    before, ctx, lookup=lambda name: self._lookup(document, name), path=dotted
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise MalformedFileError(source, f"{dotted}: {rule.action} failed: {exc}") from exc
            if result is REMOVED:
                removals.append(path)
                rec.change(
                    dotted,
                    rule.action,
                    before,
                    None,
                    kind=sensitive_kind(rule.action, dotted, before),
                )
                continue
            after = str(result)
            if after == before:
                continue
            parent = get(document, path[:-1])
            keep_number = isinstance(node, Number) and _is_number(after)
            parent[path[-1]] = Number(after) if keep_number else after
            rec.change(
                dotted, rule.action, before, after, kind=sensitive_kind(rule.action, dotted, before)
            )
        for path in sorted(
            removals, key=lambda p: [(isinstance(k, int), k) for k in p], reverse=True
        ):
            parent = get(document, path[:-1])
            del parent[path[-1]]

    def _replace(self, document: Any, path: JsonPath, node: Any, rule: Rule, rec: Recorder) -> None:
        """``replace-with`` sets the profile's value as JSON (a list, object, number or string), on
        a leaf or a whole container, as flywheel-migration does."""
        value = to_json(rule.field.get("replace-with"))
        if isinstance(node, Number) and isinstance(value, str) and _is_number(value):
            value = Number(value)  # "0" for a number stays a number
        if value == node and type(value) is type(node):
            return
        dotted = self._dotted(path)
        get(document, path[:-1])[path[-1]] = value
        before = leaf_text(node)
        rec.change(
            dotted,
            "replace-with",
            before,
            leaf_text(value) or json.dumps(rule.field.get("replace-with")),
            sensitive=before is not None,
        )
        if before is None:  # a container: every value inside it was replaced
            for sub, item in walk(node, path):
                text = leaf_text(item)
                if text is not None:
                    rec.sensitive(
                        sensitive_kind("replace-with", self._dotted(sub), text),
                        text,
                        self._dotted(sub),
                    )

    def _record_removed(self, dotted: str, path: JsonPath, node: Any, rec: Recorder) -> None:
        text = leaf_text(node)
        rec.change(dotted, "remove", text, None, sensitive=text is not None)
        for sub, item in walk(node, path):
            sub_text = leaf_text(item)
            if sub_text is not None:
                rec.sensitive(
                    sensitive_kind("remove", self._dotted(sub), sub_text),
                    sub_text,
                    self._dotted(sub),
                )

    def _insert(self, document: Any, rule: Rule, ctx: DeidContext, rec: Recorder) -> None:
        parts = str(rule.name).split(self.separator)
        if "*" in parts or not isinstance(document, dict):
            return
        node = document
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                return  # a list or value in the way: nothing sensible to insert into
            node = child
        value = to_json(rule.field.get("replace-with"))
        node[parts[-1]] = value
        rec.change(str(rule.name), "replace-with", None, leaf_text(value) or "", sensitive=False)

    def record_value(self, path: Path, name: str) -> str | None:
        return self._lookup(loads(path.read_bytes().decode("utf-8-sig")), name)

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        document = loads(path.read_bytes().decode("utf-8-sig"))
        for node_path, value in walk(document):
            dotted = self._dotted(node_path)
            if isinstance(node_path[-1], str):
                yield f"{dotted} (key)", node_path[-1]
            text = leaf_text(value)
            if text is not None:
                yield dotted, text


def to_json(value: Any) -> Any:
    """A profile (YAML) value as a document value: numbers become :class:`Number` literals."""
    if isinstance(value, bool) or value is None or isinstance(value, Number):
        return value
    if isinstance(value, int | float):
        return Number(json.dumps(value))
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return str(value)


def _is_number(text: str) -> bool:
    return re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", text) is not None
