"""Turn the source's sensitive values into needles, one small class per kind of value.

Every matcher writes into one shared :class:`NeedleIndex`, which is what the gate looks up for each
output text: a set lookup per token plus a first-token index for multi-token phrases, so a file is
scanned in one pass whatever the number of values. Each matcher decides *what* is worth looking for
(the false-positive policy, documented in docs/residual-phi.md) and can :meth:`Matcher.describe`
itself without revealing any value.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from fw_gear_deid.check._text import fold, is_cjk, normalize_text, token_seq, weight
from fw_gear_deid.check._vocab import NEVER_IDENTIFYING, common_vocabulary

#: UIDs under the DICOM standard's root name classes and transfer syntaxes, never a patient.
_STANDARD_UID_ROOT = "1.2.840.10008."
_UID_VALUE = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
#: Source places whose UIDs identify software, not a patient (by keyword or tag).
_SOFTWARE_UID_PATH = re.compile(
    r"(InstanceCreatorUID|ImplementationClassUID|\(0008,0014\)|\(0002,0012\))$", re.IGNORECASE
)

_MONTHS = (
    ("jan", "january"),
    ("feb", "february"),
    ("mar", "march"),
    ("apr", "april"),
    ("may", "may"),
    ("jun", "june"),
    ("jul", "july"),
    ("aug", "august"),
    ("sep", "september", "sept"),
    ("oct", "october"),
    ("nov", "november"),
    ("dec", "december"),
)
_MONTH_NUMBER = {name: number for number, names in enumerate(_MONTHS, 1) for name in names}


@dataclass(frozen=True)
class MatchPolicy:
    """The thresholds of the false-positive policy (docs/residual-phi.md)."""

    #: Shortest name token searched alone (Han/Kana/Hangul characters count double).
    min_token_length: int = 3
    #: Shortest free-text / address token searched alone (and only if not common vocabulary).
    min_text_token_length: int = 4
    #: Shortest ID searched (letters and digits only); an ID of digits alone needs one more.
    min_id_length: int = 4
    #: Shortest literal used by the raw-bytes backstop (which also sees pixel-like data).
    raw_min_length: int = 8
    #: Folded values the profile writes by design (replacement constants): never needles.
    allow: frozenset[str] = frozenset()


@dataclass
class NeedleIndex:
    """Everything the gate looks for, by folded form, with the kinds of value it came from."""

    tokens: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: first token -> [(whole phrase, kind)]
    phrases: dict[str, list[tuple[tuple[str, ...], str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    uids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Substrings in scripts written without spaces (searched inside runs, not as whole tokens).
    cjk: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Long casefolded literals for the raw-bytes backstop.
    raw: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_token(self, token: str, kind: str) -> None:
        if any(is_cjk(char) for char in token):
            self.cjk[token].add(kind)
        else:
            self.tokens[token].add(kind)

    def add_phrase(self, tokens: Iterable[str], kind: str) -> None:
        phrase = tuple(tokens)
        if len(phrase) == 1:
            self.add_token(phrase[0], kind)
        elif phrase and (phrase, kind) not in self.phrases[phrase[0]]:
            self.phrases[phrase[0]].append((phrase, kind))

    def add_raw(self, literal: str, kind: str, policy: MatchPolicy) -> None:
        literal = unicodedata.normalize("NFKC", literal).strip().casefold()
        if len(literal) >= policy.raw_min_length and any(char.isalpha() for char in literal):
            self.raw[literal].add(kind)

    def __len__(self) -> int:
        return (
            len(self.tokens)
            + sum(len(v) for v in self.phrases.values())
            + len(self.uids)
            + len(self.cjk)
        )


class Matcher(ABC):
    """Derives needles from the sensitive values of some kinds."""

    #: The ``SensitiveValue.kind`` values this matcher takes.
    kinds: tuple[str, ...] = ()
    label: str = ""

    def __init__(self, index: NeedleIndex, policy: MatchPolicy):
        self.index = index
        self.policy = policy
        self.values = 0
        self.ignored = 0

    def add(self, kind: str, value: str) -> None:
        """Derive needles from one source value (counts only are remembered here)."""
        self.values += 1
        if not self._add(kind, normalize_text(value).strip()):
            self.ignored += 1

    @abstractmethod
    def _add(self, kind: str, value: str) -> bool:
        """Add needles for ``value``; False when nothing in it is worth searching."""

    def describe(self) -> str:
        return (
            f"{self.label}: {self.values} value(s), {self.values - self.ignored} searched, "
            f"{self.ignored} too short/common to search ({self.rule})"
        )

    rule: str = ""

    # -- helpers shared by the subclasses -------------------------------------------------------
    def _allowed(self, folded: str) -> bool:
        return folded in self.policy.allow

    def _meaningful_word(self, token: str, minimum: int, vocabulary: frozenset[str]) -> bool:
        if token in vocabulary or token in self.policy.allow:
            return False
        if token.isdigit():
            # numbers are measurements far more often than identifiers: only long ones
            return len(token) >= max(minimum, 5)
        return weight(token) >= minimum


class UidMatcher(Matcher):
    """UIDs: exact, whole-UID match (``1.2.3`` never matches inside ``1.2.3.4``); standard-defined
    UIDs (classes, transfer syntaxes) are public and never searched."""

    kinds = ("uid",)
    label = "UidMatcher"
    rule = "exact whole UID, standard 1.2.840.10008.* UIDs ignored"

    def add(self, kind: str, value: str, source_path: str = "") -> None:
        if _SOFTWARE_UID_PATH.search(source_path):
            # the UID of the software/device that wrote the file (DCMTK uses its implementation UID
            # as InstanceCreatorUID): it is also in every output's file meta, and names no patient
            self.values += 1
            self.ignored += 1
            return
        super().add(kind, value)

    def _add(self, kind: str, value: str) -> bool:
        found = False
        for uid in value.replace("\\", " ").split():
            uid = uid.strip().rstrip(".")
            if not _UID_VALUE.fullmatch(uid) or uid.startswith(_STANDARD_UID_ROOT):
                continue
            if len(uid) < 8 or uid in self.policy.allow:
                continue
            self.index.uids[uid].add(kind)
            if len(uid) >= self.policy.raw_min_length:
                self.index.raw[uid].add(kind)
            found = True
        return found


class NameMatcher(Matcher):
    """Person and organisation names: every component token (``DOE^JOHN`` -> ``doe``, ``john``) as a
    whole token, plus the full name as a phrase in both orders (catches short components such as
    ``LI^WEI`` written ``Wei Li``). Titles, placeholders and vendor words are ignored."""

    kinds = ("name",)
    label = "NameMatcher"
    rule = "tokens >= min_token_length, titles/placeholders ignored; full name as phrase"

    def _add(self, kind: str, value: str) -> bool:
        found = False
        # PN: up to three component groups (alphabetic=ideographic=phonetic), each family^given^...
        for group in value.replace("\\", "=").split("="):
            tokens = [t for t in token_seq(group) if t not in NEVER_IDENTIFYING]
            for token in tokens:
                if self._meaningful_word(token, self.policy.min_token_length, frozenset()):
                    self.index.add_token(token, kind)
                    found = True
                    if len(token) >= self.policy.raw_min_length:
                        self.index.raw[token].add(kind)
            # unsplit runs too: "McDonald" is looked up as "mcdonald" as well as "donald"
            for run in re.findall(r"[^\W\d_]+", group):
                whole = fold(run)
                if (
                    whole not in NEVER_IDENTIFYING
                    and weight(whole) >= self.policy.min_token_length
                    and not self._allowed(whole)
                ):
                    self.index.add_token(whole, kind)
            if len(tokens) >= 2 and sum(weight(t) for t in tokens) >= self.policy.min_token_length:
                self.index.add_phrase(tokens, kind)
                self.index.add_phrase(reversed(tokens), kind)
                # written together, as in file names: JOHNDOE, DOEJOHN
                self.index.add_token(tokens[0] + tokens[1], kind)
                self.index.add_token(tokens[1] + tokens[0], kind)
                found = True
            if tokens and not self._allowed(fold(group.strip())):
                self.index.add_raw(group, kind, self.policy)
                if "^" in group:
                    parts = [p for p in group.split("^") if p.strip()]
                    self.index.add_raw(" ".join(reversed(parts[:2])), kind, self.policy)
        return found


class IdMatcher(Matcher):
    """Identifiers (patient ID, accession, phone numbers): the whole ID as a token phrase, so
    ``AB-12345`` also matches ``ab 12345``; long digit components alone. IDs that are UIDs go to
    the UID rule."""

    kinds = ("id",)
    label = "IdMatcher"
    rule = "whole ID >= min_id_length (+1 if digits only); digit parts >= 7 alone"

    def __init__(self, index: NeedleIndex, policy: MatchPolicy, uids: UidMatcher):
        super().__init__(index, policy)
        self._uids = uids

    def _add(self, kind: str, value: str) -> bool:
        if _UID_VALUE.fullmatch(value):
            return self._uids._add(kind, value)
        found = False
        for part in value.split("\\"):
            tokens = token_seq(part)
            if not tokens or self._allowed(fold(part.strip())):
                continue
            length = sum(len(t) for t in tokens)
            digits_only = all(t.isdigit() for t in tokens)
            if length < self.policy.min_id_length + (1 if digits_only else 0):
                continue
            if len(set("".join(tokens))) == 1 or all(t in NEVER_IDENTIFYING for t in tokens):
                continue  # 0000, XXXXX, "ANONYMOUS": placeholders
            self.index.add_phrase(tokens, kind)
            found = True
            for token in tokens:
                # 6 digits is a time (HHMMSS) as often as a number; 7+ is an identifier
                if token.isdigit() and len(token) >= 7:
                    self.index.add_token(token, kind)
            literal = part.strip()
            if len(literal) >= self.policy.raw_min_length and (
                not digits_only or len(literal) >= 12
            ):
                self.index.raw[literal.casefold()].add(kind)
        return found


def parse_dates(value: str) -> list[_dt.date]:
    """Every calendar date ``value`` can mean (``01/02/2020`` is both Jan 2 and Feb 1)."""
    text = value.strip()
    found: list[_dt.date] = []

    def add(year: int, month: int, day: int) -> None:
        if not 1800 <= year <= 2200:
            return
        try:
            date = _dt.date(year, month, day)
        except ValueError:
            return
        if date not in found:
            found.append(date)

    if m := re.match(r"(\d{4})(\d{2})(\d{2})", text):  # DA, DT, compact
        add(int(m[1]), int(m[2]), int(m[3]))
    for m in re.finditer(r"(?<!\d)(\d{4})[-/. ](\d{1,2})[-/. ](\d{1,2})(?!\d)", text):
        add(int(m[1]), int(m[2]), int(m[3]))
    for m in re.finditer(r"(?<!\d)(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4})(?!\d)", text):
        add(int(m[3]), int(m[1]), int(m[2]))
        add(int(m[3]), int(m[2]), int(m[1]))
    for m in re.finditer(
        r"(?<![A-Za-z])([A-Za-z]{3,9})\.?\s*(\d{1,2})(?:st|nd|rd|th)?,?\s*(\d{4})", text
    ):
        if (month := _MONTH_NUMBER.get(m[1].lower())) is not None:
            add(int(m[3]), month, int(m[2]))
    for m in re.finditer(
        r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?[\s-]*([A-Za-z]{3,9})\.?[\s,-]*(\d{4})", text
    ):
        if (month := _MONTH_NUMBER.get(m[2].lower())) is not None:
            add(int(m[3]), month, int(m[1]))
    return found


class DateMatcher(Matcher):
    """Dates, in every way people write them: ``20200102``, ``2020-01-02``, ``01/02/2020`` (both
    month-first and day-first), ``02.01.2020``, ``Jan 2 2020``, ``2 January 2020``, ``2nd Jan, 2020``
    and the date head of a DT value. Times alone are not identifying and are ignored; two-digit years
    are not searched (too many false positives). Placeholder dates (Jan 1 of 1900 or earlier) are
    ignored because profiles write them."""

    kinds = ("date", "datetime")
    label = "DateMatcher"
    rule = "YMD/MDY/DMY with any separator, month names, compact; no 2-digit years"

    def _add(self, kind: str, value: str) -> bool:
        found = False
        for date in parse_dates(value):
            if date.year <= 1901 and date.month == 1 and date.day == 1:
                continue
            if self._allowed(f"{date:%Y%m%d}"):
                continue
            y, m, d = str(date.year), str(date.month), str(date.day)
            index = self.index
            index.add_token(f"{date:%Y%m%d}", kind)
            index.add_token(f"{date:%d%m%Y}", kind)
            index.add_token(f"{date:%m%d%Y}", kind)
            index.add_phrase((y, m, d), kind)
            index.add_phrase((m, d, y), kind)
            index.add_phrase((d, m, y), kind)
            for name in _MONTHS[date.month - 1]:
                index.add_phrase((name, d, y), kind)
                index.add_phrase((d, name, y), kind)
                index.add_phrase((y, name, d), kind)
            found = True
        return found


class AddressMatcher(Matcher):
    """Addresses: the whole address as a phrase, plus its distinctive words (street and town names,
    not ``street``/``road``) and postal codes of five or more digits."""

    kinds = ("address",)
    label = "AddressMatcher"
    rule = "whole address phrase; words >= min_text_token_length not common; postcodes >= 5 digits"

    def _add(self, kind: str, value: str) -> bool:
        tokens = token_seq(value)
        vocabulary = common_vocabulary()
        found = False
        if len(tokens) >= 2 and sum(len(t) for t in tokens) >= self.policy.min_id_length:
            self.index.add_phrase(tokens, kind)
            found = True
        for token in tokens:
            if self._meaningful_word(token, self.policy.min_text_token_length, vocabulary):
                self.index.add_token(token, kind)
                found = True
        return found


class TextMatcher(Matcher):
    """Free text (comments, descriptions, institution names): its words long enough to be meaningful
    and not common vocabulary (English function words, clinical words, DICOM attribute-name words),
    and long numbers. A whole sentence made only of common words is not identifying."""

    kinds = ("text",)
    label = "TextMatcher"
    rule = "words >= min_text_token_length not in common vocabulary; numbers >= 5 digits"

    def _add(self, kind: str, value: str) -> bool:
        vocabulary = common_vocabulary()
        found = False
        for token in token_seq(value):
            if self._meaningful_word(token, self.policy.min_text_token_length, vocabulary):
                self.index.add_token(token, kind)
                found = True
        # dates written inside free text ("seen on 2 Jan 2020") are dates
        for date_value in {f"{d:%Y%m%d}" for d in parse_dates(value)}:
            DateMatcher(self.index, self.policy)._add(kind, date_value)
            found = True
        return found


class OtherMatcher(Matcher):
    """Anything else a profile removed (occupation, ethnic group, age, weight...): the whole value
    as a phrase when it is long enough and not a bare number (measurements repeat everywhere)."""

    kinds = ("other",)
    label = "OtherMatcher"
    rule = "whole value >= 6 letters/digits with a letter, not common vocabulary"

    def _add(self, kind: str, value: str) -> bool:
        tokens = token_seq(value)
        if not tokens or sum(len(t) for t in tokens) < 6:
            return False
        if not any(t.isalpha() for t in tokens) or self._allowed(fold(value)):
            return False
        vocabulary = common_vocabulary()
        if all(t in vocabulary or t.isdigit() for t in tokens):
            return False
        self.index.add_phrase(tokens, kind)
        return True
