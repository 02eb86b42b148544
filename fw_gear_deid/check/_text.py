"""Normalisation and tokenisation shared by the needles (source values) and the haystacks (outputs).

Both sides go through the same functions, so a match never depends on case, accents, Unicode width,
padding or the punctuation people put between the parts of a value: ``DOE^JOHN``, ``John Doe``,
``doe_john.dcm`` and ``JohnDoe`` all yield the tokens ``doe`` and ``john``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

#: A run of letters and digits (Unicode aware; ``_`` is a separator, as in file names).
_RUN = re.compile(r"[^\W_]+")
#: The pieces of a run: digits and letters apart, so ``AB12345`` is ``ab`` + ``12345``.
_PIECE = re.compile(r"\d+|[^\W\d_]+")
#: Ordinal suffixes dropped after a number (``January 2nd``), so dates match however written.
_ORDINALS = frozenset({"st", "nd", "rd", "th"})
#: A UID-like run: numbers joined by dots, not preceded by a digit (maximal, left to right).
UID_RUN = re.compile(r"(?<![0-9])[0-9]+(?:\.[0-9]+)+")


def is_cjk(char: str) -> bool:
    """Characters of scripts written without spaces (Han, Kana, Hangul): worth two Latin letters."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # Hiragana, Katakana
        or 0x3400 <= code <= 0x9FFF  # CJK unified ideographs (+ extension A)
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x2FA1F  # CJK extensions B..F, compatibility supplement
    )


def weight(token: str) -> int:
    """The meaningful length of a token: a Han character carries as much as two Latin letters."""
    return sum(2 if is_cjk(char) else 1 for char in token)


def normalize_text(text: str) -> str:
    """NFKC (full-width digits, ligatures), DICOM padding stripped."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.replace("\x00", " ")


@lru_cache(maxsize=1 << 16)
def fold(token: str) -> str:
    """Case- and accent-insensitive form of one token; one- and two-digit numbers lose leading zeros
    (``01`` and ``1`` are the same month). Cached: outputs repeat the same words."""
    if token.isascii():
        folded = token.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", token)
        folded = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    if len(folded) <= 2 and folded.isdigit():
        folded = folded.lstrip("0") or "0"
    return folded


def _camel_parts(piece: str) -> list[tuple[int, int]]:
    """Spans of the words of a camel-cased letter piece (``JohnDoe`` -> ``John``, ``Doe``)."""
    if len(piece) < 2 or piece.islower() or piece.isupper() or piece[1:].islower():
        return [(0, len(piece))]  # the common cases, without a loop
    cuts = [0]
    for i in range(1, len(piece)):
        before, here = piece[i - 1], piece[i]
        after = piece[i + 1] if i + 1 < len(piece) else ""
        if (before.islower() and here.isupper()) or (
            before.isupper() and here.isupper() and after.islower()
        ):
            cuts.append(i)
    cuts.append(len(piece))
    return [(cuts[j], cuts[j + 1]) for j in range(len(cuts) - 1)]


def _date_prefix(digits: str) -> str | None:
    """The YYYYMMDD head of a DICOM DT-like digit run (``20200102103000``), if it is a real date."""
    if not 9 <= len(digits) <= 21:
        return None
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if 1800 <= year <= 2200 and 1 <= month <= 12 and 1 <= day <= 31:
        return digits[:8]
    return None


_HEX = frozenset("0123456789abcdefABCDEF")


def _is_hex_digest(run: str) -> bool:
    """A run of 12+ hex digits mixing letters and digits: a hash, not words and numbers."""
    return (
        len(run) >= 12
        and all(char in _HEX for char in run)
        and any(char.isdigit() for char in run)
        and any(char.isalpha() for char in run)
    )


@dataclass
class Tokens:
    """A haystack (or needle) broken into tokens.

    ``seq`` is the fine-grained token sequence that phrases are matched against; ``units`` adds, for
    single-token lookups, the unsplit runs (``mcdonald`` as well as ``mc`` + ``donald``) and the date
    head of DT values. Spans index into :attr:`text` (the NFKC form), for redaction.
    """

    text: str
    seq: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    units: list[tuple[str, int, int]] = field(default_factory=list)


def tokenize(text: str) -> Tokens:
    text = normalize_text(text)
    out = Tokens(text)
    for run in _RUN.finditer(text):
        start = run.start()
        out.units.append((fold(run.group()), *run.span()))
        if _is_hex_digest(run.group()):
            # a keyed pseudonym or hash (our own hash outputs): its letters are chance, not words
            out.seq.append(fold(run.group()))
            out.spans.append(run.span())
            continue
        previous_digits = False
        for piece in _PIECE.finditer(run.group()):
            raw = piece.group()
            p_start = start + piece.start()
            if raw[0].isdigit():
                head = _date_prefix(raw)
                if head is not None:
                    out.units.append((head, p_start, p_start + 8))
                out.seq.append(fold(raw))
                out.spans.append((p_start, p_start + len(raw)))
                previous_digits = True
                continue
            if previous_digits and raw.casefold() in _ORDINALS:
                previous_digits = False
                continue
            previous_digits = False
            parts = _camel_parts(raw)
            if len(parts) > 1:
                out.units.append((fold(raw), p_start, p_start + len(raw)))
            for a, b in parts:
                out.seq.append(fold(raw[a:b]))
                out.spans.append((p_start + a, p_start + b))
    for token, (a, b) in zip(out.seq, out.spans, strict=True):
        out.units.append((token, a, b))
    return out


def token_seq(text: str) -> list[str]:
    """Just the folded token sequence of ``text`` (for building needles)."""
    return tokenize(text).seq


#: Letter/digit pieces and whole runs of lowercased ASCII text, for the gate's quick pre-check.
PIECES = re.compile(r"\d+|[a-z]+")
RUNS = re.compile(r"[a-z0-9]+")
#: Case changes inside a word: the camel-case split may create tokens the pre-check cannot see.
CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
#: Long digit runs: a DT value's date head is a token of its own.
LONG_DIGITS = re.compile(r"\d{9}")
