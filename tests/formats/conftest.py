"""Shared helpers of the format tests: a context with keys, exiftool as an independent reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fw_gear_deid.formats import DeidContext
from fw_gear_deid.keys import Keys

sys.path.insert(0, str(Path(__file__).parent))

SUBJECT = "subject-0001"


@pytest.fixture
def ctx() -> DeidContext:
    return DeidContext(keys=Keys("format-tests-secret"), subject=SUBJECT, source_name="")


def named(ctx: DeidContext, name: str) -> DeidContext:
    from dataclasses import replace

    return replace(ctx, source_name=name)


def exiftool_dump(path: Path) -> str:
    """Everything exiftool reads from a file (all groups, unknown tags, duplicates), as JSON text."""
    exe = shutil.which("exiftool")
    if exe is None:  # scripts/setup installs it; only a bare local machine skips, never CI
        if os.environ.get("CI") == "true":
            pytest.fail(
                "exiftool is required under CI (scripts/setup installs libimage-exiftool-perl)"
            )
        pytest.skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
    result = subprocess.run(
        [exe, "-j", "-a", "-u", "-G1", "-ee", "-api", "RequestAll=3", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [tags] = json.loads(result.stdout)
    # file-system facts (path, dates of the temp file) are not content: leave them out
    content = {
        k: v for k, v in tags.items() if not k.startswith(("System:", "ExifTool:", "SourceFile"))
    }
    return json.dumps(content, ensure_ascii=False)
