"""Image variants seen in the wild: every one decodes to the same pixels after de-identification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import named
from fixtures import _image, exif_bytes
from PIL import Image, ImageCms

from fw_gear_deid.formats.jpg import JpgHandler
from fw_gear_deid.formats.png import PngHandler
from fw_gear_deid.formats.tiff import TiffHandler

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
BASE = _image(96, 64)

VARIANTS: dict[str, Callable[[Path], None]] = {
    "cmyk-adobe.jpg": lambda p: BASE.convert("CMYK").save(p, "JPEG"),
    "gray-progressive-optimized.jpg": lambda p: BASE.convert("L").save(
        p, "JPEG", progressive=True, optimize=True
    ),
    "icc-exif.jpg": lambda p: BASE.save(p, "JPEG", icc_profile=SRGB, exif=exif_bytes()),
    "444-q100.jpg": lambda p: BASE.save(p, "JPEG", subsampling=0, quality=100),
    "palette.png": lambda p: BASE.convert("P").save(p, "PNG"),
    "16bit.png": lambda p: BASE.convert("I;16").save(p, "PNG"),
    "rgba-icc.png": lambda p: BASE.convert("RGBA").save(p, "PNG", icc_profile=SRGB),
    "16bit.tif": lambda p: BASE.convert("I;16").save(p, "TIFF"),
    "float.tif": lambda p: BASE.convert("F").save(p, "TIFF"),
    "cmyk-lzw.tif": lambda p: BASE.convert("CMYK").save(p, "TIFF", compression="tiff_lzw"),
    "bilevel-g4.tif": lambda p: BASE.convert("1").save(p, "TIFF", compression="group4"),
    "packbits.tif": lambda p: BASE.save(p, "TIFF", compression="packbits"),
    "palette.tif": lambda p: BASE.convert("P").save(p, "TIFF"),
    "icc.tif": lambda p: BASE.save(p, "TIFF", icc_profile=SRGB),
}

HANDLERS = {
    "jpg": lambda: JpgHandler({"remove-gps": True, "fields": [{"name": "Artist", "remove": True}]}),
    "png": lambda: PngHandler({"remove-private-chunks": True}),
    "tif": lambda: TiffHandler({"fields": [{"name": "Artist", "remove": True}]}),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_decodes_to_identical_pixels_and_keeps_its_colour_profile(tmp_path, ctx, name):
    src = tmp_path / name
    VARIANTS[name](src)
    dst = tmp_path / f"out-{name}"
    HANDLERS[name.rsplit(".", 1)[1]]().deidentify(src, dst, named(ctx, name))
    with Image.open(src) as before, Image.open(dst) as after:
        assert (after.mode, after.size) == (before.mode, before.size)
        assert after.tobytes() == before.tobytes()
        assert after.info.get("icc_profile") == before.info.get("icc_profile")
