"""Container matching by label: one subject exported from two source projects lands once."""

from __future__ import annotations

import json

import pytest

from fw_gear_deid.export import ExportJob, run_export
from fw_gear_deid.keys import Keys

PROFILE = """
json:
  fields:
    - name: note
      keep: true
flywheel:
  subject:
    fields:
      - name: label
        replace-with: SUBJ-001
"""


def _source(root, project):
    source = root / "site" / "grp" / project
    (source / "sub-a" / "ses-1").mkdir(parents=True, exist_ok=True)
    (source / "sub-a" / "ses-1" / f"{project}.json").write_text(json.dumps({"note": project}))
    return source


def _export(tmp_path, source, dest, match_by):
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    return run_export(
        ExportJob(
            source=str(source),
            destination=str(dest),
            profile_path=profile,
            keys=Keys("match"),
            report_dir=tmp_path / "reports",
            match_by=match_by,
        ),
        progress=False,
    )


@pytest.mark.parametrize(("match_by", "subjects"), [("label", 1), ("origin-id", 2)])
def test_two_source_projects_share_one_subject_only_when_matching_by_label(
    tmp_path, match_by, subjects
):
    dest = tmp_path / "out" / "grp" / "dest"
    for project in ("proj-1", "proj-2"):
        result = _export(tmp_path, _source(tmp_path / "in", project), dest, match_by)
        assert result.exit_code == 0, [(r.state, r.reason) for r in result.rows]
    folders = sorted(p.name for p in dest.iterdir() if p.is_dir())
    assert len(folders) == subjects
    files = sorted(p.name for p in dest.rglob("*.json") if not p.name.startswith("."))
    assert files == ["proj-1.json", "proj-2.json"]


def test_label_match_keeps_the_first_sources_origin_id(tmp_path):
    dest = tmp_path / "out" / "grp" / "dest"
    _export(tmp_path, _source(tmp_path / "in", "proj-1"), dest, "label")
    (subject,) = [p for p in dest.iterdir() if p.is_dir()]
    before = json.loads((subject / ".container.json").read_text())["info"]["export"]
    _export(tmp_path, _source(tmp_path / "in", "proj-2"), dest, "label")
    after = json.loads((subject / ".container.json").read_text())["info"]["export"]
    assert after == before
    # and the first source re-run by origin id still finds its subject (no duplicate)
    _export(tmp_path, _source(tmp_path / "in", "proj-1"), dest, "origin-id")
    assert len([p for p in dest.iterdir() if p.is_dir()]) == 1


def test_flywheel_destination_shares_one_subject_when_matching_by_label(fw_server, tmp_path):
    dest = fw_server.add_project("grp", "dest")
    for project in ("proj-1", "proj-2"):
        fw_server.seed_from_folder("grp", project, _source(tmp_path / "in", project))
        profile = tmp_path / "profile.yaml"
        profile.write_text(PROFILE)
        result = run_export(
            ExportJob(
                source=f"fw://grp/{project}",
                destination="fw://grp/dest",
                profile_path=profile,
                keys=Keys("match"),
                report_dir=tmp_path / "reports",
                api_key=fw_server.api_key,
                match_by="label",
            ),
            progress=False,
        )
        assert result.exit_code == 0, [(r.state, r.reason) for r in result.rows]
    subjects = fw_server.children(dest["_id"], "subject")
    assert [subject["label"] for subject in subjects] == ["SUBJ-001"]
