"""Key-value text (.mhd): values edited; keys, delimiters, comments and line endings kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import named

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.keyvalue import KeyValueHandler

MHD = (
    b"# MetaImage header for Jane Doe\r\n"
    b"ObjectType = Image\r\n"
    b"NDims = 3\r\n"
    b"PatientName = Jane Doe  \r\n"
    b"\r\n"
    b"ElementDataFile = scan = 01.raw"
)


def run(tmp_path: Path, section: dict, ctx, data: bytes = MHD) -> tuple[Path, Path, object]:
    src = tmp_path / "scan.mhd"
    src.write_bytes(data)
    dst = tmp_path / "out.mhd"
    return src, dst, KeyValueHandler(section).deidentify(src, dst, named(ctx, src.name))


def test_removing_a_key_keeps_every_other_byte(tmp_path, ctx):
    src, dst, outcome = run(
        tmp_path, {"delimiter": " = ", "fields": [{"name": "PatientName", "remove": True}]}, ctx
    )
    assert dst.read_bytes() == src.read_bytes().replace(b"PatientName = Jane Doe  \r\n", b"")
    assert [s.value for s in outcome.sensitive] == ["Jane Doe"]


def test_value_containing_the_delimiter_is_split_at_the_first_match_only(tmp_path, ctx):
    src, dst, _ = run(
        tmp_path, {"delimiter": " = ", "fields": [{"name": "ObjectType", "keep": True}]}, ctx
    )
    assert dst.read_bytes() == src.read_bytes()
    assert ("ElementDataFile", "scan = 01.raw") in list(
        KeyValueHandler({"delimiter": " = "}).text_values(dst)
    )


def test_regex_delimiter(tmp_path, ctx):
    data = b"A:1\nName :  Jane\nB=2\n"
    _src, dst, _ = run(
        tmp_path,
        {"delimiter": r"\s*[:=]\s*", "fields": [{"name": "Name", "remove": True}]},
        ctx,
        data,
    )
    assert dst.read_bytes() == b"A:1\nB=2\n"


def test_line_without_delimiter_is_an_error_unless_ignored(tmp_path, ctx):
    data = b"A = 1\njunk line\n"
    with pytest.raises(MalformedFileError, match="line 2"):
        run(tmp_path, {"delimiter": " = "}, ctx, data)
    _src, dst, _ = run(tmp_path, {"delimiter": " = ", "ignore-bad-lines": True}, ctx, data)
    assert dst.read_bytes() == data


def test_encoding_option_reads_and_writes_latin1(tmp_path, ctx):
    data = "Name = Jöhn\nSite = Zürich\n".encode("latin-1")
    _src, dst, outcome = run(
        tmp_path,
        {"delimiter": " = ", "encoding": "latin-1", "fields": [{"name": "Name", "remove": True}]},
        ctx,
        data,
    )
    assert dst.read_bytes() == "Site = Zürich\n".encode("latin-1")
    assert outcome.sensitive[0].value == "Jöhn"
