"""Fail closed on content: a binary file whose name matches another section is never passed through.

A DICOM saved as ``data.csv`` or ``notes.txt`` used to reach the csv/key-value handler, which found
no column or key to change and wrote the bytes out unchanged, PHI included.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest

from fw_gear_deid.errors import MalformedFileError, UnsupportedFileError
from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.formats import DeidContext, build_handlers
from fw_gear_deid.formats._base import sniff_binary_format
from fw_gear_deid.keys import Keys

PLANTED = "QUIXOTE^ZEBULON"

TEXT_SECTIONS = {
    "csv": {"file-filter": "*.csv", "fields": [{"name": "name", "remove": True}]},
    "key-value-text-file": {
        "file-filter": "*.txt",
        "delimiter": "=",
        "ignore-bad-lines": True,
        "fields": [{"name": "PatientName", "remove": True}],
    },
    "filename": {"fields": []},
}


@pytest.fixture
def dicom_bytes(ct_small, tmp_path) -> bytes:
    dataset = pydicom.dcmread(ct_small)
    dataset.PatientName = PLANTED
    path = tmp_path / "planted.dcm"
    dataset.save_as(path)
    return path.read_bytes()


@pytest.mark.parametrize("name", ["data.csv", "notes.txt", "scan.bin"])
def test_dicom_under_a_text_name_is_refused_not_copied(dicom_bytes, name):
    handlers = build_handlers(TEXT_SECTIONS)
    with pytest.raises(UnsupportedFileError, match="the content is dicom"):
        handlers.match(name, dicom_bytes[:1024])


def test_dicom_section_still_takes_dicom_content_whatever_its_name(dicom_bytes):
    handlers = build_handlers({"dicom": {"fields": []}, **TEXT_SECTIONS})
    assert handlers.match("data.csv", dicom_bytes[:1024]).section_name == "dicom"


@pytest.mark.parametrize(
    ("head", "section"),
    [
        (b"\x00" * 128 + b"DICM", "dicom"),
        (b"\xff\xd8\xff\xe0", "jpg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"II*\x00", "tiff"),
        (b"PK\x03\x04", "zip"),
        (b"name,mrn\n", None),
    ],
)
def test_binary_formats_are_recognised_by_their_first_bytes(head, section):
    assert sniff_binary_format(head) == section


def test_text_handlers_refuse_binary_content_without_a_signature(tmp_path, keys):
    # Implicit-VR DICOM without a preamble has no signature: the text handlers see NUL bytes.
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x08\x00\x05\x00\x0a\x00\x00\x00ISO_IR 100" + PLANTED.encode())
    handlers = build_handlers(TEXT_SECTIONS)
    for name in ("data.csv", "notes.txt"):
        target = tmp_path / name
        shutil.copy(blob, target)
        handler = handlers.match(name, target.read_bytes()[:1024])
        with pytest.raises(MalformedFileError, match="binary content"):
            handler.deidentify(target, tmp_path / f"out-{name}", DeidContext(keys=keys))
        assert not (tmp_path / f"out-{name}").exists()


def test_export_of_a_dicom_named_csv_writes_nothing(dicom_bytes, tmp_path):
    source = tmp_path / "site" / "grp" / "proj"
    (source / "sub1").mkdir(parents=True)
    (source / "sub1" / "data.csv").write_bytes(dicom_bytes)
    (source / "sub1" / "notes.txt").write_bytes(dicom_bytes)
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "csv:\n  file-filter: '*.csv'\n  fields:\n    - name: name\n      remove: true\n"
        "key-value-text-file:\n  file-filter: '*.txt'\n  delimiter: '='\n"
        "  ignore-bad-lines: true\n  fields:\n    - name: PatientName\n      remove: true\n"
    )
    dest = tmp_path / "out" / "grp" / "dest"
    result = run_export(
        ExportJob(
            source=str(source),
            destination=str(dest),
            profile_path=profile,
            keys=Keys("k"),
            report_dir=tmp_path / "reports",
        ),
        progress=False,
    )
    assert result.exit_code != 0
    assert {row.state for row in result.rows} == {"skipped"}
    written = [p for p in dest.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert written == []


def test_zip_member_with_dicom_content_under_a_text_name_blocks_the_archive(
    dicom_bytes, tmp_path, keys
):
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("series/notes.txt", dicom_bytes)
    handlers = build_handlers({"zip": {}, **TEXT_SECTIONS})
    handler = handlers.match(archive.name, archive.read_bytes()[:1024])
    with pytest.raises(MalformedFileError, match="no profile section matches it"):
        handler.deidentify(archive, tmp_path / "out.zip", DeidContext(keys=keys))
    assert not (tmp_path / "out.zip").exists()


def test_first_bytes_helper_reads_real_files(ct_small: Path):
    assert sniff_binary_format(ct_small.read_bytes()[:1024]) == "dicom"
