"""VR helpers: DICOM-aware date shifting, dummies, empties, sensitivity kinds."""

from __future__ import annotations

import pytest

from fw_gear_deid.formats.dicom._values import (
    dummy_value,
    empty_value,
    sensitive_kind,
    shift_da,
    shift_dt,
)


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20040119", -19, "20031231"),
        ("2004.01.19", 1, "20040120"),  # ACR-NEMA style
        ("20040230", 1, None),  # not a date: emptied by the caller
        ("", 1, None),
    ],
)
def test_shift_da(value, days, expected):
    assert shift_da(value, days) == expected


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20040119072730.123456+0100", -19, "20031231072730.123456+0100"),
        ("200401", 40, "200402"),  # month precision kept
        ("2004", -400, "2002"),  # year precision kept
        ("20040119", 1, "20040120"),
        ("not a date", 1, None),
    ],
)
def test_shift_dt_keeps_precision_time_and_offset(value, days, expected):
    assert shift_dt(value, days) == expected


@pytest.mark.parametrize(
    ("vr", "limit"), [("AE", 16), ("CS", 16), ("SH", 16), ("DA", 8), ("TM", 16), ("AS", 4)]
)
def test_dummies_fit_their_vr(vr, limit):
    value = dummy_value(vr)
    assert value
    assert len(str(value)) <= limit


def test_empty_values_are_zero_length():
    assert empty_value("PN") == ""
    assert empty_value("OB") == b""
    assert empty_value("US") is None
    assert len(empty_value("SQ")) == 0


@pytest.mark.parametrize(
    ("vr", "keyword", "kind"),
    [
        ("PN", "PatientName", "name"),
        ("LO", "PatientID", "id"),
        ("SH", "AccessionNumber", "id"),
        ("LO", "PatientAddress", "address"),
        ("UI", "SOPInstanceUID", "uid"),
        ("DA", "StudyDate", "date"),
        ("LO", "InstitutionName", "text"),
    ],
)
def test_sensitive_kind(vr, keyword, kind):
    assert sensitive_kind(vr, keyword) == kind
