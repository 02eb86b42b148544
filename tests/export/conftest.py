"""A generated multi-subject source project with planted fake PHI, and helpers to run and inspect exports."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import zipfile
from pathlib import Path

import pytest

from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.keys import Keys
from tests.fwserver.fixtures import fw_server  # noqa: F401 - a fixture, used by name

SECRET = "export-test-secret"
#: Planted fake identifiers: none of them may reach a destination or a report.
PHI = ("Doe^John", "MRN12345", "Roe^Jane", "MRN67890", "19610101")


def dicom_available() -> bool:
    try:
        return hasattr(importlib.import_module("fw_gear_deid.formats.dicom"), "DicomHandler")
    except ImportError:
        return False


HAS_DICOM = dicom_available()
#: The shared value transforms (replace-with, hash, dates) used by every handler.
ACTIONS_AVAILABLE = importlib.util.find_spec("fw_gear_deid.actions") is not None

PROFILE = """\
name: export-test
json:
  fields:
    - name: PatientName
      remove: true
    - name: PatientID
      remove: true
    - name: BirthDate
      remove: true
csv:
  fields:
    - name: mrn
      remove: true
jpg:
  fields:
    - name: Artist
      remove: true
    - name: DateTimeOriginal
      remove: true
    - name: ImageDescription
      remove: true
tsv:
  fields:
    - name: mrn
      remove: true
xml:
  fields:
    - name: /record/PatientName
      remove: true
    - name: /record/PatientID
      remove: true
zip:
  hash-subdirectories: false
"""

DICOM_SECTION = """\
dicom:
  fields:
    - name: PatientName
      replace-with: ANON
    - name: PatientID
      remove: true
    - name: PatientBirthDate
      remove: true
"""


def profile_text() -> str:
    return PROFILE + (DICOM_SECTION if HAS_DICOM else "")


def _json_payload(name: str, mrn: str) -> str:
    return json.dumps({"PatientName": name, "PatientID": mrn, "BirthDate": "19610101", "Value": 7})


def _write_dicom(path: Path, name: str, mrn: str, sample: str = "CT_small.dcm") -> None:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    dataset = dcmread(get_testdata_file(sample))
    dataset.PatientName = name
    dataset.PatientID = mrn
    dataset.PatientBirthDate = "19610101"
    dataset.save_as(path)


def _write_jpeg(path: Path, name: str, mrn: str) -> None:
    import piexif
    from PIL import Image

    exif = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Artist: name.encode(),
                piexif.ImageIFD.ImageDescription: f"scan of {mrn}".encode(),
            },
            "Exif": {piexif.ExifIFD.DateTimeOriginal: b"1961:01:01 10:00:00"},
        }
    )
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, exif=exif)


def build_source(root: Path, subjects: int = 2, files_per_acq: int = 1) -> Path:
    """``root/site/grp/src``: subjects with sessions, acquisitions, project/subject/session files,
    JSON, CSV, a zip of JSON members and (when the DICOM handler exists) DICOM files."""
    project = root / "site" / "grp" / "src"
    project.mkdir(parents=True)
    (project / "protocol.json").write_text(json.dumps({"Value": 1, "PatientName": "Roe^Jane"}))
    people = [("Doe^John", "MRN12345"), ("Roe^Jane", "MRN67890")]
    for number in range(1, subjects + 1):
        name, mrn = people[(number - 1) % len(people)]
        subject = project / f"sub-{number:02d}"
        acq = subject / "ses-1" / "acq-1"
        acq.mkdir(parents=True)
        (subject / ".container.json").write_text(
            json.dumps(
                {
                    "container_type": "subject",
                    "label": f"sub-{number:02d}",
                    "sex": "female",
                    "firstname": name.split("^")[1],
                    "info": {"site": "A"},
                }
            )
        )
        (subject / "demographics.csv").write_text(f"id,mrn,score\n{number},{mrn},007\n")
        (subject / "ses-1" / "visit.json").write_text(_json_payload(name, mrn))
        (subject / "ses-1" / "scores.tsv").write_text(f"id\tmrn\tscore\n{number}\t{mrn}\t007\n")
        (subject / "ses-1" / "record.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<record><PatientName>{name}</PatientName><PatientID>{mrn}</PatientID>"
            "<Value>7</Value></record>\n"
        )
        for index in range(files_per_acq):
            (acq / f"meta-{index}.json").write_text(_json_payload(name, mrn))
        _write_jpeg(acq / "photo.jpg", name, mrn)
        with zipfile.ZipFile(acq / "bundle.zip", "w") as archive:
            archive.writestr("inner/one.json", _json_payload(name, mrn))
        if HAS_DICOM:
            _write_dicom(acq / "image.dcm", name, mrn, ("CT_small.dcm", "MR_small.dcm")[number % 2])
    return project


def tree_digest(root: Path, skip_locks: bool = False) -> dict[str, str]:
    """sha256 of every file (sidecars included) and the set of folders under ``root``."""
    result = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if skip_locks and path.name == ".deid.lock":
            continue
        if path.is_symlink():
            result[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            result[rel] = "dir"
        else:
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def visible_files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def shape(paths: list[str]) -> list[str]:
    """Paths with DICOM base names replaced by ``*.dcm`` (DICOM outputs are named by their UIDs)."""
    return sorted(
        (p.rsplit("/", 1)[0] + "/*.dcm" if "/" in p else "*.dcm") if p.endswith(".dcm") else p
        for p in paths
    )


def assert_no_phi(*paths: Path) -> None:
    for base in paths:
        for path in base.rglob("*") if base.is_dir() else [base]:
            if path.is_file():
                data = path.read_bytes()
                for value in PHI:
                    assert value.encode() not in data, f"{value} leaked into {path}"


@pytest.fixture
def source(tmp_path) -> Path:
    return build_source(tmp_path / "in")


@pytest.fixture
def profile_file(tmp_path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(profile_text())
    return path


@pytest.fixture
def export(tmp_path, profile_file):
    """Run an export with the test keys: ``export(source, dest, **job_fields)``."""

    def run(src, dest, **fields):
        fields.setdefault("profile_path", profile_file)
        fields.setdefault("keys", Keys(SECRET))
        fields.setdefault("report_dir", tmp_path / "reports")
        return run_export(
            ExportJob(source=str(src), destination=str(dest), **fields), progress=False
        )

    return run
