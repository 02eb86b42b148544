"""The one parser of DICOM field selectors, shared by the profile validator and the DICOM engine.

A profile field names DICOM elements with ``name`` (or ``regex``). The accepted ``name`` forms are
those of flywheel-migration 13.10.11 (FLYWHEEL.md §C.3), parsed strictly:

* a keyword: ``PatientName`` (a keyword differing only in case is corrected, as Flywheel does);
* a tag: ``(0010,0010)``, ``(0010, 0010)``, ``00100010``, ``0x00100010`` or an int;
* a private tag with its creator: ``(0019, "SIEMENS MR HEADER", 0C)`` (odd group, non-empty creator,
  ``0C`` is the element offset ``ee`` inside the creator's block);
* a repeater group: ``(60xx, 3000)``, ``(50XX,0010)``, ``60xx3000`` (50xx and 60xx only; an element of
  ``xxxx`` means every element of the group, e.g. the PS3.15 row ``(50xx,xxxx)``);
* a sequence path: ``OtherPatientIDsSequence.0.PatientID``, ``00101002.*.00100020``, private steps allowed.

``regex`` selectors are built with :func:`parse_regex` from the ``regex:`` key, never from a name.
Every error is a :class:`SelectorError` with a message and, for a misspelt keyword, a suggestion.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydicom.datadict import DicomDictionary, RepeatersDictionary, get_entry, keyword_dict

__all__ = [
    "PathStep",
    "PrivateSelector",
    "RegexSelector",
    "RepeaterSelector",
    "Selector",
    "SelectorError",
    "SequencePath",
    "TagSelector",
    "dictionary_vr",
    "format_tag",
    "keyword_or_tag_str",
    "parse_regex",
    "parse_selector",
    "suggest_keyword",
]


class SelectorError(ValueError):
    """A field ``name`` (or ``regex``) that does not select DICOM elements."""

    def __init__(self, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


def format_tag(tag: int) -> str:
    """``(gggg,eeee)`` in upper-case hex, the form used in messages and reports."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def keyword_or_tag_str(tag: int) -> str:
    """The dictionary keyword of a tag, else its ``(gggg,eeee)`` form."""
    entry = DicomDictionary.get(tag)
    if entry and entry[4]:
        return entry[4]
    return format_tag(tag)


def dictionary_vr(tag: int) -> str | None:
    """The VR pydicom's dictionary gives a public tag (repeaters included), None when unknown."""
    try:
        return get_entry(tag)[0]
    except KeyError:
        return None


@dataclass(frozen=True)
class TagSelector:
    """One element by tag (keywords resolve to their tag)."""

    tag: int

    @property
    def vr(self) -> str | None:
        return dictionary_vr(self.tag)

    def __str__(self) -> str:
        return keyword_or_tag_str(self.tag)


@dataclass(frozen=True)
class PrivateSelector:
    """A private element named by its block's creator: group ``gggg``, creator, offset ``ee``."""

    group: int
    creator: str
    offset: int

    def __str__(self) -> str:
        return f'({self.group:04X},"{self.creator}",{self.offset:02X})'


@dataclass(frozen=True)
class RepeaterSelector:
    """Every group of a repeating range: ``group_base`` 0x5000 or 0x6000; ``element`` None = any."""

    group_base: int
    element: int | None

    def matches(self, tag: int) -> bool:
        group, element = tag >> 16, tag & 0xFFFF
        if group & 0xFF00 != self.group_base:
            return False
        return self.element is None or element == self.element

    @property
    def vr(self) -> str | None:
        if self.element is None:
            return None
        entry = RepeatersDictionary.get(f"{self.group_base >> 8:02X}xx{self.element:04X}")
        return entry[0] if entry else None

    def __str__(self) -> str:
        element = "xxxx" if self.element is None else f"{self.element:04X}"
        return f"({self.group_base >> 8:02X}xx,{element})"


@dataclass(frozen=True)
class PathStep:
    """One step of a sequence path; ``index`` is an item number, ``"*"`` (every item) or None (last step)."""

    selector: TagSelector | PrivateSelector
    index: int | Literal["*"] | None

    def __str__(self) -> str:
        return str(self.selector) if self.index is None else f"{self.selector}.{self.index}"


@dataclass(frozen=True)
class SequencePath:
    """A path into sequence items; every step but the last names a sequence and an item index."""

    steps: tuple[PathStep, ...]

    @property
    def has_wildcard(self) -> bool:
        return any(step.index == "*" for step in self.steps)

    @property
    def leaf(self) -> TagSelector | PrivateSelector:
        return self.steps[-1].selector

    def __str__(self) -> str:
        return ".".join(str(step) for step in self.steps)


@dataclass(frozen=True)
class RegexSelector:
    """A ``regex:`` field: full-path regular expression matched against keyword and hex paths."""

    pattern: str

    @property
    def compiled(self) -> re.Pattern[str]:
        return _compile(self.pattern)

    def __str__(self) -> str:
        return f"regex {self.pattern!r}"


Selector = TagSelector | PrivateSelector | RepeaterSelector | SequencePath


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@cache
def _lower_keywords() -> dict[str, str]:
    """Lower-cased keyword -> keyword, public dictionary plus the 50xx/60xx repeater keywords."""
    table = {keyword.lower(): keyword for keyword in keyword_dict if keyword}
    for keyword in _repeater_keywords():
        table.setdefault(keyword.lower(), keyword)
    return table


@cache
def _repeater_keywords() -> dict[str, RepeaterSelector]:
    """Keywords of the curve (50xx) and overlay (60xx) repeater entries, e.g. OverlayData."""
    table: dict[str, RepeaterSelector] = {}
    for mask, entry in RepeatersDictionary.items():
        if len(mask) == 8 and mask[:4].lower() in ("50xx", "60xx") and entry[4]:
            element = mask[4:]
            if all(c in "0123456789abcdefABCDEF" for c in element):
                table[entry[4]] = RepeaterSelector(int(mask[:2], 16) << 8, int(element, 16))
    return table


def suggest_keyword(word: str) -> str | None:
    """The closest DICOM keyword to a misspelt one (difflib), or None."""
    lowered = _lower_keywords()
    matches = difflib.get_close_matches(word.lower(), lowered, n=1, cutoff=0.75)
    return lowered[matches[0]] if matches else None


_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_HEX8 = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{8})")
_REPEATER_GROUP = re.compile(r"([56]0)[xX]{2}")
_REPEATER_HEX = re.compile(r"(?:0[xX])?([56]0)[xX]{2}([0-9A-Fa-f]{4})")
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INDEX = re.compile(r"\d+|\*")
# Groups that may not carry data elements at all (PS3.5 §7.1): odd groups 0001-0007 and FFFF.
_ILLEGAL_GROUPS = frozenset({0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF})


def parse_selector(
    name: str | int,
) -> TagSelector | PrivateSelector | RepeaterSelector | SequencePath:
    """Parse a field ``name`` into a selector, or raise :class:`SelectorError` saying what is wrong."""
    if isinstance(name, bool):
        raise SelectorError(f"a DICOM field name must be a keyword or a tag, not {name!r}")
    if isinstance(name, int):
        if not 0 <= name <= 0xFFFFFFFF:
            raise SelectorError(f"tag number {name} is out of range (0 to 0xFFFFFFFF)")
        return _checked_tag(name)
    if not isinstance(name, str):
        raise SelectorError(f"a DICOM field name must be a string, not {type(name).__name__}")
    text = name.strip()
    if not text:
        raise SelectorError("empty DICOM field name")
    tokens = _split_path(text)
    if len(tokens) == 1:
        return _parse_single(text, allow_repeater=True)
    return _parse_path(text, tokens)


def parse_regex(pattern: str) -> RegexSelector:
    """A ``regex:`` selector whose pattern compiles, else :class:`SelectorError`."""
    if not isinstance(pattern, str) or not pattern:
        raise SelectorError("regex must be a non-empty string")
    try:
        _compile(pattern)
    except re.error as error:
        raise SelectorError(f"regex does not compile: {error}") from None
    return RegexSelector(pattern)


def _split_path(text: str) -> list[str]:
    """Split on dots outside parentheses and quotes (a private creator may contain dots)."""
    tokens: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(0, depth - 1)
        elif char == "." and depth == 0 and not quoted:
            tokens.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    tokens.append("".join(current).strip())
    return tokens


def _parse_path(text: str, tokens: list[str]) -> SequencePath:
    if len(tokens) % 2 == 0:
        last = tokens[-1]
        if _INDEX.fullmatch(last):
            raise SelectorError(
                f"sequence path {text!r} ends with an item index; it must end with an element"
            )
        raise SelectorError(
            f"sequence path {text!r} needs an item index (a number or *) after every sequence, "
            f"e.g. {tokens[0]}.*.{tokens[-1]}"
        )
    steps: list[PathStep] = []
    for position in range(0, len(tokens), 2):
        token = tokens[position]
        selector = _parse_single(token, allow_repeater=False)
        if position + 1 == len(tokens):
            steps.append(PathStep(selector, None))
            break
        index_token = tokens[position + 1]
        if not _INDEX.fullmatch(index_token):
            raise SelectorError(
                f"sequence path {text!r}: {index_token!r} after {token!r} must be an item "
                "index (a number or *)"
            )
        if isinstance(selector, TagSelector):
            vr = selector.vr
            if vr is not None and vr != "SQ":
                raise SelectorError(
                    f"sequence path {text!r}: {selector} is not a sequence (VR {vr})"
                )
        index: int | Literal["*"] = "*" if index_token == "*" else int(index_token)
        steps.append(PathStep(selector, index))
    return SequencePath(tuple(steps))


def _parse_single(
    text: str, *, allow_repeater: bool
) -> TagSelector | PrivateSelector | RepeaterSelector:
    if text.startswith("("):
        return _parse_parenthesised(text, allow_repeater=allow_repeater)
    match = _REPEATER_HEX.fullmatch(text)
    if match:
        return _repeater(text, match.group(1), match.group(2), allow_repeater=allow_repeater)
    match = _HEX8.fullmatch(text)
    if match:
        return _checked_tag(int(match.group(1), 16))
    if text.isdigit():
        # A decimal string: YAML gives ints for unquoted numbers, so a quoted one is a mistake.
        raise SelectorError(
            f"{text!r} is neither a keyword nor a tag; write a tag as (gggg,eeee) or 8 hex digits"
        )
    if _KEYWORD.fullmatch(text):
        return _keyword(text, allow_repeater=allow_repeater)
    raise SelectorError(
        f'{text!r} is not a DICOM keyword, tag (gggg,eeee), private tag (gggg,"CREATOR",ee) '
        "or sequence path"
    )


def _keyword(text: str, *, allow_repeater: bool) -> TagSelector | RepeaterSelector:
    keyword = text if text in keyword_dict else _lower_keywords().get(text.lower())
    if keyword is None:
        raise SelectorError(f"unknown DICOM keyword {text!r}", suggest_keyword(text))
    repeater = _repeater_keywords().get(keyword)
    if repeater is not None:
        if not allow_repeater:
            raise SelectorError(f"repeater element {keyword} cannot be a sequence path step")
        return repeater
    return TagSelector(keyword_dict[keyword])


def _parse_parenthesised(
    text: str, *, allow_repeater: bool
) -> TagSelector | PrivateSelector | RepeaterSelector:
    if not text.endswith(")"):
        raise SelectorError(f"{text!r}: a tag in parentheses must end with ')'")
    inner = text[1:-1]
    # The creator may itself contain commas: take the first and last comma as separators.
    first = inner.find(",")
    last = inner.rfind(",")
    if first == -1:
        raise SelectorError(f"{text!r}: write a tag as (gggg,eeee)")
    group_text = inner[:first].strip()
    if first == last:
        element_text = inner[first + 1 :].strip()
        if _REPEATER_GROUP.fullmatch(group_text):
            return _repeater(text, group_text[:2], element_text, allow_repeater=allow_repeater)
        if not _HEX4.fullmatch(group_text) or not _HEX4.fullmatch(element_text):
            raise SelectorError(
                f"{text!r}: group and element must be 4 hex digits each, e.g. (0010,0010)"
            )
        return _checked_tag(int(group_text + element_text, 16))
    creator_text = inner[first + 1 : last].strip()
    offset_text = inner[last + 1 :].strip()
    return _private(text, group_text, creator_text, offset_text)


def _private(text: str, group_text: str, creator_text: str, offset_text: str) -> PrivateSelector:
    if not _HEX4.fullmatch(group_text):
        raise SelectorError(f"{text!r}: the group of a private tag must be 4 hex digits")
    group = int(group_text, 16)
    if group % 2 == 0:
        raise SelectorError(
            f"{text!r} is not a private tag: group {group_text.upper()} is even "
            "(private groups are odd)"
        )
    if group in _ILLEGAL_GROUPS:
        raise SelectorError(f"{text!r}: group {group_text.upper()} cannot hold private elements")
    creator = creator_text
    if len(creator) >= 2 and creator[0] == creator[-1] and creator[0] in "\"'":
        creator = creator[1:-1]
    creator = creator.strip()
    if not creator:
        raise SelectorError(f"{text!r}: the private creator is empty")
    if len(creator) > 64 or "\\" in creator:
        raise SelectorError(
            f"{text!r}: a private creator is at most 64 characters without backslashes"
        )
    if not _HEX2.fullmatch(offset_text):
        hint = ""
        if _HEX4.fullmatch(offset_text):
            hint = f"; for element {offset_text.upper()} write {offset_text[2:].upper()}"
        raise SelectorError(
            f"{text!r}: the element of a private tag is the 2-hex-digit offset ee in the "
            f"creator's block{hint}"
        )
    return PrivateSelector(group, creator, int(offset_text, 16))


def _repeater(
    text: str, group_prefix: str, element_text: str, *, allow_repeater: bool
) -> RepeaterSelector:
    if not allow_repeater:
        raise SelectorError(f"{text!r}: a repeater group cannot be a sequence path step")
    if element_text.lower() == "xxxx":
        element = None
    elif _HEX4.fullmatch(element_text):
        element = int(element_text, 16)
    else:
        raise SelectorError(f"{text!r}: the element must be 4 hex digits or xxxx")
    return RepeaterSelector(int(group_prefix, 16) << 8, element)


def _checked_tag(tag: int) -> TagSelector:
    group, element = tag >> 16, tag & 0xFFFF
    if group in _ILLEGAL_GROUPS:
        raise SelectorError(f"{format_tag(tag)}: group {group:04X} cannot hold data elements")
    if group % 2 == 1:
        if 0x0001 <= element <= 0x000F:
            raise SelectorError(
                f"{format_tag(tag)}: elements 0001-000F of a private group are reserved"
            )
        return TagSelector(tag)
    # Group length elements (gggg,0000) are legal in every group though not in the dictionary.
    if element != 0 and dictionary_vr(tag) is None:
        raise SelectorError(f"{format_tag(tag)} is not in the DICOM dictionary")
    return TagSelector(tag)
