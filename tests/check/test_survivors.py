"""Count survivors: real files with planted identities, exported with the gate on.

With a deliberately incomplete profile every file that still carries a planted value must be blocked
(zero survivors in the destination); with the PS3.15 preset every file must be exported (the gate
does not block clean outputs) and still nothing planted survives.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from fw_gear_deid.keys import Keys

from .handlers import available_handlers

TEMPLATES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "JPEG2000.dcm")
PEOPLE = (
    ("QUIMBY^JOSEPH", "MRN4455667", "19520311", "OTH772233", "Shelbyville Clinic"),
    ("FLANDERS^NEDWARD", "MRN8899001", "19610704", "OTH118822", "Capital City General"),
)


def _plant(ds: Dataset, person: tuple[str, ...], n: int) -> None:
    name, mrn, birth, other, institution = person
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, mrn, birth
    ds.StudyDate = ds.SeriesDate = "20210405"
    ds.InstitutionName = institution
    ds.PatientComments = f"Seen 04/05/2021; contact {name.replace('^', ' ').title()}"
    other_ids = Dataset()
    other_ids.PatientID = other
    ds.OtherPatientIDsSequence = [other_ids]
    block = ds.private_block(0x0013, "BENCH PLANTED", create=True)
    block.add_new(0x10, "LO", name.replace("^", " "))
    block.add_new(0x11, "LO", mrn)
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.9{n}"
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


@pytest.fixture
def source(tmp_path: Path) -> Path:
    _, missing = available_handlers()
    if "dicom" in missing:
        pytest.skip(f"handler for 'dicom' not available yet ({missing['dicom']})")
    project = tmp_path / "site" / "group" / "study"
    n = 0
    for s, person in enumerate(PEOPLE):
        acq = project / f"subject-{s}" / "session-1" / "acq-1"
        acq.mkdir(parents=True)
        for template in TEMPLATES:
            ds = pydicom.dcmread(get_testdata_file(template), force=True)
            _plant(ds, person, n := n + 1)
            ds.save_as(acq / template)
    return project


def _export(tmp_path: Path, project: Path, profile: dict):
    from fw_gear_deid.export import ExportJob, run_export

    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    dest = tmp_path / "dest" / "group" / "deid"
    result = run_export(
        ExportJob(
            source=str(project),
            destination=str(dest),
            report_dir=tmp_path / "report",
            profile_path=path,
            keys=Keys("survivors"),
        ),
        progress=False,
    )
    return result, dest


def _survivors(dest: Path) -> int:
    values = {v.lower().encode() for person in PEOPLE for v in person}
    values |= {part.lower().encode() for person in PEOPLE for part in person[0].split("^")}
    values |= {b"20210405", b"04/05/2021"}
    count = 0
    for path in dest.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            count += sum(1 for value in values if value in data)
    return count


def test_incomplete_profile_every_leaking_file_is_blocked(tmp_path: Path, source: Path) -> None:
    profile = {
        "name": "incomplete",
        "dicom": {
            "fields": [
                {"name": "PatientName", "replace-with": "ANON"},
                {"name": "PatientID", "hash": True},
                {"name": "PatientBirthDate", "remove": True},
                {"name": "StudyDate", "increment-date": True},
                {"name": "SeriesDate", "increment-date": True},
                {"name": "InstitutionName", "remove": True},
            ]
        },
    }
    result, dest = _export(tmp_path, source, profile)
    states = {row.source_file: row.state for row in result.rows}
    assert set(states.values()) == {"blocked"}, states
    assert _survivors(dest) == 0


def test_preset_exports_everything_and_nothing_survives(tmp_path: Path, source: Path) -> None:
    profile = {"name": "preset", "dicom": {"preset": "ps3.15-basic", "fields": []}}
    result, dest = _export(tmp_path, source, profile)
    states = [(row.source_file, row.state, row.reason) for row in result.rows]
    assert all(state == "exported" for _, state, _ in states), states
    assert len(states) == len(TEMPLATES) * len(PEOPLE)
    assert _survivors(dest) == 0
