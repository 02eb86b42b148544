"""``filenames`` rules and the ``filename`` catch-all section."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import SUBJECT, named
from fixtures import build_jpeg

from fw_gear_deid.errors import MalformedFileError, UnsupportedFileError
from fw_gear_deid.formats import SECTION_NAMES, build_handlers
from fw_gear_deid.formats.filename import FilenameHandler
from fw_gear_deid.formats.jpg import JpgHandler
from fw_gear_deid.formats.json import JsonHandler

RULES = [
    {
        "input-regex": r"^(?P<mrn>MRN\d+)_(?P<date>\d{8})_(?P<rest>.+)$",
        "output": "{mrn}_{date}_{rest}",
        "groups": [{"name": "mrn", "hash": True}, {"name": "date", "increment-date": True}],
    },
    {"input-regex": r"^(?P<stem>.+)\.bin$", "output": "{stem}.dat"},
]


def test_first_matching_rule_renames_with_group_actions(tmp_path, ctx):
    src = tmp_path / "MRN0042917_20200304_notes.bin"
    src.write_bytes(b"\x00\x01raw bytes")
    dst = tmp_path / "out"
    outcome = FilenameHandler({"filenames": RULES}).deidentify(src, dst, named(ctx, src.name))
    offset = ctx.keys.date_offset_days(SUBJECT)
    date = (datetime(2020, 3, 4) + timedelta(days=offset)).strftime("%Y%m%d")
    assert outcome.output_name == f"{ctx.keys.pseudonym('MRN0042917', 16)}_{date}_notes.bin"
    assert dst.read_bytes() == src.read_bytes()
    assert {"MRN0042917", "20200304"} <= {s.value for s in outcome.sensitive}


def test_second_rule_applies_when_the_first_does_not_match(tmp_path, ctx):
    src = tmp_path / "scan.bin"
    src.write_bytes(b"x")
    outcome = FilenameHandler({"filenames": RULES}).deidentify(src, None, named(ctx, src.name))
    assert outcome.output_name == "scan.dat"


def test_no_matching_rule_means_the_file_is_not_exported(tmp_path, ctx):
    src = tmp_path / "other.txt"
    src.write_bytes(b"x")
    with pytest.raises(UnsupportedFileError, match="input-regex"):
        FilenameHandler({"filenames": RULES}).deidentify(
            src, tmp_path / "out", named(ctx, src.name)
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("{s}_t2*.nii", "scan_t2star.nii"),
        ("{s}_T2 *.nii", "scan_T2 star.nii"),
        ("{s}:a|b?.txt", "scan_a_b_.txt"),
    ],
)
def test_output_names_are_sanitised(tmp_path, ctx, output, expected):
    src = tmp_path / "scan"
    src.write_bytes(b"x")
    handler = FilenameHandler({"filenames": [{"input-regex": r"^(?P<s>\w+)$", "output": output}]})
    assert handler.deidentify(src, None, named(ctx, src.name)).output_name == expected


def test_output_may_use_record_values_of_the_deidentified_file(tmp_path, ctx):
    src = build_jpeg(tmp_path / "IMG_0001.jpg")
    rules = [{"input-regex": r"^IMG_(?P<n>\d+)\.jpg$", "output": "{Make}-{n}.jpg"}]
    assert (
        JpgHandler({"filenames": rules}).deidentify(src, None, named(ctx, src.name)).output_name
        == "ExampleCam-0001.jpg"
    )
    doc = tmp_path / "a.json"
    doc.write_text('{"study": "S/1", "patient": {"name": "Jane"}}')
    handler = JsonHandler(
        {
            "filenames": [{"input-regex": ".*", "output": "{study}_{patient.name}.json"}],
            "fields": [{"name": "patient.name", "replace-with": "anon"}],
        }
    )
    assert handler.deidentify(doc, None, named(ctx, doc.name)).output_name == "S_1_anon.json"


def test_output_variable_the_file_lacks_is_an_error(tmp_path, ctx):
    doc = tmp_path / "a.json"
    doc.write_text("{}")
    handler = JsonHandler({"filenames": [{"input-regex": ".*", "output": "{missing}.json"}]})
    with pytest.raises(MalformedFileError, match="missing"):
        handler.deidentify(doc, None, named(ctx, doc.name))


def test_filename_section_is_the_last_catch_all(tmp_path):
    assert SECTION_NAMES[-1] == "filename"
    handlers = build_handlers({"json": {}, "filename": {}})
    assert handlers.match("a.json", b"{}").section_name == "json"
    assert handlers.match("a.raw", b"\x00").section_name == "filename"


def test_date_group_written_another_way_is_read_then_shifted_in_the_rule_format(tmp_path, ctx):
    rules = [
        {
            "input-regex": r"^scan_(?P<date>\d{4}-\d{2}-\d{2})\.bin$",
            "output": "scan_{date}.bin",
            "groups": [{"name": "date", "increment-date": True}],
        }
    ]
    src = tmp_path / "scan_2020-03-04.bin"
    src.write_bytes(b"x")
    outcome = FilenameHandler({"filenames": rules}).deidentify(src, None, named(ctx, src.name))
    offset = ctx.keys.date_offset_days(SUBJECT)
    assert (
        outcome.output_name == f"scan_{(datetime(2020, 3, 4) + timedelta(days=offset)):%Y%m%d}.bin"
    )


def test_describe_lists_rules_options_and_fail_closed_defaults():
    handlers = build_handlers(
        {"jpg": {"remove-gps": True, "fields": [{"name": "Artist", "remove": True}]}, "zip": {}}
    )
    jpg, archive = handlers.handlers
    lines = jpg.describe()
    assert lines[0] == "jpg: Artist: remove"
    assert "jpg: remove-gps: True" in lines
    assert any("XMP" in line for line in lines)
    assert any("cruft" in line for line in archive.describe())


def test_output_format_specs_apply_to_text_and_numbers(tmp_path, ctx):
    src = tmp_path / "run7_scan.bin"
    src.write_bytes(b"x")
    rules = [
        {"input-regex": r"^run(?P<n>\d+)_(?P<kind>\w+)\.bin$", "output": "run{n:03d}_{kind:>6}.bin"}
    ]
    assert (
        FilenameHandler({"filenames": rules})
        .deidentify(src, None, named(ctx, src.name))
        .output_name
        == "run007_  scan.bin"
    )
    bad = [{"input-regex": r"^run(?P<n>\d+)_(?P<kind>\w+)\.bin$", "output": "{kind:03d}.bin"}]
    with pytest.raises(MalformedFileError, match="cannot format"):
        FilenameHandler({"filenames": bad}).deidentify(src, None, named(ctx, src.name))
