"""How the gate matches: every way a value is written is found, common words and kept data are not."""

from __future__ import annotations

import pickle

import pytest

from fw_gear_deid.check import REDACTED, ResidualGate
from fw_gear_deid.check.matchers import parse_dates
from fw_gear_deid.formats import SensitiveValue


def gate_of(*values: tuple[str, str], **options) -> ResidualGate:
    return ResidualGate(
        [SensitiveValue(kind, value, f"src{i}") for i, (kind, value) in enumerate(values)],
        **options,
    )


@pytest.mark.parametrize(
    "text",
    [
        "DOE^JOHN",
        "John Doe",
        "doe, john",
        "doe_john_scan.dcm",
        "JohnDoe",
        "JOHNDOE",  # the unsplit run is looked up too
        "Dr. DOE was here",
        "dóe",  # accents folded
        "\uff24\uff2f\uff25",  # full-width DOE, folded
    ],
)
def test_name_components_are_found_however_written(text: str) -> None:
    assert gate_of(("name", "DOE^JOHN")).kinds_in(text) == {"name"}


@pytest.mark.parametrize("text", ["Johnson", "Doerte", "undoe", "DR", "Mr", "ANONYMOUS", "jo"])
def test_names_match_whole_tokens_only_and_skip_titles(text: str) -> None:
    gate = gate_of(("name", "DOE^JOHN^^DR^JR"), ("name", "ANONYMOUS"))
    assert gate.kinds_in(text) == set()


def test_short_name_components_are_found_as_a_full_name_phrase() -> None:
    gate = gate_of(("name", "LI^WEI"))
    assert gate.kinds_in("seen with Wei Li today") == {"name"}
    assert gate.kinds_in("LI WEI") == {"name"}
    assert gate.kinds_in("li") == set()  # two letters alone are everywhere


def test_cjk_name_components_are_found_inside_runs() -> None:
    gate = gate_of(("name", "Yamada^Tarou=山田^太郎=やまだ^たろう"))
    assert gate.kinds_in("山田様") == {"name"}
    assert gate.kinds_in("yamada") == {"name"}


@pytest.mark.parametrize(
    "text",
    [
        "20200102",
        "2020-01-02",
        "2020/1/2",
        "01/02/2020",  # month first
        "02.01.2020",  # day first
        "2.1.2020",
        "Jan 2 2020",
        "January 2nd, 2020",
        "2 Jan 2020",
        "02-JAN-2020",
        "20200102103000.000000",  # the date head of a DT
        "2020-01-02T10:30:00Z",
    ],
)
def test_dates_are_found_in_the_formats_people_write(text: str) -> None:
    assert gate_of(("date", "20200102")).kinds_in(text) == {"date"}


@pytest.mark.parametrize(
    "text",
    [
        "20191203",  # the shifted date
        "2020",
        "01/02/20",  # two-digit years are not searched
        "2020-01-03",
        "120200102",  # longer number
    ],
)
def test_other_dates_and_numbers_do_not_match(text: str) -> None:
    assert gate_of(("date", "20200102")).kinds_in(text) == set()


def test_a_kept_uid_that_spells_the_removed_date_is_a_leak() -> None:
    gate = gate_of(("date", "20200102"))
    assert gate.kinds_in("1.2.3.20200102.7") == {"date"}
    # vendor UIDs embed the acquisition timestamp: a retained one still tells the date
    assert gate.kinds_in("1.3.12.2.1107.5.2.32.35162.2020010213452387") == {"date"}


def test_date_values_in_any_source_format_are_parsed() -> None:
    assert {str(d) for d in parse_dates("01/02/2020")} == {"2020-01-02", "2020-02-01"}
    assert [str(d) for d in parse_dates("20200102103000")] == ["2020-01-02"]
    assert [str(d) for d in parse_dates("March 3rd, 1999")] == ["1999-03-03"]
    assert parse_dates("not a date") == []
    assert parse_dates("20201340") == []


def test_placeholder_dates_and_times_are_not_searched() -> None:
    gate = gate_of(("date", "19000101"), ("other", "103000.000"))
    assert not gate
    assert gate.kinds_in("19000101 103000") == set()


def test_datetime_kind_searches_its_date() -> None:
    assert gate_of(("datetime", "20200102103000")).kinds_in("2020-01-02") == {"datetime"}


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("1.2.826.0.1.3680043.8.498.1234", {"uid"}),
        ("ref=1.2.826.0.1.3680043.8.498.1234;", {"uid"}),
        ("1.2.826.0.1.3680043.8.498.12345", set()),  # longer UID: not the same
        ("9.1.2.826.0.1.3680043.8.498.1234", set()),
        ("1.2.826.0.1.3680043.8.498", set()),
    ],
)
def test_uids_match_exactly(text: str, kinds: set[str]) -> None:
    assert gate_of(("uid", "1.2.826.0.1.3680043.8.498.1234")).kinds_in(text) == kinds


def test_standard_uids_are_public() -> None:
    gate = gate_of(("uid", "1.2.840.10008.5.1.4.1.1.2"), ("uid", "1.2.840.10008.1.2.1"))
    assert not gate


@pytest.mark.parametrize("text", ["MRN-0012345", "mrn 0012345", "MRN0012345", "id 0012345"])
def test_ids_are_found_with_any_separator(text: str) -> None:
    assert gate_of(("id", "MRN-0012345")).kinds_in(text) == {"id"}


def test_short_and_placeholder_ids_are_not_searched() -> None:
    gate = gate_of(("id", "123"), ("id", "1234"), ("id", "0000000"), ("id", "ANONYMOUS"))
    assert not gate
    assert gate.kinds_in("1234 123 0000000") == set()
    assert gate_of(("id", "AB12")).kinds_in("ab12") == {"id"}


def test_id_that_is_a_uid_is_matched_as_a_uid() -> None:
    gate = gate_of(("id", "1.2.3.4.5.6.7.8"))
    assert gate.kinds_in("1.2.3.4.5.6.7.8") == {"id"}
    assert gate.kinds_in("1 2 3 4 5 6 7 8") == set()


def test_free_text_tokens_skip_common_vocabulary() -> None:
    gate = gate_of(
        ("text", "Patient allergic to contrast, referred by Hawkins from Wallaby clinic")
    )
    assert gate.kinds_in("CONTRAST ENHANCED CHEST") == set()
    assert gate.kinds_in("Hawkins") == {"text"}
    assert gate.kinds_in("wallaby") == {"text"}


def test_free_text_dates_are_searched_as_dates() -> None:
    gate = gate_of(("text", "seen on 3 Feb 2021"))
    assert gate.kinds_in("2021-02-03") == {"text"}


def test_addresses() -> None:
    gate = gate_of(("address", "42 Wallaby Way, Sydney 20001"))
    assert gate.kinds_in("Sydney") == {"address"}
    assert gate.kinds_in("postcode 20001") == {"address"}
    assert gate.kinds_in("42 Wallaby Way") == {"address"}
    assert gate.kinds_in("Way 42") == set()


def test_other_values_need_substance() -> None:
    gate = gate_of(("other", "M"), ("other", "045Y"), ("other", "70.5"), ("other", "TEACHER"))
    assert gate.kinds_in("M 045Y 70.5") == set()
    assert gate.kinds_in("teacher") == {"other"}


def test_unknown_kinds_are_treated_as_other() -> None:
    assert gate_of(("mystery", "Springfieldian")).kinds_in("springfieldian") == {"mystery"}


def test_allow_list_keeps_values_the_profile_writes_by_design() -> None:
    gate = gate_of(
        ("name", "REDACTEDNAME^X"), ("id", "SUBJ-0001"), allow=["REDACTEDNAME", "SUBJ-0001"]
    )
    assert gate.kinds_in("REDACTEDNAME SUBJ-0001") == set()


def test_min_token_length_is_configurable() -> None:
    assert gate_of(("name", "NG^AN")).kinds_in("ng") == set()
    assert gate_of(("name", "NG^AN"), min_token_length=2).kinds_in("ng") == {"name"}


def test_redact_masks_every_value_and_keeps_the_rest() -> None:
    gate = gate_of(("name", "DOE^JOHN"), ("id", "MRN-0012345"))
    assert gate.redact("files/John Doe/MRN-0012345.json") == (f"files/{REDACTED}/{REDACTED}.json")
    assert gate.redact("nothing here") == "nothing here"


def test_hits_never_carry_the_value() -> None:
    gate = gate_of(("name", "DOE^JOHN"))
    hits = gate.scan_text("info.DOE^JOHN", "Doe")
    assert len(hits) == 1
    assert "doe" not in repr(hits).lower()
    assert hits[0].kind == "name"
    assert REDACTED in hits[0].path


def test_describe_has_counts_not_values() -> None:
    gate = gate_of(("name", "DOE^JOHN"), ("date", "20200102"))
    text = "\n".join(gate.describe())
    assert "NameMatcher: 1 value(s)" in text
    assert "DOE" not in text.upper().replace("DOES", "")
    assert "2020" not in text


def test_gate_is_picklable_for_worker_processes() -> None:
    gate = gate_of(("name", "DOE^JOHN"), ("uid", "1.2.826.0.1.3680043.8.498.1234"))
    clone = pickle.loads(pickle.dumps(gate))
    assert clone.kinds_in("john") == {"name"}
    assert clone.kinds_in("1.2.826.0.1.3680043.8.498.1234") == {"uid"}


def test_empty_or_blank_values_make_an_empty_gate() -> None:
    gate = gate_of(("name", ""), ("id", "   "))
    assert not gate
    assert gate.scan_text("x", "anything at all") == []


def test_undecodable_bytes_in_outputs_are_separators_not_crashes() -> None:
    # handlers read undecodable input with surrogateescape; the gate must scan such text
    text = b"DOE\xff\xfeJOHN".decode("utf-8", "surrogateescape")
    assert gate_of(("name", "DOE^JOHN")).kinds_in(text) == {"name"}
    assert "[redacted]" in gate_of(("name", "DOE^JOHN")).redact(text)


def test_template_names_are_placeholders() -> None:
    # SR templates carry PN values such as 'Last Name^First Name' and 'Enter text'
    gate = gate_of(("name", "Last Name^First Name"), ("name", "Enter text"))
    assert gate.kinds_in("Recording Observer's Name: Enter text") == set()


def test_software_uids_are_not_patient_uids() -> None:
    # DCMTK writes its implementation UID as InstanceCreatorUID; every output's file meta has it
    values = [
        SensitiveValue("uid", "1.2.276.0.7230010.3.0.3.5.3", "(0008,0014)"),
        SensitiveValue("uid", "1.2.276.0.7230010.3.0.3.5.3", "InstanceCreatorUID"),
    ]
    assert not ResidualGate(values)
    study = SensitiveValue(
        "uid", "1.2.276.0.7230010.3.1.2.1787205428.166.1117461927.5", "(0020,000D)"
    )
    assert ResidualGate([study]).kinds_in(study.value) == {"uid"}


def test_an_id_made_of_date_and_time_does_not_match_the_kept_time() -> None:
    gate = gate_of(("id", "11-05-25-142825"))
    assert gate.kinds_in("142825.000000") == set()
    assert gate.kinds_in("11-05-25-142825") == {"id"}
    assert gate_of(("id", "MRN 0012345")).kinds_in("0012345") == {"id"}


def test_hash_pseudonyms_are_not_split_into_chance_words() -> None:
    # hashed IDs are hex: '7deb4...' must not read as the name token 'deb'
    gate = gate_of(("name", "DEB^ADA"))
    assert gate.kinds_in("PatientID 3f7deb41ada09c2e") == set()
    assert gate.kinds_in("deb-41") == {"name"}
    # a hex-looking ID is still found whole
    assert gate_of(("id", "3f7deb41ada09c2e")).kinds_in("3F7DEB41ADA09C2E") == {"id"}


@pytest.mark.parametrize(
    "path",
    [
        "VerifyingObserverSequence.0.VerifyingObserverIdentificationCodeSequence.0.CodingSchemeUID",
        "(0040,A073)[0].(0040,A088)[0].(0008,010C)",
        "ContentSequence.0.ConceptNameCodeSequence.0.CodingSchemeDesignator",
    ],
)
def test_coding_scheme_attributes_name_vocabularies_not_people(path: str) -> None:
    assert not ResidualGate([SensitiveValue("uid", "1.2.276.0.7230010.3.0.0.1", path)])


def test_code_values_of_removed_sequences_are_still_searched() -> None:
    # in a person identification code sequence the code meaning is the person's name
    gate = ResidualGate([SensitiveValue("name", "HAWKINS^JOHN", "X.0.Y.0.CodeMeaning")])
    assert gate.kinds_in("hawkins") == {"name"}
