"""Error types shared by every stage.

Every error that reaches a user names the file (or profile) and the place inside it; tracebacks
never do. Each stage raises a subclass of :class:`DeidError` so callers can quarantine one file and go on.
"""

from __future__ import annotations


class DeidError(Exception):
    """Base of every error this package raises on purpose."""


class ProfileError(DeidError):
    """A de-id profile cannot be loaded or is invalid (carries every issue found)."""

    def __init__(self, source: str, issues: list | None = None, message: str | None = None):
        self.source = source
        self.issues = list(issues or [])
        text = message or "\n".join(str(issue) for issue in self.issues) or "invalid profile"
        super().__init__(f"{source}: {text}" if message else text)


class MalformedFileError(DeidError):
    """A source file cannot be read or de-identified; nothing is written for it."""

    def __init__(self, filename: str, reason: str):
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


class UnsupportedFileError(DeidError):
    """No profile section matches the file (fail closed: it is skipped, never copied raw)."""

    def __init__(self, filename: str, reason: str):
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


class ResidualPHIError(DeidError):
    """The residual-PHI gate found source identifiers in an output (paths and kinds only, no values)."""

    def __init__(self, filename: str, hits: list):
        self.filename = filename
        self.hits = list(hits)
        where = ", ".join(f"{hit.path} ({hit.kind})" for hit in self.hits[:10])
        more = f" and {len(self.hits) - 10} more" if len(self.hits) > 10 else ""
        super().__init__(f"{filename}: residual PHI at {where}{more}")


class StoreError(DeidError):
    """A store location cannot be read or written."""
