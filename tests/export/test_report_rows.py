"""ReportRow serialisation without dataclasses.asdict gives the same data."""

from dataclasses import asdict

from fw_gear_deid.export._report import CSV_COLUMNS, ReportRow


def _row() -> ReportRow:
    return ReportRow(
        "proj/sub-1",
        "subject",
        "a.dcm",
        "exported",
        reason="r",
        in_scope=False,
        handler="dicom",
        dest_file="b.dcm",
        write="written",
        actions=[{"path": "PatientName", "action": "replace"}, {"path": "X", "action": "remove"}],
    )


def test_as_dict_equals_asdict_and_is_a_copy():
    row = _row()
    data = row.as_dict()
    assert data == asdict(row)
    assert list(data) == list(asdict(row))
    data["actions"][0]["action"] = "changed"
    assert row.actions[0]["action"] == "replace"


def test_csv_row():
    row = _row().csv_row()
    assert list(row) == list(CSV_COLUMNS)
    assert row["in_scope"] == "no"
    assert row["actions"] == "PatientName: replace; X: remove"
    assert all(isinstance(value, str) for value in row.values())


def _document_text(summary, rows):
    from fw_gear_deid.export._report import _report_json

    return _report_json(summary, rows)


def test_report_json_text_is_json_dumps_indent_2():
    import json

    rows = [
        _row(),
        ReportRow("p", "project", 'quo"te\\back\nnew\tline é 山田 \u2028', "skipped"),
        ReportRow("p", "project", "x", "error", actions=[{}, {"path": "a", "action": "b"}]),
        ReportRow("p", "project", "y", "exported", actions=[{"path": "n", "action": 3}]),  # type: ignore[dict-item]
    ]
    rows[1].reason = 1.5  # type: ignore[assignment]  # not a row's type: json decides
    rows[2].dest_file_id = None  # type: ignore[assignment]
    summary = {"tool": "x", "by_state": {"exported": 1}, "nested": [1, {"a": []}], "when": object()}
    for some in (rows, rows[:1], []):
        expected = json.dumps(
            {"summary": summary, "files": [r.as_dict() for r in some]}, indent=2, default=str
        )
        assert _document_text(summary, some) == expected
