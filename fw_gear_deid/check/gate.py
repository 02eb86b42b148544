"""The residual-PHI gate: look for a source file's removed/replaced values in its outputs.

Built once per source file from the handler's :attr:`DeidOutcome.sensitive`; the export pipeline
calls :meth:`ResidualGate.scan_file` on the output (before it is renamed into place) and
:meth:`ResidualGate.scan_metadata` on the destination containers' labels, info and tags. Any hit blocks
the file. A :class:`Hit` names where and what kind of value, never the value: paths that would
themselves contain a sensitive value are redacted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fw_gear_deid.check._dicom import DicomReader, looks_like_dicom
from fw_gear_deid.check._raw import RawScanner
from fw_gear_deid.check._text import (
    CAMEL,
    LONG_DIGITS,
    PIECES,
    RUNS,
    UID_RUN,
    fold,
    normalize_text,
    token_seq,
    tokenize,
)
from fw_gear_deid.check.matchers import (
    _SOFTWARE_UID_PATH,
    AddressMatcher,
    DateMatcher,
    IdMatcher,
    Matcher,
    MatchPolicy,
    NameMatcher,
    NeedleIndex,
    OtherMatcher,
    TextMatcher,
    UidMatcher,
)
from fw_gear_deid.errors import ResidualPHIError

log = logging.getLogger(__name__)

#: Attributes that identify a coding scheme or an SR structure, not a person: a removed code
#: sequence's CodingSchemeUID is the same public UID as in every kept one. (CodeValue and CodeMeaning
#: are not here: in a person identification code sequence they name the person.)
_TERMINOLOGY_PATH = re.compile(
    r"(?:^|[.\]])(?:CodingScheme(?:Designator|Version|UID|Name|ResponsibleOrganization|"
    r"ResourcesSequence|Type)|Context(?:Identifier|UID|GroupVersion|GroupLocalVersion|"
    r"GroupExtensionFlag|GroupExtensionCreatorUID)|MappingResource(?:UID|Name)?|ValueType|"
    r"RelationshipType|\(0008,01(?:02|03|05|06|07|0B|0C|0D|0F|15|16|17|18|2[2-9])\)|"
    r"\(0040,A0(?:40|10)\))$"
)

#: What replaces a sensitive value found inside a hit's path.
REDACTED = "[redacted]"
#: Kind of the hit recorded when an output cannot be scanned at all (fail closed: it blocks).
UNSCANNABLE = "unscannable"


@dataclass(frozen=True)
class Hit:
    """Where a sensitive value was found and what kind it was; never the value itself."""

    path: str
    kind: str

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


class ResidualGate:
    """Scans outputs for the identifying values of one source file.

    ``sensitive`` is what the handler removed or replaced (``DeidOutcome.sensitive``, members
    included); ``allow`` lists values the profile writes by design (``replace-with`` constants) so a
    source that already held them is not a hit. The gate keeps no values in logs or hits; it is
    picklable and can be shared by worker processes.
    """

    def __init__(
        self,
        sensitive: Iterable[Any],
        *,
        min_token_length: int = 3,
        min_text_token_length: int = 4,
        min_id_length: int = 4,
        raw_min_length: int = 8,
        allow: Iterable[str] = (),
        raw_backstop: bool = True,
    ):
        allowed: set[str] = set()
        for value in allow:
            allowed.add(fold(normalize_text(str(value)).strip()))
            allowed.update(token_seq(str(value)))
        self.policy = MatchPolicy(
            min_token_length=min_token_length,
            min_text_token_length=min_text_token_length,
            min_id_length=min_id_length,
            raw_min_length=raw_min_length,
            allow=frozenset(allowed),
        )
        self.raw_backstop = raw_backstop
        self.index = NeedleIndex()
        uids = UidMatcher(self.index, self.policy)
        self.matchers: list[Matcher] = [
            NameMatcher(self.index, self.policy),
            IdMatcher(self.index, self.policy, uids),
            DateMatcher(self.index, self.policy),
            uids,
            AddressMatcher(self.index, self.policy),
            TextMatcher(self.index, self.policy),
            OtherMatcher(self.index, self.policy),
        ]
        by_kind = {kind: m for m in self.matchers for kind in m.kinds}
        paths: set[str] = set()
        for item in sensitive:
            paths.add(str(getattr(item, "path", "")))
            if _TERMINOLOGY_PATH.search(str(getattr(item, "path", ""))):
                continue  # names a vocabulary (SNOMED, DCM...), never a person
            kind, value = str(item.kind), item.value
            if isinstance(value, bytes | bytearray):
                value = bytes(value).decode("latin-1")
            if value is None or not str(value).strip():
                continue
            matcher = by_kind.get(kind, self.matchers[-1])
            source_path = str(getattr(item, "path", "")) if isinstance(matcher, UidMatcher) else ""
            _add_cached(matcher, kind, str(value), source_path)
        #: element paths the handler removed or replaced: every other element was left untouched
        self._sensitive_paths = frozenset(paths)
        self._raw = RawScanner(self.index.raw, self.index.uids) if raw_backstop else None
        # the quick pre-check: every single-token needle and the longest token of every phrase (a
        # phrase cannot match without it); short numbers also zero-padded, as in raw text
        starts: set[str] = set(self.index.tokens)
        for phrases in self.index.phrases.values():
            starts.update(max(phrase, key=len) for phrase, _ in phrases)
        starts |= {token.zfill(2) for token in starts if token.isdigit() and len(token) <= 2}
        self._starts = frozenset(starts)
        self._has_dates = any(len(t) == 8 and t.isdigit() for t in self.index.tokens)
        # plain dicts: picklable and no accidental insertion on lookup
        self.index.tokens = dict(self.index.tokens)
        self.index.phrases = dict(self.index.phrases)
        self.index.uids = dict(self.index.uids)
        self.index.cjk = dict(self.index.cjk)

    # -- introspection ----------------------------------------------------------------------------
    def __bool__(self) -> bool:
        """False when nothing in the source is worth searching (every scan then finds nothing)."""
        return len(self.index) > 0

    def describe(self) -> list[str]:
        """One line per matcher: how many values it took and searches (counts only, no values)."""
        lines = [m.describe() for m in self.matchers if m.values]
        raw = len(self._raw) if self._raw is not None else 0
        lines.append(
            f"raw-bytes backstop: {'on' if self._raw is not None else 'off'}, {raw} literal(s)"
        )
        return lines

    # -- matching ---------------------------------------------------------------------------------
    def _could_match(self, text: str) -> bool:
        """A quick, C-speed pre-check for ASCII text: False only when no needle can be in it
        (every needle needs one of :attr:`_starts` among the text's pieces or runs)."""
        low = text.lower()
        starts = self._starts
        if not starts.isdisjoint(PIECES.findall(low)) or not starts.isdisjoint(RUNS.findall(low)):
            return True
        if CAMEL.search(text) or (self._has_dates and LONG_DIGITS.search(text)):
            return True
        return bool(self.index.uids) and any(r in self.index.uids for r in UID_RUN.findall(text))

    def _find(self, text: str) -> dict[str, list[tuple[int, int, object]]]:
        """kind -> ``(start, end, needle)`` (spans in the NFKC text) of every needle in ``text``."""
        found: dict[str, list[tuple[int, int, object]]] = {}
        index = self.index
        if text.isascii() and not index.cjk and not self._could_match(text):
            return found
        tokens = tokenize(text)
        for token, start, end in tokens.units:
            for kind in index.tokens.get(token, ()):
                found.setdefault(kind, []).append((start, end, token))
        seq = tokens.seq
        for i, token in enumerate(seq):
            for phrase, kind in index.phrases.get(token, ()):
                if tuple(seq[i : i + len(phrase)]) == phrase:
                    end = tokens.spans[i + len(phrase) - 1][1]
                    found.setdefault(kind, []).append((tokens.spans[i][0], end, phrase))
        if index.uids:
            for run in UID_RUN.finditer(tokens.text):
                for kind in index.uids.get(run.group(), ()):
                    found.setdefault(kind, []).append((*run.span(), run.group()))
        if index.cjk:
            folded = tokens.text.casefold()
            for needle, kinds in index.cjk.items():
                at = folded.find(needle)
                if at != -1:
                    for kind in kinds:
                        found.setdefault(kind, []).append((at, at + len(needle), needle))
        return found

    def kinds_in(self, text: str) -> set[str]:
        """The kinds of sensitive value present in ``text`` (for tests and ``deid verify``)."""
        return set(self._find(text))

    def redact(self, text: str) -> str:
        """``text`` with every sensitive value found in it replaced by ``[redacted]``: makes a path
        (a JSON key, an archive member name) safe to put in a report."""
        spans = sorted(
            (start, end) for found in self._find(text).values() for start, end, _ in found
        )
        if not spans:
            return text
        normalized = tokenize(text).text
        merged: list[list[int]] = []
        for start, end in spans:  # overlapping spans (a phrase and its tokens) become one
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out, position = [], 0
        for start, end in merged:
            out.append(normalized[position:start])
            out.append(REDACTED)
            position = end
        out.append(normalized[position:])
        return "".join(out)

    def scan_text(self, path: str, text: str) -> list[Hit]:
        """Hits of one text value found at ``path`` in an output."""
        kinds = self._find(text)
        if not kinds:
            return []
        safe_path = self.redact(path)
        return [Hit(safe_path, kind) for kind in sorted(kinds)]

    def scan_values(self, values: Iterable[tuple[str, str]]) -> list[Hit]:
        """Hits of ``(path, text)`` values (container metadata and the like: every hit counts)."""
        hits: dict[Hit, None] = {}
        for path, text in values:
            if text is None:
                continue
            for hit in self.scan_text(str(path), str(text)):
                hits.setdefault(hit)
        return list(hits)

    # -- files ------------------------------------------------------------------------------------
    def scan_file(
        self,
        handler: Any,
        path: Path,
        *,
        dicom: bool | None = None,
        text_values: Callable[[], Iterable[tuple[str, str]]] | None = None,
    ) -> list[Hit]:
        """Every hit in one output file: the handler's text values, for DICOM an independent walk of
        every element (private OB/UN blobs as printable runs), and the raw-bytes backstop.

        Names, IDs, dates and UIDs are reported wherever they are. A free-text word (kinds ``text``,
        ``address``, ``other``) found in an element the profile did not touch was kept there by the
        profile, so it is not a leak, and the same word found elsewhere is not reported either.
        An output the scan cannot read yields a single ``unscannable`` hit: it blocks, fail closed.

        ``text_values`` (a handler's :attr:`DeidOutcome.text_values`) stands in for
        ``handler.text_values(path)``: the same values, taken from the data the handler has just
        written instead of a second parse. The DICOM walk and the raw-bytes backstop read the file.
        """
        path = Path(path)
        if not self:
            return []
        scan = _FileScan(self)
        if dicom is None:  # the DICOM walk: for the DICOM handler's outputs and DICM files
            dicom = getattr(handler, "section_name", None) == "dicom" or looks_like_dicom(path)
        is_dicom = dicom
        # readers are called inside the try: a handler may fail on the call or while iterating
        readers: list[tuple[str, Callable[[], None]]] = []
        if text_values is not None:
            readers.append(("handler", lambda: scan.feed_all(text_values())))
        elif handler is not None:
            readers.append(("handler", lambda: scan.feed_all(handler.text_values(path))))
        reader = DicomReader(path) if is_dicom else None
        if reader is not None:
            # the DICOM walk is the primary reader without a handler; with one, a second reader for
            # what a handler may not decode (binary values such as private vendor blobs)
            primary = handler is None
            readers.append(
                (
                    "dicom",
                    lambda: scan.feed_dicom(reader.elements(binary_only=not primary), primary),
                )
            )
        for name, read in readers:
            try:
                read()
            except Exception as error:  # any failure blocks the file (fail closed)
                log.warning(
                    "residual-PHI scan of %s could not read it (%s: %s); blocking it",
                    path.name,
                    name,
                    type(error).__name__,
                )
                scan.add(Hit(f"({name} reader)", UNSCANNABLE))
        if self._raw:
            skip = reader.pixel_range() if reader is not None else None
            try:
                for offset, kind in self._raw.scan(path, skip):
                    scan.add(Hit(f"raw bytes @{offset}", kind))
            except OSError as error:
                log.warning(
                    "raw scan of %s failed (%s); blocking it", path.name, type(error).__name__
                )
                scan.add(Hit("(raw bytes)", UNSCANNABLE))
        return scan.result()

    def scan_name(self, name: str) -> list[Hit]:
        """Hits in an output file name (``filenames`` rules, a DICOM renamed after a kept value).
        The path of such a hit is ``(file name)``: the name itself would be the value."""
        return [Hit("(file name)", kind) for kind in sorted(self._find(str(name)))]

    def check_file(
        self, handler: Any, path: Path, filename: str | None = None, output_name: str | None = None
    ) -> None:
        """:meth:`scan_file` (and :meth:`scan_name` of ``output_name``), raising
        :class:`ResidualPHIError` (paths and kinds only) on any hit."""
        hits = self.scan_file(handler, path)
        if output_name is not None:
            hits += self.scan_name(output_name)
        if hits:
            raise ResidualPHIError(filename or Path(path).name, hits)

    # -- container metadata -----------------------------------------------------------------------
    def scan_metadata(self, container_kind: str, metadata: Mapping[str, Any]) -> list[Hit]:
        """Hits in a destination container's metadata (label, info, tags, subject fields...), walked
        recursively; keys are scanned as well as values (an info key can be a name)."""
        return self.scan_values(_walk_metadata(container_kind, metadata, 0))


#: What one ``Matcher.add`` call derives, by (matcher, kind, value, UID source path, policy): the
#: same subject's names, IDs, dates, institution... recur in every file of a job, and deriving their
#: needles is most of building a gate. Per process, bounded; never logged or written anywhere.
_DERIVED: dict[tuple[Any, ...], _Needles] = {}
_DERIVED_LIMIT = 20_000


@dataclass(frozen=True)
class _Needles:
    """The effect of one ``Matcher.add`` on an empty index (keys in insertion order)."""

    values: int
    ignored: int
    tokens: tuple[tuple[str, frozenset[str]], ...]
    phrases: tuple[tuple[str, tuple[tuple[tuple[str, ...], str], ...]], ...]
    uids: tuple[tuple[str, frozenset[str]], ...]
    cjk: tuple[tuple[str, frozenset[str]], ...]
    raw: tuple[tuple[str, frozenset[str]], ...]


def _derive(matcher: Matcher, kind: str, value: str, source_path: str) -> _Needles:
    index = NeedleIndex()
    uids = UidMatcher(index, matcher.policy)
    fresh: Matcher
    if isinstance(matcher, UidMatcher):
        fresh = uids
        uids.add(kind, value, source_path)
    else:
        fresh = (
            IdMatcher(index, matcher.policy, uids)
            if isinstance(matcher, IdMatcher)
            else type(matcher)(index, matcher.policy)
        )
        fresh.add(kind, value)

    def sets(table: dict[str, set[str]]) -> tuple[tuple[str, frozenset[str]], ...]:
        return tuple((key, frozenset(kinds)) for key, kinds in table.items())

    return _Needles(
        fresh.values,
        fresh.ignored,
        sets(index.tokens),
        tuple((first, tuple(items)) for first, items in index.phrases.items()),
        sets(index.uids),
        sets(index.cjk),
        sets(index.raw),
    )


def _add_cached(matcher: Matcher, kind: str, value: str, source_path: str) -> None:
    """``matcher.add(kind, value[, source_path])``, derived once per process for a repeated value."""
    # a UID's source path matters only as "written by software" or not (UidMatcher.add)
    software = isinstance(matcher, UidMatcher) and bool(_SOFTWARE_UID_PATH.search(source_path))
    key = (type(matcher), kind, value, software, matcher.policy)
    needles = _DERIVED.get(key)
    if needles is None:
        needles = _derive(matcher, kind, value, source_path)
        if len(_DERIVED) >= _DERIVED_LIMIT:
            _DERIVED.clear()
        _DERIVED[key] = needles
    matcher.values += needles.values
    matcher.ignored += needles.ignored
    index = matcher.index
    for token, kinds in needles.tokens:
        index.tokens[token].update(kinds)
    for first, items in needles.phrases:
        known = index.phrases[first]
        for item in items:
            if item not in known:
                known.append(item)
    for uid, kinds in needles.uids:
        index.uids[uid].update(kinds)
    for text, kinds in needles.cjk:
        index.cjk[text].update(kinds)
    for literal, kinds in needles.raw:
        index.raw[literal].update(kinds)


#: Kinds that are identifying wherever they appear; the others are words of free text.
STRONG_KINDS = frozenset({"name", "id", "date", "datetime", "uid"})


class _FileScan:
    """Hits of one output file, with the kept-word rule for free text (see ``scan_file``)."""

    def __init__(self, gate: ResidualGate):
        self.gate = gate
        self.hits: dict[Hit, None] = {}
        #: free-text needles seen in elements the profile did not touch (kept by design)
        self.kept: set[object] = set()
        self.weak: list[tuple[Hit, set[object]]] = []

    def add(self, hit: Hit) -> None:
        self.hits.setdefault(hit)

    def feed(self, path: str, text: str, *, touched: bool, weak_ok: bool = True) -> None:
        found = self.gate._find(text)
        if not found:
            return
        safe_path = self.gate.redact(path)
        for kind, matches in sorted(found.items()):
            if kind in STRONG_KINDS:
                self.add(Hit(safe_path, kind))
                continue
            needles = {needle for _, _, needle in matches}
            if not touched:
                self.kept |= needles
            elif weak_ok:
                self.weak.append((Hit(safe_path, kind), needles))

    def feed_all(self, values: Iterable[tuple[str, str]]) -> None:
        changed = self.gate._sensitive_paths
        for element_path, text in values:
            if text is not None:
                self.feed(str(element_path), str(text), touched=str(element_path) in changed)

    def feed_dicom(self, elements: Iterable[Any], primary: bool) -> None:
        changed = self.gate._sensitive_paths
        for element in elements:
            # vendor blobs repeat removed descriptions (a Siemens CSA header holds the protocol
            # name): only names, IDs, dates and UIDs count there. With a handler, this walk only
            # backs it up for those kinds; the handler's reading decides about free text.
            touched = primary and not element.binary and element.path in changed
            self.feed(element.path, element.text, touched=touched, weak_ok=primary)

    def result(self) -> list[Hit]:
        for hit, needles in self.weak:
            if not needles <= self.kept:
                self.add(hit)
        return list(self.hits)


_MAX_METADATA_DEPTH = 100


def _walk_metadata(prefix: str, value: Any, depth: int) -> Iterator[tuple[str, str]]:
    if depth > _MAX_METADATA_DEPTH:
        yield prefix, "(nested too deep)"
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            yield f"{prefix}.{key_text}", key_text
            yield from _walk_metadata(f"{prefix}.{key_text}", item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield from _walk_metadata(f"{prefix}[{i}]", item, depth + 1)
    elif isinstance(value, datetime | date):
        yield prefix, value.isoformat()
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, str | int | float):
        yield prefix, str(value)
    elif isinstance(value, bytes):
        yield prefix, value.decode("latin-1")
    else:
        yield prefix, str(value)
