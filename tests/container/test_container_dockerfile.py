"""The Dockerfile and the image lock, checked without Docker: hadolint, layout, pins."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_slim_python_base_and_the_gear_layout():
    steps = instructions()
    bases = [args.split()[0] for kind, args in steps if kind == "FROM"]
    assert bases == ["python:3.11-slim-bookworm"] * 2, "a venv stage and the final image"
    final = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM") :]
    assert ("COPY", "--from=venv /opt/venv /opt/venv") in final
    assert not any(kind == "COPY" and "wheels" in args for kind, args in final)
    assert ("WORKDIR", "/flywheel/v0") in steps
    assert ("CMD", '["/flywheel/v0/run"]') in steps
    assert ("ENTRYPOINT", "[]") in steps
    copies = [args for kind, args in steps if kind == "COPY"]
    assert "manifest.json run.py /flywheel/v0/" in copies


def test_dependencies_go_into_a_venv_from_the_lock_and_pip_is_removed():
    run = " ".join(args for kind, args in instructions() if kind == "RUN")
    assert "python3 -m venv /opt/venv" in run
    assert "--requirement /tmp/requirements.txt" in run
    assert "--no-deps /tmp/wheels/fw_gear_deid-*.whl" in run
    assert (
        "/opt/venv/bin/python -m pip uninstall --yes --disable-pip-version-check pip setuptools"
        in run
    )
    assert '"$base_python" -m pip uninstall --yes' in run
    assert "apt-get" not in run, "no system packages (and so no compilers) are installed"


def test_the_build_context_holds_only_what_the_image_needs():
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        "*",
        "!Dockerfile",
        "!manifest.json",
        "!run.py",
        "!requirements.txt",
        "!wheels/",
        "wheels/.gitkeep",
    ]
    assert (ROOT / "wheels" / ".gitkeep").exists()


def test_the_lock_is_what_setup_resolved():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docker-lock"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_lock_pins_every_runtime_dependency_at_pyprojects_version():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = lock()
    for text in pyproject["project"]["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing from requirements.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
        assert str(requirement.specifier).startswith("=="), f"{name} is not pinned in pyproject"
    assert "fw-gear-deid" not in pins
    test_only = {
        canonicalize_name(Requirement(t).name)
        for t in pyproject["project"]["optional-dependencies"]["test"]
    }
    assert not test_only & set(pins), "test tools must not go into the image"


def test_manifest_and_run_py_stay_thin():
    run_py = (ROOT / "run.py").read_text(encoding="utf-8")
    code = [
        line for line in run_py.splitlines() if line.strip() and not line.startswith(("#", '"""'))
    ]
    assert len(code) <= 25
    assert "GearToolkitContext" in run_py
    assert (ROOT / "run.py").stat().st_mode & 0o111, "run.py must be executable"
