"""The DICOM selector grammar: every form Flywheel accepts parses to the element it means."""

from __future__ import annotations

import pytest

from fw_gear_deid.formats.dicom.selectors import (
    PathStep,
    PrivateSelector,
    RegexSelector,
    RepeaterSelector,
    SelectorError,
    SequencePath,
    TagSelector,
    format_tag,
    keyword_or_tag_str,
    parse_regex,
    parse_selector,
)

PATIENT_NAME = TagSelector(0x00100010)
PATIENT_ID = TagSelector(0x00100020)
OTHER_IDS = TagSelector(0x00101002)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PatientName", PATIENT_NAME),
        ("patientname", PATIENT_NAME),  # Flywheel corrects the case of keywords
        ("  PatientName ", PATIENT_NAME),
        ("(0010,0010)", PATIENT_NAME),
        ("(0010, 0010)", PATIENT_NAME),
        ("( 0010 , 0010 )", PATIENT_NAME),
        ("00100010", PATIENT_NAME),
        ("0x00100010", PATIENT_NAME),
        (0x00100010, PATIENT_NAME),
        ("(0008,0000)", TagSelector(0x00080000)),  # group length
        ("(0019,100C)", TagSelector(0x0019100C)),  # private tag without creator
        ("(6002,3000)", TagSelector(0x60023000)),  # one concrete overlay group
    ],
)
def test_every_tag_form_selects_the_same_element(name, expected):
    assert parse_selector(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ('(0019, "SIEMENS MR HEADER", 0C)', PrivateSelector(0x0019, "SIEMENS MR HEADER", 0x0C)),
        ("(0009,GEMS_IDEN_01,01)", PrivateSelector(0x0009, "GEMS_IDEN_01", 0x01)),
        ('(0029,"SIEMENS CSA, HEADER",10)', PrivateSelector(0x0029, "SIEMENS CSA, HEADER", 0x10)),
    ],
)
def test_private_tag_with_creator_parses_group_creator_and_offset(name, expected):
    assert parse_selector(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("(60xx, 3000)", RepeaterSelector(0x6000, 0x3000)),
        ("(50XX,0010)", RepeaterSelector(0x5000, 0x0010)),
        ("60xx3000", RepeaterSelector(0x6000, 0x3000)),
        ("0x60XX4000", RepeaterSelector(0x6000, 0x4000)),
        ("(50xx,xxxx)", RepeaterSelector(0x5000, None)),
        ("OverlayData", RepeaterSelector(0x6000, 0x3000)),
    ],
)
def test_repeater_groups_parse_to_a_group_range(name, expected):
    assert parse_selector(name) == expected


def test_repeater_selector_matches_every_group_of_its_range_only():
    overlay = RepeaterSelector(0x6000, 0x3000)
    assert overlay.matches(0x60003000)
    assert overlay.matches(0x601E3000)
    assert not overlay.matches(0x60004000)
    assert not overlay.matches(0x50003000)
    assert RepeaterSelector(0x5000, None).matches(0x50020114)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "OtherPatientIDsSequence.0.PatientID",
            SequencePath((PathStep(OTHER_IDS, 0), PathStep(PATIENT_ID, None))),
        ),
        (
            "00101002.*.00100020",
            SequencePath((PathStep(OTHER_IDS, "*"), PathStep(PATIENT_ID, None))),
        ),
        (
            "OtherPatientIDsSequence.12.00100020",
            SequencePath((PathStep(OTHER_IDS, 12), PathStep(PATIENT_ID, None))),
        ),
        (
            'ReferencedStudySequence.*.(0019,"ACME 1.0",10)',
            SequencePath(
                (
                    PathStep(TagSelector(0x00081110), "*"),
                    PathStep(PrivateSelector(0x0019, "ACME 1.0", 0x10), None),
                )
            ),
        ),
    ],
)
def test_sequence_paths_keep_indexes_and_wildcards(name, expected):
    selector = parse_selector(name)
    assert selector == expected
    assert selector.has_wildcard == ("*" in name)


@pytest.mark.parametrize(
    ("name", "message", "suggestion"),
    [
        ("PateintName", "unknown DICOM keyword 'PateintName'", "PatientName"),
        ("Nonsense", "unknown DICOM keyword 'Nonsense'", None),
        ("(0010,0011)", "(0010,0011) is not in the DICOM dictionary", None),
        (
            '(0010, "X", 01)',
            "'(0010, \"X\", 01)' is not a private tag: group 0010 is even (private groups are odd)",
            None,
        ),
        ('(0019, " ", 01)', "'(0019, \" \", 01)': the private creator is empty", None),
        (
            "(0019,ACME,1010)",
            "'(0019,ACME,1010)': the element of a private tag is the 2-hex-digit offset ee in the creator's block; for element 1010 write 10",
            None,
        ),
        (
            "(70xx,0010)",
            "'(70xx,0010)': group and element must be 4 hex digits each, e.g. (0010,0010)",
            None,
        ),
        (
            "OtherPatientIDsSequence.PatientID",
            "sequence path 'OtherPatientIDsSequence.PatientID' needs an item index (a number or *) after every sequence, e.g. OtherPatientIDsSequence.*.PatientID",
            None,
        ),
        (
            "OtherPatientIDsSequence.0",
            "sequence path 'OtherPatientIDsSequence.0' ends with an item index; it must end with an element",
            None,
        ),
        (
            "PatientName.0.PatientID",
            "sequence path 'PatientName.0.PatientID': PatientName is not a sequence (VR PN)",
            None,
        ),
        (
            "OtherPatientIDsSequence.x.PatientID",
            "sequence path 'OtherPatientIDsSequence.x.PatientID': 'x' after 'OtherPatientIDsSequence' must be an item index (a number or *)",
            None,
        ),
        (
            "1048592",
            "'1048592' is neither a keyword nor a tag; write a tag as (gggg,eeee) or 8 hex digits",
            None,
        ),
        (
            "Patient Name",
            "'Patient Name' is not a DICOM keyword, tag (gggg,eeee), private tag (gggg,\"CREATOR\",ee) or sequence path",
            None,
        ),
        ("(0001,0010)", "(0001,0010): group 0001 cannot hold data elements", None),
        ("", "empty DICOM field name", None),
    ],
)
def test_bad_names_raise_selector_error_with_message_and_suggestion(name, message, suggestion):
    with pytest.raises(SelectorError) as caught:
        parse_selector(name)
    assert caught.value.message == message
    assert caught.value.suggestion == suggestion


def test_regex_selector_compiles_or_says_why():
    assert parse_regex(r".*InstanceUID$") == RegexSelector(r".*InstanceUID$")
    assert parse_regex(r".*InstanceUID$").compiled.fullmatch("SOPInstanceUID")
    with pytest.raises(SelectorError, match="regex does not compile"):
        parse_regex("(unclosed")


def test_tag_strings_prefer_keywords():
    assert keyword_or_tag_str(0x00100010) == "PatientName"
    assert keyword_or_tag_str(0x00191010) == "(0019,1010)"
    assert format_tag(0x0019100C) == "(0019,100C)"
    assert str(parse_selector("(0019, 'ACME', 0c)")) == '(0019,"ACME",0C)'
    assert str(parse_selector("00101002.*.00100020")) == "OtherPatientIDsSequence.*.PatientID"


def test_selector_vr_comes_from_the_dictionary():
    assert parse_selector("PatientName").vr == "PN"
    assert parse_selector("(60xx,3000)").vr == "OB or OW"
    assert parse_selector("(50xx,xxxx)").vr is None
