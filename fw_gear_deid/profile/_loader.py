"""Safe YAML/JSON loading that remembers the line of every key and list item.

PyYAML's SafeLoader only builds plain data and has no line numbers, so we compose the node graph
ourselves and construct plain data from it:

* only the standard scalar, list and mapping tags are accepted (no ``!!python/...``, no custom tags);
* aliases are counted and the expanded size is bounded, so an alias bomb ("billion laughs") is
  refused instead of being expanded, and a recursive alias is refused;
* a key written twice is an error (PyYAML would silently keep the last one);
* plain scalars that YAML 1.1 reads as octal or base-60 numbers (``00100030``, ``0123``, ``1:30``)
  stay the strings that were written: Flywheel's own example writes the hex tag ``00100030``
  unquoted, which ``yaml.safe_load`` turns into the octal number 32792, a different tag;
* timestamps stay strings (``2020-01-02``), so the data is always JSON-serialisable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fw_gear_deid.profile._issues import Path_, ProfileIssue, dotted

# Limits far above any real profile (the largest Flywheel profiles are a few thousand lines).
MAX_TEXT_CHARS = 5_000_000
MAX_ALIASES = 1_000
MAX_NODES = 200_000
MAX_DEPTH = 100

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"

# YAML 1.1 numbers a person does not mean as such: leading-zero "octal" and base-60 forms.
_SURPRISING_NUMBER = re.compile(r"[-+]?(0[0-9_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)")


@dataclass
class Loaded:
    """Plain data plus where each piece came from."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    #: scalar path -> (was it a plain, unquoted scalar?, the text as written)
    raw: dict[Path_, tuple[bool, str]] = field(default_factory=dict)

    def line(self, path: Path_) -> int:
        """The line of ``path``, else of its nearest recorded ancestor."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class LoadError(Exception):
    """The text is not a loadable profile (syntax, forbidden tag, alias bomb...)."""

    def __init__(self, issues: list[ProfileIssue]):
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


class _Refused(Exception):
    def __init__(self, line: int, path: Path_, message: str):
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


class _Composer(yaml.SafeLoader):
    """SafeLoader that counts aliases while composing (before any expansion happens)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Refused(
                    mark.line + 1,
                    (),
                    f"more than {MAX_ALIASES} YAML aliases: refused (alias expansion bomb?)",
                )
        return super().compose_node(parent, index)


def load_text(text: str, source: str) -> Loaded:
    """Load a YAML or JSON profile text; raise :class:`LoadError` with located issues."""
    if len(text) > MAX_TEXT_CHARS:
        raise LoadError([ProfileIssue(source, 1, "(root)", "profile text is too large")])
    if _looks_like_json(text, source):
        return _load_json(text, source)
    return _load_yaml(text, source)


def _looks_like_json(text: str, source: str) -> bool:
    return source.lower().endswith(".json") or text.lstrip().startswith("{")


def _load_json(text: str, source: str) -> Loaded:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise LoadError(
            [ProfileIssue(source, 1, "(root)", "profile is nested too deeply")]
        ) from None
    except json.JSONDecodeError as error:
        raise LoadError(
            [ProfileIssue(source, error.lineno, "(root)", f"JSON syntax error: {error.msg}")]
        ) from None
    except ValueError as error:
        # Duplicate keys: the YAML composer below finds their line.
        try:
            return _load_yaml(text.replace("\t", " "), source)
        except LoadError:
            raise
        except Exception:  # pragma: no cover - the YAML view failed where JSON did not
            raise LoadError([ProfileIssue(source, 1, "(root)", str(error))]) from None
    # JSON is YAML's flow style, so the YAML composer gives the lines. Tabs are JSON whitespace
    # but not YAML's, and never appear unescaped inside JSON strings, so swapping them is exact.
    try:
        located = _load_yaml(text.replace("\t", " "), source)
    except LoadError:
        return Loaded(data, {(): 1})
    if located.data == data:
        return located
    return Loaded(data, {(): 1})


def _load_yaml(text: str, source: str) -> Loaded:
    try:
        loader = _Composer(text)
    except yaml.reader.ReaderError as error:
        # Control characters are refused by the reader before any parsing.
        line = text[: error.position].count("\n") + 1
        raise LoadError(
            [ProfileIssue(source, line, "(root)", f"YAML syntax error: {error.reason}")]
        ) from None
    try:
        try:
            root = loader.get_single_node()
        except _Refused as refused:
            raise LoadError(
                [ProfileIssue(source, refused.line, dotted(refused.path), refused.message)]
            ) from None
        except yaml.reader.ReaderError as error:
            line = text[: error.position].count("\n") + 1
            raise LoadError(
                [ProfileIssue(source, line, "(root)", f"YAML syntax error: {error.reason}")]
            ) from None
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark else 1
            problem = error.problem or error.context or "cannot be parsed"
            raise LoadError(
                [ProfileIssue(source, line, "(root)", f"YAML syntax error: {problem}")]
            ) from None
        except yaml.YAMLError as error:
            raise LoadError(
                [ProfileIssue(source, 1, "(root)", f"YAML syntax error: {error}")]
            ) from None
        except RecursionError:
            raise LoadError(
                [ProfileIssue(source, 1, "(root)", "profile is nested too deeply")]
            ) from None
        if root is None:
            return Loaded(None, {(): 1})
        builder = _Builder(loader)
        try:
            data = builder.build(root, ())
        except _Refused as refused:
            raise LoadError(
                [ProfileIssue(source, refused.line, dotted(refused.path), refused.message)]
            ) from None
        builder.lines.setdefault((), root.start_mark.line + 1)
        return Loaded(data, builder.lines, builder.raw)
    finally:
        loader.dispose()


class _Builder:
    """Node graph -> plain data, recording lines and raw scalar text by path."""

    def __init__(self, loader: yaml.SafeLoader):
        self.loader = loader
        self.lines: dict[Path_, int] = {}
        self.raw: dict[Path_, tuple[bool, str]] = {}
        self.count = 0
        self.stack: set[int] = set()

    def build(self, node: Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Refused(
                node.start_mark.line + 1,
                path,
                f"profile expands to more than {MAX_NODES} values: refused (alias expansion bomb?)",
            )
        if len(path) > MAX_DEPTH:
            raise _Refused(node.start_mark.line + 1, path, "profile is nested too deeply")
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.stack:
            raise _Refused(node.start_mark.line + 1, path, "recursive YAML alias: refused")
        self.stack.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ:
                    raise _Refused(
                        node.start_mark.line + 1, path, f"YAML tag {node.tag} is not allowed"
                    )
                items = []
                for index, item in enumerate(node.value):
                    item_path = (*path, index)
                    self.lines[item_path] = item.start_mark.line + 1
                    items.append(self.build(item, item_path))
                return items
            if isinstance(node, MappingNode):
                if node.tag != _MAP:
                    raise _Refused(
                        node.start_mark.line + 1, path, f"YAML tag {node.tag} is not allowed"
                    )
                return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))
        raise _Refused(node.start_mark.line + 1, path, "unsupported YAML node")  # pragma: no cover

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        key_lines: dict[str, int] = {}
        merges: list[MappingNode] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE:
                merges.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Refused(line, path, "a key must be a plain word, not a list or mapping")
            # Keys are words of the grammar: keep them as written (YAML 1.1 would turn `on:`
            # into True and `1:` into an int).
            key = str(key_node.value)
            if key in key_lines:
                raise _Refused(
                    line,
                    (*path, key),
                    f"key {key!r} is written twice (first on line {key_lines[key]})",
                )
            key_lines[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        # `<<: *base` fills in keys that the mapping does not set itself (YAML merge semantics).
        for source in merges:
            for key_node, value_node in source.value:
                key = str(key_node.value)
                if key not in result:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    result[key] = self.build(value_node, (*path, key))
        return result

    def _merge_sources(self, node: Node, path: Path_) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return list(node.value)
        raise _Refused(node.start_mark.line + 1, path, "a YAML merge (<<) needs a mapping")

    def _scalar(self, node: ScalarNode, path: Path_) -> Any:
        plain = node.style is None
        self.raw[path] = (plain, node.value)
        line = node.start_mark.line + 1
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return self.loader.construct_yaml_bool(node)
        if tag in (_INT, _FLOAT):
            if plain and _SURPRISING_NUMBER.fullmatch(node.value):
                return node.value
            try:
                if tag == _INT:
                    return self.loader.construct_yaml_int(node)
                return self.loader.construct_yaml_float(node)
            except ValueError:  # pragma: no cover - resolver and constructor disagree
                return node.value
        if tag == _TIMESTAMP:
            return node.value
        raise _Refused(line, path, f"YAML tag {tag} is not allowed")
