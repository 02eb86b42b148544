"""The gate's DICOM walk reads ordinary outputs with the fast header reader: the same elements and
pixel range as pydicom's full read, which still reads everything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fw_gear_deid.check._dicom import DicomReader
from fw_gear_deid.formats import DeidContext, build_handlers
from fw_gear_deid.formats.dicom._stream import read_source
from fw_gear_deid.keys import Keys

from .conftest import corpus_files


def _readable(path: Path) -> bool:
    """pydicom reads it whole and the handler takes it (the files these tests compare on)."""
    try:
        list(_PydicomOnly(path).elements())
        read_source(path)
    except Exception:
        return False
    return True


class _PydicomOnly(DicomReader):
    def _read_fast(self):
        return None


_SAMPLE = [
    p
    for p in corpus_files()[::4]
    if p.suffix == ".dcm" and p.stat().st_size < 4 << 20 and _readable(p)
]


@pytest.fixture(scope="module")
def preset():
    return build_handlers({"dicom": {"preset": "ps3.15-basic", "fields": []}}).match("x.dcm", b"")


def _check_same_reading(path: Path) -> None:
    fast, slow = DicomReader(path), _PydicomOnly(path)
    for binary_only in (False, True):
        assert list(fast.elements(binary_only)) == list(slow.elements(binary_only))
    assert fast.pixel_range() == slow.pixel_range()


@pytest.mark.parametrize("path", _SAMPLE, ids=[p.name for p in _SAMPLE])
def test_source_files_read_the_same(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    assert list(DicomReader(copy).elements()) == list(_PydicomOnly(copy).elements())
    assert DicomReader(copy).pixel_range() == _PydicomOnly(copy).pixel_range()


def _output(path: Path, folder: Path, preset) -> Path:
    ctx = DeidContext(keys=Keys("test-secret"), subject="s", source_name=path.name)
    out = folder / f"{path.stem}.out.dcm"
    preset.deidentify(path, out, ctx)
    return out


@pytest.mark.parametrize("path", _SAMPLE, ids=[p.name for p in _SAMPLE])
def test_deidentified_outputs_read_the_same(path, tmp_path, preset):
    _check_same_reading(_output(path, tmp_path, preset))


def test_most_outputs_take_the_fast_read(tmp_path, preset):
    outputs = [_output(p, tmp_path, preset) for p in _SAMPLE]
    fast = [out for out in outputs if DicomReader(out)._read_fast() is not None]
    assert len(fast) >= len(outputs) // 2
