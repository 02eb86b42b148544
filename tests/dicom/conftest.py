"""Fixtures for the DICOM engine tests: the public corpus, handlers built from sections, a context."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydicom.data.data_manager import DATA_ROOT, external_data_sources

from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.formats.dicom import DicomHandler
from fw_gear_deid.keys import Keys

_NOT_DICOM_SUFFIXES = (".py", ".json", ".txt", ".gz", ".bz2", ".zip", ".icc", ".dump")


def corpus_files() -> list[Path]:
    """Every DICOM file shipped with pydicom (test files, character sets, palettes) and pydicom-data,
    found locally (never downloaded:
    ``get_testdata_files`` would try the network for files pydicom-data does not ship)."""
    local = [
        Path(path)
        for folder in ("test_files", "charset_files", "palettes")
        for path in glob.glob(os.path.join(DATA_ROOT, folder, "**", "*"), recursive=True)
        if os.path.isfile(path)
        and not path.endswith(_NOT_DICOM_SUFFIXES)
        and os.path.basename(path) != "README"
    ]
    external = []
    source = external_data_sources().get("pydicom-data")
    if source is not None:
        external = [Path(path) for path in source.get_paths("**/*", 0)]
    return sorted(local) + sorted(external)


@pytest.fixture
def ctx(keys: Keys) -> DeidContext:
    return DeidContext(keys=keys, subject="subject-01", source_name="")


@pytest.fixture
def handler() -> Callable[[Mapping[str, Any]], DicomHandler]:
    return DicomHandler


@pytest.fixture
def preset_handler() -> DicomHandler:
    return DicomHandler({"preset": "ps3.15-basic", "fields": []})


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.dcm"


def reference_text_values(dataset, prefix=""):
    """The reference for ``iter_text_values``: every element converted by pydicom first (as it was
    before it skipped numeric/binary raw elements and read plain values from their bytes)."""
    from fw_gear_deid.formats.dicom._engine import NUMERIC_VRS, _values_of

    for elem in dataset:
        where = f"{prefix}{elem.keyword or f'({elem.tag.group:04X},{elem.tag.element:04X})'}"
        try:
            value = elem.value
        except Exception:  # an undecodable value has no text to scan
            continue
        if elem.VR == "SQ":
            for index, item in enumerate(value or []):
                yield from reference_text_values(item, f"{where}.{index}.")
            continue
        if value is None:
            continue
        if isinstance(value, bytes):
            if elem.tag.group == 0x7FE0 or elem.VR in ("OW", "OF", "OD", "OL", "OV"):
                continue
            text = value.decode("latin-1", "replace")
            if sum(ch.isprintable() for ch in text) >= 0.9 * len(text) and text.strip("\x00 "):
                yield where, text
            continue
        if elem.VR in NUMERIC_VRS:
            continue
        for item in _values_of(value):
            text = str(item)
            if text:
                yield where, text
