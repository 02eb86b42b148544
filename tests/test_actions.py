"""The shared value transforms: reference values from flywheel-migration 13.10.11 and keyed behaviour."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta

import pytest

from fw_gear_deid.actions import (
    REMOVE,
    ActionError,
    compile_field_action,
    hash_for,
    hash_value,
    hashuid,
    hashuid_for,
    jitter,
    parse_datetime_bound,
    shift_date,
    shift_datetime,
)
from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.keys import Keys


@pytest.fixture
def ctx(keys: Keys) -> DeidContext:
    return DeidContext(keys=keys, subject="sub-01", source_name="x.json")


def test_hash_value_matches_flywheel_unsalted_patient_id_oracle():
    # FLYWHEEL.md C.9: PatientID 1CT1 unsalted gives 1c3ee9adf6f95ec4 in both Flywheel engines.
    assert hash_value("1CT1", None) == "1c3ee9adf6f95ec4"


def test_hash_value_prepends_salt_and_truncates():
    import hashlib

    assert hash_value("abc", "s1", 10) == hashlib.sha256(b"s1abc").hexdigest()[:10]
    assert len(hash_value("abc", "s1", None)) == 64


def test_hash_for_uses_salt_when_section_sets_one_else_keyed_pseudonym(keys):
    assert hash_for({"salt": "s1"}, "abc", keys) == hash_value("abc", "s1")
    keyed = hash_for({}, "abc", keys)
    assert keyed != hash_value("abc", None)
    assert keyed == hash_for({}, "abc", Keys("test-secret-not-for-production"))
    assert keyed != hash_for({}, "abc", Keys("another-secret"))


def test_hashuid_matches_flywheel_documented_example():
    uid = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert hashuid(uid, "s1") == "1.3.6.1.222772.345214.325474.211247.100117.216144.12322"


def test_hashuid_is_at_most_64_chars_and_keeps_numeric_name():
    long_uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320.1234567890"
    assert len(hashuid(long_uid, "s", prefix_fields=8)) <= 64
    result = hashuid("1.2.3.4.5.6", "s", prefix_fields=7, numeric_name="2.16.840.1.114570.2.2")
    assert result.startswith("2.16.840.1.114570.2.2.")


def test_hashuid_numeric_name_with_wrong_node_count_is_an_error():
    with pytest.raises(ActionError, match="exactly 4 fields"):
        hashuid("1.2.3.4.5", "s", prefix_fields=4, numeric_name="1.2.3")


def test_hashuid_for_without_salt_is_keyed_and_same_shape(keys):
    uid = "1.2.840.10008.9.1.2"
    keyed = hashuid_for({}, uid, keys)
    assert keyed != hashuid(uid, None)
    assert keyed.startswith("1.2.840.10008.")
    assert keyed.endswith(".2")
    assert hashuid_for({"salt": "s1"}, uid, keys) == hashuid(uid, "s1")


def test_shift_datetime_keeps_timezone_and_adds_fraction_like_reference():
    assert shift_datetime("20040119072730+0100", "%Y%m%d%H%M%S.%f", -10) == (
        "20040109072730.000000+0100"
    )


def test_shift_date_shifts_each_comma_separated_value():
    assert shift_date("20040119,20050101", "%Y%m%d", -10) == "20040109,20041222"


def test_shift_date_applies_datetime_min_clamp_unlike_reference():
    low = parse_datetime_bound("20040115")
    assert shift_date("20040119", "%Y%m%d", -10, minimum=low) == "20040115"


def test_shift_date_unparsable_value_raises_action_error():
    with pytest.raises(ActionError, match="does not parse with the format"):
        shift_date("2004-01-19", "%Y%m%d", 1)


def test_parse_datetime_bound_relative_years_counts_365_25_days():
    today = datetime(2020, 1, 1)
    assert parse_datetime_bound("-2years", today) == today - timedelta(days=730.5)
    with pytest.raises(ActionError):
        parse_datetime_bound("yesterday")


def test_jitter_is_keyed_nonzero_and_reproducible(keys):
    first = jitter("70", keys, "PatientWeight", "sub-01", jitter_range=2)
    assert first == jitter("70", keys, "PatientWeight", "sub-01", jitter_range=2)
    assert first != 70
    assert 68 <= first <= 72
    other = jitter("70", keys, "PatientWeight", "sub-02", jitter_range=2)
    assert other != first


def test_jitter_int_on_decimal_string_casts_instead_of_failing(keys):
    result = jitter("70.0", keys, "f", jitter_type="int", jitter_range=3)
    assert isinstance(result, int)
    assert result != 70
    assert 67 <= result <= 73


def test_jitter_clamps_to_min_and_max(keys):
    assert jitter("1", keys, "f", jitter_range=100, minimum=0, maximum=0) == 0


def test_remove_sentinel_survives_pickling_for_worker_processes():
    assert pickle.loads(pickle.dumps(REMOVE)) is REMOVE


@pytest.mark.parametrize(
    ("entry", "value", "expected"),
    [
        ({"name": "a", "remove": True}, "x", REMOVE),
        ({"name": "a", "keep": True}, "x", "x"),
        ({"name": "a"}, "x", "x"),
        ({"name": "a", "replace-with": "ANON"}, "x", "ANON"),
        ({"name": "a", "replace-with": "ANON"}, None, "ANON"),
        ({"name": "a", "replace-with": "ANON", "replace-with-insert": False}, None, None),
        ({"name": "a", "increment-date": True}, "2020-01-10", "2020-01-03"),
        ({"name": "a", "increment-datetime": True}, "2020-01-10 10:00:00", "2020-01-03 10:00:00"),
    ],
)
def test_field_action_apply_follows_the_action(ctx, entry, value, expected):
    action = compile_field_action(entry, {"date-increment": -7}, section_name="json")
    assert action.apply(value, ctx) == expected


def test_field_action_hash_with_salt_matches_reference(ctx):
    action = compile_field_action({"name": "id", "hash": True}, {"salt": "s1"})
    assert action.apply("12345", ctx) == hash_value("12345", "s1")


def test_field_action_without_date_increment_uses_subject_offset(ctx, keys):
    action = compile_field_action({"name": "d", "increment-date": True}, {}, section_name="json")
    offset = keys.date_offset_days("sub-01")
    expected = (datetime(2020, 6, 1) + timedelta(days=offset)).strftime("%Y-%m-%d")
    assert action.apply("2020-06-01", ctx) == expected


def test_field_action_date_increment_override_wins(ctx):
    action = compile_field_action(
        {"name": "d", "increment-date": True, "date-increment-override": 1},
        {"date-increment": -7},
        section_name="json",
    )
    assert action.apply("2020-06-01", ctx) == "2020-06-02"


def test_field_action_jitter_date_is_keyed_and_within_range(ctx):
    entry = {"name": "d", "increment-date": True, "jitter-date": True, "jitter-range": 3}
    action = compile_field_action(entry, {"date-increment": 0}, section_name="json")
    first = action.apply("2020-06-10", ctx)
    assert first == action.apply("2020-06-10", ctx)
    shifted = datetime.strptime(first, "%Y-%m-%d") - datetime(2020, 6, 10)
    assert 1 <= abs(shifted.days) <= 3


def test_regex_sub_hashes_a_group_and_keeps_capture(ctx):
    entry = {
        "name": "comment",
        "regex-sub": [
            {
                "input-regex": r"^(?P<site>[A-Z]+)-(?P<mrn>\d+)$",
                "output": "{site}-{mrn}",
                "groups": [{"name": "mrn", "hash": True}],
            }
        ],
    }
    action = compile_field_action(entry, {"salt": "s1"})
    assert action.apply("ABC-123", ctx) == f"ABC-{hash_value('123', 's1')}"


def test_regex_sub_group_not_captured_reads_the_record_field(ctx):
    entry = {
        "name": "label",
        "regex-sub": [
            {
                "input-regex": r"^(?P<scan>\w+)$",
                "output": "{scan}_{subject.label}",
                "groups": [{"name": "subject.label", "hash": True}],
            }
        ],
    }
    action = compile_field_action(entry, {"salt": "s"})
    result = action.apply("T1w", ctx, lookup={"subject.label": "P001"}.get)
    assert result == f"T1w_{hash_value('P001', 's')}"


def test_regex_sub_without_match_raises_action_error(ctx):
    entry = {"name": "x", "regex-sub": [{"input-regex": "^a$", "output": "b"}]}
    with pytest.raises(ActionError, match="does not match"):
        compile_field_action(entry, {}).apply("zzz", ctx)


def test_action_errors_never_quote_the_value():
    # Errors end up in reports, which must carry no PHI values.
    with pytest.raises(ActionError) as caught:
        shift_date("DOE^JOHN", "%Y%m%d", 1)
    assert "DOE" not in str(caught.value)
