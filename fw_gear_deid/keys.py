"""Keyed (HMAC) pseudonyms, UID remapping and per-subject date offsets.

One :class:`Keys` object is built per job from the secret. Every pseudonym the gear makes is derived
from it, so a re-run, another worker process or a later upload for the same subject yields the same
output. The secret itself is never written anywhere; :attr:`Keys.fingerprint` identifies it in reports.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

#: Environment variable read when no secret is given explicitly.
SECRET_ENV = "DEID_SECRET"

#: A secret file larger than this is a wrong file (an image, an archive), not a key.
MAX_SECRET_BYTES = 64 * 1024

#: UID root for remapped UIDs: ``2.25.`` + a decimal integer (ISO/IEC 9834-8, no registration needed).
UUID_DERIVED_ROOT = "2.25."


@dataclass(frozen=True)
class DateShiftRange:
    """Inclusive range of days from which each subject's date offset is drawn (0 is never drawn)."""

    min_days: int = -3650
    max_days: int = -1

    def __post_init__(self) -> None:
        if self.min_days > self.max_days:
            raise ValueError(f"date shift range {self.min_days}..{self.max_days} is empty")
        if self.min_days == 0 == self.max_days:
            raise ValueError("date shift range 0..0 would leave dates unchanged")


class SecretFileError(ValueError):
    """A secret file that cannot be used. The message says why in a few words (no path, never any of
    the file's content): each caller puts its own prefix before it."""


def read_secret_file(path: str | os.PathLike[str]) -> str:
    """The secret held in ``path``: UTF-8 text, surrounding whitespace and the final newline removed.

    Raises :class:`SecretFileError` when it cannot be read, is larger than :data:`MAX_SECRET_BYTES`,
    is not UTF-8 or holds only whitespace: a secret file given is never silently replaced by another
    key (``$DEID_SECRET``, a throwaway one), which would make every pseudonym different.
    """
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_SECRET_BYTES + 1)
    except OSError as error:
        raise SecretFileError(f"cannot read it ({error.strerror})") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise SecretFileError(f"larger than {MAX_SECRET_BYTES} bytes")
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretFileError("not UTF-8 text") from None
    if not secret:
        raise SecretFileError("it is empty")
    return secret


class Keys:
    """Every keyed function of one job, derived from one secret."""

    def __init__(self, secret: str | bytes, date_shift: DateShiftRange | None = None):
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not secret:
            raise ValueError("the de-identification secret is empty")
        self._secret = secret
        self.date_shift = date_shift or DateShiftRange()
        self._uid_cache: dict[str, str] = {}
        self._offset_cache: dict[str, int] = {}

    @classmethod
    def from_env(cls, date_shift: DateShiftRange | None = None) -> Keys | None:
        """Keys from ``$DEID_SECRET``, or None when it is unset."""
        secret = os.environ.get(SECRET_ENV)
        return cls(secret, date_shift) if secret else None

    def __repr__(self) -> str:  # never show the secret
        return f"Keys(fingerprint={self.fingerprint!r})"

    @property
    def fingerprint(self) -> str:
        """A short public identifier of the secret, safe to record in reports."""
        return self.digest("fingerprint", "").hex()[:12]

    def digest(self, purpose: str, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` under the secret, separated by ``purpose`` (domain separation)."""
        message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def pseudonym(self, value: str, digits: int = 16, purpose: str = "hash") -> str:
        """A keyed hex pseudonym of ``value``, ``digits`` characters long."""
        return self.digest(purpose, value).hex()[:digits]

    def uid(self, uid: str) -> str:
        """The remapped UID of ``uid``: ``2.25.<decimal>``, at most 64 characters, same for every file."""
        uid = uid.strip().rstrip("\x00")
        cached = self._uid_cache.get(uid)
        if cached is None:
            # 128 bits as a decimal (at most 39 digits): 5 + 39 = 44 characters, always a valid UID.
            number = int.from_bytes(self.digest("uid", uid)[:16], "big")
            cached = f"{UUID_DERIVED_ROOT}{number}"
            self._uid_cache[uid] = cached
        return cached

    def date_offset_days(self, subject: str) -> int:
        """The subject's date offset in days: keyed, within :attr:`date_shift`, never 0."""
        cached = self._offset_cache.get(subject)
        if cached is None:
            cached = self._offset_cache[subject] = self._date_offset_days(subject)
        return cached

    def _date_offset_days(self, subject: str) -> int:
        low, high = self.date_shift.min_days, self.date_shift.max_days
        candidates = [day for day in (low, high) if day != 0]
        span = high - low + 1
        number = int.from_bytes(self.digest("date-offset", subject)[:8], "big")
        offset = low + number % span
        if offset == 0:  # the range straddles 0: step off it deterministically
            offset = 1 if high >= 1 else candidates[0]
        return offset
