"""A sample source project with fake PHI, and the demo that de-identifies it through the gear.

:func:`build_source` writes a local folder store (see docs/stores.md) holding pydicom's public test
files with planted fake identities, plus generated JPEG/PNG/TIFF images, CSV/TSV tables, JSON, XML,
key-value text and a zip of DICOM files. Every planted identifier is listed in :data:`FAKE_PATIENTS`, so
tests, the benchmark and the demo can check that none of them survives in the destination.

``python -m fw_gear_deid.demo [OUT]`` (what ``scripts/demo`` runs) builds the source under OUT
(default ``./demo-output``), runs the gear's entry point on it exactly as the engine would (a gear
folder with manifest.json, config.json and the profile input), and prints the summary.

Every name, ID and date here is invented.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The secret the demo uses when $DEID_SECRET is unset. Never use it for real data.
DEMO_SECRET = "demo-secret-not-for-real-data"


@dataclass(frozen=True)
class FakePatient:
    """One invented person and the identifiers planted in their files."""

    label: str  # subject label as the scanner wrote it (an MRN: PHI)
    dicom_name: str  # PN form
    first: str
    last: str
    birth_date: str  # YYYYMMDD
    sex: str
    study_date: str  # YYYYMMDD
    accession: str
    institution: str
    physician: str

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def iso_birth_date(self) -> str:
        return f"{self.birth_date[:4]}-{self.birth_date[4:6]}-{self.birth_date[6:]}"

    @property
    def iso_study_date(self) -> str:
        return f"{self.study_date[:4]}-{self.study_date[4:6]}-{self.study_date[6:]}"

    def identifiers(self) -> list[str]:
        """Strings that must not appear anywhere in a de-identified destination."""
        return [
            self.label,
            self.dicom_name,
            self.full_name,
            self.last,
            self.accession,
            self.physician,
            self.birth_date,
            self.iso_birth_date,
        ]


FAKE_PATIENTS: tuple[FakePatient, ...] = (
    FakePatient(
        label="MRN4417302",
        dicom_name="QUILLFEATHER^ROSALIND",
        first="Rosalind",
        last="Quillfeather",
        birth_date="19610314",
        sex="F",
        study_date="20240117",
        accession="ACC88213571",
        institution="Fairhaven Memorial Imaging",
        physician="THISTLEWOOD^AMBROSE",
    ),
    FakePatient(
        label="MRN5520981",
        dicom_name="BRAMBLECOTT^PERCIVAL",
        first="Percival",
        last="Bramblecott",
        birth_date="19780922",
        sex="M",
        study_date="20240305",
        accession="ACC90177342",
        institution="Fairhaven Memorial Imaging",
        physician="THISTLEWOOD^AMBROSE",
    ),
)


@dataclass(frozen=True)
class DemoSource:
    """Where :func:`build_source` put things."""

    site: Path
    project: Path
    files: tuple[Path, ...]
    patients: tuple[FakePatient, ...]

    def identifiers(self) -> list[str]:
        return sorted({value for patient in self.patients for value in patient.identifiers()})


# -- writers -------------------------------------------------------------------------------------
def _sidecar(folder: Path, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".container.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _dicom(testfile: str, patient: FakePatient, series: int, target: Path) -> Path:
    """pydicom's ``testfile`` with ``patient``'s identity planted in standard and private elements."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    path = get_testdata_file(testfile)
    if path is None:  # pragma: no cover - pydicom always ships these
        raise FileNotFoundError(testfile)
    ds = dcmread(path)
    # Distinct, stable UIDs per patient, series and instance (the test files share theirs).
    study_uid = generate_uid(entropy_srcs=["demo study", patient.label])
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[study_uid, str(series)])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[study_uid, str(series), testfile])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = patient.dicom_name
    ds.PatientID = patient.label
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.OtherPatientIDs = patient.label.replace("MRN", "HOSP")
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = patient.study_date
    ds.StudyTime = "093012"
    ds.AccessionNumber = patient.accession
    ds.InstitutionName = patient.institution
    ds.InstitutionAddress = "12 Larkspur Lane, Fairhaven"
    ds.ReferringPhysicianName = patient.physician
    ds.OperatorsName = "WREN^OPHELIA"
    ds.StudyDescription = f"Follow-up for {patient.full_name}"
    ds.SeriesNumber = series
    block = ds.private_block(0x0033, "FAKE SCANNER NOTES", create=True)
    block.add_new(0x10, "LO", patient.dicom_name)
    block.add_new(0x11, "LO", f"MRN {patient.label}")
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def _jpeg(patient: FakePatient, target: Path) -> Path:
    """A photo with EXIF that names the patient (Artist, ImageDescription, dates, GPS)."""
    import piexif
    from PIL import Image

    image = Image.new("RGB", (64, 48), (180, 90, 40))
    stamp = f"{patient.study_date[:4]}:{patient.study_date[4:6]}:{patient.study_date[6:]} 09:30:12"
    exif = {
        "0th": {
            piexif.ImageIFD.Artist: patient.physician.replace("^", " ").encode(),
            piexif.ImageIFD.ImageDescription: f"Clinical photo of {patient.full_name}".encode(),
            piexif.ImageIFD.DateTime: stamp.encode(),
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: stamp.encode(),
            piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00" + patient.label.encode(),
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (0, 1)),
        },
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, "JPEG", quality=85, exif=piexif.dump(exif))
    return target


def _png(patient: FakePatient, target: Path) -> Path:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", patient.physician)
    info.add_text("Comment", f"Patient {patient.full_name}, {patient.label}")
    info.add_itxt("Description", f"Scan of {patient.full_name} born {patient.iso_birth_date}")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (32, 32), 128).save(target, "PNG", pnginfo=info)
    return target


def _tiff(patient: FakePatient, target: Path) -> Path:
    from PIL import Image
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    tags = ImageFileDirectory_v2()
    tags[270] = f"Slide of {patient.full_name} {patient.label}"  # ImageDescription
    tags[315] = patient.physician  # Artist
    tags[306] = (
        f"{patient.study_date[:4]}:{patient.study_date[4:6]}:{patient.study_date[6:]} 10:00:00"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 24), (20, 120, 200)).save(target, "TIFF", tiffinfo=tags)
    return target


def _table(rows: list[dict[str, str]], target: Path, delimiter: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return target


def _json(patient: FakePatient, target: Path) -> Path:
    document = {
        "patient": {
            "name": patient.full_name,
            "mrn": patient.label,
            "birth_date": patient.iso_birth_date,
        },
        "study": {"date": patient.iso_study_date, "accession": patient.accession},
        "measurements": {"heart_rate": 72, "weight_kg": 70.5},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return target


def _xml(patient: FakePatient, target: Path) -> Path:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<report>\n"
        f"  <patient><name>{patient.full_name}</name><mrn>{patient.label}</mrn>"
        f"<birthDate>{patient.iso_birth_date}</birthDate></patient>\n"
        f'  <study date="{patient.iso_study_date}" accession="{patient.accession}"/>\n'
        "  <finding>No acute abnormality.</finding>\n"
        "</report>\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _keyvalue(patient: FakePatient, target: Path) -> Path:
    text = (
        f"PatientName = {patient.full_name}\n"
        f"PatientID = {patient.label}\n"
        f"BirthDate = {patient.iso_birth_date}\n"
        f"ScanDate = {patient.iso_study_date}\n"
        "Protocol = T1 MPRAGE\n"
        "SliceThickness = 1.0\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _zip(members: list[tuple[str, bytes]], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return target


def build_source(
    root: str | os.PathLike[str], patients: tuple[FakePatient, ...] = FAKE_PATIENTS
) -> DemoSource:
    """Write the sample source site under ``root`` (replacing an earlier one) and describe it.

    Layout: ``root/source-site/radiology/study-a/<MRN>/<date CT>/{ct,mr,photos,documents}/...``,
    project-level tables, and a zip of the CT series in the CT acquisition.
    """
    root = Path(root)
    site = root / "source-site"
    if site.exists():
        shutil.rmtree(site)
    project = site / "radiology" / "study-a"
    _sidecar(
        project,
        {
            "container_type": "project",
            "label": "Study A",
            "description": "Sample project with fake PHI",
        },
    )
    written: list[Path] = []
    roster = []
    for number, patient in enumerate(patients, start=1):
        subject = project / patient.label
        _sidecar(
            subject,
            {
                "container_type": "subject",
                "label": patient.label,
                "firstname": patient.first,
                "lastname": patient.last,
                "date_of_birth": patient.iso_birth_date,
                "sex": "female" if patient.sex == "F" else "male",
                "info": {"referring_physician": patient.physician},
            },
        )
        session = subject / f"{patient.iso_study_date} CT"
        _sidecar(
            session,
            {
                "container_type": "session",
                "label": f"{patient.iso_study_date} CT",
                "timestamp": f"{patient.iso_study_date}T09:30:12+00:00",
                "operator": "Ophelia Wren",
                "info": {"scheduled_by": patient.full_name},
            },
        )
        ct = session / "ct"
        _sidecar(ct, {"container_type": "acquisition", "label": "CT chest"})
        ct_file = _dicom("CT_small.dcm", patient, 1, ct / "CT_small.dcm")
        written.append(ct_file)
        second = _dicom("CT_small.dcm", patient, 2, ct / "series2" / "x.dcm")
        members = [("IMG0001", ct_file.read_bytes()), ("IMG0002", second.read_bytes())]
        shutil.rmtree(ct / "series2")
        written.append(_zip(members, ct / "ct_images.dicom.zip"))
        mr = session / "mr"
        _sidecar(mr, {"container_type": "acquisition", "label": "MR brain"})
        written.append(_dicom("MR_small.dcm", patient, 3, mr / "MR_small.dcm"))
        photos = session / "photos"
        _sidecar(photos, {"container_type": "acquisition", "label": "Photos"})
        written.append(_jpeg(patient, photos / "wound.jpg"))
        written.append(_png(patient, photos / "sketch.png"))
        written.append(_tiff(patient, photos / "slide.tiff"))
        documents = session / "documents"
        _sidecar(documents, {"container_type": "acquisition", "label": "Documents"})
        written.append(_json(patient, documents / "vitals.json"))
        written.append(_xml(patient, documents / "report.xml"))
        written.append(_keyvalue(patient, documents / "scan_info.txt"))
        roster.append(
            {
                "subject": patient.label,
                "name": patient.full_name,
                "birth_date": patient.iso_birth_date,
                "study_code": f"{number:04d}",  # leading zeros must survive
                "visit": patient.iso_study_date,
            }
        )
    written.append(_table(roster, project / "roster.csv", ","))
    written.append(_table(roster, project / "roster.tsv", "\t"))
    return DemoSource(site, project, tuple(written), patients)


#: The demo's de-id profile: the PS3.15 Basic Profile for DICOM plus a section per other format,
#: in the Flywheel grammar (docs/profile.md). Non-DICOM sections name what to change in each file.
DEMO_PROFILE = """\
# De-id profile used by scripts/demo (Flywheel migration grammar + the ps3.15-basic preset).
name: demo profile
dicom:
  preset: ps3.15-basic
  options: [retain-long-modified-dates]   # dates shifted by the subject's keyed offset, not emptied
  fields:
    - name: PatientID
      hash: true
    - name: PatientName
      replace-with: REMOVED
jpg:
  remove-exif: true
  remove-gps: true
png:
  remove-private-chunks: true
tiff:
  remove-private-tags: true
  fields:
    - name: ImageDescription
      remove: true
    - name: Artist
      remove: true
    - name: DateTime
      remove: true
csv:
  file-filter: ["*.csv"]
  date-format: "%Y-%m-%d"
  fields:
    - name: subject
      hash: true
    - name: name
      remove: true
    - name: birth_date
      remove: true
    - name: visit
      increment-date: true
tsv:
  file-filter: ["*.tsv"]
  date-format: "%Y-%m-%d"
  fields:
    - name: subject
      hash: true
    - name: name
      remove: true
    - name: birth_date
      remove: true
    - name: visit
      increment-date: true
json:
  file-filter: ["*.json"]
  date-format: "%Y-%m-%d"
  fields:
    - name: patient.name
      remove: true
    - name: patient.mrn
      hash: true
    - name: patient.birth_date
      remove: true
    - name: study.date
      increment-date: true
    - name: study.accession
      hash: true
xml:
  file-filter: ["*.xml"]
  date-format: "%Y-%m-%d"
  fields:
    - name: /report/patient/name
      remove: true
    - name: /report/patient/mrn
      hash: true
    - name: /report/patient/birthDate
      remove: true
    - name: /report/study/@date
      increment-date: true
    - name: /report/study/@accession
      hash: true
key-value-text-file:
  file-filter: ["*.txt"]
  delimiter: " = "
  date-format: "%Y-%m-%d"
  fields:
    - name: PatientName
      remove: true
    - name: PatientID
      hash: true
    - name: BirthDate
      remove: true
    - name: ScanDate
      increment-date: true
zip:
  file-filter: ["*.zip"]
  validate-zip-members: true
flywheel:
  subject:
    fields:
      - name: label
        hash: true
  session:
    fields:
      - name: label
        replace-with: visit
      - name: timestamp
        increment-date: true
  acquisition:
    all: true
"""


# -- the demo run --------------------------------------------------------------------------------
def find_identifiers(folder: Path, identifiers: list[str]) -> list[tuple[str, str]]:
    """``(relative path, identifier)`` for every planted identifier found in the bytes under folder.

    Looks at raw bytes (UTF-8 and, for DICOM PN values, as written) and inside zip members; sidecar
    files (labels and metadata) are included.
    """
    hits = []
    needles = [(value, value.encode("utf-8")) for value in identifiers]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                blobs += [archive.read(info) for info in archive.infolist() if not info.is_dir()]
        for value, needle in needles:
            if any(needle in blob or needle.lower() in blob.lower() for blob in blobs):
                hits.append((path.relative_to(folder).as_posix(), value))
    return hits


def prepare_gear_dir(gear_dir: Path, config: dict[str, Any], profile_text: str) -> Path:
    """A gear folder as the engine lays it out: manifest.json, config.json, input/, output/."""
    from fw_gear_deid.gear import local_config_json

    manifest = Path(__file__).resolve().parent.parent / "manifest.json"
    if gear_dir.exists():
        shutil.rmtree(gear_dir)
    (gear_dir / "output").mkdir(parents=True)
    profile = gear_dir / "input" / "deid_profile" / "demo_profile.yaml"
    profile.parent.mkdir(parents=True)
    profile.write_text(profile_text, encoding="utf-8")
    shutil.copy(manifest, gear_dir / "manifest.json")
    document = local_config_json(config, {"deid_profile": profile.name}, gear_root=gear_dir)
    (gear_dir / "config.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return gear_dir


def run_gear(gear_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the repository's run.py in ``gear_dir`` as the engine would (cwd = the gear folder)."""
    run_py = Path(__file__).resolve().parent.parent / "run.py"
    return subprocess.run(
        [sys.executable, str(run_py)],
        cwd=gear_dir,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _summary_lines(report_json: Path) -> list[str]:
    document = json.loads(report_json.read_text(encoding="utf-8"))
    summary = document["summary"]
    lines = [
        f"  profile: level {summary.get('profile', {}).get('level')}, "
        f"sha256 {str(summary.get('profile', {}).get('sha256'))[:12]}",
        f"  files: {summary.get('files')} in scope; "
        + ", ".join(f"{state} {count}" for state, count in summary.get("by_state", {}).items()),
    ]
    for row in document["files"]:
        if row["in_scope"] and row["state"] != "exported":
            lines.append(f"    {row['state']}: {row['source_file']}: {row['reason']}")
    return lines


def _example_lines(source: DemoSource, destination: Path, secret: str) -> list[str]:
    """One DICOM file before and after (fake values only: this is the demo's own sample data).

    The output is found by its name, ``<remapped SOPInstanceUID>.CT.dcm``: the UID map is
    ``Keys(secret).uid``, the same in every file and run with the same secret.
    """
    from pydicom import dcmread

    from fw_gear_deid.keys import Keys

    before_path = next((p for p in source.files if p.name == "CT_small.dcm"), None)
    if before_path is None or not destination.exists():
        return []
    before = dcmread(before_path, stop_before_pixels=True)
    name = f"{Keys(secret).uid(before.SOPInstanceUID)}.CT.dcm"
    after_path = next(iter(destination.rglob(name)), None)
    if after_path is None:
        return []
    after = dcmread(after_path, stop_before_pixels=True)
    lines = [
        "\nOne CT file, before -> after (the sample's fake values):",
        f"  {before_path.relative_to(source.site)}",
        f"  -> {after_path.relative_to(destination.parent)}",
    ]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "InstitutionName"):
        old_value = str(before.get(keyword, "")) or "(empty)"
        new_value = (str(after.get(keyword, "")) or "(empty)") if keyword in after else "(removed)"
        lines.append(f"  {keyword:<24} {old_value:<26} -> {new_value}")
    lines.append(
        f"  {'PatientIdentityRemoved':<24} {'':<26} -> {after.get('PatientIdentityRemoved')}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Path(argv[0] if argv else "demo-output").absolute()
    out.mkdir(parents=True, exist_ok=True)
    source = build_source(out)
    print(f"Built the sample source project: {source.project}")
    print(
        f"  {len(source.files)} files with fake PHI (DICOM, zip, JPEG, PNG, TIFF, CSV, TSV, JSON, XML, text)"
    )
    destination = out / "destination-site" / "shared" / "study-a-deid"
    if destination.exists():
        shutil.rmtree(destination)
    gear_dir = prepare_gear_dir(
        out / "gear",
        {"source_path": str(source.project), "destination_project": str(destination), "workers": 2},
        DEMO_PROFILE,
    )
    env = {} if os.environ.get("DEID_SECRET") else {"DEID_SECRET": DEMO_SECRET}
    print(f"Running the gear (run.py) in {gear_dir} ...", flush=True)
    completed = run_gear(gear_dir, env)
    reports = sorted((gear_dir / "output").glob("deid-report-*.json"))
    print(f"\nGear exit code: {completed.returncode}")
    if not reports:
        print("No report was written: see the log above.")
        return 1
    for line in _summary_lines(reports[-1]):
        print(line)
    for line in _example_lines(source, destination, (env or os.environ)["DEID_SECRET"]):
        print(line)
    hits = find_identifiers(destination, source.identifiers()) if destination.exists() else []
    print(f"\nPlanted identifiers found in the destination: {len(hits)}")
    for path, value in hits[:20]:
        print(f"  {path}: {value!r}")
    print("\nWhere to look:")
    print(f"  source (fake PHI):       {source.project}")
    print(f"  de-identified copy:      {destination}")
    print(f"  report (CSV, JSON):      {reports[-1].with_suffix('.csv')}")
    print(f"                           {reports[-1]}")
    print(f"  engine metadata:         {gear_dir / 'output' / '.metadata.json'}")
    print(f"  the profile used:        {gear_dir / 'input' / 'deid_profile' / 'demo_profile.yaml'}")
    return 0 if completed.returncode == 0 and not hits else 1


if __name__ == "__main__":
    sys.exit(main())
