"""Broken and hostile inputs become a clear error naming the file; nothing half-written remains."""

from __future__ import annotations

import os
import resource
import struct
from pathlib import Path

import pytest

from fw_gear_deid.check import guarded, run_guarded
from fw_gear_deid.errors import DeidError, MalformedFileError, ProfileError
from fw_gear_deid.formats import DeidContext

from .corpus import CASES, Case
from .handlers import KEYS, handler_for

FILE_CASES = [case for case in CASES if case.section != "profile"]
PROFILE_CASES = [case for case in CASES if case.section == "profile"]


def _assert_clear(error: DeidError, filename: str) -> None:
    message = str(error)
    assert filename in message, f"the error does not name the file: {message!r}"
    assert "Traceback" not in message
    assert "\n" not in message.strip(), f"not a one-line reason: {message!r}"


@pytest.fixture(autouse=True)
def _memory_cap():
    """A bomb that expands in memory fails the test instead of taking the machine down."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = 3 * 1024**3
    resource.setrlimit(
        resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
    )
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.id)
def test_broken_file_is_rejected_cleanly(case: Case, tmp_path: Path) -> None:
    handler = handler_for(case.section)
    src = case.write(tmp_path / "src")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "deid-output"
    ctx = DeidContext(keys=KEYS, subject="S01", source_name=src.name)
    before = src.read_bytes()
    try:
        outcome = handler.deidentify(src, dst, ctx)
    except MalformedFileError as error:
        _assert_clear(error, src.name)
        assert sorted(os.listdir(out_dir)) == [], "a failed file left output behind"
    else:
        assert case.may_succeed, f"{case.id}: accepted input that must be rejected"
        assert dst.is_file()
        assert outcome.output_name
        assert case.keeps in dst.read_bytes(), "undecodable bytes were not kept byte for byte"
    assert src.read_bytes() == before, "the source changed"


@pytest.mark.parametrize("case", PROFILE_CASES, ids=lambda case: case.id)
def test_broken_profile_is_rejected_cleanly(case: Case, tmp_path: Path) -> None:
    from fw_gear_deid.profile import load_profile

    path = case.write(tmp_path)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert path.name in str(caught.value)
    assert "Traceback" not in str(caught.value)


# -- the generic safety net ---------------------------------------------------------------------
def _recurse(n: int) -> int:
    return _recurse(n + 1) + 1


@pytest.mark.parametrize(
    ("fn", "reason"),
    [
        (lambda: _recurse(0), "nested too deep"),
        (lambda: struct.unpack("<I", b"\x00"), "truncated or inconsistent binary"),
        (lambda: b"\xff".decode("utf-8"), "not valid in its declared encoding"),
        (lambda: (_ for _ in ()).throw(MemoryError()), "memory exhausted"),
        (lambda: (_ for _ in ()).throw(EOFError()), "truncated"),
        (lambda: {}["PatientName DOE^JOHN"], "unexpected KeyError"),
    ],
)
def test_run_guarded_turns_crashes_into_value_free_errors(fn, reason: str, tmp_path: Path) -> None:
    partial = tmp_path / "partial.dcm"
    partial.write_bytes(b"half")
    with pytest.raises(MalformedFileError) as caught:
        run_guarded(fn, "scan.dcm", cleanup=[partial])
    assert caught.value.filename == "scan.dcm"
    assert reason in caught.value.reason
    assert "DOE" not in str(caught.value)  # exception messages are never quoted
    assert not partial.exists()


def test_guarded_passes_deid_errors_and_removes_partial_folders(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "inner").mkdir(parents=True)
    (work / "inner" / "x").write_bytes(b"x")
    with (
        pytest.raises(MalformedFileError, match="handler said so"),
        guarded("a.dcm", cleanup=[work, None]),
    ):
        raise MalformedFileError("a.dcm", "handler said so")
    assert not work.exists()


def test_guarded_keeps_outputs_of_successful_steps(tmp_path: Path) -> None:
    out = tmp_path / "ok"
    assert run_guarded(out.write_bytes, "a.dcm", b"done", cleanup=[out]) == 4
    assert out.read_bytes() == b"done"


def test_guarded_does_not_swallow_interrupts() -> None:
    with pytest.raises(KeyboardInterrupt), guarded("a.dcm"):
        raise KeyboardInterrupt


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.id)
def test_safety_net_leaves_only_clear_errors(case: Case, tmp_path: Path) -> None:
    """Through the pipeline's net, even a handler without its own guard yields a DeidError."""
    handler = handler_for(case.section)
    src = case.write(tmp_path / "src")
    dst = tmp_path / "deid-output"
    ctx = DeidContext(keys=KEYS, subject="S01", source_name=src.name)
    try:
        run_guarded(handler.deidentify, src.name, src, dst, ctx, cleanup=[dst])
    except DeidError as error:
        _assert_clear(error, src.name)
        assert not dst.exists()
