"""What a `flywheel:` rule removed from one container must not reappear under another one."""

from __future__ import annotations

import json

from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.keys import Keys

MRN = "MRN99887766"
NAME = "Zebulon Quixote"

PROFILE = """
csv:
  fields:
    - name: note
      keep: true
flywheel:
  subject:
    all: true
    fields:
      - name: info.mrn
        remove: true
      - name: info.name
        remove: true
"""


def _export(tmp_path, source):
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    return run_export(
        ExportJob(
            source=str(source),
            destination=str(tmp_path / "out" / "grp" / "dest"),
            profile_path=profile,
            keys=Keys("chain"),
            report_dir=tmp_path / "reports",
        ),
        progress=False,
    )


def _subject(source):
    subject = source / "sub1"
    subject.mkdir(parents=True)
    (subject / ".container.json").write_text(
        json.dumps({"container_type": "subject", "info": {"mrn": MRN, "name": NAME}})
    )
    return subject


def test_session_label_repeating_the_subjects_removed_mrn_is_blocked(tmp_path):
    source = tmp_path / "site" / "grp" / "proj"
    session = _subject(source) / f"{MRN}-visit"
    session.mkdir()
    (session / "data.csv").write_text("note\nfine\n")
    result = _export(tmp_path, source)
    assert [row.state for row in result.rows] == ["blocked"]
    assert "session metadata" in result.rows[0].reason
    assert result.exit_code != 0
    assert MRN not in json.dumps([row.reason for row in result.rows])


def test_file_holding_the_subjects_removed_name_is_blocked(tmp_path):
    source = tmp_path / "site" / "grp" / "proj"
    session = _subject(source) / "visit"
    session.mkdir()
    (session / "data.csv").write_text(f"note\n{NAME} {MRN}\n")
    result = _export(tmp_path, source)
    assert [row.state for row in result.rows] == ["blocked"]
    written = [p for p in (tmp_path / "out").rglob("data.csv")]
    assert written == []
