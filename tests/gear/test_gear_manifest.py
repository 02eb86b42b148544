"""manifest.json against the gear spec: its JSON schema (two offline copies) and fw-gear's validator.

fw-gear 0.1.3 is the version flywheel-gear-toolkit 0.6.22 pins; its ``Manifest.validate()`` checks the
schema, the config defaults, that ``custom.gear-builder.image`` exists and that its tag equals
``version``. flywheel-gear-toolkit's own ``Manifest.validate()`` is run too.
"""

from __future__ import annotations

import json
import tomllib
import warnings
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

import fw_gear_deid
from fw_gear_deid.gear import GearSettings, manifest_defaults, read_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = ROOT / "manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def _spec_schemas() -> dict[str, dict]:
    return {
        # flywheel-gears ships the gear spec's schema as a top-level package "spec".
        "flywheel-gears spec/manifest.schema.json": json.loads(
            files("spec").joinpath("manifest.schema.json").read_text(encoding="utf-8")
        ),
        "fw-gear fw_gear/manifest.schema.json": json.loads(
            files("fw_gear").joinpath("manifest.schema.json").read_text(encoding="utf-8")
        ),
    }


@pytest.mark.parametrize("name", sorted(_spec_schemas()))
def test_manifest_matches_the_gear_spec_schema(manifest, name):
    schema = _spec_schemas()[name]
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(manifest)]
    assert errors == []


def test_fw_gear_manifest_validator_accepts_it():
    from fw_gear.manifest import Manifest

    Manifest(str(MANIFEST_PATH)).validate()  # raises ManifestValidationError(errors=[...])


def test_fw_gear_validator_rejects_a_tag_that_differs_from_the_version(manifest, tmp_path):
    from fw_gear.manifest import Manifest, ManifestValidationError

    broken = json.loads(json.dumps(manifest))
    broken["custom"]["gear-builder"]["image"] = "fw-gear-deid:9.9.9"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ManifestValidationError) as caught:
        Manifest(str(path)).validate()
    assert "version and docker image tag do not match" in caught.value.errors


def test_gear_toolkit_manifest_validator_accepts_it():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from flywheel_gear_toolkit.utils.manifest import Manifest

    Manifest(str(MANIFEST_PATH)).validate()


def test_version_is_the_package_version_everywhere(manifest):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert manifest["version"] == fw_gear_deid.__version__ == pyproject["project"]["version"]
    image = manifest["custom"]["gear-builder"]["image"]
    assert image == f"{manifest['name']}:{manifest['version']}"


def test_inputs_are_the_api_key_and_optional_files(manifest):
    inputs = manifest["inputs"]
    assert inputs["api-key"]["base"] == "api-key"
    assert not inputs["api-key"].get("read-only"), "the gear writes the destination project"
    for name in ("input_file", "deid_profile", "mapping_csv", "secret_file"):
        assert inputs[name]["base"] == "file"
        assert inputs[name]["optional"] is True
    assert set(inputs) == {"api-key", "input_file", "deid_profile", "mapping_csv", "secret_file"}


def test_every_option_is_described_and_typed(manifest):
    for name, spec in {**manifest["inputs"], **manifest["config"]}.items():
        assert len(spec.get("description", "")) >= 40, name
    for name, spec in manifest["config"].items():
        assert spec["type"] in ("string", "integer", "number", "boolean", "array"), name


def test_config_options_are_exactly_what_the_gear_reads(manifest):
    assert set(manifest["config"]) == set(GearSettings.__dataclass_fields__)


def test_manifest_defaults_are_the_gear_defaults(manifest):
    defaults = manifest_defaults(manifest)
    settings = read_settings({**defaults, "destination_project": "group/project"})
    for name, value in defaults.items():
        assert getattr(settings, name) == value, name
        assert getattr(GearSettings(destination_project="x"), name) == value, name


def test_defaults_are_safe(manifest):
    defaults = manifest_defaults(manifest)
    assert defaults["residual_phi_check"] is True
    assert defaults["dry_run"] is False
    assert defaults["conflict"] == "skip"
    assert "destination_project" not in defaults, "a destination must be chosen, never defaulted"


def test_no_config_option_carries_a_secret(manifest):
    for name in manifest["config"]:
        assert "key" not in name, name
        assert name != "secret", name
    assert "api-key" not in manifest["config"]


def test_a_config_json_for_a_run_validates_against_the_derived_schema(manifest):
    from fw_gear.manifest import Manifest

    schema = Manifest(str(MANIFEST_PATH)).derive_config_schema()
    config = {"config": {**manifest_defaults(manifest), "destination_project": "g/p"}}
    jsonschema.Draft4Validator(schema).validate(config)
    bad = {"config": {**config["config"], "workers": -1, "conflict": "overwrite"}}
    messages = sorted(
        error.message for error in jsonschema.Draft4Validator(schema).iter_errors(bad)
    )
    assert len(messages) == 2, messages


def test_environment_is_what_the_dockerfile_sets(manifest):
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    env_block = text.split("\nENV ", 1)[1].split("\n\n", 1)[0]
    pairs = [item.strip(" \\") for item in env_block.replace("\\\n", " ").split()]
    dockerfile_env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
    assert dockerfile_env == manifest["environment"]
