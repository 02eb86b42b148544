"""Residual-PHI gate: scan an output for the identifying values of its source (docs/residual-phi.md).

Public API::

    gate = ResidualGate(outcome.sensitive)            # or GateConfig(...).build(outcome.sensitive)
    hits = gate.scan_file(handler, tmp_output)        # list[Hit(path, kind)], never values
    hits += gate.scan_metadata("subject", {"label": ..., "info": {...}, "tags": [...]})
    gate.check_file(handler, tmp_output, name)        # raises ResidualPHIError on any hit

    run_guarded(fn, filename, *args, cleanup=[tmp])   # any crash -> MalformedFileError, tmp removed
    to_malformed(filename, exc)                       # the same conversion, for an existing except
"""

from fw_gear_deid.check._safety import guarded, run_guarded, to_malformed
from fw_gear_deid.check.config import CLI_FLAG, CONFIG_KEY, GateConfig
from fw_gear_deid.check.gate import REDACTED, UNSCANNABLE, Hit, ResidualGate

__all__ = [
    "CLI_FLAG",
    "CONFIG_KEY",
    "REDACTED",
    "UNSCANNABLE",
    "GateConfig",
    "Hit",
    "ResidualGate",
    "guarded",
    "run_guarded",
    "to_malformed",
]
