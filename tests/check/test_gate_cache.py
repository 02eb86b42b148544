"""Needles derived once per process (gate._add_cached) give the same gate as deriving them anew."""

from __future__ import annotations

import pytest

from fw_gear_deid.check import gate as gate_module
from fw_gear_deid.check.gate import ResidualGate
from fw_gear_deid.check.matchers import UidMatcher
from fw_gear_deid.formats import SensitiveValue

VALUES = [
    SensitiveValue("name", "SIMPSON^HOMER^J", "PatientName"),
    SensitiveValue("name", "McDonald^Ann", "ReferringPhysicianName"),
    SensitiveValue("name", "山田^太郎", "OtherPatientNames"),
    SensitiveValue("id", "PID-887766", "PatientID"),
    SensitiveValue("id", "1.2.826.0.1.3680043.8.498.9", "OtherPatientIDs"),
    SensitiveValue("date", "19560512", "PatientBirthDate"),
    SensitiveValue("datetime", "20200102101010", "AcquisitionDateTime"),
    SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.77.1", "StudyInstanceUID"),
    SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.77.2", "InstanceCreatorUID"),
    SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.77.2", "SOPInstanceUID"),
    SensitiveValue("address", "742 Evergreen Terrace, Springfield 12345", "PatientAddress"),
    SensitiveValue("text", "Seen by Dr Hibbert on 2 Jan 2020 at Springfield General", "Comments"),
    SensitiveValue("other", "Nuclear safety inspector", "Occupation"),
]


def _direct(matcher, kind, value, source_path):
    if isinstance(matcher, UidMatcher):
        matcher.add(kind, value, source_path)
    else:
        matcher.add(kind, value)


def _state(gate: ResidualGate):
    index = gate.index
    return (
        {k: set(v) for k, v in index.tokens.items()},
        {k: list(v) for k, v in index.phrases.items()},
        {k: set(v) for k, v in index.uids.items()},
        {k: set(v) for k, v in index.cjk.items()},
        [(k, set(v)) for k, v in index.raw.items()],
        gate.describe(),
        gate._starts,
    )


@pytest.mark.parametrize("allow", [(), ("SPRINGFIELD",)])
def test_cached_derivation_builds_the_same_gate(monkeypatch, allow):
    gate_module._DERIVED.clear()
    cold = _state(ResidualGate(VALUES, allow=allow))
    warm = _state(ResidualGate(VALUES, allow=allow))  # every value from the cache
    mixed = _state(ResidualGate(list(reversed(VALUES)), allow=allow))
    monkeypatch.setattr(gate_module, "_add_cached", _direct)
    reference = _state(ResidualGate(VALUES, allow=allow))
    assert cold == reference
    assert warm == reference
    assert mixed[:4] == _state(ResidualGate(list(reversed(VALUES)), allow=allow))[:4]


def test_cached_gate_still_finds_the_values():
    gate_module._DERIVED.clear()
    for _ in range(2):
        gate = ResidualGate(VALUES)
        assert gate.kinds_in("patient homer simpson, born 12 May 1956") == {"name", "date"}
        assert gate.kinds_in("uid 1.2.826.0.1.3680043.8.498.77.1") == {"uid"}
        # the software UID source path is not searched, the same UID under another path is
        assert "uid" in gate.kinds_in("1.2.826.0.1.3680043.8.498.77.2")


def test_software_uid_alone_is_ignored():
    gate_module._DERIVED.clear()
    value = SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.5", "InstanceCreatorUID")
    for _ in range(2):
        assert ResidualGate([value]).kinds_in("1.2.826.0.1.3680043.8.498.5") == set()
    other = SensitiveValue("uid", "1.2.826.0.1.3680043.8.498.5", "SOPInstanceUID")
    assert ResidualGate([other]).kinds_in("1.2.826.0.1.3680043.8.498.5") == {"uid"}
