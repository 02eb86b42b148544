"""DICOM PS3.15 Annex E Table E.1-1, shipped as data (innolitics/dicom-standard, MIT licence).

The table is loaded from ``confidentiality_profile_attributes.json``; this module only names its
columns. The edition is :data:`fw_gear_deid.STANDARD_EDITION` and is recorded in every report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fw_gear_deid import STANDARD_EDITION

__all__ = ["OPTIONS", "STANDARD_EDITION", "UNSUPPORTED_OPTIONS", "Option", "table_rows"]


@dataclass(frozen=True)
class Option:
    """A PS3.15 E.3 option: its profile name, table column and CID 7050 code."""

    name: str
    column: str | None
    code: str
    meaning: str


#: The options a profile may switch on under ``preset: ps3.15-basic`` (``options: [...]``).
OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("retain-safe-private", "rtnSafePrivOpt", "113111", "Retain Safe Private Option"),
        Option("retain-uids", "rtnUIDsOpt", "113110", "Retain UIDs Option"),
        Option("retain-device-identity", "rtnDevIdOpt", "113109", "Retain Device Identity Option"),
        Option(
            "retain-institution-identity",
            "rtnInstIdOpt",
            "113112",
            "Retain Institution Identity Option",
        ),
        Option(
            "retain-patient-characteristics",
            "rtnPatCharsOpt",
            "113108",
            "Retain Patient Characteristics Option",
        ),
        Option(
            "retain-long-full-dates",
            "rtnLongFullDatesOpt",
            "113106",
            "Retain Longitudinal Temporal Information Full Dates Option",
        ),
        Option(
            "retain-long-modified-dates",
            "rtnLongModifDatesOpt",
            "113107",
            "Retain Longitudinal Temporal Information Modified Dates Option",
        ),
        Option("clean-descriptors", "cleanDescOpt", "113105", "Clean Descriptors Option"),
        Option(
            "clean-structured-content",
            "cleanStructContOpt",
            "113104",
            "Clean Structured Content Option",
        ),
        Option("clean-graphics", "cleanGraphOpt", "113103", "Clean Graphics Option"),
    )
}

#: Options of E.3 that need pixel analysis, which this gear does not do: naming one is an error.
UNSUPPORTED_OPTIONS: dict[str, str] = {
    "clean-pixel-data": "113101",
    "clean-recognizable-visual-features": "113102",
}

#: CID 7050 code of the Basic Application Level Confidentiality Profile itself.
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")


@cache
def table_rows() -> tuple[dict[str, str], ...]:
    """The 621 rows of Table E.1-1 as dicts (``name``, ``tag``, ``id``, ``basicProfile``, option columns)."""
    text = (
        resources.files(__package__)
        .joinpath("confidentiality_profile_attributes.json")
        .read_text(encoding="utf-8")
    )
    return tuple(json.loads(text))
