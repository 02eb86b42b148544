"""Which actions and ``replace-with`` values a DICOM VR can take.

flywheel-migration checks only two cases (``hash`` on some VRs and ``replace-with`` values that
pydicom cannot write). Here every action a profile puts on a dictionary element is checked against
what the action produces, so a profile that would write an invalid DICOM value is rejected before
any file is touched.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

NUMERIC_BINARY = {"US", "SS", "UL", "SL", "SV", "UV", "FL", "FD"}
NUMERIC = NUMERIC_BINARY | {"DS", "IS"}
BINARY = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
# The 16 hex digits of `hash` are not valid in these (besides the binary and numeric ones).
NOT_HASHABLE = NUMERIC | BINARY | {"AT", "SQ", "UI", "DA", "DT", "TM", "AS"}
# hashuid builds a UID of up to 64 characters: it fits UI and long free-text VRs only.
HASHUID_FITS = {"UI", "LO", "LT", "ST", "UT", "UC"}
NOT_DATES = NUMERIC | BINARY | {"AT", "SQ", "UI", "PN", "AS"}
MAX_CHARS = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240}
SINGLE_VALUED_TEXT = {"ST", "LT", "UT", "UR"}

_INT_RANGES = {
    "US": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "UV": (0, 2**64 - 1),
    "SV": (-(2**63), 2**63 - 1),
    "IS": (-(2**31), 2**31 - 1),
}
_PATTERNS = {
    "DA": (re.compile(r"\d{8}"), "YYYYMMDD"),
    "TM": (re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"), "HHMMSS.FFFFFF"),
    "DT": (
        re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?"),
        "YYYYMMDDHHMMSS.FFFFFF&ZZXX",
    ),
    "AS": (re.compile(r"\d{3}[DWMY]"), "nnnD, nnnW, nnnM or nnnY"),
    "UI": (re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))+"), "digits and dots, e.g. 2.25.1234"),
    "CS": (re.compile(r"[A-Z0-9 _]*"), "upper-case letters, digits, space and _"),
    "IS": (re.compile(r"\s*[-+]?\d+\s*"), "a whole number"),
    "DS": (re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*"), "a decimal number"),
}


def alternatives(vr: str | None) -> set[str]:
    """``"US or SS"`` -> ``{"US", "SS"}``; None -> empty set (unknown VR: nothing to check)."""
    if not vr:
        return set()
    return {part.strip() for part in vr.replace("/", " or ").split(" or ") if part.strip()}


def value_problem(vr: str | None, value: Any) -> str | None:
    """Why ``value`` cannot be written to an element of this VR (None when it can)."""
    choices = alternatives(vr)
    if not choices:
        return "a mapping is not a valid value" if isinstance(value, dict) else None
    problems = [_problem_for(choice, value) for choice in sorted(choices)]
    if any(problem is None for problem in problems):
        return None
    return problems[0]


def _problem_for(vr: str, value: Any) -> str | None:
    if value is None or value == "":
        # An empty value is valid for every VR (Flywheel profiles blank sequences with '').
        return None
    if vr == "SQ":
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            return None
        return "a sequence (VR SQ) can only be replaced with a list of items, e.g. []"
    if isinstance(value, dict):
        return f"a mapping is not a valid {vr} value"
    if isinstance(value, list):
        if vr in SINGLE_VALUED_TEXT:
            return f"VR {vr} holds a single value, not a list"
        for item in value:
            problem = _problem_for(vr, item)
            if problem:
                return problem
        return None
    if isinstance(value, bool):
        return f"{str(value).lower()} is not a valid {vr} value"
    if vr in BINARY:
        if value == "":
            return None
        return f"binary VR {vr} can only be replaced with an empty value"
    if vr in NUMERIC_BINARY or vr == "AT":
        return _binary_number_problem(vr, value)
    if vr in ("IS", "DS"):
        return _number_string_problem(vr, value)
    text = str(value)
    if text == "":
        return None
    values = [text] if vr in SINGLE_VALUED_TEXT else text.split("\\")
    for single in values:
        problem = _text_problem(vr, single)
        if problem:
            return problem
    return None


def _binary_number_problem(vr: str, value: Any) -> str | None:
    if vr in ("FL", "FD"):
        if isinstance(value, int | float):
            return None
        return f"{value!r} is not a valid {vr} value (a number)"
    if not isinstance(value, int):
        return f"{value!r} is not a valid {vr} value (a whole number)"
    if vr == "AT":
        return None if 0 <= value <= 0xFFFFFFFF else f"{value} is not a valid tag (VR AT)"
    low, high = _INT_RANGES[vr]
    if not low <= value <= high:
        return f"{value} is out of range for VR {vr} ({low} to {high})"
    return None


def _number_string_problem(vr: str, value: Any) -> str | None:
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if vr == "IS":
            return f"{value!r} is not a valid IS value (a whole number)"
        text = repr(value)
    else:
        text = str(value)
    for single in text.split("\\"):
        if single == "":
            continue
        pattern, meaning = _PATTERNS[vr]
        if not pattern.fullmatch(single):
            return f"{single!r} is not a valid {vr} value ({meaning})"
        limit = 12 if vr == "IS" else 16
        if len(single) > limit:
            return f"{single!r} is longer than {limit} characters (VR {vr})"
        if vr == "IS":
            low, high = _INT_RANGES["IS"]
            if not low <= int(single) <= high:
                return f"{single} is out of range for VR IS"
    return None


def _text_problem(vr: str, text: str) -> str | None:
    if text == "":
        return None
    if vr in _PATTERNS:
        pattern, meaning = _PATTERNS[vr]
        if not pattern.fullmatch(text):
            return f"{text!r} is not a valid {vr} value ({meaning})"
        if vr == "DA":
            try:
                datetime.strptime(text, "%Y%m%d")
            except ValueError:
                return f"{text!r} is not a valid date (VR DA, YYYYMMDD)"
        if vr == "UI" and len(text) > 64:
            return f"UID {text!r} is longer than 64 characters"
    limit = MAX_CHARS.get(vr)
    if limit is not None:
        size = max(len(part) for part in text.split("=")) if vr == "PN" else len(text)
        if size > limit:
            return f"{text!r} is longer than {limit} characters (VR {vr})"
    return None


def action_problem(action: str, vr: str | None, *, custom_format: bool) -> str | None:
    """Why ``action`` cannot apply to an element of this VR (None when it can).

    ``custom_format`` is true when the field sets its own date/datetime format: the element may
    then be free text holding a date, and only non-text VRs are refused.
    """
    choices = alternatives(vr)
    if not choices:
        return None
    shown = " or ".join(sorted(choices))
    if action == "hash" and "UI" in choices:
        return f"hash cannot apply to a UID (VR {shown}): use hashuid"
    if action == "hash" and choices <= NOT_HASHABLE:
        return (
            f"hash cannot apply to VR {shown}: the 16-hex-digit hash is not a valid {shown} value"
        )
    if action == "hashuid" and not choices & HASHUID_FITS:
        return (
            f"hashuid cannot apply to VR {shown}: it writes a UID of up to 64 characters; "
            "use hash or replace-with"
        )
    if action == "jitter" and not choices & NUMERIC:
        return f"jitter needs a numeric element, not VR {shown}"
    if action in _DATE_ACTIONS:
        other, wrong = _DATE_ACTIONS[action]
        if choices <= NOT_DATES or (not custom_format and choices <= wrong):
            hint = f"; use {other}" if choices & (wrong - {"TM"}) else ""
            return f"{action} cannot apply to VR {shown}{hint}"
    return None


# date action -> (the other date action, the VRs that need the other one)
_DATE_ACTIONS = {
    "increment-date": ("increment-datetime", {"DT", "TM"}),
    "increment-datetime": ("increment-date", {"DA", "TM"}),
}
