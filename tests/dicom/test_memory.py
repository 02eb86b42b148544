"""Memory stays flat: a large multi-frame file is streamed, never loaded (issue 3 item 6)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

# VmHWM, not getrusage: Linux keeps ru_maxrss across execve, so a child of a large pytest
# process would report the parent's peak instead of its own.
_SCRIPT = """
import sys
from pathlib import Path
from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.formats.dicom import DicomHandler
from fw_gear_deid.keys import Keys
handler = DicomHandler({"preset": "ps3.15-basic", "fields": []})
handler.deidentify(Path(sys.argv[1]), Path(sys.argv[2]), DeidContext(keys=Keys("k"), subject="s"))
status = Path("/proc/self/status").read_text()
print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) // 1024)
"""


def _big_multiframe(ct_small: Path, path: Path, frames: int) -> int:
    """A multi-frame CT whose pixel data is a sparse region of the file (cheap to make)."""
    dataset = pydicom.dcmread(ct_small)
    del dataset.PixelData
    dataset.Rows = dataset.Columns = 512
    dataset.NumberOfFrames = frames
    length = 512 * 512 * 2 * frames
    dataset.save_as(path, enforce_file_format=True)
    with open(path, "ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length))
        start = handle.tell()
    with open(path, "r+b") as handle:
        handle.truncate(start + length)
    return start + length


@pytest.mark.slow
def test_one_gigabyte_multiframe_file_peaks_under_150_mb(ct_small, tmp_path):
    src, dst = tmp_path / "big.dcm", tmp_path / "out.dcm"
    size = _big_multiframe(ct_small, src, 2048)  # 1 GiB of pixel data
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(src), str(dst)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    peak_mb = int(completed.stdout.strip().splitlines()[-1])
    assert peak_mb < 150
    assert dst.stat().st_size > size - 10_000
    result = pydicom.dcmread(dst, stop_before_pixels=True)
    assert result.NumberOfFrames == 2048
    assert result.PatientIdentityRemoved == "YES"
