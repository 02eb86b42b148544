"""The handlers' outcomes feed the real residual-PHI gate: clean outputs pass, a leak is found."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import named
from fixtures import NAME, build_jpeg, build_png, build_tiff, zip_with

from fw_gear_deid.check import ResidualGate
from fw_gear_deid.formats import build_handlers

JPG_STRICT = {
    "remove-gps": True,
    "fields": [
        {"name": n, "remove": True}
        for n in (
            "Artist",
            "XPAuthor",
            "ImageDescription",
            "UserComment",
            "DateTime",
            "DateTimeOriginal",
            "BodySerialNumber",
        )
    ],
}


def deidentify(profile: dict, src: Path, ctx):
    handler = build_handlers(profile).match(src.name, src.read_bytes()[:8192])
    assert handler is not None
    dst = src.with_name("out-" + src.name)
    outcome = handler.deidentify(src, dst, named(ctx, src.name))
    sensitive = list(outcome.sensitive)
    for member in outcome.members.values():
        sensitive += member.sensitive
    return handler, dst, sensitive


@pytest.mark.parametrize(
    ("profile", "build"),
    [
        ({"jpg": JPG_STRICT}, lambda d: build_jpeg(d / "photo.jpg")),
        ({"png": {"remove-private-chunks": True}}, lambda d: build_png(d / "scan.png")),
        (
            {
                "tiff": {
                    "remove-private-tags": True,
                    "fields": [
                        {"name": n, "remove": True}
                        for n in ("Artist", "ImageDescription", "DateTime")
                    ],
                }
            },
            lambda d: build_tiff(d / "slide.tif"),
        ),
    ],
    ids=["jpg", "png", "tiff"],
)
def test_clean_image_outputs_pass_the_gate(tmp_path, ctx, profile, build):
    handler, dst, sensitive = deidentify(profile, build(tmp_path), ctx)
    assert sensitive
    assert ResidualGate(sensitive).scan_file(handler, dst) == []


def test_gate_finds_a_name_the_profile_left_in_another_tag(tmp_path, ctx):
    profile = {
        "jpg": {"fields": [{"name": "Artist", "remove": True}]}
    }  # XPAuthor still holds the name
    handler, dst, sensitive = deidentify(profile, build_jpeg(tmp_path / "photo.jpg"), ctx)
    hits = ResidualGate(sensitive).scan_file(handler, dst)
    assert any("XPAuthor" in hit.path for hit in hits)


def test_clean_text_outputs_pass_and_a_left_copy_is_found(tmp_path, ctx):
    src = tmp_path / "visits.csv"
    src.write_text(f"id,name,note\n001,{NAME},ok\n002,Rich Roe,seen with {NAME}\n")
    handler, dst, sensitive = deidentify(
        {"csv": {"fields": [{"name": "name", "remove": True}]}}, src, ctx
    )
    hits = ResidualGate(sensitive).scan_file(handler, dst)
    assert [hit.path for hit in hits if "note" in hit.path]  # the note column still names her
    src.write_text(f"id,name,note\n001,{NAME},ok\n")
    handler, dst, sensitive = deidentify(
        {"csv": {"fields": [{"name": "name", "remove": True}]}}, src, ctx
    )
    assert ResidualGate(sensitive).scan_file(handler, dst) == []


def test_zip_member_values_reach_the_gate(tmp_path, ctx):
    photo = build_jpeg(tmp_path / "p.jpg").read_bytes()
    src = zip_with(
        tmp_path / "series.zip", {"a/photo.jpg": photo, "a/t.csv": f"name,x\n{NAME},1\n".encode()}
    )
    profile = {"jpg": JPG_STRICT, "csv": {"fields": [{"name": "name", "remove": True}]}, "zip": {}}
    handler, dst, sensitive = deidentify(profile, src, ctx)
    assert NAME in {s.value for s in sensitive}
    assert ResidualGate(sensitive).scan_file(handler, dst) == []
