"""The gate over output files and container metadata: what is scanned, what blocks, what does not."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from fw_gear_deid.check import UNSCANNABLE, GateConfig, Hit, ResidualGate
from fw_gear_deid.errors import ResidualPHIError
from fw_gear_deid.formats import DeidContext, DeidOutcome, FormatHandler, SensitiveValue

from .builders import csa_blob, dataset, write

NAME = SensitiveValue("name", "SIMPSON^HOMER", "PatientName")
PID = SensitiveValue("id", "PID-887766", "PatientID")
BIRTH = SensitiveValue("date", "19560512", "PatientBirthDate")
STUDY_UID = SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.77.1", "StudyInstanceUID")


class LinesHandler(FormatHandler):
    """Test double: a 'format' whose text values are the lines of a text file."""

    section_name = "lines"

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        raise NotImplementedError

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            yield f"line[{number}]", line


class BrokenHandler(LinesHandler):
    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "line[1]", "fine"
        raise ValueError("cannot parse")


@pytest.fixture
def gate() -> ResidualGate:
    return ResidualGate([NAME, PID, BIRTH, STUDY_UID])


def test_text_values_hits_carry_path_and_kind(tmp_path: Path, gate: ResidualGate) -> None:
    out = tmp_path / "out.txt"
    out.write_text("nothing\nreport for Homer\nborn 12.05.1956\nclean\n")
    hits = gate.scan_file(LinesHandler({}), out)
    assert Hit("line[2]", "name") in hits
    assert Hit("line[3]", "date") in hits
    assert not any(hit.path == "line[1]" for hit in hits)


def test_clean_output_has_no_hits(tmp_path: Path, gate: ResidualGate) -> None:
    out = tmp_path / "out.txt"
    out.write_text("patient ANONYMOUS\nborn 1956\nstudy 2.25.1234567\n")
    assert gate.scan_file(LinesHandler({}), out) == []


def test_an_unreadable_output_blocks(tmp_path: Path, gate: ResidualGate) -> None:
    out = tmp_path / "out.txt"
    out.write_text("fine\n")
    hits = gate.scan_file(BrokenHandler({}), out)
    assert [hit.kind for hit in hits] == [UNSCANNABLE]


def test_check_file_raises_with_paths_and_kinds_only(tmp_path: Path, gate: ResidualGate) -> None:
    out = tmp_path / "out.txt"
    out.write_text("PID-887766\n")
    with pytest.raises(ResidualPHIError) as caught:
        gate.check_file(LinesHandler({}), out, "scan.txt")
    message = str(caught.value)
    assert message.startswith("scan.txt: residual PHI at line[1] (id)")
    assert "887766" not in message


def test_dicom_name_in_a_private_text_tag_is_found(tmp_path: Path, gate: ResidualGate) -> None:
    ds = dataset(PatientName="ANON", PatientID="SUBJ01")
    block = ds.private_block(0x0033, "MITRA LINKED ATTRIBUTES 1.0", create=True)
    block.add_new(0x13, "LO", "SIMPSON^HOMER")
    out = write(ds, tmp_path / "out.dcm")
    assert Hit("(0033,1013)", "name") in gate.scan_file(None, out)


def test_dicom_name_in_a_binary_csa_blob_is_found(tmp_path: Path, gate: ResidualGate) -> None:
    ds = dataset(PatientName="ANON")
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", csa_blob("MrProtocol", "operator homer simpson", "TR 2000"))
    out = write(ds, tmp_path / "out.dcm")
    hits = gate.scan_file(None, out)
    assert Hit("(0029,1010)", "name") in hits


def test_dicom_nested_and_file_meta_values_are_found(tmp_path: Path, gate: ResidualGate) -> None:
    ds = dataset(PatientName="ANON")
    ds.StudyInstanceUID = STUDY_UID.value  # the profile forgot to remap it
    ref = dataset()
    ref.ReferencedSOPInstanceUID = "2.25.1"
    ref.ContentDate = "19560512"
    ds.ReferencedImageSequence = [ref]
    out = write(ds, tmp_path / "out.dcm")
    hits = gate.scan_file(None, out)
    assert Hit("(0020,000D)", "uid") in hits
    assert Hit("(0008,1140)[0].(0008,0023)", "date") in hits


def test_dicom_pixel_data_is_not_searched(tmp_path: Path) -> None:
    # 8-bit pixels in the ASCII range can spell anything; the gate must not read them as text
    gate = ResidualGate([SensitiveValue("name", "WILLIAMSON^ALEXANDRA", "PatientName")])
    ds = dataset(Rows=4, Columns=16, BitsAllocated=8, BitsStored=8, HighBit=7, SamplesPerPixel=1)
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    ds.PixelData = b"WILLIAMSON ALEXANDRA".ljust(64, b" ")
    out = write(ds, tmp_path / "out.dcm")
    assert gate.scan_file(None, out) == []


def test_raw_backstop_finds_long_values_handlers_do_not_decode(tmp_path: Path) -> None:
    gate = ResidualGate([NAME, STUDY_UID])
    out = tmp_path / "out.bin"
    out.write_bytes(b"\x89PNG\x00\x00" + b"<x:xmpmeta>Simpson^Homer</x:xmpmeta>" + b"\x00" * 10)
    hits = gate.scan_file(None, out)
    assert [hit.kind for hit in hits] == ["name"]
    assert hits[0].path.startswith("raw bytes @")


def test_raw_backstop_finds_utf16_text_and_uids(tmp_path: Path) -> None:
    gate = ResidualGate([NAME, STUDY_UID])
    out = tmp_path / "out.bin"
    out.write_bytes(
        b"\xff\xd8" + "Simpson^Homer".encode("utf-16-le") + b"|1.2.826.0.1.3680043.8.498.77.1|"
    )
    assert {hit.kind for hit in gate.scan_file(None, out)} == {"name", "uid"}


def test_raw_backstop_respects_boundaries(tmp_path: Path) -> None:
    gate = ResidualGate([STUDY_UID])
    out = tmp_path / "out.bin"
    out.write_bytes(b"x1.2.826.0.1.3680043.8.498.77.12 1.2.826.0.1.3680043.8.498.77.1.5")
    assert gate.scan_file(None, out) == []


def test_raw_backstop_reads_large_files_in_chunks(tmp_path: Path) -> None:
    gate = ResidualGate([NAME])
    out = tmp_path / "big.bin"
    with out.open("wb") as handle:
        handle.write(b"\x00" * (4 * 1024 * 1024 - 5))  # the value straddles the chunk border
        handle.write(b" SIMPSON^HOMER ")
    hits = gate.scan_file(None, out)
    assert [hit.kind for hit in hits] == ["name"]


def test_raw_backstop_can_be_turned_off(tmp_path: Path) -> None:
    gate = ResidualGate([NAME], raw_backstop=False)
    out = tmp_path / "out.bin"
    out.write_bytes(b"\x00SIMPSON^HOMER\x00")
    assert gate.scan_file(None, out) == []


def test_metadata_label_equal_to_the_patient_id_blocks(gate: ResidualGate) -> None:
    hits = gate.scan_metadata("subject", {"label": "PID-887766", "info": {}, "tags": []})
    assert hits == [Hit("subject.label", "id")]


def test_metadata_is_walked_recursively_keys_included(gate: ResidualGate) -> None:
    record = {
        "label": "S01",
        "info": {"dicom": {"items": [{"note": "seen 1956-05-12"}]}, "Homer": True},
        "tags": ["ok", "simpson"],
        "firstname": None,
        "age": 12345,
    }
    hits = gate.scan_metadata("session", record)
    assert Hit("session.info.dicom.items[0].note", "date") in hits
    assert Hit("session.tags[1]", "name") in hits
    # the key itself is the value: the path is redacted
    assert Hit("session.info.[redacted]", "name") in hits
    assert all("homer" not in hit.path.lower() for hit in hits)


def test_metadata_clean(gate: ResidualGate) -> None:
    record = {"label": "SUBJ-A", "info": {"export": {"origin_id": "ab12cd"}}, "tags": ["deid"]}
    assert gate.scan_metadata("subject", record) == []


def test_value_removed_in_one_place_and_kept_in_another_is_reported(tmp_path: Path) -> None:
    # the profile removed OtherPatientIDs but kept the same value in PatientID: a real conflict
    gate = ResidualGate([SensitiveValue("id", "PID-887766", "OtherPatientIDs")])
    out = write(dataset(PatientID="PID-887766"), tmp_path / "out.dcm")
    assert Hit("(0010,0020)", "id") in gate.scan_file(None, out)


def test_gate_config_defaults_on_and_off_needs_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    assert GateConfig().enabled
    assert GateConfig().build([NAME]) is not None
    with pytest.raises(ValueError, match="reason"):
        GateConfig(enabled=False)
    off = GateConfig.disabled("trusted synthetic data")
    assert off.build([NAME]) is None
    with caplog.at_level(logging.INFO, logger="fw_gear_deid.check"):
        off.announce()
    assert "OFF (trusted synthetic data)" in caplog.text
    assert off.report_fields() == {
        "residual_phi_check": False,
        "residual_phi_check_reason": "trusted synthetic data",
    }


@pytest.mark.parametrize(
    ("options", "enabled"),
    [
        ({}, True),
        ({"residual-phi-check": True}, True),
        ({"residual-phi-check": "false"}, False),
        ({"residual-phi-check": False, "residual-phi-check-reason": "x"}, False),
    ],
)
def test_gate_config_from_options(options: dict, enabled: bool) -> None:
    assert GateConfig.from_options(options).enabled is enabled


def test_gate_config_allow_passes_replacement_values() -> None:
    gate = GateConfig(allow=("SIMPSON",)).build([NAME])
    assert gate is not None
    assert gate.kinds_in("simpson") == set()
    assert gate.kinds_in("homer") == {"name"}


def test_pixel_range_is_found_without_loading_large_pixels(ct_small: Path) -> None:
    from fw_gear_deid.check._dicom import pixel_data_range

    assert pixel_data_range(ct_small) == (6300, 6300 + 32768)


def test_output_file_names_are_scanned(tmp_path: Path, gate: ResidualGate) -> None:
    out = tmp_path / "out.txt"
    out.write_text("clean\n")
    assert gate.scan_name("SIMPSON_scan.txt") == [Hit("(file name)", "name")]
    assert gate.scan_name("2.25.1234.dcm") == []
    with pytest.raises(ResidualPHIError, match=r"\(file name\) \(name\)"):
        gate.check_file(LinesHandler({}), out, "a.txt", output_name="homer.txt")
    gate.check_file(LinesHandler({}), out, "a.txt", output_name="S01.txt")


def test_a_handler_failing_on_the_call_blocks_too(tmp_path: Path, gate: ResidualGate) -> None:
    class EagerBroken(LinesHandler):
        def text_values(self, path: Path):  # not a generator: raises when called
            raise OSError("gone")

    out = tmp_path / "out.txt"
    out.write_text("x\n")
    assert [hit.kind for hit in gate.scan_file(EagerBroken({}), out)] == [UNSCANNABLE]


def test_bytes_values_are_searched_as_latin1(tmp_path: Path) -> None:
    gate = ResidualGate([SensitiveValue("name", b"M\xfcller^Hans", "PatientName")])  # type: ignore[arg-type]
    assert gate.kinds_in("Müller") == {"name"}


def test_free_text_words_kept_by_the_profile_elsewhere_are_not_leaks(tmp_path: Path) -> None:
    # the profile removed a comment (line[1]) whose word 'Springfield' it keeps untouched in line[2]
    gate = ResidualGate(
        [
            SensitiveValue("text", "transferred from Springfield", "line[1]"),
            SensitiveValue("name", "SIMPSON^HOMER", "line[3]"),
        ]
    )
    out = tmp_path / "out.txt"
    out.write_text("[removed]\nSpringfield General\nANON\nsimpson\n")
    assert gate.scan_file(LinesHandler({}), out) == [Hit("line[4]", "name")]


def test_free_text_words_left_in_a_changed_element_are_leaks(tmp_path: Path) -> None:
    # a regex-sub that missed part of the comment: the element was changed, the word survived
    gate = ResidualGate([SensitiveValue("text", "transferred from Springfield", "line[1]")])
    out = tmp_path / "out.txt"
    out.write_text("transferred from Springfield [edited]\nother\n")
    assert gate.scan_file(LinesHandler({}), out) == [Hit("line[1]", "text")]


def test_free_text_words_in_a_vendor_blob_are_not_leaks_names_are(tmp_path: Path) -> None:
    # a Siemens CSA header repeats the protocol name that the profile removed from ProtocolName
    gate = ResidualGate(
        [
            SensitiveValue("text", "t1_mprage_sag_p2", "(0018,1030)"),
            SensitiveValue("name", "SIMPSON^HOMER", "(0010,0010)"),
        ]
    )
    ds = dataset(PatientName="ANON")
    block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    block.add_new(0x10, "OB", csa_blob("tProtocolName", "t1_mprage_sag_p2"))
    out = write(ds, tmp_path / "out.dcm")
    assert gate.scan_file(None, out) == []
    block.add_new(0x20, "OB", csa_blob("operator", "homer"))
    write(ds, out)
    assert gate.scan_file(None, out) == [Hit("(0029,1020)", "name")]


def test_handed_text_values_stand_in_for_the_handler_reading(tmp_path):
    """``text_values`` (a handler's DeidOutcome.text_values) replaces the handler's second read;
    what it yields is scanned like the handler's own reading, and a failure in it blocks."""
    out = tmp_path / "out.txt"
    out.write_text("nothing here\n")
    gate = ResidualGate([NAME])
    handler = LinesHandler({})
    assert gate.scan_file(handler, out, text_values=lambda: [("line[1]", "nothing here")]) == []
    hits = gate.scan_file(handler, out, text_values=lambda: [("line[1]", "Homer Simpson")])
    assert Hit("line[1]", "name") in hits

    def broken():
        yield "line[1]", "fine"
        raise ValueError("cannot decode")

    hits = gate.scan_file(handler, out, text_values=broken)
    assert [hit.kind for hit in hits] == [UNSCANNABLE]


def test_handed_text_values_keep_the_raw_backstop_on_the_file(tmp_path):
    """The raw-bytes backstop still reads the written file, whatever text values are handed over."""
    out = tmp_path / "out.txt"
    out.write_text("xx SIMPSON^HOMER xx\n")
    hits = ResidualGate([NAME]).scan_file(
        LinesHandler({}), out, text_values=lambda: [("line[1]", "clean")]
    )
    assert any(hit.path.startswith("raw bytes") and hit.kind == "name" for hit in hits)
