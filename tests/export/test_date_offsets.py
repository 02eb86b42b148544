"""One date offset per subject across formats, including the one the mapping CSV gives."""

from __future__ import annotations

import json

from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.keys import Keys

PROFILE = """
dicom:
  date-increment: "{{ SHIFT }}"
  fields:
    - name: StudyDate
      increment-date: true
json:
  fields:
    - name: study.date
      increment-date: true
"""


def test_mapping_csv_offset_shifts_json_dates_like_dicom_dates(tmp_path):
    source = tmp_path / "site" / "grp" / "proj"
    (source / "sub1").mkdir(parents=True)
    (source / "sub1" / "visit.json").write_text(json.dumps({"study": {"date": "2004-01-19"}}))
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    mapping = tmp_path / "map.csv"
    mapping.write_text("subject.label,SHIFT\nsub1,-10\n")
    dest = tmp_path / "out" / "grp" / "dest"
    result = run_export(
        ExportJob(
            source=str(source),
            destination=str(dest),
            profile_path=profile,
            mapping_csv=mapping,
            keys=Keys("offsets"),
            report_dir=tmp_path / "reports",
        ),
        progress=False,
    )
    assert result.exit_code == 0, [(row.state, row.reason) for row in result.rows]
    (written,) = [p for p in dest.rglob("visit.json")]
    assert json.loads(written.read_text())["study"]["date"] == "2004-01-09"
