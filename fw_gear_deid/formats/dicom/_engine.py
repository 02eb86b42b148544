"""The DICOM rule engine: one walk over the header applies, per element, the profile fields, else the
preset, else the catch-alls (every PN, every instance UID, every date), then provenance.

Small classes, one concern each, chained by :class:`DicomEngine`:
:class:`UidRemapper`, :class:`DateShifter`, :class:`TextCleaner`, :class:`PrivateTagFilter`,
:class:`Provenance`. Each has ``describe()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import pydicom._uid_dict
import pydicom.config
from dateutil import relativedelta
from pydicom.datadict import (
    dictionary_has_tag,
    dictionary_keyword,
    dictionary_VR,
    private_dictionary_VR,
)
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import format_number_as_ds

from fw_gear_deid import STANDARD_EDITION, __version__
from fw_gear_deid.actions import REMOVE, ActionError, FieldAction, hashuid_for
from fw_gear_deid.formats._base import DeidContext, FieldChange, SensitiveValue
from fw_gear_deid.formats.dicom import _preset as P
from fw_gear_deid.formats.dicom._raw import (
    PIXEL_TAGS,
    UNDECODED,
    encode_items,
    encode_plain,
    implicit_vr,
    peek_value,
    plain_value,
    store_raw,
    store_raw_sequence,
    tag_key,
)
from fw_gear_deid.formats.dicom._reader import read_sequence_value
from fw_gear_deid.formats.dicom._rules import (
    FieldRule,
    Step,
    compile_fields,
    display_path,
    keyword_for_tag,
)
from fw_gear_deid.formats.dicom._values import (
    BINARY_VRS,
    FREE_TEXT_VRS,
    NUMERIC_VRS,
    dummy_value,
    empty_value,
    sensitive_kind,
    shift_da,
    shift_dt,
)
from fw_gear_deid.formats.dicom.selectors import PrivateSelector, TagSelector
from fw_gear_deid.standard import BASIC_PROFILE_CODE, OPTIONS

_WELL_KNOWN_UIDS = frozenset(pydicom._uid_dict.UID_dictionary)
# UI attributes naming classes, syntaxes, schemes or creators rather than instances: never remapped.
_CLASS_UID_KEYWORD = re.compile(
    r"(ClassUID|TransferSyntaxUID|CodingSchemeUID|CodingSchemeRegistry|MappingResourceUID|"
    r"ContextGroupExtensionCreatorUID|PrivateInformationCreatorUID|ImplementationClassUID|"
    r"ClassUIDInFile|TransferSyntaxUIDInFile|SOPClassesInStudy|CodingSchemeExternalID|"
    r"ApplicationContextName|ContextUID)"
)
_SENSITIVE_SKIP_VRS = frozenset({"DS", "IS", "AS", "TM", "CS", "US", "SS", "UL", "SL", "FL", "FD"})
#: VRs whose removed or replaced values are not listed for the residual gate.
_NOT_LISTED_VRS = _SENSITIVE_SKIP_VRS | BINARY_VRS | {"SQ"}
_PROVENANCE_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
#: The residual-gate kind of a (VR, keyword): a pure function, asked for every listed value.
_sensitive_kind = lru_cache(maxsize=4096)(sensitive_kind)


# Code Sequence Macro attributes: coded concepts from controlled terminologies, kept even inside a
# "dummy" or "clean" sequence (SR content) so the structure stays meaningful.
_CODE_TAGS = frozenset(
    {0x00080100, 0x00080102, 0x00080103, 0x00080104, 0x00080105, 0x00080106, 0x0008010B,
     0x0008010D, 0x0008010F, 0x00080117, 0x00080118, 0x00080119, 0x00080120, 0x00080121}
)  # fmt: skip
_PLAIN_TEXT_VRS = frozenset({"AE", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UT"})
# VRs whose generated values are stored pre-encoded (RawDataElement): pydicom writes an ASCII
# value of these as the text joined by backslashes, padded to even length (UI with NUL, others
# with a space), whatever the character set.
_RAW_SET_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "TM", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UT"}
)


def _decode_text(data: bytes, dataset: Dataset) -> list[str]:
    """The values of a raw text element, decoded with the dataset's first character set (Latin-1
    as a fallback): enough to list them as sensitive without pydicom's conversion."""
    if data.isascii() and b"\x1b" not in data:
        text = data.decode("ascii")  # every DICOM character set agrees on plain ASCII
        return [part.strip(" \x00") for part in text.split("\\")]
    encodings = dataset._character_set
    encoding = encodings[0] if isinstance(encodings, list | tuple) and encodings else encodings
    try:
        text = data.decode(encoding if isinstance(encoding, str) else "latin-1")
    except (LookupError, UnicodeDecodeError):
        text = data.decode("latin-1")
    return [part.strip(" \x00") for part in text.split("\\")]


def _put(dataset: Dataset, tag: int, vr: str, value: Any) -> None:
    """``dataset.<Keyword> = value`` for a public tag of dictionary VR ``vr``: an ASCII value is
    stored pre-encoded (see ``_encode_plain``); an element already there with another VR keeps it
    (pydicom's attribute assignment sets the value of the existing element)."""
    existing = dataset._dict.get(tag)
    encoded = encode_plain(vr, value) if existing is None or vr == existing.VR else None
    if encoded is None:
        setattr(dataset, keyword_for_tag(tag), value)
    else:
        store_raw(dataset, tag, vr, encoded)


def _sequence(dataset: Dataset, raw: Any, encoding: Any = None) -> DataElement:
    """A sequence element as ``dataset[tag]`` would convert it (``encoding``: the character set to
    decode with, the dataset's by default), without storing it: the header reader's item parser,
    pydicom's conversion for what it does not take."""
    if not isinstance(raw, RawDataElement):
        return raw
    encoding = encoding or dataset._character_set
    return read_sequence_value(raw, encoding) or convert_raw_data_element(
        raw, encoding=encoding, ds=dataset
    )


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


class UidRemapper:
    """One UID map for the job: ``Keys.uid`` (2.25.<int>) by default, or the section's ``hashuid``
    algorithm when the profile uses ``hashuid`` anywhere, so explicit and implicit remaps agree in
    every file. Well-known UIDs (pydicom's UID dictionary) and class/syntax/scheme attributes are never
    touched."""

    def __init__(self, section: Mapping[str, Any], use_hashuid: bool):
        self.section = section
        self.use_hashuid = use_hashuid

    @staticmethod
    def remappable(tag: int, uid: str) -> bool:
        if not uid or uid in _WELL_KNOWN_UIDS:
            return False
        keyword = keyword_for_tag(tag) or ""
        return not _CLASS_UID_KEYWORD.search(keyword)

    def remap(self, uid: str, ctx: DeidContext) -> str:
        uid = uid.strip().rstrip("\x00")
        if self.use_hashuid:
            return hashuid_for(self.section, uid, ctx.keys)
        return ctx.keys.uid(uid)

    def describe(self) -> str:
        scheme = "hashuid (section settings)" if self.use_hashuid else "keyed 2.25.<int>"
        return f"UID map: {scheme}; well-known and class UIDs untouched"


class DateShifter:
    """Whole-day shift of DA/DT values by the subject's offset, precision and time kept."""

    def __init__(self, days: int):
        self.days = days

    def shift(self, vr: str, value: str) -> str | None:
        return shift_da(value, self.days) if vr == "DA" else shift_dt(value, self.days)

    def describe(self) -> str:
        return f"dates: DA/DT shifted by {self.days} days (TM unchanged)"


class TextCleaner:
    """PS3.15 "C" on free text: the text is kept minus every identifying value found in the file's
    top-level names, IDs, addresses and institution (case-insensitive, 3+ characters)."""

    _SOURCES = (
        0x00100010, 0x00100020, 0x00101000, 0x00101001, 0x00101040, 0x00100021, 0x00080050,
        0x00080080, 0x00080081, 0x00080090, 0x00081050, 0x00081070, 0x00200010, 0x00101060,
        0x00101005, 0x00102154, 0x00081048, 0x00081060, 0x00321032, 0x00400006,
    )  # fmt: skip

    def __init__(self, dataset: Dataset):
        tokens: set[str] = set()
        for tag in self._SOURCES:
            elem = dataset.get(tag)
            if elem is None or elem.VR == "SQ":
                continue
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            for value in values:
                text = str(value or "")
                tokens.add(text)
                tokens.update(re.split(r"[\^=\s,]+", text))
        self.tokens = sorted((t for t in tokens if len(t.strip()) >= 3), key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(t) for t in self.tokens), re.IGNORECASE)
            if self.tokens
            else None
        )

    def clean(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub("", text)

    def describe(self) -> str:
        return f"clean: free text minus {len(self.tokens)} identifying token(s) of the file"


@dataclass
class PrivateTagFilter:
    """Private elements: ``remove`` (preset, or ``remove-private-tags``), ``safe`` (Retain Safe Private:
    only numeric-VR values survive, text and binary blobs go) or ``keep``. Elements a profile field names
    with ``(gggg,"creator",ee)`` survive with their creator element."""

    mode: str

    def removes(self, vr: str) -> bool:
        if self.mode == "keep":
            return False
        if self.mode == "safe":
            return vr not in NUMERIC_VRS
        return True

    def describe(self) -> str:
        return {
            "keep": "private elements: kept unless a field acts on them",
            "remove": 'private elements: removed unless named by a (gggg,"creator",ee) field',
            "safe": "private elements: numeric values kept (Retain Safe Private), others removed",
        }[self.mode]


class Provenance:
    """PatientIdentityRemoved, DeidentificationMethod (appended), the CID 7050 codes of the profile and
    options applied, and Longitudinal Temporal Information Modified."""

    def __init__(self, preset: P.PresetRules | None):
        self.preset = preset
        self._encoded_codes: dict[tuple[Any, ...], bytes] = {}

    def method_text(self) -> str:
        if self.preset is None:
            return f"fw-gear-deid {__version__} Flywheel profile"[:64]
        return f"fw-gear-deid {__version__} PS3.15-{STANDARD_EDITION} Basic"[:64]

    def codes(self) -> list[tuple[str, str]]:
        if self.preset is None:
            return []  # the Basic Profile was not applied: claiming 113100 would be false
        return [BASIC_PROFILE_CODE] + [
            (OPTIONS[name].code, OPTIONS[name].meaning) for name in self.preset.options
        ]

    def apply(self, dataset: Dataset, dates_shifted: bool, dates_removed: bool) -> None:
        _put(dataset, 0x00120062, "CS", "YES")
        method = self.method_text()
        old = dataset.get(0x00120063)
        values: list[str] = []
        if old is not None and old.value:
            values = list(old.value) if isinstance(old.value, MultiValue) else [str(old.value)]
        if method not in values:
            values.append(method)
        _put(dataset, 0x00120063, "LO", values if len(values) > 1 else values[0])
        codes = self.codes()
        if codes and 0x00120064 not in dataset._dict and self._store_codes(dataset, codes):
            pass  # the usual case: constant items, stored pre-encoded
        elif codes:
            existing = dataset.get(0x00120064)
            items = list(existing.value) if existing is not None and existing.value else []
            present = {str(item.get("CodeValue", "")) for item in items}
            for code, meaning in codes:
                if code in present:
                    continue
                item = Dataset()
                item.CodeValue = code
                item.CodingSchemeDesignator = "DCM"
                item.CodeMeaning = meaning
                items.append(item)
            dataset.DeidentificationMethodCodeSequence = DicomSequence(items)
        status = self.temporal_status(dates_shifted, dates_removed)
        if status is not None:
            _put(dataset, 0x00280303, "CS", status)

    def _store_codes(self, dataset: Dataset, codes: list[tuple[str, str]]) -> bool:
        """The code sequence as raw bytes in the dataset's encoding (what pydicom writes for items
        built in memory); False when that is not possible (unknown encoding, non-ASCII text)."""
        implicit, little = dataset.original_encoding
        if implicit is None or little is None:
            return False
        key = (tuple(codes), implicit, little)
        value = self._encoded_codes.get(key)
        if value is None:
            value = encode_items(
                [
                    [
                        (0x00080100, "SH", code),
                        (0x00080102, "SH", "DCM"),
                        (0x00080104, "LO", meaning),
                    ]
                    for code, meaning in codes
                ],
                little,
                implicit,
            )
            if value is None:
                return False
            self._encoded_codes[key] = value
        store_raw_sequence(dataset, 0x00120064, value, little, implicit)
        return True

    def temporal_status(self, dates_shifted: bool, dates_removed: bool) -> str | None:
        if self.preset is not None:
            mode = self.preset.dates_mode
            if mode == "full":
                return "UNMODIFIED"
            if mode == "modified" or dates_shifted:
                return "MODIFIED"
            return "REMOVED"
        if dates_shifted:
            return "MODIFIED"
        if dates_removed:
            return "REMOVED"
        return None  # a plain profile that left dates alone says nothing new

    def describe(self) -> str:
        codes = ", ".join(code for code, _ in self.codes()) or "no CID 7050 code"
        return f"provenance: PatientIdentityRemoved=YES, method {self.method_text()!r}, {codes}"


@dataclass
class FileState:
    """Per-file results collected during the walk."""

    ctx: DeidContext
    preview: bool
    changes: list[FieldChange] = field(default_factory=list)
    sensitive: list[SensitiveValue] = field(default_factory=list)
    uid_map: dict[str, str] = field(default_factory=dict)
    applied: set[tuple[int, int, int]] = field(default_factory=set)
    matched_rules: set[int] = field(default_factory=set)
    #: Every element set or deleted (changes only lists those whose text differs).
    mutations: int = 0
    dates_shifted: bool = False
    dates_removed: bool = False
    cleaner: TextCleaner | None = None
    root: Dataset | None = None

    def text_cleaner(self) -> TextCleaner:
        """Built on first use (only "C" on free text needs it): from the source's top-level values."""
        if self.cleaner is None:
            self.cleaner = TextCleaner(self.root if self.root is not None else Dataset())
        return self.cleaner

    originals: dict[str, Any] = field(default_factory=dict)


def _values_of(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (MultiValue, list, tuple)):
        return list(value)
    return [value]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace")
    return str(value)


class DicomEngine:
    """A compiled dicom section: ``run(dataset, trailing, ctx, preview)`` edits the datasets in place."""

    def __init__(self, section: Mapping[str, Any]):
        self.section = section
        self.rules: list[FieldRule] = compile_fields(section)
        self.preset = (
            P.PresetRules.build(section.get("options") or [])
            if section.get("preset") == "ps3.15-basic"
            else None
        )
        self._by_tag: dict[int, list[FieldRule]] = {}
        #: What the preset does to a (tag, VR, mode): ``_preset_decision``, memoised.
        self._preset_decisions: dict[tuple[int, str, str], str] = {}
        #: Report paths of top-level tags (``display_path(tag, [])``), memoised.
        self._top_paths: dict[int, str] = {}
        self._other: list[FieldRule] = []
        for rule in self.rules:
            if isinstance(rule.selector, TagSelector):
                self._by_tag.setdefault(rule.selector.tag, []).append(rule)
            else:
                self._other.append(rule)
        self.uids = UidRemapper(section, any(r.action.action == "hashuid" for r in self.rules))
        if self.preset is not None:
            mode = "safe" if self.preset.private == P.CLEAN else "remove"
        else:
            mode = "remove" if section.get("remove-private-tags") else "keep"
        self.private_filter = PrivateTagFilter(mode)
        self.provenance = Provenance(self.preset)
        self.remove_undefined = bool(section.get("remove-undefined"))
        self.age_from_birthdate = bool(section.get("patient-age-from-birthdate"))
        self.has_rules = (
            bool(self.rules)
            or self.preset is not None
            or any(
                section.get(key)
                for key in ("remove-private-tags", "remove-undefined", "patient-age-from-birthdate")
            )
        )
        # Options that turn some free text into "C": the cleaner needs the source's values.
        self._needs_cleaner = self.preset is not None and bool(
            {
                "clean-descriptors",
                "clean-structured-content",
                "clean-graphics",
                "retain-patient-characteristics",
                "retain-device-identity",
            }
            & set(self.preset.options)
        )
        self._lookup_names = {
            group_name
            for rule in self.rules
            for sub in rule.action.regex_rules
            for group_name in sub.groups
        }

    # -- description ----------------------------------------------------------------------------
    def describe(self) -> list[str]:
        lines = [f"dicom: {rule.action.describe()}" for rule in self.rules]
        if self.preset is not None:
            lines += [f"dicom: {line}" for line in self.preset.describe()]
            lines.append("dicom: every PN emptied, every instance UID remapped, DA/DT shifted")
        lines.append(f"dicom: {self.uids.describe()}")
        lines.append(f"dicom: {self.private_filter.describe()}")
        lines.append(f"dicom: {self.provenance.describe()}")
        return lines

    # -- the walk ---------------------------------------------------------------------------------
    def run(
        self, dataset: Dataset, trailing: Dataset | None, ctx: DeidContext, preview: bool
    ) -> FileState:
        state = FileState(ctx=ctx, preview=preview)
        if not self.has_rules:
            return state
        for name in self._lookup_names:
            elem = dataset.get(name) if name.isidentifier() else None
            state.originals[name] = _text(elem.value) if elem is not None else None
        state.root = dataset
        if self._needs_cleaner:
            state.text_cleaner()  # before the walk empties the names it looks for
        if self.age_from_birthdate:
            self._patient_age(dataset, state)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and not self.remove_undefined:
            # Fields may name file meta elements (the reference's remove-undefined never sees them).
            self._walk(meta, [], state, mode="top")
        self._walk(dataset, [], state, mode="top")
        if trailing is not None:
            self._walk(trailing, [], state, mode="top")
        self._insert_missing(dataset, state)
        if self.preset is None and state.uid_map:
            # A plain profile remaps only the UIDs it names: carry those remaps to every other
            # occurrence (references, file meta). The preset already remaps every instance UID.
            self._propagate_uids(dataset, [], state)
        self._file_meta(dataset, state)
        self.provenance.apply(dataset, state.dates_shifted, state.dates_removed)
        return state

    def _candidates(self, tag: int, dataset: Dataset, path: Sequence[Step]) -> list[FieldRule]:
        if not self.rules:
            return []
        found = [r for r in self._by_tag.get(tag, ()) if r.matches(tag, dataset, path)]
        for rule in self._other:
            if rule.matches(tag, dataset, path):
                found.append(rule)
        if len(found) > 1:
            found.sort(key=lambda rule: rule.order)
        return found

    def _vr(self, dataset: Dataset, tag: int, raw: Any) -> str:
        vr = getattr(raw, "VR", None)
        if vr and (vr != "UN" or _is_private(tag)):
            return str(vr)
        if _is_private(tag):
            return "UN"
        try:
            return dictionary_VR(tag)
        except KeyError:
            return str(vr or "UN")

    def _element(self, dataset: Dataset, tag: int) -> DataElement:
        """The element decoded without replacing the raw bytes kept in the dataset."""
        item = dataset.get_item(tag)
        if isinstance(item, RawDataElement):
            return convert_raw_data_element(item, encoding=dataset._character_set, ds=dataset)
        return item

    def _walk(self, dataset: Dataset, path: list[Step], state: FileState, mode: str) -> None:
        kept_blocks: set[tuple[int, int]] = set()
        creators: list[int] = []
        has_rules = bool(self.rules)
        preset = self.preset
        remove_undefined = self.remove_undefined
        decisions = self._preset_decisions
        remove, keep, references = P.REMOVE, P.KEEP, P.REFERENCES
        # ``key`` is the dict's own BaseTag (identity makes dataset look-ups cheap); ``tag`` the
        # int used for our own sets and dicts (BaseTag's Python-level __eq__ is slow there).
        for key, raw in list(dataset._dict.items()):
            tag = int(key)
            if tag & 0xFFFF == 0 and tag >> 16 > 2:
                continue  # group lengths: pydicom does not write them
            if not path and tag in _PROVENANCE_TAGS:
                continue  # rewritten by Provenance
            private = (tag >> 16) & 1
            if private and 0x10 <= tag & 0xFFFF <= 0xFF:
                creators.append(tag)
                continue
            if has_rules:
                rules = self._candidates(tag, dataset, path)
                if rules:
                    if private:
                        kept_blocks.add((tag >> 16, (tag & 0xFFFF) >> 8))
                    self._apply_rules(dataset, tag, path, rules, state)
                    continue
            vr = raw.VR
            if type(vr) is not str or not vr or vr == "UN":  # implicit, UN, an enum: the slow way
                vr = self._vr(dataset, tag, raw)
            if remove_undefined:
                if vr == "SQ" and any(r.could_match_inside(len(path)) for r in self.rules):
                    self._recurse(dataset, tag, path, state, mode)
                else:
                    self._remove(dataset, key, path, "remove-undefined", state)
                continue
            if private:
                if self.private_filter.removes(vr):
                    self._remove(dataset, key, path, "remove-private", state, vr)
                    continue
                kept_blocks.add((tag >> 16, (tag & 0xFFFF) >> 8))
                if vr == "SQ":
                    self._recurse(dataset, tag, path, state, mode)
                continue
            if preset is not None:
                action = decisions.get((tag, vr, mode))
                if action is None:
                    action = self._preset_decision(tag, vr, mode)
                if action == remove:
                    self._remove(dataset, key, path, "preset:X", state, vr)
                elif vr == "SQ" or (action != keep and action != references):
                    self._apply_preset(dataset, tag, vr, path, state, mode, action)
            elif vr == "SQ" and self._descend(path):
                self._recurse(dataset, tag, path, state, mode)
        for tag in creators:
            if self.private_filter.mode == "keep" and not self.remove_undefined:
                continue
            block = (tag >> 16, tag & 0xFF)
            if block not in kept_blocks:
                self._remove(dataset, tag, path, "remove-private", state)

    def _descend(self, path: Sequence[Step]) -> bool:
        """Whether items of a sequence at this depth need a visit (plain profiles): a field may
        match inside, or private elements are removed at every depth (as the reference does)."""
        if self.private_filter.mode != "keep":
            return True
        return any(rule.could_match_inside(len(path)) for rule in self.rules)

    def _recurse(
        self, dataset: Dataset, tag: int, path: list[Step], state: FileState, mode: str
    ) -> None:
        self._visit_items(
            dataset,
            tag,
            state,
            lambda item, index: self._walk(item, [*path, Step(tag, index, dataset)], state, mode),
        )

    def _visit_items(
        self, dataset: Dataset, tag: int, state: FileState, visit: Callable[[Dataset, int], None]
    ) -> None:
        """Visit the items of a sequence; a sequence still raw is decoded on the side and put back
        into the dataset only if a visit changed something, so an untouched sequence keeps its
        bytes (and is copied, not re-encoded, by the writer). Its bytes are kept only when the
        header reader parsed all of them: a sequence pydicom converted, or one with bytes after
        its delimiter (read by nobody, so never checked), is put back and re-encoded from the
        items that were visited."""
        item = dataset._dict.get(tag)
        if isinstance(item, RawDataElement):
            elem = _sequence(dataset, item, dataset.original_character_set or None)
            stored = False
        else:
            elem, stored = dataset[tag], True
        if elem.VR != "SQ":
            return
        mark = (len(state.changes), state.mutations)
        for index, child in enumerate(elem.value or []):
            visit(child, index)
        if not stored and (
            getattr(elem, "needs_encoding", True) or (len(state.changes), state.mutations) != mark
        ):
            dataset[tag] = elem

    # -- recording ---------------------------------------------------------------------------------
    def _record(
        self,
        tag: int,
        path: Sequence[Step],
        action: str,
        vr: str,
        before: Any,
        after: Any,
        state: FileState,
    ) -> None:
        if path:
            where = display_path(tag, path)
        else:
            where = self._top_paths.get(tag)
            if where is None:
                where = self._top_paths[tag] = display_path(tag, path)
        if state.preview:
            shown = None if after is REMOVE else _text(after)
            state.changes.append(FieldChange(where, action, _text(before), shown))
        else:
            state.changes.append(FieldChange(where, action))
        if vr in _NOT_LISTED_VRS:
            return
        kind = _sensitive_kind(vr, keyword_for_tag(tag) or "")
        values = (before,) if type(before) is str else _values_of(before)
        for value in values:
            text = (value if type(value) is str else _text(value)).strip().rstrip("\x00").strip()
            if len(text) >= 2:
                state.sensitive.append(SensitiveValue(kind, text, where))

    def _sensitive_subtree(self, elem: DataElement, path: Sequence[Step], state: FileState) -> None:
        """Text values inside a removed sequence are sources the gate must not find elsewhere."""
        for index, item in enumerate(elem.value or []):
            item_path = [*path, Step(elem.tag, index, item)]
            try:
                elements = item._dict
                for key in sorted(elements, key=int):  # the order of ``for sub in item``
                    raw = elements[key]
                    if type(raw) is RawDataElement:
                        # a plain ASCII value read from its bytes: what converting it would give
                        tag = int(key)
                        vr = raw.VR if raw.VR is not None else implicit_vr(tag)
                        value = plain_value(raw, vr) if vr is not None else UNDECODED
                        if value is not UNDECODED:
                            self._list_nested(tag, vr, value, item_path, state)
                            continue
                    sub = item[key]
                    if sub.VR == "SQ":
                        self._sensitive_subtree(sub, item_path, state)
                    else:
                        self._list_nested(int(sub.tag), sub.VR, sub.value, item_path, state)
            except Exception:  # noqa: S112 - a corrupt nested value is removed anyway
                continue

    @staticmethod
    def _list_nested(tag: int, vr: str, value: Any, path: Sequence[Step], state: FileState) -> None:
        if vr in _SENSITIVE_SKIP_VRS or vr in BINARY_VRS:
            return
        kind = sensitive_kind(vr, _element_keyword(tag))
        where = display_path(tag, path)
        for item in _values_of(value):
            text = _text(item).strip()
            if len(text) >= 2:
                state.sensitive.append(SensitiveValue(kind, text, where))

    def _remove(
        self,
        dataset: Dataset,
        tag: int,
        path: Sequence[Step],
        action: str,
        state: FileState,
        vr: str | None = None,
    ) -> None:
        # ``tag`` may be the dataset's own key (a BaseTag): identity makes the look-ups cheap
        key, raw = tag, dataset._dict[tag]
        tag = int(tag)
        vr = vr or self._vr(dataset, tag, raw)
        value = None
        if (
            not state.preview
            and type(raw) is RawDataElement
            and vr in _PLAIN_TEXT_VRS
            and type(raw.value) is bytes
        ):
            # Only the text is needed (for the residual gate): skip pydicom's full conversion.
            value = _decode_text(raw.value, dataset)
        elif state.preview or vr == "SQ" or vr not in (BINARY_VRS | _SENSITIVE_SKIP_VRS):
            # binary blobs and numbers are neither listed nor shown: no need to decode them
            try:
                elem = _sequence(dataset, raw) if vr == "SQ" else self._element(dataset, tag)
                vr, value = elem.VR, elem.value
            except Exception:
                vr, value = "UN", None
        if vr == "SQ":
            self._sensitive_subtree(elem, path, state)
            value = None
        if vr in ("DA", "DT") and value:
            state.dates_removed = True
        if tag in PIXEL_TAGS or (_is_private(tag) and 0x10 <= tag & 0xFFFF <= 0xFF):
            del dataset[tag]  # pydicom also resets its pixel array / private block caches
        else:
            del dataset._dict[key]  # what ``del dataset[tag]`` does for any other tag
        state.mutations += 1
        self._record(tag, path, action, vr, value, REMOVE, state)

    def _set(
        self,
        dataset: Dataset,
        tag: int,
        path: Sequence[Step],
        action: str,
        vr: str,
        before: Any,
        value: Any,
        state: FileState,
    ) -> None:
        if vr == "SQ" and isinstance(value, list | tuple):
            value = DicomSequence(list(value))
        if vr == "UN" and isinstance(value, str):
            value = value.encode("latin-1", "replace")
        encoded = encode_plain(vr, value) if vr in _RAW_SET_VRS else None
        if encoded is not None:
            # Stored as the bytes pydicom would write: no DataElement, no conversion, copied by
            # the writer (and decoded to the same value if anything reads it later).
            store_raw(dataset, tag, vr, encoded)
        else:
            dataset[tag] = DataElement(tag, vr, value)
        state.mutations += 1
        if _text(before) != _text(value):
            self._record(tag, path, action, vr, before, value, state)

    # -- profile fields ------------------------------------------------------------------------------
    def _apply_rules(
        self,
        dataset: Dataset,
        tag: int,
        path: list[Step],
        rules: list[FieldRule],
        state: FileState,
    ) -> None:
        for rule in rules:
            if tag not in dataset:
                return
            state.matched_rules.add(rule.order)
            key = (rule.order, id(dataset), tag)
            if key in state.applied:
                continue  # one application per rule and element (recurse-sequence)
            state.applied.add(key)
            self._apply_action(dataset, tag, path, rule.action, state)
        if tag in dataset:
            raw = dataset.get_item(tag)
            if self._vr(dataset, tag, raw) == "SQ" and self._descend(path):
                self._recurse(dataset, tag, path, state, "top")

    def _apply_action(
        self, dataset: Dataset, tag: int, path: list[Step], action: FieldAction, state: FileState
    ) -> None:
        name = action.action
        if name in ("keep", "identity"):
            return
        if name == "remove":
            self._remove(dataset, tag, path, "remove", state)
            return
        elem = self._element(dataset, tag)
        vr, before = elem.VR, elem.value
        if name == "replace-with":
            self._set(dataset, tag, path, name, vr, before, action.replacement, state)
            return
        if vr == "SQ":
            return  # value actions on a sequence: nothing to transform (the validator warns)
        where = display_path(tag, path)
        ctx = state.ctx
        if name == "hash":
            text = ",".join(str(v) for v in _values_of(before))  # reference: ",".join(values)
            if text:
                self._set(dataset, tag, path, name, vr, before, action.apply(text, ctx), state)
            return
        if name == "hashuid":
            values = [str(v) for v in _values_of(before) if str(v)]
            if values:
                new = []
                for value in values:
                    mapped = action.apply(value, ctx)
                    state.uid_map[value.strip().rstrip("\x00")] = mapped
                    new.append(mapped)
                self._set(
                    dataset, tag, path, name, vr, before, new if len(new) > 1 else new[0], state
                )
            return
        if name in ("increment-date", "increment-datetime"):
            values = [str(v) for v in _values_of(before)]
            if not any(values):
                return
            new = [self._shift_field(action, v, vr, ctx, where) if v else v for v in values]
            state.dates_shifted = True
            self._set(dataset, tag, path, name, vr, before, new if len(new) > 1 else new[0], state)
            return
        if name == "jitter":
            values = _values_of(before)
            if not values:
                return
            new = [self._jitter(action, v, vr, ctx, where) for v in values]
            self._set(dataset, tag, path, name, vr, before, new if len(new) > 1 else new[0], state)
            return
        if name == "regex-sub":
            text = ",".join(str(v) for v in _values_of(before))
            if not text:
                return
            result = action.apply(text, ctx, lookup=state.originals.get, path=where)
            self._set(dataset, tag, path, name, vr, before, result, state)
            return
        raise ActionError(f"{where}: action {name} is not supported on DICOM")

    def _shift_field(
        self, action: FieldAction, value: str, vr: str, ctx: DeidContext, where: str
    ) -> str:
        try:
            return action.shift(value, ctx, where)
        except ActionError:
            # The reference fails the file on a DICOM value its format cannot parse (partial DT,
            # ACR-NEMA dates): shift it DICOM-aware instead, or fail if it is no date at all.
            if vr in ("DA", "DT"):
                days = round(action.date_delta_days(ctx))
                shifted = DateShifter(days).shift(vr, value)
                if shifted is not None:
                    return shifted
            raise

    def _jitter(
        self, action: FieldAction, value: Any, vr: str, ctx: DeidContext, where: str
    ) -> Any:
        number = action.jitter_number(str(value), ctx, where)
        if vr in ("IS", "UL", "US", "SS", "SL", "UV", "SV"):
            number = int(number)
        if vr in ("UL", "US", "UV") and number < 0:
            number = 0
        if vr == "US" and number > 65535:
            number = 65535
        if vr == "SS":
            number = max(-32768, min(32767, number))
        if vr == "DS":
            return format_number_as_ds(float(number))  # at most 16 bytes (the reference: 17+)
        if vr == "IS":
            return str(int(number))
        return number

    # -- preset ------------------------------------------------------------------------------------
    def _preset_decision(self, tag: int, vr: str, mode: str) -> str:
        """What the preset does to an element: the table's action for the tag, else the catch-all
        for its VR; a pure function of (tag, VR, mode), memoised."""
        preset = self.preset
        assert preset is not None
        if tag == 0x00101010 and self.age_from_birthdate:
            action = P.KEEP  # PatientAge was computed on purpose (patient-age-from-birthdate)
        else:
            action = preset.action_for(tag) or self._catch_all(tag, vr, mode)
        self._preset_decisions[(tag, vr, mode)] = action
        return action

    def _apply_preset(
        self,
        dataset: Dataset,
        tag: int,
        vr: str,
        path: list[Step],
        state: FileState,
        mode: str,
        action: str,
    ) -> None:
        preset = self.preset
        assert preset is not None
        if action == P.REMOVE:
            self._remove(dataset, tag, path, "preset:X", state, vr)
            return
        if action == P.KEEP or action == P.REFERENCES:
            if vr == "SQ":
                self._recurse(dataset, tag, path, state, mode)
            return
        if vr == "SQ":
            child = {P.DUMMY: "dummy", P.CLEAN: "clean", P.EMPTY: None, P.UID: mode}.get(
                action, mode
            )
            if child is None:
                elem = dataset[tag]
                if elem.value:
                    self._sensitive_subtree(elem, path, state)
                    self._set(dataset, tag, path, "preset:Z", vr, None, DicomSequence([]), state)
                return
            self._recurse(dataset, tag, path, state, child)
            return
        before = plain_value(dataset._dict.get(tag_key(tag)), vr)
        if before is UNDECODED:
            before = self._element(dataset, tag).value
        if action == P.EMPTY:
            if before not in (None, "", b"") and _values_of(before):
                if vr in ("DA", "DT"):
                    state.dates_removed = True
                self._set(dataset, tag, path, "preset:Z", vr, before, empty_value(vr), state)
            return
        if action == P.DUMMY:
            if vr == "UI":
                self._remap_uids(dataset, tag, path, vr, before, state, "preset:D")
                return
            if vr in ("DA", "DT") and preset.dates_mode != "basic":
                self._shift_element(dataset, tag, path, vr, before, state, "preset:D")
                return
            if vr in ("DA", "DT"):
                state.dates_removed = True
            dummy = dummy_value(vr)
            keyword = keyword_for_tag(tag) or ""
            if vr in ("LO", "SH") and sensitive_kind(vr, keyword) == "id" and _text(before):
                # A keyed pseudonym, not a constant: subjects stay distinct after de-identification.
                dummy = state.ctx.keys.pseudonym(_text(before), digits=16, purpose="dummy-id")
            self._set(dataset, tag, path, "preset:D", vr, before, dummy, state)
            return
        if action == P.UID:
            if not preset.retains_uids:
                self._remap_uids(dataset, tag, path, vr, before, state, "preset:U")
            return
        if action == P.CLEAN:
            self._clean(dataset, tag, path, vr, before, state)
            return
        if action == "shift":
            self._shift_element(dataset, tag, path, vr, before, state, "date-shift")
            return
        if action == "dummy-text":
            if _values_of(before):
                self._set(dataset, tag, path, "preset:D", vr, before, dummy_value(vr), state)
            return
        if action == "clean-text":
            self._clean(dataset, tag, path, vr, before, state)

    def _catch_all(self, tag: int, vr: str, mode: str) -> str:
        """What happens to an element the table does not list (its VR decides)."""
        preset = self.preset
        assert preset is not None
        if tag in _CODE_TAGS:
            return P.KEEP  # controlled terminology (concept names, units): identifies no one
        if vr == "PN":
            return P.EMPTY
        if vr == "UI":
            return P.KEEP if preset.retains_uids else P.UID
        if vr in ("DA", "DT"):
            return P.KEEP if preset.dates_mode == "full" else "shift"
        if vr in FREE_TEXT_VRS:
            if mode == "dummy":
                return "dummy-text"
            if mode == "clean":
                return "clean-text"
        return P.KEEP

    def _clean(
        self, dataset: Dataset, tag: int, path: list[Step], vr: str, before: Any, state: FileState
    ) -> None:
        if vr in ("DA", "DT"):
            if self.preset is not None and self.preset.dates_mode == "full":
                return
            self._shift_element(dataset, tag, path, vr, before, state, "preset:C")
        elif vr == "PN":
            if _values_of(before):
                self._set(dataset, tag, path, "preset:C", vr, before, "", state)
        elif vr == "UI":
            self._remap_uids(dataset, tag, path, vr, before, state, "preset:C")
        elif vr in FREE_TEXT_VRS or vr in ("AE", "CS", "UR"):
            values = [str(v) for v in _values_of(before)]
            cleaner = state.text_cleaner()
            new = [cleaner.clean(v) for v in values]
            # A value cleaned down to nothing gets a dummy: a Type 1 text must not become empty.
            new = [
                n if n.strip() or not v.strip() else str(dummy_value(vr))
                for n, v in zip(new, values, strict=True)
            ]
            if new != values:
                self._set(
                    dataset,
                    tag,
                    path,
                    "preset:C",
                    vr,
                    before,
                    new if len(new) > 1 else (new[0] if new else ""),
                    state,
                )

    def _shift_element(
        self,
        dataset: Dataset,
        tag: int,
        path: list[Step],
        vr: str,
        before: Any,
        state: FileState,
        action: str,
    ) -> None:
        values = [str(v) for v in _values_of(before)]
        if not any(values):
            return
        shifter = DateShifter(state.ctx.date_offset(self.section))
        new = []
        for value in values:
            shifted = shifter.shift(vr, value) if value else value
            new.append("" if shifted is None else shifted)  # not a date: emptied
        state.dates_shifted = True
        self._set(dataset, tag, path, action, vr, before, new if len(new) > 1 else new[0], state)

    def _remap_uids(
        self,
        dataset: Dataset,
        tag: int,
        path: list[Step],
        vr: str,
        before: Any,
        state: FileState,
        action: str,
    ) -> None:
        values = [str(v) for v in _values_of(before)]
        if not values:
            return
        new = []
        for value in values:
            clean = value.strip().rstrip("\x00")
            if UidRemapper.remappable(tag, clean):
                mapped = self.uids.remap(clean, state.ctx)
                state.uid_map[clean] = mapped
                new.append(mapped)
            else:
                new.append(value)
        if new != values:
            self._set(
                dataset, tag, path, action, vr, before, new if len(new) > 1 else new[0], state
            )

    def _propagate_uids(self, dataset: Dataset, path: list[Step], state: FileState) -> None:
        """Every other UI element holding a UID the profile remapped gets the same new UID."""
        for tag in list(dataset.keys()):
            tag = int(tag)
            raw = dataset.get_item(tag)
            vr = self._vr(dataset, tag, raw)
            if vr == "SQ":
                self._visit_items(
                    dataset,
                    tag,
                    state,
                    lambda item, index, tag=tag: self._propagate_uids(
                        item, [*path, Step(tag, index, dataset)], state
                    ),
                )
                continue
            if vr != "UI":
                continue
            elem = self._element(dataset, tag)
            values = [str(v) for v in _values_of(elem.value)]
            new = [state.uid_map.get(v.strip().rstrip("\x00"), v) for v in values]
            if new != values:
                self._set(
                    dataset,
                    tag,
                    path,
                    "uid-map",
                    vr,
                    elem.value,
                    new if len(new) > 1 else new[0],
                    state,
                )

    # -- extras ------------------------------------------------------------------------------------
    def _patient_age(self, dataset: Dataset, state: FileState) -> None:
        """PatientAge from the source birth and study dates (reference: date_delta, max 960)."""
        birth, study = dataset.get("PatientBirthDate"), dataset.get("StudyDate")
        if not birth or not study:
            return
        fmt = self.section.get("date-format") or "%Y%m%d"
        try:
            born = datetime.strptime(str(birth), fmt)
            seen = datetime.strptime(str(study), fmt)
        except ValueError:
            return
        if born > seen:
            born, seen = seen, born
        units = ["D", "M", "Y"]
        wanted = self.section.get("patient-age-units")
        if wanted in units:
            units = units[units.index(wanted) :]
        delta = relativedelta.relativedelta(seen, born)
        value, unit = 0, "D"
        for unit in units:
            if unit == "D":
                value = (seen - born).days
            elif unit == "M":
                value = 12 * delta.years + delta.months
            else:
                value = delta.years
            if value < 960:
                break
        value = min(value, 960)
        before = dataset.get(0x00101010)
        self._set(
            dataset,
            0x00101010,
            [],
            "patient-age-from-birthdate",
            "AS",
            before.value if before is not None else None,
            f"{value:03d}{unit}",
            state,
        )

    def _insert_missing(self, dataset: Dataset, state: FileState) -> None:
        """``replace-with`` on a missing top-level element inserts it (``replace-with-insert``)."""
        for rule in self.rules:
            action = rule.action
            if action.action != "replace-with" or not action.inserts:
                continue
            selector = rule.selector
            if isinstance(selector, TagSelector):
                tag = selector.tag
                if tag >> 16 == 2 or tag in dataset:
                    continue
                try:
                    vr = dictionary_VR(tag)
                except KeyError:
                    continue
                self._set(dataset, tag, [], "replace-with", vr, None, action.replacement, state)
            elif isinstance(selector, PrivateSelector):
                if rule.order in state.matched_rules:
                    continue
                try:
                    block = dataset.private_block(selector.group, selector.creator, create=True)
                    vr = private_dictionary_VR(
                        (selector.group << 16) | 0x1000 | selector.offset, selector.creator
                    )
                except (KeyError, ValueError):
                    continue
                block.add_new(selector.offset, vr, action.replacement)
                self._record(
                    block.get_tag(selector.offset),
                    [],
                    "replace-with",
                    vr,
                    None,
                    action.replacement,
                    state,
                )

    def _file_meta(self, dataset: Dataset, state: FileState) -> None:
        meta = getattr(dataset, "file_meta", None)
        if meta is None:
            return
        old = peek_value(meta, 0x00020003, "UI")
        sop = peek_value(dataset, 0x00080018, "UI")
        if old:
            before = str(old).strip().rstrip("\x00")
            if sop:
                after = str(sop)
            elif self.preset is not None and not self.preset.retains_uids:
                after = self.uids.remap(before, state.ctx)  # no SOPInstanceUID: still remapped
            else:
                after = state.uid_map.get(before, before)
            if after != before:
                _put(meta, 0x00020003, "UI", after)
                self._record(0x00020003, [], "uid-map", "UI", before, after, state)
        for tag in (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102):
            if tag in meta:
                elem = meta[tag]
                before = elem.value
                del meta[tag]
                self._record(tag, [], "remove", elem.VR, before, REMOVE, state)


#: Raw VRs whose values are never text (numbers, binary words): skipped before conversion, with the
#: value size a conversion checks (a wrong length still goes through conversion, which raises).
_NOT_TEXT_RAW_VRS: dict[str, int] = {
    "US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "UV": 8, "SV": 8,
    "OW": 1, "OF": 1, "OD": 1, "OL": 1, "OV": 1,
}  # fmt: skip


@lru_cache(maxsize=8192)
def _element_keyword(tag: int) -> str:
    """``DataElement(tag, ...).keyword``: the dictionary keyword, "" for private and repeater tags."""
    return dictionary_keyword(tag) if dictionary_has_tag(tag) else ""


def iter_text_values(dataset: Dataset, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every text value of a dataset, nested ones included, as (element path, text)."""
    elements = dataset._dict
    for tag in sorted(elements, key=int):
        raw = elements[tag]
        if type(raw) is RawDataElement:
            vr = raw.VR if raw.VR is not None else implicit_vr(int(tag))
            # what the checks below skip after converting, skipped without converting (same result)
            size = _NOT_TEXT_RAW_VRS.get(vr)  # type: ignore[arg-type]
            if size is not None and (raw.value is None or len(raw.value) % size == 0):
                continue
            # plain ASCII text read from its bytes: the values pydicom's conversion gives
            value = plain_value(raw, vr) if vr is not None else UNDECODED
            if value is not UNDECODED:
                tag = int(tag)
                where = (
                    f"{prefix}{_element_keyword(tag) or f'({tag >> 16:04X},{tag & 0xFFFF:04X})'}"
                )
                for text in value if type(value) is list else (value,):
                    if text:
                        yield where, text
                continue
        elem = dataset[tag]
        where = f"{prefix}{elem.keyword or f'({elem.tag.group:04X},{elem.tag.element:04X})'}"
        try:
            value = elem.value
        except Exception:  # noqa: S112 - an undecodable value has no text to scan
            continue
        if elem.VR == "SQ":
            for index, item in enumerate(value or []):
                yield from iter_text_values(item, f"{where}.{index}.")
            continue
        if value is None:
            continue
        if isinstance(value, bytes):
            if elem.tag.group == 0x7FE0 or elem.VR in ("OW", "OF", "OD", "OL", "OV"):
                continue
            text = value.decode("latin-1", "replace")
            if sum(ch.isprintable() for ch in text) >= 0.9 * len(text) and text.strip("\x00 "):
                yield where, text
            continue
        if elem.VR in NUMERIC_VRS:
            continue
        for item in _values_of(value):
            text = str(item)
            if text:
                yield where, text


Resolver = Callable[[str], Any]
