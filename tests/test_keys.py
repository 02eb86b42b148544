from fw_gear_deid.keys import DateShiftRange, Keys


def test_same_secret_gives_same_uid_in_every_instance():
    uid = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert Keys("s").uid(uid) == Keys("s").uid(uid)
    assert Keys("s").uid(uid) != Keys("t").uid(uid)


def test_remapped_uid_is_valid_and_short():
    new = Keys("s").uid("1.2.3")
    assert new.startswith("2.25.")
    assert len(new) <= 64
    assert all(
        part.isdigit() and (part == "0" or not part.startswith("0")) for part in new.split(".")
    )


def test_date_offset_is_per_subject_stable_and_never_zero():
    keys = Keys("s", DateShiftRange(-1, 1))
    offsets = {keys.date_offset_days(f"subject-{n}") for n in range(50)}
    assert 0 not in offsets
    assert offsets <= {-1, 1}
    assert keys.date_offset_days("a") == Keys("s", DateShiftRange(-1, 1)).date_offset_days("a")


def test_repr_never_shows_the_secret():
    assert "hunter2" not in repr(Keys("hunter2"))
