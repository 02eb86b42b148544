"""Tag names and field rules over TIFF/EXIF IFDs, shared by the jpg, png (eXIf) and tiff handlers.

Field names are resolved per IFD kind: the EXIF names of piexif for the 0th/1st/Exif/GPS/Interop
IFDs (what Flywheel's jpg profile accepts) and Pillow's ``TAGS_V2`` names for TIFF pages. A name is
applied in every IFD where it is defined, as Flywheel does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import piexif
from PIL.TiffTags import TAGS_V2

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule
from fw_gear_deid.formats._tiffio import (
    TYPE_ASCII,
    TYPE_BYTE,
    TYPE_UNDEFINED,
    Ifd,
    TiffStructure,
    ascii_entry,
    entry_text,
    remove_entry,
    text_entry,
)

MAKER_NOTE = 37500
GPS_POINTER = 34853

_PIEXIF_KIND = {
    "0th": "0th",
    "1st": "1st",
    "page": "0th",
    "SubIFD": "0th",
    "Exif": "Exif",
    "GPS": "GPS",
    "Interop": "Interop",
}


def _sources(kind: str) -> list[dict[int, tuple[str, int | None]]]:
    exif = {
        tag: (info["name"], info["type"]) for tag, info in piexif.TAGS[_PIEXIF_KIND[kind]].items()
    }
    if kind not in ("page", "SubIFD", "0th", "1st"):
        return [exif]
    tiff = {tag: (info.name, info.type) for tag, info in TAGS_V2.items()}
    # TIFF pages are named the Pillow way first (Flywheel's tiff profile), EXIF IFDs the piexif way
    return [tiff, exif] if kind in ("page", "SubIFD") else [exif, tiff]


@functools.cache
def tag_names(kind: str) -> dict[int, tuple[str, int | None]]:
    """Tag number -> (name, dictionary type) of the tags an IFD of ``kind`` may hold."""
    table: dict[int, tuple[str, int | None]] = {}
    for source in _sources(kind):
        for tag, value in source.items():
            table.setdefault(tag, value)
    return table


@functools.cache
def name_index(kind: str) -> dict[str, int]:
    """Lower-cased tag name -> tag number for an IFD of ``kind`` (every known spelling)."""
    index: dict[str, int] = {}
    for source in reversed(_sources(kind)):
        for tag, (name, _type) in source.items():
            index[name.lower()] = tag
    return index


def tag_label(kind: str, tag: int) -> str:
    found = tag_names(kind).get(tag)
    return found[0] if found else f"Tag{tag}"


def ifd_labels(
    structure: TiffStructure, page_label: Callable[[int], str]
) -> Iterator[tuple[str, Ifd]]:
    """Every IFD with a readable path (``IFD0``, ``IFD0.Exif``, ``page1.SubIFD0`` ...)."""
    for index, page in enumerate(structure.pages):
        yield from labelled(page, page_label(index))


def labelled(ifd: Ifd, label: str) -> Iterator[tuple[str, Ifd]]:
    yield label, ifd
    for tag in sorted(ifd.children):
        children = ifd.children[tag]
        for number, child in enumerate(children):
            suffix = child.kind if len(children) == 1 else f"{child.kind}{number}"
            yield from labelled(child, f"{label}.{suffix}")


def apply_tag_rules(
    structure: TiffStructure,
    rules: list[Rule],
    ctx: DeidContext,
    recorder: Recorder,
    labels: list[tuple[str, Ifd]],
    source: str,
    *,
    insert_kinds: tuple[str, ...],
    replace_with_insert: bool,
) -> set[tuple[int, int]]:
    """Apply the name rules to every IFD where the name is defined. Returns the (ifd id, tag) pairs
    that a ``keep`` rule protects (from default removals such as MakerNote or private tags)."""
    kept: set[tuple[int, int]] = set()
    order = structure.order
    inserted: set[str] = set()
    for rule in rules:
        if rule.name is None:
            continue
        wanted = rule.name.lower()
        for label, ifd in labels:
            tag = name_index(ifd.kind).get(wanted)
            if tag is None:
                continue
            path = f"{label}.{tag_label(ifd.kind, tag)}"
            entry = ifd.entries.get(tag)
            if entry is None:
                if (
                    rule.action == "replace-with"
                    and replace_with_insert
                    and ifd.kind in insert_kinds
                    and wanted not in inserted
                    and tag_names(ifd.kind)[tag][1] == TYPE_ASCII
                ):
                    value = rule.apply("", ctx)
                    if value is not REMOVED:
                        ifd.entries[tag] = ascii_entry(tag, str(value))
                        inserted.add(wanted)
                        recorder.change(path, "replace-with", None, str(value), sensitive=False)
                continue
            if rule.is_keep:
                kept.add((id(ifd), tag))
                continue
            before = entry_text(order, entry)
            if rule.is_remove or before is None:
                if rule.is_remove:
                    remove_entry(ifd, tag)
                    recorder.change(path, "remove", before, None)
                continue
            try:
                result = rule.apply(before, ctx, path=path)
                numeric = entry.type not in (TYPE_ASCII, TYPE_UNDEFINED, TYPE_BYTE)
                if result is REMOVED or (numeric and not str(result).strip()):
                    # an empty number is no value: the entry goes rather than a 0-count entry
                    remove_entry(ifd, tag)
                    recorder.change(path, rule.action, before, None)
                    continue
                ifd.entries[tag] = text_entry(order, entry, str(result))
            except (ValueError, TypeError, OverflowError) as exc:
                raise MalformedFileError(source, f"{path}: {rule.action} failed: {exc}") from exc
            if str(result) != before:
                recorder.change(path, rule.action, before, str(result))
    return kept


def text_items(
    structure: TiffStructure, labels: list[tuple[str, Ifd]]
) -> Iterator[tuple[str, str]]:
    """Every readable value of every IFD, as ``(path, text)``."""
    for label, ifd in labels:
        for tag, entry in ifd.entries.items():
            text = entry_text(structure.order, entry)
            if text and text.strip():
                yield f"{label}.{tag_label(ifd.kind, tag)}", text


def lookup_tag(structure: TiffStructure, name: str) -> str | None:
    """The first value of a named tag in any IFD (filenames output variables)."""
    wanted = name.lower()
    for ifd in structure.walk():
        tag = name_index(ifd.kind).get(wanted)
        if tag is not None and tag in ifd.entries:
            return entry_text(structure.order, ifd.entries[tag])
    return None


def remove_tags(
    labels: list[tuple[str, Ifd]],
    order: str,
    recorder: Recorder,
    predicate: Callable[[Ifd, int], bool],
    action: str,
    kept: set[tuple[int, int]],
) -> None:
    """Remove every entry ``predicate`` selects unless a keep rule protects it."""
    for label, ifd in labels:
        for tag in list(ifd.entries):
            if tag in ifd.entries and predicate(ifd, tag) and (id(ifd), tag) not in kept:
                before = entry_text(order, ifd.entries[tag])
                remove_entry(ifd, tag)
                recorder.change(f"{label}.{tag_label(ifd.kind, tag)}", action, before, None)


def option(section: Any, key: str) -> bool:
    return bool(section.get(key, False))
