"""PNG: metadata chunks removed or kept; image chunks untouched; every CRC right."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from conftest import exiftool_dump, named
from fixtures import IPTC_NAME, MRN, NAME, XMP_NAME, build_png
from PIL import Image

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats.png import PngHandler


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC independently of the handler."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, found = 8, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        assert crc == zlib.crc32(kind + body), kind
        found.append((kind, body))
        pos += 12 + length
    return found


def run(tmp_path: Path, section: dict, ctx, mode: str = "RGB") -> tuple[Path, Path, object]:
    src = build_png(tmp_path / "scan.png", mode)
    dst = tmp_path / "out.png"
    return src, dst, PngHandler(section).deidentify(src, dst, named(ctx, src.name))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_text_exif_time_and_private_chunks_removed_with_image_chunks_untouched(
    tmp_path, ctx, mode
):
    src, dst, _ = run(tmp_path, {"remove-private-chunks": True}, ctx, mode)
    before, after = chunks(src.read_bytes()), chunks(dst.read_bytes())
    assert [c for c in before if c[0] in (b"IHDR", b"IDAT", b"IEND")] == [
        c for c in after if c[0] in (b"IHDR", b"IDAT", b"IEND")
    ]
    assert {kind for kind, _ in after} == {b"IHDR", b"IDAT", b"IEND"}
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.tobytes() == b.tobytes()


def test_exiftool_finds_no_planted_value_in_png_output(tmp_path, ctx):
    src, dst, _ = run(tmp_path, {"remove-private-chunks": True}, ctx)
    before, after = exiftool_dump(src), exiftool_dump(dst)
    for value in (NAME, MRN, XMP_NAME, "1961:07:14"):
        assert value in before
        assert value not in after
    assert IPTC_NAME.encode() not in dst.read_bytes()


def test_private_chunks_are_kept_without_the_option_as_in_flywheel(tmp_path, ctx):
    _src, dst, _ = run(tmp_path, {}, ctx)
    assert b"prVt" in {kind for kind, _ in chunks(dst.read_bytes())}


def test_keep_by_chunk_type_and_remove_by_keyword(tmp_path, ctx):
    section = {
        "fields": [
            {"name": "tEXt", "keep": True},
            {"name": "Author", "remove": True},
            {"name": "tIME", "keep": True},
        ]
    }
    _src, dst, outcome = run(tmp_path, section, ctx)
    texts = dict(PngHandler(section).text_values(dst))
    assert texts["tEXt.Software"] == "ExampleScanner 1.0"
    assert "tEXt.Author" not in texts
    assert "zTXt.Comment" not in texts  # zTXt is not kept by the tEXt rule
    assert texts["tIME"] == "1961:07:14 08:30:00"
    assert NAME in {s.value for s in outcome.sensitive}


def test_text_values_decode_compressed_and_international_text(tmp_path):
    src = build_png(tmp_path / "scan.png")
    texts = dict(PngHandler({}).text_values(src))
    assert texts["zTXt.Comment"] == f"record {MRN}"
    assert texts["iTXt.Description"] == f"Patient {XMP_NAME}"
    assert texts["eXIf.IFD0.Artist"] == NAME


def test_png_with_a_bad_crc_is_malformed_and_leaves_no_output(tmp_path, ctx):
    src = build_png(tmp_path / "scan.png")
    data = bytearray(src.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    src.write_bytes(bytes(data))
    dst = tmp_path / "out.png"
    with pytest.raises(MalformedFileError, match="CRC"):
        PngHandler({}).deidentify(src, dst, named(ctx, src.name))
    assert not dst.exists()


def test_apng_animation_chunks_are_not_private(tmp_path, ctx):
    frames = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]
    src = tmp_path / "anim.png"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    dst = tmp_path / "out.png"
    PngHandler({"remove-private-chunks": True}).deidentify(src, dst, named(ctx, src.name))
    assert dst.read_bytes() == src.read_bytes()


def test_data_appended_after_iend_is_dropped(tmp_path, ctx):
    src = build_png(tmp_path / "scan.png")
    clean = tmp_path / "clean.png"
    PngHandler({}).deidentify(src, clean, named(ctx, src.name))
    src.write_bytes(src.read_bytes() + b"appended Jane Q Doe")
    dst = tmp_path / "out.png"
    outcome = PngHandler({}).deidentify(src, dst, named(ctx, src.name))
    assert dst.read_bytes() == clean.read_bytes()
    assert "trailer" in {c.path for c in outcome.changes}
