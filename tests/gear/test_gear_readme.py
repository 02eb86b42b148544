"""README.md stays in step with the gear: every option documented, every link and script present."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))


def test_every_input_and_config_option_is_in_the_reference_tables():
    for name in [*MANIFEST["inputs"], *MANIFEST["config"]]:
        assert f"| `{name}` |" in README, name


def test_config_defaults_in_the_readme_are_the_manifests():
    for name, spec in MANIFEST["config"].items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{name}` |"))
        default = row.split("|")[2].strip()
        if "default" in spec:
            value = spec["default"]
            expected = value if isinstance(value, str) and value else json.dumps(value)
            assert default.strip("`") == expected, (name, default, expected)
        else:
            assert default == "(required)", name


def test_linked_files_exist():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_the_two_commands_and_helpers_exist_and_are_executable():
    for script in (
        "demo",
        "test",
        "setup",
        "docker-up",
        "docker-down",
        "docker-build",
        "docker-lock",
    ):
        path = ROOT / "scripts" / script
        assert path.is_file(), script
        assert path.stat().st_mode & 0o111, script
        assert f"scripts/{script}" in README, script


def test_the_image_tag_in_the_readme_is_the_manifests():
    assert MANIFEST["custom"]["gear-builder"]["image"] in README
