"""JPEG: metadata edited by rewriting segments; the compressed image is byte-identical."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import piexif
import pytest
from conftest import exiftool_dump, named
from fixtures import (
    BIRTH,
    COMMENT,
    JPEG_PLANTED,
    MAKER,
    MRN,
    NAME,
    THUMB_COMMENT,
    build_jpeg,
    scan_bytes,
)
from PIL import Image

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.jpg import JpgHandler

STRICT = {
    "remove-gps": True,
    "fields": [
        {"name": "Artist", "remove": True},
        {"name": "XPAuthor", "remove": True},
        {"name": "ImageDescription", "remove": True},
        {"name": "UserComment", "remove": True},
        {"name": "BodySerialNumber", "remove": True},
        {"name": "DateTime", "remove": True},
        {"name": "DateTimeOriginal", "remove": True},
    ],
}


def run(tmp_path: Path, section: dict, ctx, **fixture) -> tuple[Path, Path, object]:
    src = build_jpeg(tmp_path / "photo.jpg", **fixture)
    dst = tmp_path / "out.jpg"
    outcome = JpgHandler(section).deidentify(src, dst, named(ctx, src.name))
    return src, dst, outcome


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_scan_data_is_byte_identical_after_metadata_edit(tmp_path, ctx, progressive):
    src, dst, _ = run(tmp_path, STRICT, ctx, progressive=progressive)
    assert scan_bytes(dst.read_bytes()) == scan_bytes(src.read_bytes())
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()


def test_exiftool_finds_no_planted_value_in_jpeg_output(tmp_path, ctx):
    src, dst, _ = run(tmp_path, STRICT, ctx)
    before = exiftool_dump(src)
    after = exiftool_dump(dst)
    for value in JPEG_PLANTED:
        assert value in before or value == "1961:07:14", value  # the fixture really plants it
        assert value not in after, value
        assert value.encode() not in dst.read_bytes(), value
    assert "GPS" not in after
    assert "ExampleCam" in after  # untouched tags survive


def test_name_rule_applies_in_every_ifd_and_keeps_the_thumbnail(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, {"fields": [{"name": "Artist", "remove": True}]}, ctx)
    paths = {change.path for change in outcome.changes}
    assert {"EXIF.IFD0.Artist", "EXIF.IFD1.Artist"} <= paths
    dump = exiftool_dump(dst)
    assert "IFD0:Artist" not in dump
    assert "IFD1:Artist" not in dump
    assert '"IFD1:ThumbnailImage"' in dump
    assert "IFD0:XPAuthor" in dump  # not listed: kept (only free-text blobs go by default)


def test_xmp_iptc_com_makernote_and_vendor_segments_are_removed_by_default(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, {"fields": []}, ctx)
    dump = exiftool_dump(dst)
    for marker in ("XMP", "IPTC", "Cornelius", MAKER, "Ducky"):
        assert marker not in dump
    assert {"XMP", "COM", "EXIF.IFD0.Exif.MakerNote"} <= {c.path for c in outcome.changes}
    kinds = {s.value: s.kind for s in outcome.sensitive}
    assert (
        kinds["Johanna Xmpname"] == "name"
    )  # each XMP value, not the packet, for the residual scan
    assert kinds["Ivana Iptcname"] == "name"


def test_xmp_iptc_com_and_makernote_survive_when_a_rule_keeps_them(tmp_path, ctx):
    section = {"fields": [{"name": n, "keep": True} for n in ("XMP", "IPTC", "COM", "MakerNote")]}
    _src, dst, _ = run(tmp_path, section, ctx)
    dump = exiftool_dump(dst)
    assert "Johanna Xmpname" in dump
    assert "Ivana Iptcname" in dump
    assert COMMENT in dump
    assert MAKER in dump


def test_piexif_spellings_keep_xmp_and_iptc_segments(tmp_path, ctx):
    section = {
        "fields": [{"name": "XMLPacket", "keep": True}, {"name": "ImageResources", "keep": True}]
    }
    _src, dst, _ = run(tmp_path, section, ctx)
    dump = exiftool_dump(dst)
    assert "Johanna Xmpname" in dump
    assert "Ivana Iptcname" in dump


def test_remove_exif_drops_the_whole_exif_block(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, {"remove-exif": True}, ctx)
    dump = exiftool_dump(dst)
    assert "IFD0:" not in dump
    assert "ExifIFD:" not in dump
    assert "GPS" not in dump
    assert MRN in {s.value for s in outcome.sensitive} | {
        s.value.split()[-1] for s in outcome.sensitive
    }


def test_remove_gps_drops_only_the_gps_ifd(tmp_path, ctx):
    _src, dst, _ = run(tmp_path, {"remove-gps": True}, ctx)
    dump = exiftool_dump(dst)
    assert "GPS" not in dump
    assert "ExifIFD:DateTimeOriginal" in dump


def test_removed_values_are_reported_as_sensitive_and_absent_from_text_values(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, STRICT, ctx)
    sensitive = {s.value for s in outcome.sensitive}
    assert NAME in sensitive
    assert BIRTH in sensitive
    assert f"patient {MRN}" in sensitive
    kinds = {s.value: s.kind for s in outcome.sensitive}
    assert kinds[NAME] == "name"
    texts = " ".join(text for _path, text in JpgHandler(STRICT).text_values(dst))
    for value in sensitive:
        assert value not in texts


def test_text_values_cover_exif_xmp_iptc_and_comments(tmp_path, ctx):
    src = build_jpeg(tmp_path / "photo.jpg")
    texts = dict(JpgHandler({}).text_values(src))
    joined = " ".join(texts.values())
    for value in (NAME, "Johanna Xmpname", "Ivana Iptcname", COMMENT, MAKER):
        assert value in joined


def test_preview_writes_nothing_and_shows_before_and_after(tmp_path, ctx):
    src = build_jpeg(tmp_path / "photo.jpg")
    outcome = JpgHandler(STRICT).deidentify(src, None, named(ctx, src.name))
    artist = next(c for c in outcome.changes if c.path == "EXIF.IFD0.Artist")
    assert artist.before == NAME
    assert artist.after is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]
    written = JpgHandler(STRICT).deidentify(src, tmp_path / "o.jpg", named(ctx, src.name))
    assert all(c.before is None for c in written.changes)


def test_truncated_jpeg_is_malformed_and_leaves_no_output(tmp_path, ctx):
    src = build_jpeg(tmp_path / "photo.jpg")
    src.write_bytes(src.read_bytes()[:-200])
    dst = tmp_path / "out.jpg"
    with pytest.raises(MalformedFileError, match=r"photo\.jpg"):
        JpgHandler(STRICT).deidentify(src, dst, named(ctx, src.name))
    assert not dst.exists()


def test_jpeg_handler_matches_by_filter_and_signature_and_pickles():
    handler = JpgHandler({"fields": [{"name": "Artist", "remove": True}]})
    assert handler.matches("IMG.JPEG", b"")
    assert handler.matches("scan.bin", b"\xff\xd8\xff\xe0")
    assert not JpgHandler({"enforce-file-filter": True}).matches("scan.bin", b"\xff\xd8\xff")
    assert pickle.loads(pickle.dumps(handler)).rules[0].name == "Artist"


def test_embedded_thumbnail_loses_its_own_metadata_but_still_decodes(tmp_path, ctx):
    src, dst, _ = run(tmp_path, {"fields": []}, ctx)
    assert THUMB_COMMENT in piexif.load(str(src))["thumbnail"]
    thumbnail = piexif.load(str(dst))["thumbnail"]
    assert THUMB_COMMENT not in thumbnail
    assert THUMB_COMMENT not in dst.read_bytes()
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.size == (16, 12)
        image.load()


def test_numeric_and_text_tags_take_replacements_in_their_own_type(tmp_path, ctx):
    section = {
        "fields": [
            {"name": "GPSLatitude", "replace-with": "0/1 0/1 0/1"},
            {"name": "Orientation", "replace-with": ""},
            {"name": "Make", "replace-with": "anon"},
            {"name": "UserComment", "replace-with": "none"},
        ]
    }
    _src, dst, _ = run(tmp_path, section, ctx)
    exif = piexif.load(str(dst))
    assert exif["GPS"][piexif.GPSIFD.GPSLatitude] == ((0, 1), (0, 1), (0, 1))
    assert piexif.ImageIFD.Orientation not in exif["0th"]
    assert exif["0th"][piexif.ImageIFD.Make] == b"anon"
    assert exif["Exif"][piexif.ExifIFD.UserComment] == b"ASCII\x00\x00\x00none"


def test_remove_gps_also_strips_gps_from_a_kept_xmp_packet(tmp_path, ctx):
    src, dst, outcome = run(
        tmp_path, {"remove-gps": True, "fields": [{"name": "XMP", "keep": True}]}, ctx
    )
    before, after = exiftool_dump(src), exiftool_dump(dst)
    assert "XMP-exif:GPSLatitude" in before
    assert "XMP-exif:GPSLongitude" in before
    assert "GPS" not in after
    assert "Johanna Xmpname" in after  # the rest of the packet is kept
    assert {"XMP.exif:GPSLatitude", "XMP.exif:GPSLongitude"} <= {c.path for c in outcome.changes}


def test_jpeg_nothing_applies_to_is_written_byte_for_byte(tmp_path, ctx):
    from fixtures import _image

    src = tmp_path / "plain.jpg"
    exif = piexif.dump(
        {"0th": {piexif.ImageIFD.Make: b"ExampleCam"}, "Exif": {}, "GPS": {}, "1st": {}}
    )
    _image().save(src, "JPEG", exif=exif)
    dst = tmp_path / "out.jpg"
    outcome = JpgHandler(
        {"remove-gps": True, "fields": [{"name": "Artist", "remove": True}]}
    ).deidentify(src, dst, named(ctx, src.name))
    assert outcome.changes == []
    assert dst.read_bytes() == src.read_bytes()
