"""Properties of the residual-PHI gate on arbitrary text: it never crashes, it always finds a planted
name token however it is surrounded, and redaction removes what it finds."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from fw_gear_deid.check import REDACTED, ResidualGate
from fw_gear_deid.check._text import fold
from fw_gear_deid.check._vocab import NEVER_IDENTIFYING
from fw_gear_deid.formats import SensitiveValue

_KINDS = st.sampled_from(["name", "id", "date", "datetime", "uid", "address", "text", "other", "x"])
_NAME = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=12)
_SEPARATORS = st.sampled_from([" ", "^", "_", "-", ".", ", ", "\\", "\x00", "/", "(", "=", "\n"])


@given(
    values=st.lists(st.tuples(_KINDS, st.text(max_size=40)), max_size=8),
    text=st.text(max_size=200),
)
def test_gate_never_crashes(values: list[tuple[str, str]], text: str) -> None:
    gate = ResidualGate([SensitiveValue(kind, value, "p") for kind, value in values])
    gate.scan_text("path", text)
    gate.redact(text)
    gate.scan_metadata("subject", {"label": text, "info": {text: [text, 1, None]}, "tags": [text]})


@given(
    family=_NAME,
    given_name=_NAME,
    before=st.text(alphabet="abc 0123.,;", max_size=20),
    after=st.text(alphabet="abc 0123.,;", max_size=20),
    sep=_SEPARATORS,
    lower=st.booleans(),
)
def test_planted_name_is_always_found_and_redacted(
    family: str, given_name: str, before: str, after: str, sep: str, lower: bool
) -> None:
    assume(fold(family) not in NEVER_IDENTIFYING)
    gate = ResidualGate([SensitiveValue("name", f"{family}^{given_name}", "PatientName")])
    planted = family.lower() if lower else family
    text = f"{before} {planted}{sep}{after}"
    assert "name" in gate.kinds_in(text)
    redacted = gate.redact(text)
    assert REDACTED in redacted
    assert "name" not in gate.kinds_in(redacted.replace(REDACTED, " "))


@given(
    year=st.integers(1901, 2100),
    month=st.integers(1, 12),
    day=st.integers(1, 28),
    style=st.sampled_from(
        ["{y}{m:02d}{d:02d}", "{y}-{m:02d}-{d:02d}", "{m}/{d}/{y}", "{d}.{m}.{y}"]
    ),
)
def test_planted_date_is_found_in_any_style(year: int, month: int, day: int, style: str) -> None:
    gate = ResidualGate([SensitiveValue("date", f"{year}{month:02d}{day:02d}", "StudyDate")])
    assume(gate)
    text = "seen " + style.format(y=year, m=month, d=day) + " ok"
    assert gate.kinds_in(text) == {"date"}
