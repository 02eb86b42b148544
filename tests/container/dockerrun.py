"""Helpers of the image tests: docker CLI calls, and running the gear container like the engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))
IMAGE = MANIFEST["custom"]["gear-builder"]["image"]
BASE_IMAGE = "python:3.11-slim-bookworm"
GEAR_ROOT = "/flywheel/v0"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true but {reason}: the image tests must run in CI", pytrace=False)
    pytest.skip(f"{reason} (run scripts/docker-up as root, or scripts/test)")


@dataclass
class GearRun:
    returncode: int
    stdout: str
    stderr: str
    output: Path
    seconds: float

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def metadata(self) -> dict:
        return json.loads((self.output / ".metadata.json").read_text(encoding="utf-8"))

    def report(self) -> dict:
        reports = sorted(self.output.glob("deid-report-*.json"))
        assert len(reports) == 1, f"expected one JSON report in output/, got {reports}\n{self.log}"
        return json.loads(reports[0].read_text(encoding="utf-8"))


def run_gear_container(
    image: str,
    job_dir: Path,
    config_json: dict,
    inputs: dict[str, Path] | None = None,
    mounts: dict[Path, str] | None = None,
    network: str = "none",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> GearRun:
    """``docker run`` the gear as the engine does: config.json, input/<name>/<file>, output/ mounted
    into /flywheel/v0; ``mounts`` adds host folders (a local store) at container paths."""
    (job_dir / "output").mkdir(parents=True, exist_ok=True)
    (job_dir / "config.json").write_text(json.dumps(config_json, indent=2), encoding="utf-8")
    args = ["run", "--rm", "--network", network]
    args += ["-v", f"{job_dir / 'config.json'}:{GEAR_ROOT}/config.json:ro"]
    args += ["-v", f"{job_dir / 'output'}:{GEAR_ROOT}/output"]
    for name, path in (inputs or {}).items():
        target = job_dir / "input" / name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    if inputs:
        args += ["-v", f"{job_dir / 'input'}:{GEAR_ROOT}/input:ro"]
    for host, container in (mounts or {}).items():
        args += ["-v", f"{host}:{container}"]
    for name in env or {}:
        args += ["-e", name]  # the value comes from the environment below, never the command line
    args.append(image)
    start = time.monotonic()
    completed = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return GearRun(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        job_dir / "output",
        time.monotonic() - start,
    )
