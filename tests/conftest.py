"""Fixtures shared by every test: real public DICOM files and a keyed secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from fw_gear_deid.keys import Keys

TEST_SECRET = "test-secret-not-for-production"


@pytest.fixture
def keys() -> Keys:
    return Keys(TEST_SECRET)


@pytest.fixture
def ct_small() -> Path:
    """pydicom's CT_small.dcm: explicit VR little endian CT with a patient name and UIDs."""
    return Path(get_testdata_file("CT_small.dcm"))


@pytest.fixture
def mr_small() -> Path:
    return Path(get_testdata_file("MR_small.dcm"))
