"""CSV/TSV: real delimiters, values kept as source strings, quoting kept, column actions row by row."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import named

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats import build_handlers
from fw_gear_deid.formats.table import CsvHandler, TsvHandler

TSV = (
    b"\xef\xbb\xbfsubject\tname\tnote\tzip\tscore\r\n"
    b'007\tJane Doe\t"has\ta tab"\t00123\t1.50\r\n'
    b'008\t"Roe, ""JJ"""\t"two\nlines"\t01234\t2.0e1\r\n'
    b"009\t\t\t\t\r\n"
    b"010\tShort row\r\n"
)


def run(
    handler, tmp_path: Path, data: bytes, ctx, name: str = "table.tsv"
) -> tuple[Path, Path, object]:
    src = tmp_path / name
    src.write_bytes(data)
    dst = tmp_path / f"out-{name}"
    return src, dst, handler.deidentify(src, dst, named(ctx, src.name))


def columns(data: bytes, delimiter: str) -> list[list[str]]:
    """An independent reading with the stdlib csv module."""
    return list(csv.reader(data.decode("utf-8-sig").splitlines(keepends=True), delimiter=delimiter))


def test_tsv_remove_column_keeps_every_other_cell_byte_identical(tmp_path, ctx):
    src, dst, outcome = run(
        TsvHandler({"fields": [{"name": "name", "remove": True}]}), tmp_path, TSV, ctx
    )
    expected = (
        b"\xef\xbb\xbfsubject\tnote\tzip\tscore\r\n"
        b'007\t"has\ta tab"\t00123\t1.50\r\n'
        b'008\t"two\nlines"\t01234\t2.0e1\r\n'
        b"009\t\t\t\r\n"
        b"010\r\n"
    )
    assert dst.read_bytes() == expected
    rows = columns(dst.read_bytes(), "\t")
    assert rows[1] == ["007", "has\ta tab", "00123", "1.50"]  # leading zeros and number text kept
    assert {"Jane Doe", 'Roe, "JJ"', "Short row"} == {s.value for s in outcome.sensitive}
    assert src.read_bytes() == TSV


def test_untouched_table_round_trips_byte_identical(tmp_path, ctx):
    _src, dst, _ = run(TsvHandler({"fields": [{"name": "zip", "keep": True}]}), tmp_path, TSV, ctx)
    assert dst.read_bytes() == TSV


def test_csv_with_its_own_delimiter_option(tmp_path, ctx):
    data = b'id;name;city\n1;"Doe; Jane";Bern\n2;Roe;Basel\n'
    _src, dst, _ = run(
        CsvHandler({"delimiter": ";", "fields": [{"name": "name", "remove": True}]}),
        tmp_path,
        data,
        ctx,
        "a.csv",
    )
    assert dst.read_bytes() == b"id;city\n1;Bern\n2;Basel\n"


def test_default_filters_match_csv_and_tsv_files():
    handlers = build_handlers({"csv": {"fields": []}, "tsv": {"fields": []}})
    assert handlers.match("visits.csv", b"a,b\n").section_name == "csv"
    assert handlers.match("VISITS.CSV", b"a,b\n").section_name == "csv"
    assert handlers.match("participants.tsv", b"a\tb\n").section_name == "tsv"
    assert handlers.match("notes.txt", b"a,b\n") is None


def test_field_longer_than_the_csv_limit_is_a_clear_error(tmp_path, ctx):
    limit = csv.field_size_limit()
    data = b"a,b\n1," + b"x" * (limit + 10) + b"\n"
    with pytest.raises(MalformedFileError, match="field_size_limit"):
        run(CsvHandler({}), tmp_path, data, ctx, "big.csv")
    assert not (tmp_path / "out-big.csv").exists()


def test_unclosed_quote_is_malformed(tmp_path, ctx):
    with pytest.raises(MalformedFileError, match="never closed"):
        run(CsvHandler({}), tmp_path, b'a,b\n1,"open\n', ctx, "bad.csv")


def test_text_values_are_every_cell(tmp_path):
    src = tmp_path / "t.tsv"
    src.write_bytes(TSV)
    texts = dict(TsvHandler({}).text_values(src))
    assert texts["row 2.name"] == 'Roe, "JJ"'
    assert texts["row 1.note"] == "has\ta tab"


def test_replace_with_fills_every_row_and_hash_skips_empty_cells(tmp_path, ctx):
    data = b"id,site,mrn\n1,A,M1\n2,,\n"
    section = {"fields": [{"name": "site", "replace-with": "X"}, {"name": "mrn", "hash": True}]}
    _src, dst, _ = run(CsvHandler(section), tmp_path, data, ctx, "r.csv")
    assert dst.read_bytes() == f"id,site,mrn\n1,X,{ctx.keys.pseudonym('M1', 16)}\n2,X,\n".encode()


def test_handlers_pickle_with_their_siblings_after_use(tmp_path, ctx):
    import pickle

    handlers = build_handlers({"csv": {"fields": [{"name": "mrn", "hash": True}]}, "zip": {}})
    src = tmp_path / "a.csv"
    src.write_bytes(b"mrn\nM1\n")
    csv_handler = handlers.match("a.csv", b"")
    csv_handler.deidentify(src, None, named(ctx, src.name))  # compiles the rule
    clone = pickle.loads(pickle.dumps(csv_handler))
    assert clone.siblings.match("a.zip", b"").section_name == "zip"
    assert clone.deidentify(src, None, named(ctx, src.name)).sensitive[0].value == "M1"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_spreadsheet_export_is_read_and_written_in_utf16(tmp_path, ctx, codec):
    bom = "\ufeff".encode(codec)
    data = bom + "id\tname\tcity\r\n007\tJane Doe\tZürich\r\n".encode(codec)
    _src, dst, outcome = run(
        TsvHandler({"fields": [{"name": "name", "remove": True}]}), tmp_path, data, ctx
    )
    assert dst.read_bytes() == bom + "id\tcity\r\n007\tZürich\r\n".encode(codec)
    assert [s.value for s in outcome.sensitive] == ["Jane Doe"]


def test_latin1_bytes_round_trip_unchanged(tmp_path, ctx):
    data = "id,name,city\n1,Jöhn,Zürich\n".encode("latin-1")
    _src, dst, _ = run(
        CsvHandler({"fields": [{"name": "id", "hash": True}]}), tmp_path, data, ctx, "l.csv"
    )
    assert dst.read_bytes() == f"id,name,city\n{ctx.keys.pseudonym('1', 16)},Jöhn,Zürich\n".encode(
        "latin-1"
    )


def test_wrong_delimiter_is_refused_instead_of_silently_doing_nothing(tmp_path, ctx):
    data = b"id;name;city\n1;Jane Doe;Bern\n"
    with pytest.raises(MalformedFileError, match="delimiter"):
        run(
            CsvHandler({"fields": [{"name": "name", "remove": True}]}),
            tmp_path,
            data,
            ctx,
            "semi.csv",
        )
    # a column that is simply absent is not an error (profiles are shared across files)
    _src, dst, _ = run(
        CsvHandler({"fields": [{"name": "mrn", "remove": True}]}), tmp_path, data, ctx, "semi.csv"
    )
    assert dst.read_bytes() == data
