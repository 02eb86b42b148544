"""Profile fields on real files: each action and selector kind, Flywheel semantics and fixed defects."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fw_gear_deid.actions import hash_value, hashuid
from fw_gear_deid.formats.dicom import DicomHandler


@pytest.fixture
def rich_ct(ct_small: Path, tmp_path: Path) -> Path:
    """CT_small plus a private block, a nested sequence with a name and dates, an overlay comment."""
    dataset = pydicom.dcmread(ct_small)
    block = dataset.private_block(0x0019, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "SECRET^NAME")
    block.add_new(0x02, "US", 7)
    other = dataset.private_block(0x0029, "OTHER", create=True)
    other.add_new(0x05, "LO", "other private")
    item = Dataset()
    item.PatientID = "NESTED-ID"
    item.StudyDate = "20040110"
    item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    dataset.OtherPatientIDsSequence = Sequence([item])
    dataset.add_new(0x60004000, "LT", "overlay comment")
    dataset.AcquisitionDateTime = "20040119072730+0100"
    dataset.PatientWeight = "70.0"
    dataset.PatientComments = "ABC-12345"
    path = tmp_path / "rich.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def run(section: dict, src: Path, out: Path, ctx) -> pydicom.Dataset:
    DicomHandler(section).deidentify(src, out, ctx)
    return pydicom.dcmread(out)


def test_remove_keyword_deletes_element(rich_ct, out, ctx):
    result = run({"fields": [{"name": "PatientName", "remove": True}]}, rich_ct, out, ctx)
    assert "PatientName" not in result


def test_replace_with_inserts_missing_element_unless_insert_disabled(rich_ct, out, ctx):
    section = {"fields": [{"name": "PatientAddress", "replace-with": "NOWHERE"}]}
    assert run(section, rich_ct, out, ctx).PatientAddress == "NOWHERE"
    section["replace-with-insert"] = False
    assert "PatientAddress" not in run(section, rich_ct, out, ctx)


def test_hash_with_salt_matches_flywheel_sha256(rich_ct, out, ctx):
    result = run(
        {"salt": "s1", "fields": [{"name": "(0010,0020)", "hash": True}]}, rich_ct, out, ctx
    )
    assert result.PatientID == hash_value("1CT1", "s1", 16)


def test_hashuid_with_salt_matches_flywheel_and_media_storage_follows(rich_ct, out, ctx):
    source = pydicom.dcmread(rich_ct)
    section = {"salt": "s1", "fields": [{"name": "SOPInstanceUID", "hashuid": True}]}
    result = run(section, rich_ct, out, ctx)
    expected = hashuid(source.SOPInstanceUID, "s1")
    assert result.SOPInstanceUID == expected
    assert result.file_meta.MediaStorageSOPInstanceUID == expected
    # the nested reference to the same instance follows the map (reference leaves it behind)
    assert result.OtherPatientIDsSequence[0].ReferencedSOPInstanceUID == expected


def test_increment_date_uses_section_increment_and_applies_min_clamp(rich_ct, out, ctx):
    section = {
        "date-increment": -10,
        "fields": [
            {"name": "StudyDate", "increment-date": True},
            {"name": "ContentDate", "increment-date": True, "datetime-min": "20040115"},
        ],
    }
    result = run(section, rich_ct, out, ctx)
    assert result.StudyDate == "20040109"
    assert result.ContentDate == "20040115"  # clamped: the reference ignores the clamp here


def test_increment_datetime_keeps_timezone_and_reference_format(rich_ct, out, ctx):
    section = {
        "date-increment": -1,
        "fields": [{"name": "AcquisitionDateTime", "increment-datetime": True}],
    }
    assert run(section, rich_ct, out, ctx).AcquisitionDateTime == "20040118072730.000000+0100"


def test_jitter_on_ds_stays_within_16_bytes_and_is_reproducible(rich_ct, out, ctx):
    section = {"fields": [{"name": "PatientWeight", "jitter": True, "jitter-range": 5}]}
    first = str(run(section, rich_ct, out, ctx).PatientWeight)
    assert first == str(run(section, rich_ct, out, ctx).PatientWeight)
    assert len(first) <= 16
    assert first != "70.0"
    assert 65 <= float(first) <= 75


def test_jitter_on_us_is_cast_to_int_and_clamped_to_zero(rich_ct, out, ctx):
    section = {
        "fields": [
            {
                "name": "Rows",
                "jitter": True,
                "jitter-range": 100000,
                "jitter-type": "int",
                "jitter-max": 10,
            }
        ]
    }
    rows = run(section, rich_ct, out, ctx).Rows
    assert isinstance(rows, int)
    assert 0 <= rows <= 10


def test_regex_sub_hashes_a_captured_group(rich_ct, out, ctx):
    section = {
        "salt": "s",
        "fields": [
            {
                "name": "PatientComments",
                "regex-sub": [
                    {
                        "input-regex": r"^(?P<site>[A-Z]+)-(?P<mrn>\d+)$",
                        "output": "{site}-{mrn}",
                        "groups": [{"name": "mrn", "hash": True}],
                    }
                ],
            }
        ],
    }
    assert run(section, rich_ct, out, ctx).PatientComments == f"ABC-{hash_value('12345', 's')}"


def test_remove_private_tags_keeps_named_private_element_and_its_creator(rich_ct, out, ctx):
    section = {
        "remove-private-tags": True,
        "fields": [{"name": '(0019,"ACME 1.0",02)', "keep": True}],
    }
    result = run(section, rich_ct, out, ctx)
    assert result.get_private_item(0x0019, 0x02, "ACME 1.0").value == 7
    private = [elem.tag for elem in result if elem.tag.is_private]
    assert 0x00191001 not in private  # the other element of the kept block goes
    assert not any(tag.group == 0x0029 for tag in private)


def test_private_selector_finds_element_by_creator(rich_ct, out, ctx):
    section = {"fields": [{"name": '(0019,"ACME 1.0",01)', "replace-with": "X"}]}
    assert run(section, rich_ct, out, ctx).get_private_item(0x0019, 0x01, "ACME 1.0").value == "X"


def test_repeater_selector_removes_overlay_comment(rich_ct, out, ctx):
    assert 0x60004000 not in run(
        {"fields": [{"name": "(60xx,4000)", "remove": True}]}, rich_ct, out, ctx
    )


def test_sequence_path_with_wildcard_reaches_items(rich_ct, out, ctx):
    section = {"fields": [{"name": "OtherPatientIDsSequence.*.PatientID", "replace-with": "R"}]}
    result = run(section, rich_ct, out, ctx)
    assert result.OtherPatientIDsSequence[0].PatientID == "R"
    assert result.PatientID == "1CT1"


def test_regex_selector_matches_nested_keyword_paths(rich_ct, out, ctx):
    section = {"fields": [{"regex": r".*PatientID$", "replace-with": "R"}]}
    result = run(section, rich_ct, out, ctx)
    assert result.PatientID == "R"
    assert result.OtherPatientIDsSequence[0].PatientID == "R"


def test_recurse_sequence_shifts_nested_date_exactly_once(rich_ct, out, ctx):
    section = {
        "date-increment": -5,
        "recurse-sequence": True,
        "fields": [{"name": "StudyDate", "increment-date": True}],
    }
    result = run(section, rich_ct, out, ctx)
    assert result.StudyDate == "20040114"
    assert result.OtherPatientIDsSequence[0].StudyDate == "20040105"


def test_remove_undefined_keeps_only_listed_elements_provenance_and_pixels(rich_ct, out, ctx):
    section = {
        "remove-undefined": True,
        "fields": [{"name": "SOPInstanceUID"}, {"name": "SOPClassUID"}],
    }
    result = run(section, rich_ct, out, ctx)
    kept = {elem.keyword for elem in result}
    assert kept <= {
        "SOPInstanceUID",
        "SOPClassUID",
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "LongitudinalTemporalInformationModified",
        "PixelData",
    }
    assert "PatientName" not in kept


def test_patient_age_from_birthdate_uses_source_dates(ct_small, tmp_path, out, ctx):
    dataset = pydicom.dcmread(ct_small)
    dataset.PatientBirthDate = "19700119"
    src = tmp_path / "aged.dcm"
    dataset.save_as(src)
    section = {"patient-age-from-birthdate": True, "patient-age-units": "Y", "fields": []}
    assert run(section, src, out, ctx).PatientAge == "034Y"


def test_filenames_rule_builds_name_from_group_and_deidentified_keyword(rich_ct, out, ctx):
    section = {
        "fields": [{"name": "Modality", "replace-with": "OT"}],
        "filenames": [{"input-regex": r"^(?P<stem>\w+)\.dcm$", "output": "{stem}_{Modality}.dcm"}],
    }
    outcome = DicomHandler(section).deidentify(rich_ct, out, ctx)
    assert outcome.output_name == "rich_OT.dcm"


def test_default_output_name_is_sop_uid_and_modality(rich_ct, out, ctx, preset_handler):
    outcome = preset_handler.deidentify(rich_ct, out, ctx)
    result = pydicom.dcmread(out)
    assert outcome.output_name == f"{result.SOPInstanceUID}.CT.dcm"


def test_remove_private_tags_reaches_private_elements_inside_sequences(
    ct_small, tmp_path, out, ctx
):
    dataset = pydicom.dcmread(ct_small)
    item = Dataset()
    item.PatientID = "X"
    item.private_block(0x0011, "NESTED", create=True).add_new(0x01, "LO", "HIDDEN^NAME")
    dataset.OtherPatientIDsSequence = Sequence([item])
    src = tmp_path / "nested-private.dcm"
    dataset.save_as(src)
    run({"remove-private-tags": True, "fields": []}, src, out, ctx)
    assert b"HIDDEN^NAME" not in out.read_bytes()


def test_field_on_file_meta_uid_carries_to_the_sop_instance_uid(rich_ct, out, ctx):
    source = pydicom.dcmread(rich_ct)
    section = {"salt": "s1", "fields": [{"name": "(0002,0003)", "hashuid": True}]}
    result = run(section, rich_ct, out, ctx)
    expected = hashuid(source.file_meta.MediaStorageSOPInstanceUID, "s1")
    assert result.file_meta.MediaStorageSOPInstanceUID == expected
    assert result.SOPInstanceUID == expected
