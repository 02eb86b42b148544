"""Fuzz targets: the registry's handlers built from one profile, and valid seed files per format."""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from fw_gear_deid.formats import SECTION_NAMES, FormatHandler, HandlerSet, handler_class
from fw_gear_deid.keys import Keys

KEYS = Keys("fuzz-secret")

PROFILE = """
name: fuzz
dicom:
  fields:
    - name: PatientName
      replace-with: ANON
    - name: PatientID
      hash: true
    - name: StudyDate
      increment-date: true
    - name: StudyInstanceUID
      hashuid: true
jpg: {remove-exif: true}
png: {remove-private-chunks: true}
tiff: {remove-private-tags: true}
xml:
  fields:
    - name: /root/Name
      replace-with: X
json:
  fields:
    - name: name
      remove: true
key-value-text-file:
  delimiter: "="
  fields:
    - name: Name
      remove: true
csv:
  fields:
    - name: name
      remove: true
tsv:
  fields:
    - name: name
      remove: true
zip:
  fields: []
filename:
  fields: []
"""

DICOM_SEEDS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "rtplan.dcm",
    "reportsi.dcm",
    "image_dfl.dcm",
    "nested_priv_SQ.dcm",
    "priv_SQ.dcm",
    "ExplVR_BigEndNoMeta.dcm",
    "JPEG2000.dcm",
)


@cache
def handlers() -> tuple[HandlerSet, dict[str, str]]:
    """Every committed handler, and why each missing one is missing."""
    from fw_gear_deid.profile import load_profile

    data = load_profile(text=PROFILE, source="fuzz.yaml").data
    found, missing = HandlerSet(), {}
    for section in SECTION_NAMES:
        try:
            cls = handler_class(section)
        except (ImportError, AttributeError) as error:
            missing[section] = f"{type(error).__name__}: {error}"
            continue
        found.add(cls(data[section]))
    return found, missing


def handler(section: str) -> FormatHandler:
    found, missing = handlers()
    if section in missing:
        pytest.skip(f"handler for '{section}' not available yet ({missing[section]})")
    return next(h for h in found if h.section_name == section)


def _image(fmt: str, **save: object) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (4, 4), 128).save(out, fmt, **save)
    return out.getvalue()


def _jpeg() -> bytes:
    import piexif

    exif = piexif.dump(
        {"0th": {piexif.ImageIFD.Artist: b"DOE^JOHN"}, "Exif": {}, "GPS": {}, "1st": {}}
    )
    return _image("JPEG", exif=exif)


def _png() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Author", "DOE^JOHN")
    info.add_itxt("Comment", "seen 2020-01-02", zip=True)
    return _image("PNG", pnginfo=info)


def _tiff() -> bytes:
    return _image("TIFF", tiffinfo={270: "DOE^JOHN 20200102", 315: "Dr Who"})


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/table.csv", "name,id\nDOE,1\n")
        archive.writestr("b.json", json.dumps({"name": "DOE", "x": [1, 2]}))
    return out.getvalue()


#: section -> (file name, seed builders)
SEEDS = {
    "jpg": ("image.jpg", (_jpeg,)),
    "png": ("image.png", (_png,)),
    "tiff": ("image.tif", (_tiff,)),
    "xml": (
        "doc.xml",
        (
            lambda: (
                b"<?xml version='1.0' encoding='UTF-8'?>\n<root><Name>DOE</Name>"
                b"<Date a='2020-01-02'>x</Date><!-- c --><![CDATA[raw]]></root>\n"
            ),
        ),
    ),
    "json": ("doc.json", (lambda: b'{"name": "DOE", "nested": {"a": [1, "x", null, 2.5e3]}}',)),
    "key-value-text-file": ("doc.txt", (lambda: b"Name=DOE\nID = 12\n# comment\nDate=20200102\n",)),
    "csv": ("table.csv", (lambda: b'name,id,note\nDOE,001,"a, b"\n"x\ny",2,\n',)),
    "tsv": ("table.tsv", (lambda: b"name\tid\nDOE\t001\n",)),
    "zip": ("archive.zip", (_zip,)),
    "filename": ("DOE_JOHN_20200102.bin", (lambda: b"\x00\x01 any bytes",)),
}


@cache
def seeds(section: str) -> tuple[str, list[bytes]]:
    if section == "dicom":
        return "image.dcm", [Path(get_testdata_file(name)).read_bytes() for name in DICOM_SEEDS]
    name, builders = SEEDS[section]
    return name, [build() for build in builders]
