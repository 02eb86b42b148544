"""Safe YAML loading: no object tags, no alias bombs, and a line for every key."""

from __future__ import annotations

import pytest

from fw_gear_deid.profile._loader import MAX_ALIASES, LoadError, load_text


def _error(text: str) -> str:
    with pytest.raises(LoadError) as caught:
        load_text(text, "p.yaml")
    assert len(caught.value.issues) == 1
    return str(caught.value.issues[0])


def test_lines_of_keys_and_list_items_are_kept():
    loaded = load_text(
        "name: x\ndicom:\n  fields:\n    - name: PatientName\n\n      remove: true\n", "p.yaml"
    )
    assert loaded.lines[("dicom",)] == 2
    assert loaded.lines[("dicom", "fields", 0)] == 4
    assert loaded.lines[("dicom", "fields", 0, "remove")] == 6
    assert loaded.line(("dicom", "fields", 0, "remove", "missing")) == 6


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['id']",
        "!!python/name:os.system",
        "!custom value",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
    ],
)
def test_object_and_custom_tags_are_refused(tag):
    assert "is not allowed" in _error(f"dicom:\n  salt: {tag}\n")


def test_billion_laughs_alias_bomb_is_refused_without_expanding():
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, previous in zip("bcdefghi", "abcdefgh", strict=True):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    message = _error("\n".join(rows) + "\n")
    assert "alias expansion bomb" in message


def test_too_many_aliases_are_refused():
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"more than {MAX_ALIASES} YAML aliases" in _error(text)


def test_recursive_alias_is_refused():
    assert "recursive YAML alias" in _error("a: &a [1, *a]\n")


def test_a_few_anchors_and_merge_keys_still_work():
    text = (
        "base: &base {salt: s, date-increment: -7}\n"
        "dicom:\n  <<: *base\n  salt: own\n"
        "fields: &f [{name: PatientName, remove: true}]\n"
        "again: *f\n"
    )
    data = load_text(text, "p.yaml").data
    assert data["dicom"] == {"salt": "own", "date-increment": -7}
    assert data["again"] == data["fields"]


def test_key_written_twice_is_an_error_not_last_one_wins():
    assert _error("dicom: {}\njpg: {}\ndicom: {}\n") == (
        "p.yaml:3: dicom: key 'dicom' is written twice (first on line 1)"
    )


def test_json_duplicate_key_is_an_error_with_its_line():
    assert _error('{\n  "dicom": {},\n  "dicom": {}\n}\n') == (
        "p.yaml:3: dicom: key 'dicom' is written twice (first on line 2)"
    )


def test_json_syntax_error_has_its_line():
    assert _error('{\n  "dicom": {,\n}\n') == (
        "p.yaml:2: (root): JSON syntax error: Expecting property name enclosed in double quotes"
    )


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("00100030", "00100030"),  # YAML 1.1 octal: kept as the hex tag that was written
        ("0123", "0123"),
        ("1:30", "1:30"),  # YAML 1.1 base 60
        ("2020-01-02", "2020-01-02"),  # timestamp: stays text
        ("'0123'", "0123"),
        ("123", 123),
        ("-21", -21),
        ("0.5", 0.5),
        ("0x10", 16),
        ("yes", True),
        ("null", None),
    ],
)
def test_scalars_keep_what_the_person_wrote(written, value):
    assert load_text(f"v: {written}\n", "p.yaml").data == {"v": value}


def test_keys_stay_words_even_when_yaml_11_would_read_them_as_booleans():
    assert load_text("on: 1\nno: 2\n", "p.yaml").data == {"on": 1, "no": 2}


def test_raw_text_of_plain_scalars_is_recorded():
    loaded = load_text("v: YES\nw: 'YES'\n", "p.yaml")
    assert loaded.raw[("v",)] == (True, "YES")
    assert loaded.raw[("w",)] == (False, "YES")
