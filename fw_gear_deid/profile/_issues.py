"""One problem found in a profile, and the dotted paths that locate it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathPart = str | int
Path_ = tuple[PathPart, ...]


@dataclass(frozen=True)
class ProfileIssue:
    """``FILE:LINE: dotted.path: message (did you mean 'X'?)``; ``line`` is 1-based."""

    source: str
    line: int
    path: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.source}:{self.line}: {self.path}: {self.message}{hint}"


def dotted(path: Sequence[PathPart]) -> str:
    """``("dicom", "fields", 3, "name")`` -> ``dicom.fields[3].name``; the root is ``(root)``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(root)"


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The valid word nearest to a misspelt one, for ``(did you mean X?)``."""
    if not isinstance(word, str):
        return None
    options = [choice for choice in choices if isinstance(choice, str)]
    by_lower = {choice.lower(): choice for choice in options}
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return by_lower[word.lower()]
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[matches[0]] if matches else None


def sort_issues(issues: Iterable[ProfileIssue]) -> list[ProfileIssue]:
    """Sorted by source and line, duplicates dropped (one mistake can surface twice)."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda issue: (issue.source, issue.line, issue.path, issue.message))
