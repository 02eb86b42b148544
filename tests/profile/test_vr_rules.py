"""replace-with values and actions against DICOM VRs: what can be written, what cannot."""

from __future__ import annotations

import pytest

from fw_gear_deid.profile._vr import action_problem, value_problem


@pytest.mark.parametrize(
    ("vr", "value"),
    [
        ("PN", "ANON^PATIENT"),
        ("PN", 123),  # the gears write numbers as text
        ("LO", ""),
        ("SQ", ""),
        ("SQ", []),
        ("SQ", None),
        ("US", 65535),
        ("US or SS", -1),
        ("SS", -32768),
        ("FD", 1.5),
        ("IS", "42"),
        ("IS", 42),
        ("DS", "70.5"),
        ("DS", 0.5),
        ("DS", [0.5, "0.5"]),
        ("DA", "19000101"),
        ("DA", 19000101),
        ("TM", "120000.123"),
        ("DT", "20200102120000.5+0100"),
        ("AS", "034Y"),
        ("UI", "2.25.1234"),
        ("CS", "YES"),
        ("CS", "ORIGINAL\\PRIMARY"),
        ("OB or OW", ""),
        (None, "anything"),
        ("LT", "a\\b"),  # LT is single-valued: a backslash is text
    ],
)
def test_values_valid_for_their_vr(vr, value):
    assert value_problem(vr, value) is None


@pytest.mark.parametrize(
    ("vr", "value", "problem"),
    [
        ("US", -1, "-1 is out of range for VR US (0 to 65535)"),
        ("US", "5", "'5' is not a valid US value (a whole number)"),
        ("FL", "x", "'x' is not a valid FL value (a number)"),
        ("IS", 1.5, "1.5 is not a valid IS value (a whole number)"),
        ("IS", "12345678901234", "'12345678901234' is longer than 12 characters (VR IS)"),
        ("DS", "1.2.3", "'1.2.3' is not a valid DS value (a decimal number)"),
        ("DS", "0.12345678901234567", "'0.12345678901234567' is longer than 16 characters (VR DS)"),
        ("DA", "20200230", "'20200230' is not a valid date (VR DA, YYYYMMDD)"),
        ("TM", "25:00", "'25:00' is not a valid TM value (HHMMSS.FFFFFF)"),
        ("AS", "34Y", "'34Y' is not a valid AS value (nnnD, nnnW, nnnM or nnnY)"),
        ("UI", "1.02.3", "'1.02.3' is not a valid UI value (digits and dots, e.g. 2.25.1234)"),
        ("CS", "yes", "'yes' is not a valid CS value (upper-case letters, digits, space and _)"),
        ("SH", "x" * 17, f"'{'x' * 17}' is longer than 16 characters (VR SH)"),
        ("SQ", "x", "a sequence (VR SQ) can only be replaced with a list of items, e.g. []"),
        ("OB", "x", "binary VR OB can only be replaced with an empty value"),
        ("LT", ["a"], "VR LT holds a single value, not a list"),
        ("LO", {"a": 1}, "a mapping is not a valid LO value"),
        ("LO", True, "true is not a valid LO value"),
    ],
)
def test_values_invalid_for_their_vr_say_why(vr, value, problem):
    assert value_problem(vr, value) == problem


@pytest.mark.parametrize(
    ("action", "vr", "custom", "ok"),
    [
        ("hash", "LO", False, True),
        ("hash", "PN", False, True),
        ("hash", "UI", False, False),
        ("hash", "US", False, False),
        ("hashuid", "UI", False, True),
        ("hashuid", "LO", False, True),
        ("hashuid", "SH", False, False),
        ("jitter", "DS", False, True),
        ("jitter", "US or SS", False, True),
        ("jitter", "LO", False, False),
        ("increment-date", "DA", False, True),
        ("increment-date", "DT", False, False),
        ("increment-date", "DT", True, True),  # the field sets its own format
        ("increment-date", "LO", False, True),
        ("increment-date", "US", True, False),
        ("increment-datetime", "DT", False, True),
        ("increment-datetime", "DA", False, False),
        ("remove", "SQ", False, True),
        ("keep", "OB", False, True),
        ("hash", None, False, True),  # private or unknown VR: nothing to check
    ],
)
def test_actions_against_vrs(action, vr, custom, ok):
    assert (action_problem(action, vr, custom_format=custom) is None) == ok
