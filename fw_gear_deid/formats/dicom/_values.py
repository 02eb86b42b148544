"""VR knowledge: dummy values (PS3.15 "D"), empty values ("Z"), sensitivity kinds, DICOM date shifting."""

from __future__ import annotations

import re
from datetime import date, timedelta

from pydicom.sequence import Sequence

#: VRs whose values are text (scanned, hashed, cleaned).
TEXT_VRS = frozenset(
    {
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UC",
        "UI",
        "UR",
        "UT",
    }
)
#: Free-text VRs: what "clean" and dummy-content apply to.
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})

_DUMMIES: dict[str, object] = {
    "AE": "DEIDENTIFIED",
    "AS": "000D",
    "CS": "DEIDENTIFIED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": "DEIDENTIFIED",
    "LT": "DEIDENTIFIED",
    "PN": "DEIDENTIFIED",
    "SH": "DEIDENTIFIED",
    "ST": "DEIDENTIFIED",
    "UC": "DEIDENTIFIED",
    "UT": "DEIDENTIFIED",
    "UR": "http://deidentified.invalid",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
    "AT": 0,
}


def dummy_value(vr: str) -> object:
    """A non-empty value valid for ``vr`` that identifies nothing (code D)."""
    if vr == "SQ":
        return Sequence([])
    if vr in BINARY_VRS:
        return b"\x00\x00"
    return _DUMMIES.get(vr, "DEIDENTIFIED")


def empty_value(vr: str) -> object:
    """The zero-length value of ``vr`` (code Z)."""
    if vr == "SQ":
        return Sequence([])
    if vr in BINARY_VRS:
        return b""
    if vr in NUMERIC_VRS:
        return None
    return ""


def sensitive_kind(vr: str, keyword: str) -> str:
    """The residual-gate kind of a value of ``vr`` / ``keyword``."""
    if vr == "PN":
        return "name"
    if vr == "UI":
        return "uid"
    if vr == "DA":
        return "date"
    if vr == "DT":
        return "datetime"
    if "Address" in keyword or "Telephone" in keyword:
        return "address"
    if vr in ("LO", "SH", "CS") and re.search(r"ID|Number|Identifier", keyword):
        return "id"
    if vr in FREE_TEXT_VRS or vr == "AE":
        return "text"
    return "other"


_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DA_OLD = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")  # ACR-NEMA style, still seen in old files
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(.*)$")


def shift_da(value: str, days: int) -> str | None:
    """Shift a DA value by whole days; None when it is not a date (caller empties it)."""
    text = value.strip()
    match = _DA.match(text) or _DA_OLD.match(text)
    if not match:
        return None
    try:
        day = date(int(match[1]), int(match[2]), int(match[3])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return day.strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str | None:
    """Shift a DT value by whole days keeping its precision, time and offset suffix verbatim
    (a whole-day shift never changes the time of day, so TM values are left alone)."""
    text = value.strip()
    match = _DT.match(text)
    if not match:
        return None
    year, month, day, rest = match[1], match[2], match[3], match[4]
    try:
        anchor = date(int(year), int(month or 1), int(day or 1)) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    if rest and not re.fullmatch(r"[\d.]*([+-]\d{4})?", rest):
        return None
    if day:
        return anchor.strftime("%Y%m%d") + rest
    if month:  # month precision: shift the first of the month and keep the precision
        return anchor.strftime("%Y%m") + rest
    return anchor.strftime("%Y") + rest
