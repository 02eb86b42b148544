"""How the export pipeline and the gear turn the residual-PHI gate on (default) or off.

Turning it off is an explicit choice: :meth:`GateConfig.disabled` needs a reason, and
:meth:`GateConfig.announce` logs a WARNING that says what is no longer checked, once per job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fw_gear_deid.check.gate import ResidualGate

log = logging.getLogger("fw_gear_deid.check")

#: Gear config / CLI option names (documented in docs/residual-phi.md).
CONFIG_KEY = "residual-phi-check"
CLI_FLAG = "--no-residual-check"


@dataclass(frozen=True)
class GateConfig:
    """Settings of the residual-PHI gate for one job."""

    enabled: bool = True
    #: Why the gate is off (required to turn it off; goes to the log and the report).
    reason: str = ""
    min_token_length: int = 3
    raw_backstop: bool = True
    #: Values the profile writes by design (``replace-with`` constants): never treated as leaks.
    allow: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.enabled and not self.reason.strip():
            raise ValueError("turning the residual-PHI check off needs a reason")
        if self.min_token_length < 2:
            raise ValueError("min_token_length below 2 would match single letters everywhere")

    @classmethod
    def disabled(cls, reason: str) -> GateConfig:
        return cls(enabled=False, reason=reason)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GateConfig:
        """From gear config / CLI options: ``residual-phi-check`` (bool, default true) and
        ``residual-phi-check-reason`` (why it is off)."""
        enabled = options.get(CONFIG_KEY, True)
        if isinstance(enabled, str):
            enabled = enabled.strip().lower() not in {"false", "0", "no", "off"}
        if enabled:
            return cls()
        reason = str(options.get(f"{CONFIG_KEY}-reason") or f"{CONFIG_KEY} set to false")
        return cls.disabled(reason)

    def announce(self, logger: logging.Logger | None = None) -> None:
        """Log the choice once per job (a WARNING when off)."""
        logger = logger or log
        if self.enabled:
            logger.info("residual-PHI check: on (outputs with a source identifier are blocked)")
        else:
            logger.warning(
                "residual-PHI check: OFF (%s). Outputs are written without checking for the source's "
                "names, IDs, dates and UIDs that the profile missed.",
                self.reason,
            )

    def report_fields(self) -> dict[str, Any]:
        """What the run report records about the gate."""
        return {
            "residual_phi_check": self.enabled,
            "residual_phi_check_reason": self.reason or None,
        }

    def build(self, sensitive: Iterable[Any], allow: Iterable[str] = ()) -> ResidualGate | None:
        """The gate for one source file, or None when the check is off."""
        if not self.enabled:
            return None
        return ResidualGate(
            sensitive,
            min_token_length=self.min_token_length,
            raw_backstop=self.raw_backstop,
            allow=(*self.allow, *allow),
        )
