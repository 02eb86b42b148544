"""The preset over every DICOM file of pydicom and pydicom-data: de-identified or a clear error."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom._uid_dict import UID_dictionary

from fw_gear_deid.errors import MalformedFileError

from .conftest import corpus_files

_FILES = corpus_files()


def _source_identifiers(path: Path) -> tuple[set[str], set[str]]:
    """Instance UIDs and person names of a source, at any depth (file meta included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    uids: set[str] = set()
    names: set[str] = set()
    elements = list(dataset.iterall())
    if getattr(dataset, "file_meta", None) is not None:
        elements += list(dataset.file_meta)
    for elem in elements:
        if elem.tag.is_private or not elem.value:
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        if elem.VR == "UI":
            if "ClassUID" in elem.keyword or "TransferSyntax" in elem.keyword:
                continue
            if "CodingScheme" in elem.keyword:
                continue
            uids.update(str(v) for v in values if len(str(v)) > 8 and str(v) not in UID_dictionary)
        elif elem.VR == "PN":
            names.update(str(v).strip() for v in values if len(str(v).strip()) > 2)
    return uids, names


def _run(handler, path, out, ctx):
    try:
        return handler.deidentify(path, out, ctx), None
    except MalformedFileError as error:
        return None, error


@pytest.mark.parametrize("path", _FILES, ids=[f"{p.parent.name}/{p.name}" for p in _FILES])
def test_preset_deidentifies_or_refuses_clearly(path, preset_handler, ctx, out):
    outcome, error = _run(preset_handler, path, out, ctx)
    if error is not None:
        assert error.filename == path.name
        assert error.reason
        assert not out.exists(), "nothing may be written for a refused file"
        return
    result = pydicom.dcmread(out)
    assert result.PatientIdentityRemoved == "YES"
    if result.get("SOPInstanceUID"):
        assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
    data = out.read_bytes()
    uids, names = _source_identifiers(path)
    assert not [uid for uid in uids if uid.encode() in data], "a source instance UID survived"
    texts = [text for _, text in preset_handler.text_values(out)]
    assert not [name for name in names if any(name in text for text in texts)]
    assert outcome.output_name.endswith(".dcm")


_WRITER_SAMPLE = [p for p in _FILES if p.suffix == ".dcm"][::3]


@pytest.mark.parametrize("path", _WRITER_SAMPLE, ids=[p.name for p in _WRITER_SAMPLE])
def test_fast_header_writer_gives_pydicom_dcmwrite_bytes(path, ctx, tmp_path):
    """The raw-span writer is an optimisation only: byte for byte what pydicom.dcmwrite writes."""
    from fw_gear_deid.formats.dicom._engine import DicomEngine
    from fw_gear_deid.formats.dicom._stream import read_source, write_output

    outputs = []
    for fast in (True, False):
        try:
            source = read_source(path)
        except MalformedFileError:
            pytest.skip("refused file")
        DicomEngine({"preset": "ps3.15-basic", "fields": []}).run(
            source.dataset, source.trailing, ctx, False
        )
        if not fast:
            source.header_bytes = None
        out = tmp_path / f"{fast}.dcm"
        write_output(out, source, source.dataset, source.trailing)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
