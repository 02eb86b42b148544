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
