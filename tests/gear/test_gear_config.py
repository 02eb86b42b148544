"""config.json + inputs -> export job (fw_gear_deid.gear), without an engine or a network."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from fw_gear_deid.gear import (
    EXPORT_SOURCE_TYPES,
    GearConfigError,
    build_job_kwargs,
    flywheel_container,
    flywheel_destination,
    local_config_json,
    read_secret,
    read_settings,
    resolve_keys,
)
from fw_gear_deid.keys import DateShiftRange, Keys

SECRET = "gear-test-secret-0123456789"
API_KEY = "127.0.0.1:8080:__force_insecure:not-a-real-key"


class FakeLookup:
    """Answers what the SDK would, and records the questions."""

    def __init__(self, parent=("session", "ses01"), parents=None):
        self.parent = parent
        self.parents = parents or {"project": "p01", "subject": "sub01", "session": "ses01"}
        self.calls = []

    def analysis_parent(self, analysis_id):
        self.calls.append(("analysis", analysis_id))
        return self.parent

    def file_parents(self, file_id):
        self.calls.append(("file", file_id))
        return self.parents


def fw_config_json(**config) -> dict:
    return {
        "config": {"destination_project": "grp/dest", **config},
        "inputs": {"api-key": {"base": "api-key", "key": API_KEY}},
        "destination": {"type": "analysis", "id": "analysis01"},
    }


def file_input(path: Path, hierarchy: dict | None = None, file_id: str | None = "file01") -> dict:
    return {
        "base": "file",
        "hierarchy": hierarchy or {"type": "acquisition", "id": "acq01"},
        "location": {"path": str(path), "name": path.name},
        "object": {"file_id": file_id, "type": "dicom"} if file_id else {"type": "dicom"},
    }


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "image.dcm"
    path.write_bytes(b"not really dicom")
    return path


# -- settings ------------------------------------------------------------------------------------
def test_settings_defaults():
    settings = read_settings({"destination_project": "grp/dest"})
    assert settings.conflict == "skip"
    assert settings.residual_phi_check is True
    assert settings.dry_run is False
    assert settings.secret_env == "DEID_SECRET"
    assert settings.date_shift == DateShiftRange(-3650, -1)
    assert not settings.local


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "destination_project: required"),
        ({"destination_project": "  "}, "destination_project: required"),
        ({"destination_project": "g/p", "conflict": "overwrite"}, "config conflict"),
        ({"destination_project": "g/p", "workers": 65}, "workers"),
        ({"destination_project": "g/p", "workers": True}, "workers: expected an integer"),
        ({"destination_project": "g/p", "workers": "4"}, "workers: expected an integer"),
        ({"destination_project": "g/p", "dry_run": "yes"}, "dry_run: expected bool"),
        ({"destination_project": "g/p", "secret_env": "MY-SECRET"}, "secret_env"),
        ({"destination_project": "g/p", "date_shift_min_days": 5}, "date_shift"),
        ({"destination_project": "g/p", "secret": "s3cr3t"}, "unknown option(s) secret"),
    ],
)
def test_bad_settings_are_refused_with_the_key_named(config, message):
    with pytest.raises(GearConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_settings(config)


def test_destination_locations():
    assert flywheel_destination("grp/dest") == "fw://grp/dest"
    assert flywheel_destination("fw://grp/dest/") == "fw://grp/dest"
    for bad in ("grp", "grp/dest/subject", "/dest", "fw://"):
        with pytest.raises(GearConfigError, match="group/project"):
            flywheel_destination(bad)
    assert flywheel_container("session", "5f0c1a2b") == "fw://_id/session/5f0c1a2b"
    with pytest.raises(GearConfigError):
        flywheel_container("session", "../etc")


# -- secrets -------------------------------------------------------------------------------------
def test_secret_file_wins_over_the_environment(tmp_path, caplog):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    settings = read_settings({"destination_project": "g/p"})
    with caplog.at_level(logging.DEBUG):
        keys = resolve_keys(settings, str(secret_file), {"DEID_SECRET": "other"})
    assert keys.fingerprint == Keys(SECRET).fingerprint
    assert SECRET not in caplog.text
    assert keys.fingerprint in caplog.text


def test_secret_from_the_named_environment_variable(caplog):
    settings = read_settings({"destination_project": "g/p", "secret_env": "SITE_KEY"})
    with caplog.at_level(logging.DEBUG):
        keys = resolve_keys(settings, None, {"SITE_KEY": SECRET, "DEID_SECRET": "other"})
    assert keys.fingerprint == Keys(SECRET).fingerprint
    assert SECRET not in caplog.text
    assert resolve_keys(settings, None, {"DEID_SECRET": "other"}) is None


def test_keys_carry_the_configured_date_shift_range():
    settings = read_settings(
        {"destination_project": "g/p", "date_shift_min_days": -30, "date_shift_max_days": -10}
    )
    keys = resolve_keys(settings, None, {"DEID_SECRET": SECRET})
    assert keys.date_shift == DateShiftRange(-30, -10)
    assert all(-30 <= keys.date_offset_days(f"subject-{n}") <= -10 for n in range(50))


@pytest.mark.parametrize(("content", "message"), [(b"", "empty"), (b"\xff\xfe", "UTF-8")])
def test_bad_secret_files_are_refused_without_showing_them(tmp_path, content, message):
    path = tmp_path / "secret"
    path.write_bytes(content)
    with pytest.raises(GearConfigError, match=message):
        read_secret(path)
    with pytest.raises(GearConfigError, match="cannot read"):
        read_secret(tmp_path / "missing")


# -- locations per mode --------------------------------------------------------------------------
def test_export_mode_on_an_analysis_reads_the_analysis_parent(tmp_path):
    lookup = FakeLookup()
    _, locations, kwargs = build_job_kwargs(
        fw_config_json(), tmp_path, {"DEID_SECRET": SECRET}, lookup
    )
    assert lookup.calls == [("analysis", "analysis01")]
    assert locations.mode == "export"
    assert kwargs["source"] == "fw://_id/session/ses01"
    assert kwargs["destination"] == "fw://grp/dest"
    assert kwargs["file"] is None
    assert kwargs["api_key"] == API_KEY
    assert kwargs["report_dir"] == tmp_path
    assert kwargs["residual_check"] is True
    assert kwargs["keys"].fingerprint == Keys(SECRET).fingerprint


@pytest.mark.parametrize("kind", EXPORT_SOURCE_TYPES)
def test_utility_run_on_a_container_exports_that_container(tmp_path, kind):
    config_json = fw_config_json()
    config_json["destination"] = {"type": kind, "id": "c01"}
    lookup = FakeLookup()
    _, locations, _ = build_job_kwargs(config_json, tmp_path, {}, lookup)
    assert locations.source == f"fw://_id/{kind}/c01"
    assert lookup.calls == []


def test_acquisitions_are_not_an_export_source(tmp_path):
    config_json = fw_config_json()
    config_json["destination"] = {"type": "analysis", "id": "a01"}
    with pytest.raises(GearConfigError, match="project, subject or session"):
        build_job_kwargs(config_json, tmp_path, {}, FakeLookup(parent=("acquisition", "acq01")))


def test_file_mode_exports_the_input_file_from_its_session(tmp_path, a_file):
    config_json = fw_config_json(conflict="replace", workers=3, dry_run=True)
    config_json["inputs"]["input_file"] = file_input(a_file)
    lookup = FakeLookup()
    _, locations, kwargs = build_job_kwargs(config_json, tmp_path, {}, lookup)
    assert lookup.calls == [("file", "file01")]
    assert locations.mode == "file"
    assert kwargs["source"] == "fw://_id/session/ses01"
    assert kwargs["file"] == "file01"
    assert kwargs["conflict"] == "replace"
    assert kwargs["jobs"] == 3
    assert kwargs["dry_run"] is True
    assert kwargs["keys"] is None


@pytest.mark.parametrize("kind", EXPORT_SOURCE_TYPES)
def test_file_mode_on_a_project_subject_or_session_file_needs_no_lookup(tmp_path, a_file, kind):
    config_json = fw_config_json()
    config_json["inputs"]["input_file"] = file_input(a_file, {"type": kind, "id": "c01"})
    lookup = FakeLookup()
    _, locations, _ = build_job_kwargs(config_json, tmp_path, {}, lookup)
    assert locations.source == f"fw://_id/{kind}/c01"
    assert lookup.calls == []


def test_file_mode_needs_the_file_id(tmp_path, a_file):
    config_json = fw_config_json()
    config_json["inputs"]["input_file"] = file_input(a_file, file_id=None)
    with pytest.raises(GearConfigError, match="file_id"):
        build_job_kwargs(config_json, tmp_path, {})


def test_flywheel_runs_need_an_api_key(tmp_path):
    config_json = fw_config_json()
    del config_json["inputs"]["api-key"]
    with pytest.raises(GearConfigError, match="api-key"):
        build_job_kwargs(config_json, tmp_path, {})


def test_local_run_reads_and_writes_local_stores_and_ignores_the_api_key(tmp_path, a_file):
    profile = tmp_path / "profile.yaml"
    profile.write_text("dicom: {fields: []}\n", encoding="utf-8")
    config_json = fw_config_json(source_path="/data/site/grp/src", destination_project="/out/p")
    config_json["inputs"]["deid_profile"] = file_input(profile)
    config_json["inputs"]["mapping_csv"] = file_input(a_file)
    _, locations, kwargs = build_job_kwargs(config_json, tmp_path, {})
    assert (locations.mode, kwargs["source"], kwargs["destination"]) == (
        "export",
        "/data/site/grp/src",
        "/out/p",
    )
    assert kwargs["api_key"] is None
    assert kwargs["profile_path"] == profile
    assert kwargs["mapping_csv"] == a_file


def test_local_file_mode_passes_the_input_path(tmp_path, a_file):
    config_json = fw_config_json(source_path=str(tmp_path), destination_project="/out/p")
    config_json["inputs"]["input_file"] = file_input(a_file)
    _, locations, kwargs = build_job_kwargs(config_json, tmp_path, {})
    assert locations.mode == "file"
    assert kwargs["file"] == str(a_file)


def test_missing_input_file_on_disk_is_a_config_error(tmp_path):
    config_json = fw_config_json(source_path=str(tmp_path))
    config_json["inputs"]["deid_profile"] = file_input(tmp_path / "nope.yaml")
    with pytest.raises(GearConfigError, match="deid_profile"):
        build_job_kwargs(config_json, tmp_path, {})


def test_workers_zero_means_one_per_cpu(tmp_path):
    config_json = fw_config_json(source_path="/src")
    _, _, kwargs = build_job_kwargs(config_json, tmp_path, {})
    assert kwargs["jobs"] == len(os.sched_getaffinity(0))


def test_local_config_json_points_inputs_under_the_gear_root():
    document = local_config_json(
        {"destination_project": "/data/out", "source_path": "/data/src"},
        {"deid_profile": "/somewhere/profile.yaml"},
    )
    assert document["inputs"]["deid_profile"]["location"] == {
        "path": "/flywheel/v0/input/deid_profile/profile.yaml",
        "name": "profile.yaml",
    }
    assert document["destination"]["type"] == "analysis"


def test_sdk_lookup_failures_are_config_errors_without_the_key(monkeypatch):
    import flywheel

    from fw_gear_deid.gear import SdkLookup

    class Client:
        def __init__(self, key):
            assert key == API_KEY

        def get_analysis(self, analysis_id):
            raise RuntimeError(f"404 for {analysis_id}")

        def get_file(self, file_id):
            raise RuntimeError("connection refused")

    monkeypatch.setattr(flywheel, "Client", Client)
    lookup = SdkLookup(API_KEY)
    assert API_KEY not in repr(lookup)
    with pytest.raises(GearConfigError, match="cannot read analysis a1 from Flywheel"):
        lookup.analysis_parent("a1")
    with pytest.raises(GearConfigError, match="cannot read file f1 from Flywheel"):
        lookup.file_parents("f1")
