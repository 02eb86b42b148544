"""Every format handler, fed mutations of valid files, fails only with MalformedFileError.

A handler that accepts a mutated file must leave a complete output that its own ``text_values`` and
the residual-PHI gate can read; one that rejects it must leave nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fw_gear_deid.check import UNSCANNABLE, ResidualGate
from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats import SECTION_NAMES, DeidContext, SensitiveValue

from .strategies import mutated
from .targets import KEYS, handler, seeds

GATE = ResidualGate(
    [SensitiveValue("name", "DOE^JOHN", "x"), SensitiveValue("date", "20200102", "y")]
)


def _run(section: str, payload: bytes, *, preview: bool = False) -> None:
    h = handler(section)
    name, _ = seeds(section)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src" / name
        src.parent.mkdir()
        src.write_bytes(payload)
        out = Path(tmp) / "out"
        out.mkdir()
        dst = None if preview else out / "deid-output"
        ctx = DeidContext(keys=KEYS, subject="S01", source_name=name)
        try:
            outcome = h.deidentify(src, dst, ctx)
        except MalformedFileError as error:
            assert name in str(error)  # noqa: PT017 - raising is one valid outcome
            assert os.listdir(out) == [], "a rejected file left output behind"
            return
        assert src.read_bytes() == payload, "the source changed"
        if preview:
            assert os.listdir(out) == [], "a preview wrote something"
            return
        assert dst is not None
        assert dst.is_file()
        assert outcome.output_name
        # the output must be readable by the scan that guards it
        list(h.text_values(dst))
        assert all(hit.kind != UNSCANNABLE for hit in GATE.scan_file(h, dst))


@pytest.mark.parametrize("section", [s for s in SECTION_NAMES if s != "dicom"])
@given(data=st.data())
def test_handler_survives_mutated_files(section: str, data: st.DataObject) -> None:
    handler(section)  # skip early (with the reason) when the handler is not committed
    _, seed_list = seeds(section)
    _run(section, data.draw(mutated(seed_list, focus=1024), label="payload"))


@pytest.mark.parametrize("section", [s for s in SECTION_NAMES if s != "dicom"])
@given(payload=st.binary(max_size=512))
def test_handler_survives_random_bytes(section: str, payload: bytes) -> None:
    handler(section)
    _run(section, payload)


@pytest.mark.parametrize("section", SECTION_NAMES)
def test_valid_seeds_are_accepted(section: str) -> None:
    """The seeds are valid files: the fuzzing above starts from input the handler really takes."""
    h = handler(section)
    name, seed_list = seeds(section)
    for payload in seed_list:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / name
            src.write_bytes(payload)
            dst = Path(tmp) / "deid-output"
            h.deidentify(src, dst, DeidContext(keys=KEYS, subject="S01", source_name=name))
            assert dst.is_file()
