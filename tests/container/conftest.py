"""Fixtures of the image tests: a reachable Docker daemon and the gear image built from this tree.

Tests marked ``docker`` skip when no daemon is reachable, unless ``CI=true``: then they fail, so CI can
never pass without really building and running the image. ``scripts/test`` (and ``.ci/run``) start a
daemon and make the base image first (scripts/docker-up).
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.container.dockerrun import BASE_IMAGE, IMAGE, ROOT, _docker, _unavailable


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    if shutil.which("docker") is None:
        _unavailable("no docker client on PATH")
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except subprocess.TimeoutExpired:
        _unavailable("the Docker daemon did not answer in 30 s")
    if info.returncode != 0:
        _unavailable("no Docker daemon is reachable")
    if _docker("image", "inspect", BASE_IMAGE).returncode != 0:
        _unavailable(f"the base image {BASE_IMAGE} is not present")


@pytest.fixture(scope="session")
def gear_image(docker_daemon) -> str:
    """Build the image with scripts/docker-build (host wheels, --network none) once per session."""
    start = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "scripts" / "docker-build")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, f"docker build failed:\n{build.stdout}\n{build.stderr}"
    print(f"built {IMAGE} in {time.monotonic() - start:.1f} s")
    return IMAGE
