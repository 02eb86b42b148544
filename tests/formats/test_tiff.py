"""TIFF: tags edited page by page; strips and tiles copied byte for byte (multi-page files too)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import exiftool_dump, named
from fixtures import (
    IPTC_NAME,
    MRN,
    NAME,
    PRIVATE_TAG,
    XMP_NAME,
    build_bigtiff,
    build_tiff,
    build_tiff_with_exif,
)
from PIL import Image

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.tiff import TiffHandler

SECTION = {
    "remove-private-tags": True,
    "fields": [{"name": "Artist", "remove": True}, {"name": "ImageDescription", "remove": True}],
}


def image_blocks(path: Path) -> list[list[bytes]]:
    """The strip/tile bytes of every page, read through Pillow's view of the tags."""
    pages = []
    with Image.open(path) as image, open(path, "rb") as raw:
        for index in range(image.n_frames):
            image.seek(index)
            tags = image.tag_v2
            offsets = tags.get(273) or tags.get(324)
            counts = tags.get(279) or tags.get(325)
            blocks = []
            for offset, count in zip(offsets, counts, strict=True):
                raw.seek(offset)
                blocks.append(raw.read(count))
            pages.append(blocks)
    return pages


def run(tmp_path: Path, section: dict, ctx, **fixture) -> tuple[Path, Path, object]:
    src = build_tiff(tmp_path / "slide.tif", **fixture)
    dst = tmp_path / "out.tif"
    return src, dst, TiffHandler(section).deidentify(src, dst, named(ctx, src.name))


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw", "tiff_deflate", "jpeg"])
def test_multipage_tiff_image_data_is_byte_identical(tmp_path, ctx, compression):
    src, dst, _ = run(tmp_path, SECTION, ctx, compression=compression)
    assert image_blocks(dst) == image_blocks(src)
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.n_frames == b.n_frames == 3
        for index in range(3):
            a.seek(index)
            b.seek(index)
            assert a.tobytes() == b.tobytes()


def test_exiftool_finds_no_planted_value_in_any_tiff_page(tmp_path, ctx):
    src, dst, _ = run(tmp_path, SECTION, ctx)
    before, after = exiftool_dump(src), exiftool_dump(dst)
    for value in (NAME, MRN, XMP_NAME, IPTC_NAME):
        assert value in before
        assert value not in after
        assert value.encode() not in dst.read_bytes()
    assert "ExampleScanner" in after


def test_private_tags_stay_without_the_option_and_xmp_goes_by_default(tmp_path, ctx):
    _src, dst, outcome = run(tmp_path, {"fields": []}, ctx)
    with Image.open(dst) as image:
        for index in range(3):
            image.seek(index)
            assert PRIVATE_TAG in image.tag_v2
            assert 700 not in image.tag_v2
    assert {"page0.XMP", "page2.XMP"} <= {c.path for c in outcome.changes}


def test_xmp_kept_when_a_rule_names_it(tmp_path, ctx):
    _src, dst, _ = run(tmp_path, {"fields": [{"name": "XMP", "keep": True}]}, ctx)
    assert XMP_NAME.encode() in dst.read_bytes()


def test_removed_tag_values_are_sensitive_per_page(tmp_path, ctx):
    _src, _dst, outcome = run(tmp_path, SECTION, ctx)
    values = {s.value for s in outcome.sensitive}
    assert {f"{NAME} page 0", f"{NAME} page 2", f"private {IPTC_NAME}", f"Study of {MRN}"} <= values


def test_bigtiff_pages_are_rewritten_as_bigtiff_with_identical_pixels(tmp_path, ctx):
    src = build_bigtiff(tmp_path / "big.tif", pages=2)
    before = exiftool_dump(src)
    assert NAME in before
    assert IPTC_NAME in before
    dst = tmp_path / "out.tif"
    TiffHandler(SECTION).deidentify(src, dst, named(ctx, src.name))
    assert dst.read_bytes()[:4] == b"II+\x00"
    assert TiffHandler({}).matches("scan.bin", src.read_bytes()[:16])
    after = exiftool_dump(dst)
    for value in (NAME, IPTC_NAME):
        assert value not in after
        assert value.encode() not in dst.read_bytes()
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.n_frames == b.n_frames == 2
        for index in range(2):
            a.seek(index)
            b.seek(index)
            assert a.tobytes() == b.tobytes()


def test_ifd_loop_is_malformed(tmp_path, ctx):
    src = tmp_path / "loop.tif"
    # one IFD with zero entries whose next-IFD pointer is itself
    src.write_bytes(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<HI", 0, 8))
    dst = tmp_path / "out.tif"
    with pytest.raises(MalformedFileError, match="loop"):
        TiffHandler({}).deidentify(src, dst, named(ctx, src.name))
    assert not dst.exists()


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_exif_and_gps_sub_ifds_of_a_tiff_are_walked(tmp_path, ctx, order):
    src = build_tiff_with_exif(tmp_path / "exif.tif", order)
    before = exiftool_dump(src)
    assert MRN in before
    assert "GPS:GPSLatitude" in before
    dst = tmp_path / "out.tif"
    fields = [{"name": "DateTimeOriginal", "remove": True}, {"name": "Artist", "remove": True}]
    outcome = TiffHandler({"fields": fields}).deidentify(src, dst, named(ctx, src.name))
    after = exiftool_dump(dst)
    assert "ExifIFD:DateTimeOriginal" not in after
    assert MRN in after  # UserComment not listed: kept
    assert "GPS:GPSLatitude" in after
    assert "page0.Exif.DateTimeOriginal" in {c.path for c in outcome.changes}
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()

    TiffHandler({"remove-private-tags": True}).deidentify(src, dst, named(ctx, src.name))
    after = exiftool_dump(dst)
    assert MRN not in after  # the EXIF IFD pointer is >= 32768: gone with what it held
    assert "GPS" not in after
    assert MRN.encode() not in dst.read_bytes()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow reading the damaged source
def test_broken_exif_pointer_drops_the_sub_ifd_and_keeps_the_image(tmp_path, ctx):
    src = build_tiff_with_exif(tmp_path / "exif.tif")
    data = bytearray(src.read_bytes())
    entry = data.index(struct.pack("<HHI", 34665, 4, 1))
    data[entry + 8 : entry + 12] = struct.pack("<I", len(data) + 1000)  # points past the end
    src.write_bytes(bytes(data))
    dst = tmp_path / "out.tif"
    outcome = TiffHandler({}).deidentify(src, dst, named(ctx, src.name))
    assert "page0" in {c.path for c in outcome.changes}  # the unreadable entry is reported
    with Image.open(dst) as image:
        assert 34665 not in image.tag_v2
        assert 34853 in image.tag_v2  # the GPS IFD was readable: kept
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()


def test_tiff_nothing_applies_to_is_written_byte_for_byte(tmp_path, ctx):
    src = tmp_path / "plain.tif"
    Image.new("L", (8, 8), 7).save(src, "TIFF")
    dst = tmp_path / "out.tif"
    outcome = TiffHandler({"fields": [{"name": "Artist", "remove": True}]}).deidentify(
        src, dst, named(ctx, src.name)
    )
    assert outcome.changes == []
    assert dst.read_bytes() == src.read_bytes()
