"""Profile ``fields`` compiled against the DICOM selector grammar, and matched element by element.

Matching follows flywheel-migration: keyword/tag/private/repeater selectors match top-level elements
(every depth with ``recurse-sequence``), sequence paths match their exact path (``*`` = any item),
``regex`` matches the keyword path (``Seq.0.Keyword``) or the lower-case hex path
(``00081115.0.0020000e``) of elements at any depth, with ``re.match``. Each rule is applied at most
once per element (the reference applies recursed date shifts twice).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom.datadict import keyword_for_tag as _pydicom_keyword
from pydicom.dataset import Dataset

from fw_gear_deid.actions import FieldAction, compile_field_action
from fw_gear_deid.formats.dicom.selectors import (
    PrivateSelector,
    RegexSelector,
    RepeaterSelector,
    SequencePath,
    TagSelector,
    parse_regex,
    parse_selector,
)


@lru_cache(maxsize=8192)
def keyword_for_tag(tag: int) -> str:
    """pydicom's keyword of a tag ("" when none), cached: paths are built for every change."""
    return _pydicom_keyword(tag)


@dataclass(frozen=True)
class Step:
    """One ancestor of an element: the sequence element's tag, the item index, the dataset holding
    the sequence (for private creator look-ups)."""

    tag: int
    index: int
    holder: Dataset


def private_creator(dataset: Dataset, tag: int) -> str | None:
    """The creator string of the private block ``tag`` belongs to, in ``dataset``."""
    group, element = tag >> 16, tag & 0xFFFF
    if element < 0x1000:
        return None
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in dataset:
        return None
    try:
        value = dataset[creator_tag].value
    except Exception:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    return str(value).strip() if value is not None else None


def _step_matches(selector: TagSelector | PrivateSelector, tag: int, holder: Dataset) -> bool:
    if isinstance(selector, TagSelector):
        return selector.tag == tag
    if tag >> 16 != selector.group or tag & 0xFF != selector.offset:
        return False
    return private_creator(holder, tag) == selector.creator


@dataclass(frozen=True)
class FieldRule:
    """A profile field: its selector, its compiled action, and whether it recurses into sequences."""

    selector: TagSelector | PrivateSelector | RepeaterSelector | SequencePath | RegexSelector
    action: FieldAction
    recurse: bool
    order: int

    def matches(self, tag: int, dataset: Dataset, path: Sequence[Step]) -> bool:
        selector = self.selector
        if isinstance(selector, SequencePath):
            steps = selector.steps
            if len(path) != len(steps) - 1:
                return False
            for step, ancestor in zip(steps[:-1], path, strict=False):
                if step.index != "*" and step.index != ancestor.index:
                    return False
                if not _step_matches(step.selector, ancestor.tag, ancestor.holder):
                    return False
            return _step_matches(steps[-1].selector, tag, dataset)
        if isinstance(selector, RegexSelector):
            return regex_matches(selector.compiled, tag, path)
        if path and not self.recurse:
            return False
        if isinstance(selector, TagSelector):
            return selector.tag == tag
        if isinstance(selector, RepeaterSelector):
            return selector.matches(tag)
        return _step_matches(selector, tag, dataset)

    @property
    def keeps_private(self) -> bool:
        """Whether this rule names a private element (which survives private-tag removal)."""
        selector = self.selector
        if isinstance(selector, PrivateSelector):
            return True
        return isinstance(selector, SequencePath) and isinstance(selector.leaf, PrivateSelector)

    def could_match_inside(self, path_len: int) -> bool:
        """Whether this rule may match something below a sequence at depth ``path_len``."""
        if isinstance(self.selector, SequencePath):
            return len(self.selector.steps) - 1 > path_len
        return self.recurse or isinstance(self.selector, RegexSelector)


def hex_path(tag: int, path: Sequence[Step]) -> str:
    parts = []
    for step in path:
        parts += [f"{step.tag:08x}", str(step.index)]
    parts.append(f"{tag:08x}")
    return ".".join(parts)


def keyword_path(tag: int, path: Sequence[Step]) -> str | None:
    parts = []
    for step in path:
        keyword = keyword_for_tag(step.tag)
        if not keyword:
            return None
        parts += [keyword, str(step.index)]
    keyword = keyword_for_tag(tag)
    if not keyword:
        return None
    parts.append(keyword)
    return ".".join(parts)


def regex_matches(pattern: re.Pattern[str], tag: int, path: Sequence[Step]) -> bool:
    if tag >> 16 == 0x0002:  # the reference's regex never sees file meta
        return False
    words = keyword_path(tag, path)
    if words is not None and pattern.match(words):
        return True
    return bool(pattern.match(hex_path(tag, path)))


def display_path(tag: int, path: Sequence[Step]) -> str:
    """A readable element path for reports: keywords where known, ``(gggg,eeee)`` otherwise."""
    parts = []
    for step in path:
        parts += [keyword_for_tag(step.tag) or _fmt(step.tag), str(step.index)]
    parts.append(keyword_for_tag(tag) or _fmt(tag))
    return ".".join(parts)


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def sort_fields(fields: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The reference runs regex-sub fields first (in reverse listing order: it inserts each at 0)."""
    ordered: list[Mapping[str, Any]] = []
    for entry in fields:
        if "regex-sub" in entry:
            ordered.insert(0, entry)
        else:
            ordered.append(entry)
    return ordered


def compile_fields(section: Mapping[str, Any]) -> list[FieldRule]:
    """Every ``fields`` entry of a validated dicom section, in application order."""
    recurse = bool(section.get("recurse-sequence"))
    rules = []
    for order, entry in enumerate(sort_fields(section.get("fields") or [])):
        if entry.get("name") is not None:
            selector: Any = parse_selector(entry["name"])
        else:
            selector = parse_regex(entry["regex"])
        action = compile_field_action(entry, section, section_name="dicom")
        rules.append(FieldRule(selector, action, recurse, order))
    return rules


def top_level_tag(rule: FieldRule) -> int | None:
    """The tag a keyword/tag rule names at the top level (for insertions), else None."""
    if isinstance(rule.selector, TagSelector):
        return rule.selector.tag
    return None
