"""The preset keeps instances valid: dicom-validator (PS3.3 2024e module tables) finds no error in an
output that its source did not have, over the whole pydicom corpus, with and without options."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.formats.dicom import DicomHandler
from fw_gear_deid.keys import Keys

from .conftest import corpus_files

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = ROOT / ".venv-reference" / "bin" / "python"
RUNNER = Path(__file__).with_name("_iod_runner.py")

pytestmark = pytest.mark.skipif(
    not REFERENCE_PYTHON.exists() and not os.environ.get("CI"),
    reason=".venv-reference missing: run scripts/setup (required, and never skipped, under CI)",
)


@pytest.mark.parametrize(
    "options",
    [
        [],
        [
            "retain-long-modified-dates",
            "clean-descriptors",
            "clean-structured-content",
            "retain-safe-private",
            "retain-patient-characteristics",
        ],
    ],
    ids=["basic", "with-options"],
)
def test_preset_output_has_no_new_iod_errors(options, tmp_path):
    handler = DicomHandler({"preset": "ps3.15-basic", "options": options, "fields": []})
    ctx = DeidContext(keys=Keys("iod"), subject="s")
    pairs = []
    for index, src in enumerate(corpus_files()):
        out = tmp_path / f"{index}.dcm"
        try:
            handler.deidentify(src, out, ctx)
        except MalformedFileError:
            continue
        pairs.append([str(src), str(out)])
    assert len(pairs) > 200
    completed = subprocess.run(
        [str(REFERENCE_PYTHON), str(RUNNER)],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert json.loads(completed.stdout) == {}
