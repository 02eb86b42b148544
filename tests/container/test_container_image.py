"""Build the gear image and run it as the engine would (docker run on a config.json).

- ``--network none`` against a local folder store mounted into the container: export mode, file mode,
  a re-run (idempotent), a rejected job (no valid profile anywhere) and a config error;
- ``--network host`` against the in-process Flywheel API (tests/fwserver) through the real
  flywheel-sdk inside the container: file mode (gear rule) and export mode on an analysis.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fw_gear_deid.demo import DEMO_PROFILE, FAKE_PATIENTS, _dicom, build_source, find_identifiers
from fw_gear_deid.gear import local_config_json
from tests.container.dockerrun import GEAR_ROOT, MANIFEST, _docker, run_gear_container

pytestmark = pytest.mark.docker

SECRET = "container-test-secret-5d1c"
STORE = "/data"


def tree_digest(folder: Path) -> str:
    """Every path, mode and byte under folder (to prove the source did not change)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(oct(path.stat().st_mode).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def data_files(folder: Path) -> list[Path]:
    """Files a de-identified copy holds (sidecars and locks are store metadata, not data)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    source = build_source(root)
    profile = tmp_path / "demo_profile.yaml"
    profile.write_text(DEMO_PROFILE, encoding="utf-8")
    return root, source, profile


def local_job(store_root: Path, **config) -> dict:
    return {
        "source_path": f"{STORE}/source-site/radiology/study-a",
        "destination_project": f"{STORE}/destination-site/shared/study-a-deid",
        **config,
    }


# -- the image -----------------------------------------------------------------------------------
def test_image_is_laid_out_as_the_gear_spec_says(gear_image):
    script = (
        "set -e; cd /flywheel/v0; test -x run; test -L run; test -f manifest.json; "
        "python -c 'import json; print(json.dumps(json.load(open(\"manifest.json\"))))'; "
        "python --version; command -v python; "
        "deid --version; "
        "for tool in gcc cc make g++ pip pip3; do if command -v $tool; then echo FOUND $tool; fi; done; "
        "for py in /opt/venv/bin/python /usr/bin/python3 /usr/local/bin/python3; do "
        "if [ -x $py ] && $py -c 'import pip' 2>/dev/null; then echo FOUND pip in $py; fi; done"
    )
    result = _docker("run", "--rm", "--network", "none", gear_image, "bash", "-c", script)
    assert result.returncode == 0, result.stderr
    manifest_text, _, rest = result.stdout.partition("\n")
    assert json.loads(manifest_text) == MANIFEST
    assert "Python 3.11" in rest
    assert "/opt/venv/bin/python" in rest
    assert "deid 0.1.0" in rest
    assert "FOUND" not in rest, "build tools left in the image"


def test_image_runs_the_gear_entry_point_by_default(gear_image):
    inspect = _docker("image", "inspect", gear_image, "--format", "{{json .Config}}")
    config = json.loads(inspect.stdout)
    assert config["Cmd"] == [f"{GEAR_ROOT}/run"]
    assert config["WorkingDir"] == GEAR_ROOT
    env = dict(item.split("=", 1) for item in config["Env"])
    assert {k: env[k] for k in MANIFEST["environment"]} == MANIFEST["environment"]


# -- local store, no network ---------------------------------------------------------------------
def test_export_a_local_project_with_network_none(gear_image, store, tmp_path):
    root, source, profile = store
    before = tree_digest(source.site)
    config_json = local_config_json(local_job(root), {"deid_profile": profile})
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile},
        mounts={root: STORE},
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 0, run.log
    report = run.report()
    summary = report["summary"]
    assert summary["files"] == len(source.files), run.log
    assert summary["by_state"]["exported"] == len(source.files), report["files"]
    assert summary["profile"]["level"] == "explicit"
    assert summary["dry_run"] is False
    assert (run.output / Path(sorted(run.output.glob("deid-report-*.csv"))[0].name)).stat().st_size
    metadata = run.metadata()
    assert metadata["analysis"]["info"]["deid"]["exit_code"] == 0
    assert metadata["analysis"]["info"]["deid"]["summary"]["files"] == len(source.files)
    destination = root / "destination-site" / "shared" / "study-a-deid"
    assert len(data_files(destination)) == len(source.files)
    assert find_identifiers(destination, source.identifiers()) == []
    assert tree_digest(source.site) == before, "the source store changed"
    for path in [*run.output.rglob("*"), *destination.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in run.log

    # A second run finds everything already exported and writes nothing new.
    (tmp_path / "job" / "output").rename(tmp_path / "first-output")
    again = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile},
        mounts={root: STORE},
        env={"DEID_SECRET": SECRET},
    )
    assert again.returncode == 0, again.log
    rows = again.report()["files"]
    assert {row["write"] for row in rows if row["in_scope"]} == {"unchanged"}
    assert len(data_files(destination)) == len(source.files)


def test_file_mode_exports_only_the_input_file(gear_image, store, tmp_path):
    root, source, profile = store
    patient = FAKE_PATIENTS[0]
    relative = (
        f"source-site/radiology/study-a/{patient.label}/{patient.iso_study_date} CT/ct/CT_small.dcm"
    )
    assert (root / relative).is_file()
    config_json = local_config_json(local_job(root), {"deid_profile": profile})
    config_json["inputs"]["input_file"] = {
        "base": "file",
        "location": {"path": f"{STORE}/{relative}", "name": "CT_small.dcm"},
        "object": {"type": "dicom"},
    }
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile},
        mounts={root: STORE},
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 0, run.log
    assert run.report()["summary"]["files"] == 1
    assert run.metadata()["analysis"]["info"]["deid"]["mode"] == "file"
    destination = root / "destination-site" / "shared" / "study-a-deid"
    written = data_files(destination)
    assert len(written) == 1
    assert written[0].suffix == ".dcm"
    assert find_identifiers(destination, source.identifiers()) == []


def test_dry_run_with_a_secret_file_writes_only_the_report(gear_image, store, tmp_path):
    root, source, profile = store
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    inputs = {"deid_profile": profile, "secret_file": secret_file}
    config_json = local_config_json(local_job(root, dry_run=True), inputs)
    run = run_gear_container(
        gear_image, tmp_path / "job", config_json, inputs=inputs, mounts={root: STORE}
    )
    assert run.returncode == 0, run.log
    report = run.report()
    assert report["summary"]["dry_run"] is True
    assert report["summary"]["files"] == len(source.files)
    assert "Secret from the secret_file input" in run.log
    assert SECRET not in run.log
    assert data_files(root / "destination-site") == []


def test_concurrent_file_mode_jobs_create_each_container_once(gear_image, store, tmp_path):
    """A gear rule starts one job per upload, many at once: run one container per file together."""
    import concurrent.futures

    root, source, profile = store
    patient = FAKE_PATIENTS[0]
    session = f"source-site/radiology/study-a/{patient.label}/{patient.iso_study_date} CT"
    files = sorted(
        p for p in (root / session).rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    assert len(files) == 9

    def one(index_and_path):
        index, path = index_and_path
        config_json = local_config_json(local_job(root), {"deid_profile": profile})
        relative = path.relative_to(root).as_posix()
        config_json["inputs"]["input_file"] = {
            "base": "file",
            "location": {"path": f"{STORE}/{relative}", "name": path.name},
            "object": {},
        }
        return run_gear_container(
            gear_image,
            tmp_path / f"job{index}",
            config_json,
            inputs={"deid_profile": profile},
            mounts={root: STORE},
            env={"DEID_SECRET": SECRET},
        )

    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        runs = list(pool.map(one, enumerate(files)))
    assert [run.returncode for run in runs] == [0] * len(files), [
        r.log for r in runs if r.returncode
    ]
    destination = root / "destination-site" / "shared" / "study-a-deid"
    subjects = [p for p in destination.iterdir() if p.is_dir()]
    assert len(subjects) == 1
    sessions = [p for p in subjects[0].iterdir() if p.is_dir()]
    assert len(sessions) == 1
    acquisitions = sorted(p.name for p in sessions[0].iterdir() if p.is_dir())
    assert len(acquisitions) == 4, acquisitions
    assert len(data_files(destination)) == len(files)
    assert find_identifiers(destination, source.identifiers()) == []


BROKEN_PROFILE = "dicom:\n  fields:\n    - name: PateintName\n      remove: true\n"


@pytest.mark.parametrize("case", ["invalid explicit profile", "no profile at any level"])
def test_a_job_without_a_valid_profile_is_rejected_and_writes_nothing(
    gear_image, store, tmp_path, case
):
    root, _source, _profile = store
    inputs = {}
    if case == "invalid explicit profile":
        broken = tmp_path / "broken.yaml"
        broken.write_text(BROKEN_PROFILE, encoding="utf-8")
        inputs = {"deid_profile": broken}
    config_json = local_config_json(local_job(root), inputs)
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs=inputs,
        mounts={root: STORE},
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 1, run.log
    summary = run.report()["summary"]
    assert summary["profile"]["rejected"] is True
    assert summary["files"] == 0
    if inputs:
        issues = summary["profile"]["issues_by_level"]["explicit"]
        assert any("PatientName" in issue for issue in issues), issues
    else:
        assert set(summary["profile"]["states"].values()) == {"absent"}
    assert run.metadata()["analysis"]["info"]["deid"]["exit_code"] == 1
    assert data_files(root / "destination-site") == []


def test_the_cascade_skips_an_invalid_project_profile_for_the_sites(gear_image, store, tmp_path):
    root, source, _profile = store
    site = root / "destination-site"
    project = site / "shared" / "study-a-deid"
    project.mkdir(parents=True)
    (project / "deid_profile.yaml").write_text(BROKEN_PROFILE, encoding="utf-8")
    (site / "deid_profile.yaml").write_text(DEMO_PROFILE, encoding="utf-8")
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        local_config_json(local_job(root)),
        mounts={root: STORE},
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 0, run.log
    summary = run.report()["summary"]
    assert summary["profile"]["level"] == "site"
    assert summary["profile"]["states"]["project"] != "used"
    assert "project" in summary["profile"]["issues_by_level"]
    assert summary["by_state"]["exported"] == len(source.files)


def test_a_bad_config_exits_2_and_starts_nothing(gear_image, store, tmp_path):
    root, _source, profile = store
    config_json = local_config_json(
        local_job(root, conflict="overwrite"), {"deid_profile": profile}
    )
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile},
        mounts={root: STORE},
    )
    assert run.returncode == 2, run.log
    assert "config conflict" in run.log
    assert not (root / "destination-site").exists()


# -- Flywheel over HTTP, --network host ----------------------------------------------------------
@pytest.fixture
def flywheel(tmp_path):
    from tests.fwserver import FlywheelTestServer

    class WithAnalyses(FlywheelTestServer):
        """Adds GET /analyses/<id> (what the gear asks to find an analysis' parent)."""

        analyses: dict

        def _route(self, method, parts, query, body, headers):
            analysis_id = parts[1] if len(parts) == 2 and parts[0] == "analyses" else None
            if method == "GET" and analysis_id in self.analyses:
                return 200, self.analyses[parts[1]]
            return super()._route(method, parts, query, body, headers)

    server = WithAnalyses()
    server.analyses = {}
    server.start()
    patient = FAKE_PATIENTS[1]
    source = server.add_project("radiology", "study-b")
    subject = server.add_container("subject", source["_id"], patient.label)
    session = server.add_container("session", subject["_id"], f"{patient.iso_study_date} CT")
    acquisition = server.add_container("acquisition", session["_id"], "CT chest")
    dicom = _dicom("CT_small.dcm", patient, 1, tmp_path / "CT_small.dcm").read_bytes()
    file_doc = server.add_file(acquisition["_id"], "CT_small.dcm", dicom, type="dicom")
    destination = server.add_project("shared", "study-b-deid")
    try:
        yield (
            server,
            {
                "patient": patient,
                "source": source,
                "session": session,
                "acquisition": acquisition,
                "file": file_doc,
                "destination": destination,
            },
        )
    finally:
        server.stop()


def flywheel_config(server, profile: Path, **inputs) -> dict:
    document = local_config_json(
        {"destination_project": "shared/study-b-deid"}, {"deid_profile": profile}
    )
    document["inputs"]["api-key"] = {"base": "api-key", "key": server.api_key}
    document["inputs"].update(inputs)
    return document


def dest_files(server, destination) -> list[tuple[dict, dict]]:
    found = []
    stack = [destination["_id"]]
    while stack:
        parent = stack.pop()
        for child in server.children(parent):
            stack.append(child["_id"])
            found += [(child, entry) for entry in child.get("files", [])]
    return found


def test_file_mode_against_flywheel_over_http(gear_image, flywheel, tmp_path):
    server, seeded = flywheel
    profile = tmp_path / "demo_profile.yaml"
    profile.write_text(DEMO_PROFILE, encoding="utf-8")
    before = server.snapshot()
    input_file = {
        "base": "file",
        "hierarchy": {"type": "acquisition", "id": seeded["acquisition"]["_id"]},
        "location": {"path": f"{GEAR_ROOT}/input/input_file/CT_small.dcm", "name": "CT_small.dcm"},
        "object": {"file_id": seeded["file"]["file_id"], "type": "dicom"},
    }
    config_json = flywheel_config(server, profile, input_file=input_file)
    dicom = tmp_path / "CT_small.dcm"
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile, "input_file": dicom},
        network="host",
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 0, run.log
    assert run.report()["summary"]["by_state"]["exported"] == 1
    written = dest_files(server, seeded["destination"])
    assert len(written) == 1, written
    container, entry = written[0]
    data = server.file_bytes(container["_id"], entry["name"])
    for value in seeded["patient"].identifiers():
        assert value.encode() not in data
    labels = [c["label"] for c in server.children(seeded["destination"]["_id"])]
    assert seeded["patient"].label not in labels
    source_state = json.loads(before)
    assert json.loads(server.snapshot())["blobs"].keys() >= source_state["blobs"].keys()
    assert server.key not in run.log


def test_export_mode_on_an_analysis_against_flywheel_over_http(gear_image, flywheel, tmp_path):
    server, seeded = flywheel
    profile = tmp_path / "demo_profile.yaml"
    profile.write_text(DEMO_PROFILE, encoding="utf-8")
    server.analyses["analysis01"] = {
        "_id": "analysis01",
        "label": "deid export",
        "parent": {"type": "session", "id": seeded["session"]["_id"]},
        "parents": {"group": "radiology", "project": seeded["source"]["_id"]},
    }
    config_json = flywheel_config(server, profile)
    config_json["destination"] = {"type": "analysis", "id": "analysis01"}
    run = run_gear_container(
        gear_image,
        tmp_path / "job",
        config_json,
        inputs={"deid_profile": profile},
        network="host",
        env={"DEID_SECRET": SECRET},
    )
    assert run.returncode == 0, run.log
    assert run.report()["summary"]["source_type"] == "session"
    assert len(dest_files(server, seeded["destination"])) == 1
    assert run.metadata()["analysis"]["info"]["deid"]["mode"] == "export"
