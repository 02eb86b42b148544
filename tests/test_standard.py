import collections

from fw_gear_deid.standard import OPTIONS, table_rows


def test_table_e11_ships_all_621_rows_with_the_2024b_action_counts():
    counts = collections.Counter(row["basicProfile"] for row in table_rows())
    assert len(table_rows()) == 621
    assert counts == {
        "X": 384, "D": 92, "U": 54, "Z": 42, "X/D": 22, "X/Z": 11, "X/Z/D": 8, "Z/D": 6, "X/Z/U*": 2,
    }  # fmt: skip


def test_every_option_names_a_column_of_the_table():
    columns = {key for row in table_rows() for key in row}
    assert {option.column for option in OPTIONS.values()} <= columns
