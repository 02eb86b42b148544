"""Under the preset, a public element the dictionary does not know is removed, not kept."""

from __future__ import annotations

import pydicom

PLANTED = "MULBERRYUNK1"


def test_unknown_public_element_is_removed_by_the_preset(ct_small, tmp_path, preset_handler, ctx):
    dataset = pydicom.dcmread(ct_small)
    dataset.add_new(0x0018FFF0, "LO", PLANTED)
    src = tmp_path / "src.dcm"
    dataset.save_as(src)
    dst = tmp_path / "dst.dcm"
    preset_handler.deidentify(src, dst, ctx)
    assert PLANTED.encode() not in dst.read_bytes()
    assert 0x0018FFF0 not in pydicom.dcmread(dst)


def test_known_public_elements_the_table_is_silent_on_are_kept(
    ct_small, tmp_path, preset_handler, ctx
):
    src = tmp_path / "src.dcm"
    pydicom.dcmread(ct_small).save_as(src)
    dst = tmp_path / "dst.dcm"
    preset_handler.deidentify(src, dst, ctx)
    result = pydicom.dcmread(dst)
    assert result.Rows == 128
    assert result.KVP == pydicom.dcmread(ct_small).KVP
