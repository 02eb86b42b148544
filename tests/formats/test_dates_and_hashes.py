"""Dates shift by the subject's offset and hashes are the same keyed values in every format."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import SUBJECT, named
from fixtures import build_jpeg, build_png
from lxml import etree
from PIL import Image

from fw_gear_deid.formats.jpg import JpgHandler
from fw_gear_deid.formats.json import JsonHandler
from fw_gear_deid.formats.keyvalue import KeyValueHandler
from fw_gear_deid.formats.png import PngHandler
from fw_gear_deid.formats.table import CsvHandler
from fw_gear_deid.formats.xml import XmlHandler

MRN = "MRN0042917"


def shifted(ctx, text: str, fmt: str, days: int | None = None) -> str:
    offset = ctx.keys.date_offset_days(SUBJECT) if days is None else days
    return (datetime.strptime(text, fmt) + timedelta(days=offset)).strftime(fmt)


def outputs(tmp_path: Path, ctx, extra: dict) -> dict[str, str]:
    """De-identify one file per format holding the same date and MRN; return what came out."""
    found: dict[str, str] = {}

    csv_src = tmp_path / "visits.csv"
    csv_src.write_text(f"mrn,visit_date\n{MRN},2020-03-04\n")
    CsvHandler(
        {
            **extra,
            "date-format": "%Y-%m-%d",
            "fields": [
                {"name": "mrn", "hash": True},
                {"name": "visit_date", "increment-date": True},
            ],
        }
    ).deidentify(csv_src, tmp_path / "o.csv", named(ctx, csv_src.name))
    found["csv.mrn"], found["csv.date"] = (
        (tmp_path / "o.csv").read_text().splitlines()[1].split(",")
    )

    json_src = tmp_path / "a.json"
    json_src.write_text(json.dumps({"patient": {"mrn": MRN, "visit": "2020-03-04"}}))
    JsonHandler(
        {
            **extra,
            "fields": [
                {"name": "patient.mrn", "hash": True},
                {"name": "patient.visit", "increment-date": True},
            ],
        }
    ).deidentify(json_src, tmp_path / "o.json", named(ctx, json_src.name))
    data = json.loads((tmp_path / "o.json").read_text())["patient"]
    found["json.mrn"], found["json.date"] = data["mrn"], data["visit"]

    xml_src = tmp_path / "a.xml"
    xml_src.write_text(
        f'<?xml version="1.0"?>\n<r><mrn>{MRN}</mrn><visit when="2020-03-04T10:00:00"/></r>\n'
    )
    XmlHandler(
        {
            **extra,
            "date-format": "%Y-%m-%d",
            "fields": [
                {"name": "//mrn", "hash": True},
                {"name": "//visit/@when", "increment-date": True},
            ],
        }
    ).deidentify(xml_src, tmp_path / "o.xml", named(ctx, xml_src.name))
    root = etree.parse(str(tmp_path / "o.xml")).getroot()
    found["xml.mrn"], found["xml.date"] = root.findtext("mrn"), root.find("visit").get("when")

    kv_src = tmp_path / "a.mhd"
    kv_src.write_text(f"PatientID = {MRN}\nStudyDate = 20200304\n")
    KeyValueHandler(
        {
            **extra,
            "delimiter": " = ",
            "fields": [
                {"name": "PatientID", "hash": True},
                {"name": "StudyDate", "increment-date": True},
            ],
        }
    ).deidentify(kv_src, tmp_path / "o.mhd", named(ctx, kv_src.name))
    lines = dict(line.split(" = ") for line in (tmp_path / "o.mhd").read_text().splitlines())
    found["kv.mrn"], found["kv.date"] = lines["PatientID"], lines["StudyDate"]
    return found


def test_dates_in_every_format_shift_by_the_subjects_keyed_offset(tmp_path, ctx):
    found = outputs(tmp_path, ctx, {})
    expected = shifted(ctx, "2020-03-04", "%Y-%m-%d")
    assert ctx.keys.date_offset_days(SUBJECT) != 0
    assert found["csv.date"] == found["json.date"] == found["xml.date"] == expected
    assert found["kv.date"] == expected.replace("-", "")


def test_section_date_increment_and_mapping_csv_offset_take_precedence(tmp_path, ctx):
    from dataclasses import replace

    found = outputs(tmp_path, ctx, {"date-increment": -7})
    assert found["csv.date"] == "2020-02-26"
    found = outputs(tmp_path, replace(ctx, date_offset_days=-30), {})
    assert found["json.date"] == "2020-02-03"


def test_hash_is_the_same_keyed_value_in_every_format(tmp_path, ctx):
    found = outputs(tmp_path, ctx, {})
    hashes = {found[f"{fmt}.mrn"] for fmt in ("csv", "json", "xml", "kv")}
    assert len(hashes) == 1
    (value,) = hashes
    assert value != MRN
    assert MRN not in value
    assert value == ctx.keys.pseudonym(MRN, 16)


def test_salted_hash_is_flywheel_compatible(tmp_path, ctx):
    found = outputs(tmp_path, ctx, {"salt": "s1"})
    assert found["csv.mrn"] == hashlib.sha256(f"s1{MRN}".encode()).hexdigest()[:16]
    assert found["json.mrn"] == found["csv.mrn"]


def test_jpeg_exif_datetime_shifts_in_every_ifd_without_touching_pixels(tmp_path, ctx):
    src = build_jpeg(tmp_path / "p.jpg")
    dst = tmp_path / "o.jpg"
    JpgHandler(
        {
            "fields": [
                {"name": "DateTime", "increment-datetime": True},
                {"name": "DateTimeOriginal", "increment-datetime": True},
            ]
        }
    ).deidentify(src, dst, named(ctx, src.name))
    texts = dict(JpgHandler({}).text_values(dst))
    expected = shifted(ctx, "1961:07:14 08:30:00", "%Y:%m:%d %H:%M:%S")
    assert texts["EXIF.IFD0.DateTime"] == texts["EXIF.IFD1.DateTime"] == expected
    assert texts["EXIF.IFD0.Exif.DateTimeOriginal"] == expected
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()


def test_jpeg_comment_can_be_rewritten(tmp_path, ctx):
    src = build_jpeg(tmp_path / "p.jpg")
    dst = tmp_path / "o.jpg"
    outcome = JpgHandler({"fields": [{"name": "COM", "replace-with": "de-identified"}]}).deidentify(
        src, dst, named(ctx, src.name)
    )
    assert dict(JpgHandler({}).text_values(dst))["COM"] == "de-identified"
    assert any(s.path == "COM" and "Cornelius" in s.value for s in outcome.sensitive)


def test_png_text_keyword_rules_transform_values(tmp_path, ctx):
    src = build_png(tmp_path / "s.png")
    dst = tmp_path / "o.png"
    section = {
        "fields": [
            {"name": "Author", "hash": True},
            {"name": "Comment", "replace-with": "none"},
            {"name": "Description", "keep": True},
        ]
    }
    PngHandler(section).deidentify(src, dst, named(ctx, src.name))
    texts = dict(PngHandler({}).text_values(dst))
    assert texts["tEXt.Author"] == ctx.keys.pseudonym("Jane Q Doe", 16)
    assert texts["zTXt.Comment"] == "none"
    assert texts["iTXt.Description"].startswith("Patient ")
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()


def test_jitter_on_a_json_number_stays_a_number_and_is_reproducible(tmp_path, ctx):
    src = tmp_path / "a.json"
    src.write_text('{"weight": 70.5, "name": "x"}')
    handler = JsonHandler({"fields": [{"name": "weight", "jitter": True, "jitter-range": 2}]})
    first = handler.deidentify(src, tmp_path / "o1.json", named(ctx, src.name))
    handler.deidentify(src, tmp_path / "o2.json", named(ctx, src.name))
    text = (tmp_path / "o1.json").read_text()
    assert text == (tmp_path / "o2.json").read_text()
    value = json.loads(text)["weight"]
    assert isinstance(value, float)
    assert 0 < abs(value - 70.5) <= 2
    assert [c.action for c in first.changes] == ["jitter"]


def test_regex_sub_with_a_hashed_group_in_a_csv_column(tmp_path, ctx):
    src = tmp_path / "a.csv"
    src.write_text("code\nSITE-12345\nother\n")
    rule = {
        "name": "code",
        "regex-sub": [
            {
                "input-regex": r"^(?P<site>[A-Z]+)-(?P<mrn>\d+)$",
                "output": "{site}-{mrn}",
                "groups": [{"name": "mrn", "hash": True}],
            }
        ],
    }
    from fw_gear_deid.errors import MalformedFileError

    # "other" matches no input-regex: an error naming the column (reference behaviour), no output
    with pytest.raises(MalformedFileError, match="column code"):
        CsvHandler({"fields": [rule]}).deidentify(src, tmp_path / "o.csv", named(ctx, src.name))
    assert not (tmp_path / "o.csv").exists()
    src.write_text("code\nSITE-12345\n")
    CsvHandler({"fields": [rule]}).deidentify(src, tmp_path / "o.csv", named(ctx, src.name))
    assert (tmp_path / "o.csv").read_text() == f"code\nSITE-{ctx.keys.pseudonym('12345', 16)}\n"


def test_xml_date_without_a_section_format_uses_the_reference_default(tmp_path, ctx):
    src = tmp_path / "a.xml"
    src.write_text('<?xml version="1.0"?>\n<r><d>20200304</d><e>March 4, 2020</e></r>\n')
    XmlHandler(
        {
            "fields": [
                {"name": "//d", "increment-date": True},
                {"name": "//e", "increment-date": True},
            ]
        }
    ).deidentify(src, tmp_path / "o.xml", named(ctx, src.name))
    root = etree.parse(str(tmp_path / "o.xml")).getroot()
    expected = shifted(ctx, "20200304", "%Y%m%d")
    assert root.findtext("d") == root.findtext("e") == expected
