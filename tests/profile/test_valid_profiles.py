"""Valid Flywheel profiles load unchanged: every construct of FLYWHEEL.md §C.8 and of the grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fw_gear_deid.formats import SECTION_NAMES
from fw_gear_deid.formats.dicom.selectors import TagSelector, parse_selector
from fw_gear_deid.profile import (
    OPT_OUT,
    Profile,
    ProfileError,
    ProfileReadError,
    load_profile,
    schema,
    validate_profile_text,
)

DATA = Path(__file__).parent / "data"


def _issues(name: str) -> list[str]:
    path = DATA / name
    return [str(issue) for issue in validate_profile_text(path.read_text(), str(path))]


def test_c8_site_profile_validates_except_the_encrypt_field_this_gear_refuses():
    path = DATA / "c8_site_profile.yaml"
    assert _issues("c8_site_profile.yaml") == [
        f"{path}:51: dicom.fields[11].encrypt: encrypt is not supported by this gear (it would "
        "keep recoverable PHI in the output): use remove, hash or replace-with"
    ]


def test_c8_metadata_example_alone_is_refused_for_having_no_file_section():
    path = DATA / "c8_flywheel_metadata.yaml"
    assert _issues("c8_flywheel_metadata.yaml") == [
        f"{path}:2: (root): the profile has no file section (dicom, jpg, png, tiff, xml, json, "
        "key-value-text-file, csv, tsv, zip, filename): every file would be skipped"
    ]


def test_c8_examples_together_validate_as_a_template_and_render_with_a_csv_row():
    profile = load_profile(DATA / "c8_combined_supported.yaml", template_ok=True)
    assert profile.variables == {"NEW_SUBJECT_ID"}
    rendered = profile.render({"NEW_SUBJECT_ID": "007"})
    subject_fields = rendered.data["flywheel"]["subject"]["fields"]
    assert subject_fields[0] == {"name": "label", "replace-with": "007"}
    assert rendered.variables == frozenset()
    assert rendered.sha256 != profile.sha256


def test_c8_unquoted_hex_tag_keeps_its_hex_meaning():
    # yaml.safe_load reads `00100030` as the octal number 32792, i.e. tag (0000,8018).
    profile = load_profile(DATA / "c8_combined_supported.yaml", template_ok=True)
    hex_field = profile.data["dicom"]["fields"][2]
    assert hex_field == {"name": "00100030", "remove": True}
    assert parse_selector(hex_field["name"]) == TagSelector(0x00100030)


def test_every_construct_profile_validates():
    assert _issues("every_construct.yaml") == []


def _keys_in(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            _keys_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _keys_in(item, found)
    return found


def _schema_keys(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, item in node.get("properties", {}).items():
            found.add(key)
            _schema_keys(item, found)
        for key in ("$defs", "items"):
            if key in node:
                value = node[key]
                for item in value.values() if key == "$defs" else [value]:
                    _schema_keys(item, found)
    return found


def test_every_key_of_the_schema_is_used_by_a_valid_test_profile():
    used: set[str] = set()
    for name in ("c8_combined_supported.yaml", "every_construct.yaml"):
        _keys_in(load_profile(DATA / name, template_ok=True).data, used)
    refused = {"deid-log", "map-subjects", "table", "nifti", "alter_pixels", "encrypt", "decrypt"}
    assert _schema_keys(schema(), set()) - refused - used == set()


def test_schema_is_shipped_as_package_data_and_is_a_valid_draft_2020_12_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    shipped = Path(__import__("fw_gear_deid.profile").profile.__file__).parent / "schema.json"
    assert json.loads(shipped.read_text()) == schema()


def test_schema_knows_every_file_section_of_the_handler_registry():
    assert set(SECTION_NAMES) <= set(schema()["properties"])


def test_blank_profile_is_the_opt_out():
    profile = load_profile(DATA / "opt_out.yaml")
    assert profile.is_opt_out
    assert profile.data == OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "name: x\ndicom:\n  fields: []\n",
        "dicom:\n  fields: []\n  remove-private-tags: true\n",
        "dicom:\n  fields:\n    - name: PatientName\n      keep: true\n",
        "dicom: {}\n",
    ],
)
def test_anything_more_than_the_blank_profile_is_not_an_opt_out(text):
    assert not load_profile(text=text, source="p.yaml").is_opt_out


def test_json_profiles_are_accepted_with_line_numbers():
    path = DATA / "json_profile.json"
    assert _issues("json_profile.json") == [
        f"{path}:6: dicom.fields[1].name: unknown DICOM keyword 'PateintID' "
        "(did you mean 'PatientID'?)"
    ]


def test_the_same_profile_in_yaml_and_json_has_the_same_hash():
    yaml_text = "dicom:\n  salt: s\n  fields:\n    - name: PatientName\n      remove: true\n"
    json_text = '{"dicom": {"fields": [{"remove": true, "name": "PatientName"}], "salt": "s"}}'
    from_yaml = load_profile(text=yaml_text, source="a.yaml")
    from_json = load_profile(text=json_text, source="a.json")
    assert from_yaml.data == from_json.data
    assert from_yaml.sha256 == from_json.sha256
    changed = load_profile(text=yaml_text.replace("salt: s", "salt: t"), source="a.yaml")
    assert changed.sha256 != from_yaml.sha256


def test_profile_data_keeps_keys_as_written_and_corrects_keyword_case_like_flywheel():
    text = "dicom:\n  remove-private-tags: true\n  fields:\n    - name: patientname\n      replace-with: X\n"
    profile = load_profile(text=text, source="p.yaml")
    assert profile.data == {
        "dicom": {
            "remove-private-tags": True,
            "fields": [{"name": "PatientName", "replace-with": "X"}],
        }
    }
    assert isinstance(profile, Profile)
    assert profile.source == "p.yaml"
    assert profile.level is None


def test_only_plain_keywords_are_respelled():
    text = (
        "dicom:\n  fields:\n    - name: otherpatientidssequence.*.patientid\n      remove: true\n"
        "    - name: (0010,0020)\n      remove: true\n"
    )
    fields = load_profile(text=text, source="p.yaml").data["dicom"]["fields"]
    assert [field["name"] for field in fields] == [
        "otherpatientidssequence.*.patientid",
        "(0010,0020)",
    ]


def test_flywheel_settings_dict_is_accepted_as_a_profile():
    settings = {"dicom": {"fields": [{"name": "PatientName", "remove": True}]}}
    profile = load_profile(text=settings, source="project settings")
    assert profile.data == settings


def test_flywheel_settings_dict_errors_have_paths():
    settings = {"dicom": {"fields": [{"name": "PateintName", "remove": True}]}}
    with pytest.raises(ProfileError) as caught:
        load_profile(text=settings, source="project settings")
    assert [str(issue) for issue in caught.value.issues] == [
        "project settings:1: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
        "(did you mean 'PatientName'?)"
    ]


def test_profile_text_passed_positionally_is_taken_as_text():
    profile = load_profile("dicom:\n  fields: []\n", source="inline")
    assert profile.is_opt_out


def test_missing_profile_file_is_a_read_error(tmp_path):
    with pytest.raises(ProfileReadError) as caught:
        load_profile(tmp_path / "nope.yaml")
    assert "cannot read the profile" in str(caught.value)


def test_non_utf8_profile_file_is_a_read_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\ndicom: {}\n".encode("latin-1"))
    with pytest.raises(ProfileReadError, match="not UTF-8"):
        load_profile(path)


def test_empty_profile_is_an_error(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert not isinstance(caught.value, ProfileReadError)
    assert [issue.message for issue in caught.value.issues] == ["the profile is empty"]


def test_empty_section_is_an_empty_mapping():
    profile = load_profile(text="dicom:\njpg:\n", source="p.yaml")
    assert profile.data == {"dicom": {}, "jpg": {}}


def test_jpeg_segment_names_and_png_text_keywords_validate():
    profile = load_profile(
        text="""
jpg:
  fields:
    - name: XMP
      keep: true
    - name: COM
      replace-with: anonymous
png:
  fields:
    - name: Author
      replace-with: ANON
    - name: Creation Time
      increment-datetime: true
    - name: tEXt
      remove: true
"""
    )
    assert [field["name"] for field in profile.data["png"]["fields"]] == [
        "Author",
        "Creation Time",
        "tEXt",
    ]
