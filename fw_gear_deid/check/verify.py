"""``deid verify``: re-run the residual-PHI scan over an existing destination.

Each destination file is paired with its source file: by the keyed origin id recorded in its metadata
(needs the job's secret), else by mirrored path (same container labels and file name, for plain folder
copies). The source's identifying values are re-derived by comparing the two files element by element:
a value the destination still holds at the same place was *kept* by the profile and is not searched;
every value that was removed or changed is (for a partial edit, only the part that disappeared). The
gate then scans the destination file and its containers' metadata for those values, exactly as during
an export. Nothing printed or returned carries a value: paths are redacted.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fw_gear_deid.check._dicom import dicom_elements, looks_like_dicom
from fw_gear_deid.check._text import fold, normalize_text, token_seq
from fw_gear_deid.check.gate import Hit, ResidualGate, _walk_metadata
from fw_gear_deid.check.matchers import parse_dates
from fw_gear_deid.errors import DeidError
from fw_gear_deid.formats import HandlerSet, SensitiveValue
from fw_gear_deid.keys import Keys

log = logging.getLogger(__name__)

#: VRs whose values are numbers, codes or times: never identifying on their own.
_SKIPPED_VRS = frozenset(
    {"AS", "CS", "DS", "IS", "TM", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"}
)
_UID = re.compile(r"[0-9]+(?:\.[0-9]+){2,}")
_ID_WORDS = re.compile(r"(?:ID|IDs|Number|Numbers)$|^(?:MRN|Accession)")


# -- what in a source file is identifying -----------------------------------------------------------
def dicom_kind(vr: str, keyword: str) -> str | None:
    """The kind of a DICOM element's value for the gate, or None when it is not searched."""
    if vr in _SKIPPED_VRS:
        return None
    if vr == "PN":
        return "name"
    if vr == "DA":
        return "date"
    if vr == "DT":
        return "datetime"
    if vr == "UI":
        return "uid"
    if "Address" in keyword:
        return "address"
    if _ID_WORDS.search(keyword):
        return "id"
    return "text"


def guess_kind(path: str, value: str) -> str:
    """The kind of a non-DICOM value, from its shape and the name of its key."""
    text = value.strip()
    if _UID.fullmatch(text) and len(text) >= 8:
        return "uid"
    if parse_dates(text) and len(token_seq(text)) <= 4:
        return "date"
    key = re.split(r"[.\[\]/@:]", path.rstrip("]"))[-1].lower() if path else ""
    if "^" in text or "name" in key:
        return "name"
    if "address" in key or "street" in key or "city" in key:
        return "address"
    if any(word in key for word in ("date", "birth", "dob")):
        return "date"
    if key in {"label", "id", "mrn"} or key.endswith(("id", "number", "accession")):
        return "id"
    return "text"


def _removed_part(kind: str, source: str, dest_values: list[str]) -> str | None:
    """What of ``source`` disappeared at its place in the destination (None: it was kept)."""
    norm = normalize_text(source).strip()
    folded = fold(norm)
    if not folded:
        return None
    for dest in dest_values:
        if folded in fold(normalize_text(dest)):
            return None  # kept (possibly with something appended, e.g. DeidentificationMethod)
    if kind not in {"text", "address"} or not dest_values:
        return norm  # any part of a name, ID, date or UID left anywhere is still a leak
    # a partial edit of free text (regex-sub...): only the tokens that went away are identifying
    kept = {token for dest in dest_values for token in token_seq(dest)}
    gone = [token for token in token_seq(norm) if token not in kept]
    return " ".join(gone) or None


def _pairs_by_path(values: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for path, text in values:
        if text is not None:
            out[str(path)].append(str(text))
    return out


def dicom_sensitive(src: Path, dst: Path) -> list[SensitiveValue]:
    """Identifying values of a DICOM source that its destination file no longer holds in place."""
    dest = _pairs_by_path((e.path, e.text) for e in dicom_elements(dst) if not e.binary)
    found = []
    for element in dicom_elements(src):
        if element.binary:
            continue  # vendor blobs are mostly protocol text: compared, they only make noise
        kind = dicom_kind(element.vr, element.keyword)
        if kind is None:
            continue
        removed = _removed_part(kind, element.text, dest.get(element.path, []))
        if removed:
            found.append(SensitiveValue(kind, removed, element.path))
    return found


def _inner_path(path: str) -> str:
    """``member:element`` -> ``element``: archive members are renamed by their handler (a DICOM
    member becomes ``<new UID>.CT.dcm``), so source and destination members pair by element."""
    return path.split(":", 1)[1] if ":" in path else path


def handler_sensitive(handler: Any, src: Path, dst: Path) -> list[SensitiveValue]:
    """Identifying values of a non-DICOM source, through the handler's own text values."""
    dest_values = list(handler.text_values(dst))
    dest = _pairs_by_path(dest_values)
    dest_inner = _pairs_by_path((_inner_path(str(path)), text) for path, text in dest_values)
    found = []
    for path, text in handler.text_values(src):
        if text is None:
            continue
        kind = guess_kind(str(path), str(text))
        in_place = dest.get(str(path)) or dest_inner.get(_inner_path(str(path)), [])
        removed = _removed_part(kind, str(text), in_place)
        if removed:
            found.append(SensitiveValue(kind, removed, str(path)))
    return found


def metadata_sensitive(
    kind: str, source: dict[str, Any], dest: dict[str, Any]
) -> list[SensitiveValue]:
    """Identifying values of a source container's metadata that its destination does not keep."""
    dest_values = _pairs_by_path(_walk_metadata(kind, dest, 0))
    found = []
    for path, text in _walk_metadata(kind, source, 0):
        if path.endswith((".export", ".origin_id")) or ".info.export." in path:
            continue
        value_kind = guess_kind(path, text)
        removed = _removed_part(value_kind, text, dest_values.get(path, []))
        if removed:
            found.append(SensitiveValue(value_kind, removed, path))
    return found


def container_record(container: Any) -> dict[str, Any]:
    return {
        "label": container.label,
        "info": container.info,
        "tags": list(container.tags),
        **dict(container.fields),
    }


# -- pairing ----------------------------------------------------------------------------------------
def origin_id(keys: Keys, store_identity: str, *parts: str) -> str:
    """The keyed origin id the export records (``info.export.origin_id``) for a source container
    (``type, id``) or file (``"file", container type, container id, name``)."""
    return keys.pseudonym("|".join((store_identity, *parts)), 32, "origin")


@dataclass
class FileFinding:
    """One destination file (or container) the verification could not clear."""

    dest: str
    hits: list[Hit] = field(default_factory=list)
    problem: str = ""

    def lines(self) -> Iterator[str]:
        if self.problem:
            yield f"UNVERIFIED {self.dest}: {self.problem}"
        for hit in self.hits:
            yield f"RESIDUAL-PHI {self.dest}: {hit.path} ({hit.kind})"


@dataclass
class VerifyResult:
    files: int = 0
    clean: int = 0
    findings: list[FileFinding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def summary(self) -> str:
        leaks = sum(1 for f in self.findings if f.hits)
        unverified = sum(1 for f in self.findings if f.problem and not f.hits)
        return (
            f"verified {self.files} destination file(s): {self.clean} clean, {leaks} with residual "
            f"PHI, {unverified} unverified"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "clean": self.clean,
            "findings": [
                {
                    "dest": f.dest,
                    "problem": f.problem,
                    "hits": [{"path": h.path, "kind": h.kind} for h in f.hits],
                }
                for f in self.findings
            ],
        }


class Verifier:
    """Pairs a destination with its source and scans every destination file (see module doc)."""

    def __init__(self, source: Any, dest: Any, handlers: HandlerSet, keys: Keys | None = None):
        self.source = source
        self.dest = dest
        self.handlers = handlers
        self.keys = keys
        self._src_files: dict[str, tuple[Any, Any]] = {}
        self._src_containers: dict[str, Any] = {}
        self._index_source()

    # a chain of labels from the project down: the mirrored-path key
    def _label_path(self, store: Any, container: Any, name: str | None = None) -> str:
        chain = [*store.parents(container), container]
        labels = [c.label for c in chain[1:]]  # the projects themselves differ by design
        return "/".join([*labels, name] if name is not None else labels)

    def _index_source(self) -> None:
        store = self.source
        for container in store.walk(store.location):
            self._src_containers[f"path:{container.type}:{self._label_path(store, container)}"] = (
                container
            )
            if self.keys is not None:
                key = origin_id(self.keys, store.identity, container.type, container.id)
                self._src_containers[f"origin:{key}"] = container
            for entry in store.files(container):
                self._src_files[f"path:{self._label_path(store, container, entry.name)}"] = (
                    container,
                    entry,
                )
                if self.keys is not None:
                    key = origin_id(
                        self.keys, store.identity, "file", container.type, container.id, entry.name
                    )
                    self._src_files[f"origin:{key}"] = (container, entry)

    def _source_file(self, container: Any, entry: Any) -> tuple[Any, Any] | None:
        if entry.origin_id and f"origin:{entry.origin_id}" in self._src_files:
            return self._src_files[f"origin:{entry.origin_id}"]
        return self._src_files.get(f"path:{self._label_path(self.dest, container, entry.name)}")

    def _source_container(self, container: Any) -> Any | None:
        if container.origin_id and f"origin:{container.origin_id}" in self._src_containers:
            return self._src_containers[f"origin:{container.origin_id}"]
        return self._src_containers.get(
            f"path:{container.type}:{self._label_path(self.dest, container)}"
        )

    def run(self) -> VerifyResult:
        result = VerifyResult()
        reported_containers: set[tuple[str, Hit]] = set()
        for container in self.dest.walk(self.dest.project()):
            for entry in self.dest.files(container):
                result.files += 1
                finding = self._verify_file(container, entry, reported_containers)
                if finding is None:
                    result.clean += 1
                else:
                    result.findings.append(finding)
        return result

    def _verify_file(
        self, container: Any, entry: Any, reported: set[tuple[str, Hit]]
    ) -> FileFinding | None:
        dest_chain = [*self.dest.parents(container), container][1:]
        display = "/".join([*(c.label for c in dest_chain), entry.name])
        pair = self._source_file(container, entry)
        if pair is None:
            # the display path is not redacted here: without a source there is nothing to redact
            # with. It is the destination's own (de-identified) path.
            return FileFinding(
                display, problem="no source file found (pair by origin id: give the secret)"
            )
        _, src_entry = pair
        sensitive: list[SensitiveValue] = []
        for dest_container in dest_chain:
            src = self._source_container(dest_container)
            if src is not None:
                sensitive += metadata_sensitive(
                    dest_container.type, container_record(src), container_record(dest_container)
                )
        try:
            with (
                self.source.local_file(src_entry) as src_path,
                self.dest.local_file(entry) as dst_path,
            ):
                with open(src_path, "rb") as stream:
                    head = stream.read(4096)
                handler = self.handlers.match(src_entry.name, head)
                is_dicom: bool | None = None
                if looks_like_dicom(Path(src_path)) or (
                    handler is not None and handler.section_name == "dicom"
                ):
                    # the gate's own DICOM walk is the reader here: its element paths are the
                    # ones the source values were compared by (kept words are judged per path)
                    sensitive += dicom_sensitive(Path(src_path), Path(dst_path))
                    handler, is_dicom = None, True
                elif handler is not None:
                    sensitive += handler_sensitive(handler, Path(src_path), Path(dst_path))
                gate = ResidualGate(sensitive)
                hits = gate.scan_file(handler, Path(dst_path), dicom=is_dicom)
        except Exception as error:  # one unreadable pair never stops the verification
            # a DeidError's reason is written to be shown; other messages may quote data
            reason = (
                error.reason
                if isinstance(error, DeidError) and hasattr(error, "reason")
                else type(error).__name__
            )
            return FileFinding(display, problem=f"cannot be compared with its source ({reason})")
        # the file's own metadata (info, tags, classification) can carry a header dump
        file_record = {
            "info": entry.info,
            "tags": list(entry.tags),
            "classification": entry.classification,
            "type": entry.type,
            "modality": entry.modality,
        }
        hits += gate.scan_metadata("file", file_record)
        hits += gate.scan_name(entry.name)
        for dest_container in dest_chain:
            for hit in gate.scan_metadata(dest_container.type, container_record(dest_container)):
                key = (dest_container.id, hit)
                if key not in reported:
                    reported.add(key)
                    hits.append(hit)
        if not hits:
            return None
        return FileFinding(gate.redact(display), hits=hits)
