"""JSON: dotted paths, list indexes, ``*``, ``regex``; key order and number literals kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import named

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.json import JsonHandler

DOC = """{
    "study": "S-1",
    "patient": {
        "name": "Jane Doe",
        "ids": [{"mrn": "MRN-001", "site": "A"}, {"mrn": "MRN-002", "site": "B"}],
        "weight": 70.50,
        "visits": 3,
        "scale": 1.0e-3
    },
    "tags": ["x", "y"],
    "empty": {},
    "flag": true,
    "none": null
}
"""


def run(tmp_path: Path, section: dict, ctx, text: str = DOC) -> tuple[Path, Path, object]:
    src = tmp_path / "sidecar.json"
    src.write_text(text, encoding="utf-8")
    dst = tmp_path / "out.json"
    return src, dst, JsonHandler(section).deidentify(src, dst, named(ctx, src.name))


def test_dotted_path_wildcard_and_index_remove_only_what_they_select(tmp_path, ctx):
    section = {
        "fields": [
            {"name": "patient.name", "remove": True},
            {"name": "patient.ids.*.mrn", "remove": True},
            {"name": "tags.1", "remove": True},
        ]
    }
    _src, dst, outcome = run(tmp_path, section, ctx)
    data = json.loads(dst.read_text())
    assert data["patient"]["ids"] == [{"site": "A"}, {"site": "B"}]
    assert "name" not in data["patient"]
    assert data["tags"] == ["x"]
    assert {"Jane Doe", "MRN-001", "MRN-002"} <= {s.value for s in outcome.sensitive}


def test_key_order_and_number_literals_survive(tmp_path, ctx):
    _src, dst, _ = run(tmp_path, {"fields": [{"name": "patient.name", "remove": True}]}, ctx)
    text = dst.read_text()
    assert "70.50" in text
    assert "1.0e-3" in text
    assert list(json.loads(text)["patient"]) == ["ids", "weight", "visits", "scale"]
    assert list(json.loads(text)) == ["study", "patient", "tags", "empty", "flag", "none"]
    assert text.endswith("}\n")


def test_regex_must_match_the_whole_dotted_path(tmp_path, ctx):
    section = {
        "fields": [
            {"regex": r"patient\.ids\.\d+\.mrn", "remove": True},
            {"regex": "stud", "remove": True},
        ]
    }
    _src, dst, _ = run(tmp_path, section, ctx)
    data = json.loads(dst.read_text())
    assert data["study"] == "S-1"  # "stud" is only a prefix
    assert all("mrn" not in item for item in data["patient"]["ids"])


def test_custom_separator(tmp_path, ctx):
    _src, dst, _ = run(
        tmp_path, {"separator": "/", "fields": [{"name": "patient/ids/0/mrn", "remove": True}]}, ctx
    )
    assert json.loads(dst.read_text())["patient"]["ids"][0] == {"site": "A"}


def test_removing_a_container_reports_every_value_inside(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, {"fields": [{"name": "patient", "remove": True}]}, ctx)
    assert "patient" not in json.loads(dst.read_text())
    assert {"Jane Doe", "MRN-001", "MRN-002"} <= {s.value for s in outcome.sensitive}


def test_compact_documents_stay_compact(tmp_path, ctx):
    _src, dst, _ = run(
        tmp_path, {"fields": [{"name": "b", "remove": True}]}, ctx, text='{"a":1,"b":"x","c":[1,2]}'
    )
    assert dst.read_text() == '{"a":1,"c":[1,2]}'


def test_text_values_include_keys_strings_and_numbers(tmp_path):
    src = tmp_path / "a.json"
    src.write_text('{"Jane Doe": {"age": 42, "note": "hi"}}')
    texts = list(JsonHandler({}).text_values(src))
    assert ("Jane Doe (key)", "Jane Doe") in texts
    assert ("Jane Doe.age", "42") in texts


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', "{'a': 1}", '{"a": [1,}'])
def test_invalid_json_and_duplicate_keys_are_malformed(tmp_path, ctx, text):
    with pytest.raises(MalformedFileError, match="JSON"):
        run(tmp_path, {}, ctx, text=text)
    assert not (tmp_path / "out.json").exists()


def test_deeply_nested_json_is_a_clean_error_or_works(tmp_path, ctx):
    depth = 5000
    text = '{"a": ' * depth + "1" + "}" * depth
    with pytest.raises(MalformedFileError, match="JSON"):
        run(tmp_path, {"fields": [{"regex": ".*x", "remove": True}]}, ctx, text=text)
    assert not (tmp_path / "out.json").exists()


def test_replace_with_sets_json_values_of_any_type(tmp_path, ctx):
    section = {
        "fields": [
            {"name": "patient.ids", "replace-with": []},
            {"name": "patient.visits", "replace-with": 0},
            {"name": "patient.weight", "replace-with": "70"},
            {"name": "study", "replace-with": "S-X"},
            {"name": "patient.site", "replace-with": "anon"},
        ]
    }
    _src, dst, outcome = run(tmp_path, section, ctx)
    text = dst.read_text()
    data = json.loads(text)["patient"]
    assert data["ids"] == []
    assert data["visits"] == 0
    assert '"weight": 70,' in text  # a number replaced by a numeric text stays a number
    assert data["site"] == "anon"  # inserted (replace-with-insert defaults to true)
    assert {"MRN-001", "MRN-002"} <= {s.value for s in outcome.sensitive}


def test_document_no_rule_touches_is_written_byte_for_byte(tmp_path, ctx):
    text = '{"a" :1,\n  "b": [ 1.0,2 ], "c": "x"}  \n'
    src, dst, outcome = run(
        tmp_path, {"fields": [{"name": "missing.path", "remove": True}]}, ctx, text=text
    )
    assert outcome.changes == []
    assert dst.read_bytes() == src.read_bytes()
