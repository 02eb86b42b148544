"""Damaged files never crash a handler: they de-identify or raise MalformedFileError, leaving nothing."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import named
from fixtures import build_jpeg, build_png, build_tiff, build_tiff_with_exif, zip_with

from fw_gear_deid.errors import MalformedFileError, UnsupportedFileError
from fw_gear_deid.formats import build_handlers

PROFILE = {
    "jpg": {
        "remove-gps": True,
        "fields": [
            {"name": "Artist", "remove": True},
            {"name": "DateTime", "increment-datetime": True},
        ],
    },
    "png": {"remove-private-chunks": True, "fields": [{"name": "Author", "hash": True}]},
    "tiff": {"remove-private-tags": True, "fields": [{"name": "Artist", "remove": True}]},
    "xml": {"fields": [{"name": "//name", "remove": True}]},
    "json": {"fields": [{"name": "a.b", "remove": True}]},
    "key-value-text-file": {"delimiter": " = ", "fields": [{"name": "Name", "remove": True}]},
    "csv": {"fields": [{"name": "name", "remove": True}]},
    "zip": {},
}

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "photo.jpg": build_jpeg,
    "scan.png": build_png,
    "slide.tif": lambda p: build_tiff(p, pages=2),
    "exif.tif": build_tiff_with_exif,
    "report.xml": lambda p: (
        p.write_text('<?xml version="1.0"?>\n<r><name>Jane</name><x a="1">t</x></r>\n'),
        p,
    )[1],
    "side.json": lambda p: (p.write_text('{"a": {"b": "Jane", "c": [1, 2.50, "x"]}}'), p)[1],
    "head.mhd": lambda p: (p.write_text("NDims = 3\nName = Jane\n"), p)[1],
    "table.csv": lambda p: (p.write_text('id,name\n1,"Jane, Doe"\n2,Roe\n'), p)[1],
    "bundle.zip": lambda p: zip_with(
        p, {"t.csv": b"id,name\n1,Jane\n", "d/p.json": b'{"a": {"b": 1}}'}
    ),
}


def mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    found = []
    for _ in range(count):
        choice = rng.random()
        if choice < 0.4:  # truncated
            found.append(data[: rng.randrange(1, len(data))])
        elif choice < 0.8:  # a few bytes overwritten
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            found.append(bytes(damaged))
        else:  # a block duplicated somewhere else
            start = rng.randrange(len(data))
            block = data[start : start + rng.randint(1, 64)]
            at = rng.randrange(len(data))
            found.append(data[:at] + block + data[at:])
    return found


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_damaged_file_is_deidentified_or_cleanly_refused(tmp_path, ctx, name):
    original = BUILDERS[name](tmp_path / name).read_bytes()
    handlers = build_handlers(PROFILE)
    rng = random.Random(name)
    refused: list[tuple[str, bool]] = []
    for index, data in enumerate(mutations(original, rng, 40)):
        src = tmp_path / f"{index}-{name}"
        src.write_bytes(data)
        handler = handlers.match(name, data[:8192])
        if handler is None:
            continue
        dst = tmp_path / f"out-{index}-{name}"
        try:
            handler.deidentify(src, dst, named(ctx, name))
        except (MalformedFileError, UnsupportedFileError) as error:
            refused.append((str(error), dst.exists()))
            continue
        assert dst.exists()
        list(handler.text_values(dst))  # what we wrote reads back
    assert all(name in message for message, _left in refused)  # errors name the file
    assert not any(left for _message, left in refused)  # and leave no partial output
