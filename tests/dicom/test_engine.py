"""Preset, UID map, date offsets, provenance, streaming per transfer syntax, preview, malformed files."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.formats.dicom import DicomdirRefusedError, DicomHandler
from fw_gear_deid.formats.dicom._stream import read_source
from fw_gear_deid.keys import Keys

PRESET = {"preset": "ps3.15-basic", "fields": []}
MODIFIED_DATES = {"preset": "ps3.15-basic", "options": ["retain-long-modified-dates"], "fields": []}


def _codes(dataset: pydicom.Dataset) -> list[str]:
    return [item.CodeValue for item in dataset.DeidentificationMethodCodeSequence]


# -- provenance --------------------------------------------------------------------------------------
def test_preset_writes_pir_method_basic_code_and_removed_dates(ct_small, out, ctx):
    DicomHandler(PRESET).deidentify(ct_small, out, ctx)
    result = pydicom.dcmread(out)
    assert result.PatientIdentityRemoved == "YES"
    assert _codes(result) == ["113100"]
    assert result.LongitudinalTemporalInformationModified == "REMOVED"
    assert "PS3.15" in str(result.DeidentificationMethod)


def test_options_add_their_cid_7050_codes_and_modified_dates(ct_small, out, ctx):
    section = {**MODIFIED_DATES, "options": ["retain-long-modified-dates", "clean-descriptors"]}
    DicomHandler(section).deidentify(ct_small, out, ctx)
    result = pydicom.dcmread(out)
    assert _codes(result) == ["113100", "113107", "113105"]
    assert result.LongitudinalTemporalInformationModified == "MODIFIED"


def test_existing_deidentification_method_is_appended_not_overwritten(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    dataset.DeidentificationMethod = "EARLIER TOOL"
    src = tmp_path / "twice.dcm"
    dataset.save_as(src)
    DicomHandler(PRESET).deidentify(src, out, ctx)
    methods = list(pydicom.dcmread(out).DeidentificationMethod)
    assert methods[0] == "EARLIER TOOL"
    assert len(methods) == 2


def test_plain_flywheel_profile_claims_no_basic_profile_code(ct_small, out, ctx):
    DicomHandler({"fields": [{"name": "PatientName", "replace-with": "ANON"}]}).deidentify(
        ct_small, out, ctx
    )
    result = pydicom.dcmread(out)
    assert result.PatientIdentityRemoved == "YES"
    assert "DeidentificationMethodCodeSequence" not in result
    assert "Flywheel profile" in result.DeidentificationMethod


# -- preset rules ---------------------------------------------------------------------------------
def test_preset_resolves_composite_codes_to_valid_values(ct_small, out, ctx):
    DicomHandler(PRESET).deidentify(ct_small, out, ctx)
    result = pydicom.dcmread(out)
    assert result.PatientName == ""  # Z
    # Z/D -> D (Type 1 safe); an ID dummy is a keyed pseudonym so subjects stay distinct
    assert result.PatientID == ctx.keys.pseudonym("1CT1", digits=16, purpose="dummy-id")
    assert result.StudyDate == ""  # X/Z -> Z under the basic profile
    assert "PatientBirthDate" in result
    assert result.PatientBirthDate == ""


def test_profile_field_overrides_preset_for_that_attribute(ct_small, out, ctx):
    section = {**PRESET, "fields": [{"name": "PatientID", "replace-with": "SUBJ-01"}]}
    DicomHandler(section).deidentify(ct_small, out, ctx)
    assert pydicom.dcmread(out).PatientID == "SUBJ-01"


def test_preset_removes_private_elements_unless_named(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    block = dataset.private_block(0x0019, "ACME", create=True)
    block.add_new(0x01, "LO", "DOE^JANE")
    block.add_new(0x02, "US", 3)
    src = tmp_path / "private.dcm"
    dataset.save_as(src)
    DicomHandler(PRESET).deidentify(src, out, ctx)
    assert not [elem for elem in pydicom.dcmread(out) if elem.tag.is_private]
    kept = {**PRESET, "fields": [{"name": '(0019,"ACME",02)', "keep": True}]}
    DicomHandler(kept).deidentify(src, out, ctx)
    assert pydicom.dcmread(out).get_private_item(0x0019, 0x02, "ACME").value == 3


def test_retain_safe_private_keeps_numbers_and_drops_text(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    block = dataset.private_block(0x0019, "ACME", create=True)
    block.add_new(0x01, "LO", "DOE^JANE")
    block.add_new(0x02, "US", 3)
    src = tmp_path / "private.dcm"
    dataset.save_as(src)
    section = {**PRESET, "options": ["retain-safe-private"]}
    DicomHandler(section).deidentify(src, out, ctx)
    result = pydicom.dcmread(out)
    assert result.get_private_item(0x0019, 0x02, "ACME").value == 3
    assert b"DOE^JANE" not in out.read_bytes()


def test_unlisted_person_name_in_a_sequence_is_emptied(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    item = Dataset()
    item.add_new(0x00401010, "PN", "NESTED^DOCTOR")  # Names of Intended Recipients of Results
    dataset.add_new(0x00081111, "SQ", [item])  # Referenced Performed Procedure Step Sequence
    src = tmp_path / "nested.dcm"
    dataset.save_as(src)
    DicomHandler(PRESET).deidentify(src, out, ctx)
    assert b"NESTED^DOCTOR" not in out.read_bytes()


# -- UID map ---------------------------------------------------------------------------------------
def test_same_source_uid_maps_identically_across_files_and_runs(tmp_path):
    mr = Path(get_testdata_file("MR_small.dcm"))
    mr_implicit = Path(get_testdata_file("MR_small_implicit.dcm"))
    handler = DicomHandler(PRESET)
    results = []
    for index, src in enumerate((mr, mr_implicit, mr)):
        out = tmp_path / f"{index}.dcm"
        handler.deidentify(src, out, DeidContext(keys=Keys("one-secret"), subject="s"))
        results.append(pydicom.dcmread(out))
    study = {result.StudyInstanceUID for result in results}
    assert len(study) == 1
    assert study != {pydicom.dcmread(mr).StudyInstanceUID}
    assert results[0].SOPInstanceUID == results[2].SOPInstanceUID
    for result in results:
        assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
        assert result.SOPInstanceUID.startswith("2.25.")
        assert len(result.SOPInstanceUID) <= 64
        assert result.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # well-known: untouched


def test_another_secret_gives_other_uids(ct_small, tmp_path):
    outs = []
    for secret in ("a", "b"):
        out = tmp_path / f"{secret}.dcm"
        DicomHandler(PRESET).deidentify(ct_small, out, DeidContext(keys=Keys(secret), subject="s"))
        outs.append(pydicom.dcmread(out).SOPInstanceUID)
    assert outs[0] != outs[1]


def test_retain_uids_keeps_instance_uids(ct_small, out, ctx):
    DicomHandler({**PRESET, "options": ["retain-uids"]}).deidentify(ct_small, out, ctx)
    assert pydicom.dcmread(out).SOPInstanceUID == pydicom.dcmread(ct_small).SOPInstanceUID


# -- dates -----------------------------------------------------------------------------------------
def _shift(text: str, days: int) -> str:
    return (date(int(text[:4]), int(text[4:6]), int(text[6:8])) + timedelta(days=days)).strftime(
        "%Y%m%d"
    )


def test_modified_dates_shift_every_date_by_the_subject_offset(ct_small, tmp_path, keys):
    dataset = pydicom.dcmread(ct_small)
    dataset.PatientBirthDate = "19700101"
    src = tmp_path / "dated.dcm"
    dataset.save_as(src)
    for subject in ("subj-a", "subj-b"):
        out = tmp_path / f"{subject}.dcm"
        DicomHandler(MODIFIED_DATES).deidentify(src, out, DeidContext(keys=keys, subject=subject))
        result = pydicom.dcmread(out)
        offset = keys.date_offset_days(subject)
        assert result.StudyDate == _shift(dataset.StudyDate, offset)
        assert result.ContentDate == _shift(dataset.ContentDate, offset)


def test_mapping_csv_offset_wins_over_keyed_offset(ct_small, out, keys):
    ctx = DeidContext(keys=keys, subject="s", date_offset_days=-3)
    DicomHandler(MODIFIED_DATES).deidentify(ct_small, out, ctx)
    assert pydicom.dcmread(out).StudyDate == _shift(pydicom.dcmread(ct_small).StudyDate, -3)


# -- streaming and transfer syntaxes -------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # explicit VR little endian, trailing padding after pixel data
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",  # deflated
        "JPEG2000.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "JPEGLSNearLossless_08.dcm",
        "emri_small_RLE.dcm",
    ],
)
def test_output_keeps_transfer_syntax_and_pixel_bytes(name, out, ctx):
    src = Path(get_testdata_file(name))
    DicomHandler(PRESET).deidentify(src, out, ctx)
    before, after = pydicom.dcmread(src), pydicom.dcmread(out)
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.PixelData == before.PixelData


def test_untouched_elements_keep_their_bytes(ct_small, out, ctx):
    DicomHandler({"fields": [{"name": "PatientName", "remove": True}]}).deidentify(
        ct_small, out, ctx
    )
    # Image Position (Patient), a DS with its original formatting, appears verbatim
    raw = pydicom.dcmread(ct_small).get_item(0x00200032).value
    assert raw in out.read_bytes()


def test_trailing_elements_after_pixel_data_are_processed_not_dropped(ct_small, out, ctx):
    DicomHandler({"fields": [{"name": "PatientName", "remove": True}]}).deidentify(
        ct_small, out, ctx
    )
    assert 0xFFFCFFFC in read_source(out).trailing
    DicomHandler(PRESET).deidentify(ct_small, out, ctx)  # E.1-1 says X for the padding
    assert read_source(out).trailing is None


def test_file_without_file_meta_gets_a_proper_part10_header(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    del dataset.file_meta
    dataset.preamble = None
    src = tmp_path / "bare.dcm"
    pydicom.dcmwrite(src, dataset, implicit_vr=True, little_endian=True)
    assert src.read_bytes()[128:132] != b"DICM"
    DicomHandler(PRESET).deidentify(src, out, ctx)
    result = pydicom.dcmread(out)
    assert result.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert result.PixelData == dataset.PixelData


# -- preview ---------------------------------------------------------------------------------------
def test_preview_lists_before_and_after_without_writing(ct_small, tmp_path, ctx):
    outcome = DicomHandler(PRESET).deidentify(ct_small, None, ctx)
    assert not list(tmp_path.iterdir())
    changes = {change.path: change for change in outcome.changes}
    assert changes["PatientName"].before == "CompressedSamples^CT1"
    assert changes["PatientName"].after == ""
    assert changes["SOPInstanceUID"].after.startswith("2.25.")


def test_outcome_lists_sensitive_source_values_with_kinds(ct_small, out, ctx):
    outcome = DicomHandler(PRESET).deidentify(ct_small, out, ctx)
    kinds = {(value.kind, value.value) for value in outcome.sensitive}
    assert ("name", "CompressedSamples^CT1") in kinds
    assert ("uid", pydicom.dcmread(ct_small).SOPInstanceUID) in kinds
    assert all(change.before is None for change in outcome.changes)  # values only in previews


def test_text_values_cover_file_meta_nested_and_private(ct_small, out, ctx):
    DicomHandler({"fields": []}).deidentify(ct_small, out, ctx)
    paths = {path for path, _ in DicomHandler({"fields": []}).text_values(out)}
    assert "TransferSyntaxUID" in paths
    assert "PatientName" in paths


# -- malformed -------------------------------------------------------------------------------------
def test_truncated_file_is_refused_and_nothing_written(ct_small, tmp_path, out, ctx):
    src = tmp_path / "cut.dcm"
    src.write_bytes(ct_small.read_bytes()[:20000])
    with pytest.raises(MalformedFileError, match=r"cut\.dcm: .*truncated"):
        DicomHandler(PRESET).deidentify(src, out, ctx)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "empty"), (b"hello world" * 50, "not a DICOM")]
)
def test_empty_or_foreign_file_is_refused(tmp_path, out, ctx, content, reason):
    src = tmp_path / "x.dcm"
    src.write_bytes(content)
    with pytest.raises(MalformedFileError, match=reason):
        DicomHandler(PRESET).deidentify(src, out, ctx)
    assert not out.exists()


def test_dicomdir_is_refused_with_regenerate_reason(out, ctx):
    src = Path(get_testdata_file("DICOMDIR"))
    with pytest.raises(DicomdirRefusedError, match="regenerate"):
        DicomHandler(PRESET).deidentify(src, out, ctx)


def test_regex_sub_without_match_is_a_clear_file_error(ct_small, out, ctx):
    section = {
        "fields": [{"name": "PatientID", "regex-sub": [{"input-regex": "^ZZ$", "output": "x"}]}]
    }
    with pytest.raises(MalformedFileError, match="does not match"):
        DicomHandler(section).deidentify(ct_small, out, ctx)
    assert not out.exists()


def test_clean_descriptors_keeps_description_minus_identifying_values(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    dataset.StudyDescription = "Head CT for CompressedSamples follow-up"
    dataset.SeriesDescription = "Axial"
    src = tmp_path / "desc.dcm"
    dataset.save_as(src)
    DicomHandler({**PRESET, "options": ["clean-descriptors"]}).deidentify(src, out, ctx)
    result = pydicom.dcmread(out)
    assert result.SeriesDescription == "Axial"
    assert "CompressedSamples" not in result.StudyDescription
    assert result.StudyDescription.startswith("Head CT for")
    assert _codes(result) == ["113100", "113105"]


def test_without_clean_descriptors_descriptions_are_removed(ct_small, out, ctx):
    DicomHandler(PRESET).deidentify(ct_small, out, ctx)
    assert "StudyDescription" not in pydicom.dcmread(out)


def test_handler_is_picklable_for_worker_processes():
    import pickle

    section = {
        **PRESET,
        "salt": "s",
        "fields": [
            {"regex": ".*InstanceUID$", "hashuid": True},
            {
                "name": "PatientComments",
                "regex-sub": [{"input-regex": "^(?P<a>.*)$", "output": "{a}"}],
            },
        ],
    }
    clone = pickle.loads(pickle.dumps(DicomHandler(section)))
    assert clone.describe() == DicomHandler(section).describe()


def test_hashuid_field_makes_the_whole_uid_map_use_hashuid(ct_small, out, ctx):
    from fw_gear_deid.actions import hashuid

    section = {**PRESET, "salt": "s1", "fields": [{"name": "SOPInstanceUID", "hashuid": True}]}
    DicomHandler(section).deidentify(ct_small, out, ctx)
    source, result = pydicom.dcmread(ct_small), pydicom.dcmread(out)
    assert result.SOPInstanceUID == hashuid(source.SOPInstanceUID, "s1")
    assert result.StudyInstanceUID == hashuid(source.StudyInstanceUID, "s1")  # preset U, same map


def test_jitter_date_in_dicom_is_keyed_by_subject(ct_small, tmp_path, keys):
    section = {
        "date-increment": 0,
        "fields": [
            {"name": "StudyDate", "increment-date": True, "jitter-date": True, "jitter-range": 5}
        ],
    }
    dates = []
    for run_index, subject in enumerate(("a", "a", "b")):
        out = tmp_path / f"{run_index}.dcm"
        DicomHandler(section).deidentify(ct_small, out, DeidContext(keys=keys, subject=subject))
        dates.append(pydicom.dcmread(out).StudyDate)
    assert dates[0] == dates[1]
    assert dates[0] != "20040119"


@pytest.mark.parametrize("cut", [700, 1000, 3000])
def test_header_cut_anywhere_is_refused(ct_small, tmp_path, out, ctx, cut):
    src = tmp_path / "cut-header.dcm"
    src.write_bytes(ct_small.read_bytes()[:cut])
    with pytest.raises(MalformedFileError, match=r"cut-header\.dcm"):
        DicomHandler(PRESET).deidentify(src, out, ctx)
    assert not out.exists()


def test_content_sequence_text_gets_dummies_but_codes_survive(out, ctx):
    src = Path(get_testdata_file("test-SR.dcm"))
    DicomHandler(PRESET).deidentify(src, out, ctx)
    result = pydicom.dcmread(out)
    texts = {elem.value for elem in result.iterall() if elem.keyword == "TextValue"}
    assert texts == {"DEIDENTIFIED"}

    def content_codes(dataset):
        return {
            elem.value
            for item in dataset.ContentSequence
            for elem in item.iterall()
            if elem.keyword == "CodeValue"
        }

    assert content_codes(result) == content_codes(pydicom.dcmread(src))


def test_preset_removes_whole_overlay_planes_not_just_their_data(out, ctx):
    src = Path(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert any(elem.tag.group & 0xFF00 == 0x6000 for elem in pydicom.dcmread(src))
    DicomHandler(PRESET).deidentify(src, out, ctx)
    assert not [elem for elem in pydicom.dcmread(out) if elem.tag.group & 0xFF00 == 0x6000]
    DicomHandler({**PRESET, "options": ["clean-graphics"]}).deidentify(src, out, ctx)
    assert 0x60003000 in pydicom.dcmread(out)


def test_sequences_walked_but_unchanged_keep_their_bytes(out, ctx):
    src = Path(get_testdata_file("rtplan.dcm"))
    raw = pydicom.dcmread(src).get_item(0x300A00B0).value  # Beam Sequence, as stored
    section = {"remove-private-tags": True, "fields": [{"name": "PatientName", "remove": True}]}
    DicomHandler(section).deidentify(src, out, ctx)  # private removal walks every sequence
    assert raw in out.read_bytes()


def test_destination_io_error_is_not_reported_as_a_malformed_source(ct_small, tmp_path, ctx):
    with pytest.raises(FileNotFoundError, match="missing-dir"):
        DicomHandler(PRESET).deidentify(ct_small, tmp_path / "missing-dir" / "out.dcm", ctx)


def test_outcome_text_values_are_what_text_values_reads_from_the_output(tmp_path, ctx):
    """DeidOutcome.text_values (handed to the residual gate instead of a second parse) yields
    exactly what ``text_values(dst)`` reads back from the written file."""
    from .conftest import corpus_files

    handler = DicomHandler({"preset": "ps3.15-basic", "fields": []})
    compared, good = 0, None
    for index, src in enumerate(corpus_files()[:60]):
        dst = tmp_path / f"{index}.dcm"
        try:
            outcome = handler.deidentify(src, dst, ctx)
        except Exception:  # malformed test files are refused; not what this checks
            continue
        assert outcome.text_values is not None
        assert list(outcome.text_values()) == list(handler.text_values(dst)), src.name
        compared, good = compared + 1, src
    assert compared >= 20
    assert handler.deidentify(good, None, ctx).text_values is None  # preview: nothing written


def _texts(function, path):
    from fw_gear_deid.formats.dicom._stream import read_source

    try:
        source = read_source(path)
    except Exception as error:
        return [("read", type(error).__name__)]
    found = []
    try:
        for dataset in (
            getattr(source.dataset, "file_meta", None),
            source.dataset,
            source.trailing,
        ):
            if dataset is not None:
                found += list(function(dataset))
    except Exception as error:  # an element that cannot be converted must still raise
        found.append(("raised", type(error).__name__))
    return found


def test_iter_text_values_skips_only_what_it_skipped_after_converting(tmp_path):
    from pydicom.dataelem import RawDataElement

    from fw_gear_deid.formats.dicom._engine import iter_text_values

    from .conftest import corpus_files, reference_text_values

    for path in corpus_files():
        assert _texts(iter_text_values, path) == _texts(reference_text_values, path), path.name
    # a numeric value of a wrong length is still converted (and so still fails, as before)
    from pydicom.dataset import Dataset

    dataset = Dataset()
    dataset._dict[0x00280010] = RawDataElement(0x00280010, "US", 3, b"\x01\x02\x03", 0, False, True)
    dataset._dict[0x00100010] = RawDataElement(0x00100010, "PN", 4, b"DOE ", 0, False, True)
    try:
        new = list(iter_text_values(dataset))
    except Exception as error:
        new = [("raised", type(error).__name__)]
    try:
        old = list(reference_text_values(dataset))
    except Exception as error:
        old = [("raised", type(error).__name__)]
    assert new == old
