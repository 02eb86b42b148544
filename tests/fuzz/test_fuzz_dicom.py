"""The DICOM reader/writer path on mutated real files (pydicom's test data).

Two readers are fuzzed: the DICOM handler (de-identify, then its own text values on the output) and
the residual-PHI gate's independent DICOM walk, which must turn anything into MalformedFileError or
an ``unscannable`` hit, never a crash.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fw_gear_deid.check import UNSCANNABLE, ResidualGate
from fw_gear_deid.check._dicom import dicom_texts
from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats import SensitiveValue

from .strategies import mutated
from .targets import handler, seeds
from .test_fuzz_formats import _run

GATE = ResidualGate(
    [
        SensitiveValue("name", "CompressedSamples^CT1", "PatientName"),
        SensitiveValue("id", "1CT1", "x"),
    ]
)


@given(data=st.data())
def test_dicom_handler_survives_mutated_files(data: st.DataObject) -> None:
    handler("dicom")
    _, seed_list = seeds("dicom")
    _run("dicom", data.draw(mutated(seed_list), label="payload"))


@given(data=st.data())
def test_dicom_preview_survives_mutated_files(data: st.DataObject) -> None:
    handler("dicom")
    _, seed_list = seeds("dicom")
    _run("dicom", data.draw(mutated(seed_list), label="payload"), preview=True)


@given(data=st.data())
def test_gate_dicom_walk_survives_mutated_files(data: st.DataObject) -> None:
    _, seed_list = seeds("dicom")
    payload = data.draw(mutated(seed_list), label="payload")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.dcm"
        path.write_bytes(payload)
        try:
            for element_path, text in dicom_texts(path):
                assert isinstance(element_path, str)
                assert isinstance(text, str)
        except MalformedFileError as error:
            assert error.filename == "out.dcm"  # noqa: PT017 - raising is one valid outcome
        # the gate itself never raises: an unreadable output is an 'unscannable' hit
        hits = GATE.scan_file(None, path)
        assert all(hit.kind in {"name", "id", UNSCANNABLE} for hit in hits)
