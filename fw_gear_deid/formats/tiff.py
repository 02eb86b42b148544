"""TIFF: tags edited in every page's IFD, image data copied byte for byte (multi-page files too).

The IFDs are parsed and written afresh by :mod:`._tiffio` (no Pillow re-save, which re-encodes and
drops tags it does not know). Strips and tiles are streamed from the source unchanged; only the
IFD tables and their values are new.

Field names are Pillow ``TAGS_V2`` names (as in flywheel-migration), applied to every page and
SubIFD; names of the EXIF/GPS sub-IFDs (piexif names) act inside those. ``remove-private-tags``
removes tags >= 32768 from pages (not inside EXIF/GPS IFDs, whose numbering differs) unless a rule
keeps them by name; note that the EXIF and GPS IFD pointers (34665, 34853) and the ICC profile are
numbered >= 32768 and go with them. Fail-closed defaults: XMP (700), IptcNaaInfo (33723),
PhotoshopInfo (34377), ImageSourceData (37724) and the EXIF MakerNote are removed unless kept by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import Recorder, RuleHandler
from fw_gear_deid.formats._exif import (
    MAKER_NOTE,
    apply_tag_rules,
    ifd_labels,
    labelled,
    lookup_tag,
    remove_tags,
    text_items,
)
from fw_gear_deid.formats._output import output_file
from fw_gear_deid.formats._tiffio import (
    SUBIFD_TAGS,
    TiffFormatError,
    TiffStructure,
    read_tiff,
    write_tiff,
)

PRIVATE_TAG_MIN = 32768
#: Free-text/opaque blobs removed unless a rule keeps them by name.
DEFAULT_REMOVED = {
    700: "XMP",
    33723: "IptcNaaInfo",
    34377: "PhotoshopInfo",
    37724: "ImageSourceData",
}
_PAGE_KINDS = ("page", "SubIFD")


def _page_label(index: int) -> str:
    return f"page{index}"


class TiffHandler(RuleHandler):
    section_name = "tiff"
    shown_options = ("remove-private-tags",)
    default_notes = ("removes XMP, IptcNaaInfo, PhotoshopInfo, ImageSourceData and MakerNote",)
    default_filters = ("*.tif", "*.tiff", "*.TIF", "*.TIFF", "*.Tif", "*.Tiff")

    def matches_signature(self, head: bytes) -> bool:
        return head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"))  # classic, BigTIFF

    def _read(self, stream, size: int, source: str) -> TiffStructure:
        try:
            return read_tiff(stream, size, ("page",))
        except (TiffFormatError, OSError) as exc:
            raise MalformedFileError(
                source, f"not a TIFF we can rewrite losslessly: {exc}"
            ) from exc

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        size = src.stat().st_size
        with open(src, "rb") as stream:
            structure = self._read(stream, size, source)
            labels = list(ifd_labels(structure, _page_label))
            kept = apply_tag_rules(
                structure,
                self.rules,
                ctx,
                rec,
                labels,
                source,
                insert_kinds=("page",),
                replace_with_insert=self.section.get("replace-with-insert", True),
            )
            if self.section.get("remove-private-tags"):
                for label, ifd in labels:  # report what the removed sub-IFDs held
                    if ifd.kind in _PAGE_KINDS:
                        for tag, children in ifd.children.items():
                            if tag >= PRIVATE_TAG_MIN and (id(ifd), tag) not in kept:
                                for child in children:
                                    sub = list(labelled(child, f"{label}.{child.kind}"))
                                    for path, text in text_items(structure, sub):
                                        rec.change(path, "remove-private-tags", text, None)
                remove_tags(
                    labels,
                    structure.order,
                    rec,
                    lambda ifd, tag: ifd.kind in _PAGE_KINDS and tag >= PRIVATE_TAG_MIN,
                    "remove-private-tags",
                    kept,
                )
            remove_tags(
                labels,
                structure.order,
                rec,
                lambda ifd, tag: (
                    (ifd.kind in _PAGE_KINDS and tag in DEFAULT_REMOVED)
                    or (ifd.kind == "Exif" and tag == MAKER_NOTE)
                ),
                "remove",
                kept,
            )
            for label, ifd in labels:
                if ifd.dropped:
                    rec.change(
                        label,
                        "remove",
                        f"{len(ifd.dropped)} unreadable entries",
                        None,
                        sensitive=False,
                    )
            outcome.output_name = self.output_name(
                src, ctx, rec, lambda name: lookup_tag(structure, name)
            )
            changed = bool(outcome.changes)
            if dst is not None:
                with output_file(dst) as out:
                    if not changed:  # nothing to change: the file as it was, byte for byte
                        stream.seek(0)
                        shutil.copyfileobj(stream, out, 1 << 20)  # type: ignore[arg-type]
                        return outcome
                    try:
                        write_tiff(structure, stream, size, out)
                    except TiffFormatError as exc:
                        raise MalformedFileError(source, f"cannot be rewritten: {exc}") from exc
        return outcome

    def record_value(self, path: Path, name: str) -> str | None:
        with open(path, "rb") as stream:
            return lookup_tag(read_tiff(stream, path.stat().st_size, ("page",)), name)

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        with open(path, "rb") as stream:
            structure = read_tiff(stream, path.stat().st_size, ("page",))
        yield from text_items(structure, list(ifd_labels(structure, _page_label)))


__all__ = ["SUBIFD_TAGS", "TiffHandler"]
