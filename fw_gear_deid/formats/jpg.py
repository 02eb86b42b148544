"""JPEG: EXIF, XMP, IPTC and COM metadata edited by rewriting the segment list, never the image.

The file is split into its marker segments; metadata segments are edited, rebuilt or dropped and
every other byte (quantisation and Huffman tables, frame and scan headers, the entropy-coded scan
data) is copied unchanged, so the decoded image is bit-identical to the source.

Fail-closed defaults (a documented difference from flywheel-migration): free-text carriers that
field rules cannot address tag by tag are removed unless a rule keeps them by name: ``XMP`` (APP1
XMP packets, incl. extended XMP), ``IPTC`` (APP13 Photoshop resources), ``COM`` (comment segments,
which rules may also edit), ``MakerNote`` (vendor EXIF blob), other APPn segments, and data after
the end-of-image marker (MPF extra images, vendor trailers). APP0 JFIF, APP2 ICC profiles and APP14
Adobe (needed to decode colours right) are kept.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from pathlib import Path

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, RuleHandler, sensitive_kind
from fw_gear_deid.formats._exif import (
    GPS_POINTER,
    MAKER_NOTE,
    apply_tag_rules,
    ifd_labels,
    lookup_tag,
    remove_tags,
    text_items,
)
from fw_gear_deid.formats._jpeg import (
    APP1,
    COM,
    EXIF_HEADER,
    XMP_HEADER,
    Segment,
    iptc_values,
    parse_jpeg,
    xmp_values,
)
from fw_gear_deid.formats._tiffio import (
    TYPE_LONG,
    Entry,
    TiffFormatError,
    TiffStructure,
    read_tiff,
    remove_entry,
    write_tiff,
)

EXIF_NS = "http://ns.adobe.com/exif/1.0/"
MAX_SEGMENT = 0xFFFF - 2
THUMBNAIL_OFFSET, THUMBNAIL_LENGTH = 513, 514
#: Field names that address whole segments. The piexif spellings of the same carriers (IFD0 tags
#: XMLPacket and ImageResources) are accepted too, so a profile checked against piexif names can
#: keep them.
SEGMENT_ALIASES = {
    "XMP": ("XMP", "XMLPacket"),
    "IPTC": ("IPTC", "ImageResources"),
    "COM": ("COM", "Comment"),
}


class JpgHandler(RuleHandler):
    section_name = "jpg"
    shown_options = ("remove-exif", "remove-gps")
    default_notes = (
        "removes XMP, IPTC, COM, MakerNote, other APPn segments and data after the image "
        "(keep with {name: XMP|IPTC|COM|MakerNote, keep: true})",
    )
    default_filters = ("*.jpg", "*.jpeg", "*.JPG", "*.JPEG", "*.Jpg", "*.Jpeg", "*.jpe", "*.JPE")

    def matches_signature(self, head: bytes) -> bool:
        return head.startswith(b"\xff\xd8\xff")

    # -- helpers ----------------------------------------------------------------------------------
    def _rule(self, name: str):
        wanted = {alias.lower() for alias in SEGMENT_ALIASES.get(name, (name,))}
        for rule in self.rules:
            if rule.name is not None and rule.name.lower() in wanted:
                return rule
        return None

    def _kept(self, name: str) -> bool:
        rule = self._rule(name)
        return rule is not None and rule.is_keep

    def _load(self, src: Path, source: str) -> tuple[list[Segment], bytes]:
        try:
            return parse_jpeg(src.read_bytes())
        except (ValueError, OSError) as exc:
            raise MalformedFileError(source, f"not a readable JPEG: {exc}") from exc

    # -- work -------------------------------------------------------------------------------------
    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        segments, trailer = self._load(src, source)
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        kept_segments: list[Segment] = []
        structures: list[TiffStructure] = []
        for segment in segments:
            kind = segment.kind()
            if kind in ("image", "keep"):
                kept_segments.append(segment)
            elif kind == "exif":
                new = self._exif(segment, ctx, rec, source, structures)
                if new is not None:
                    kept_segments.append(new)
            elif kind == "com":
                new = self._comment(segment, ctx, rec, source)
                if new is not None:
                    kept_segments.append(new)
            elif kind in ("xmp", "iptc"):
                name = kind.upper()
                if self._kept(name):
                    if kind == "xmp" and self.section.get("remove-gps"):
                        segment = self._xmp_without_gps(segment, rec, source)
                    kept_segments.append(segment)
                else:
                    self._drop_blob(rec, segment, name)
            else:  # other APPn: vendor blobs (MPF, FlashPix, Ducky, ...) dropped
                rec.change(
                    f"APP{segment.marker - 0xE0}",
                    "remove",
                    segment.payload[:64].decode("latin-1"),
                    None,
                    sensitive=False,
                )
        if trailer.strip(b"\x00"):
            rec.change(
                "trailer",
                "remove",
                f"{len(trailer)} bytes after end of image",
                None,
                sensitive=False,
            )

        lookup_structure = structures[0] if structures else None
        outcome.output_name = self.output_name(
            src,
            ctx,
            rec,
            lambda name: lookup_tag(lookup_structure, name) if lookup_structure else None,
        )
        if dst is not None:
            with open(dst, "wb") as out:
                out.write(b"\xff\xd8")
                for segment in kept_segments:
                    out.write(segment.encode())
                out.write(b"\xff\xd9")
        return outcome

    def _drop_blob(self, rec: Recorder, segment: Segment, name: str) -> None:
        if name == "IPTC":
            for path, text in iptc_values(segment.payload):
                rec.change(path, "remove", text, None)
        else:
            values = list(xmp_values(segment.payload))
            packet = "\n".join(f"{path}: {text}" for path, text in values)
            rec.change("XMP", "remove", packet, None, sensitive=False)
            for path, text in values:
                rec.sensitive(sensitive_kind("remove", path, text), text, path)

    @staticmethod
    def _xmp_without_gps(segment: Segment, rec: Recorder, source: str) -> Segment:
        """``remove-gps`` also strips the EXIF GPS properties (``exif:GPS*``) of a kept XMP packet."""
        from lxml import etree

        if not segment.payload.startswith(XMP_HEADER):
            return segment  # extended XMP chunks are fragments: nothing to parse on their own
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        body = segment.payload[len(XMP_HEADER) :]
        try:
            tree = etree.fromstring(body.strip(b"\x00 \r\n\t"), parser).getroottree()
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise MalformedFileError(
                source, f"the kept XMP packet cannot be read to remove GPS: {exc}"
            ) from exc
        removed = False
        for element in list(tree.iter()):
            if not isinstance(element.tag, str):
                continue
            for name in list(element.attrib):
                qname = etree.QName(name)
                if qname.namespace == EXIF_NS and qname.localname.startswith("GPS"):
                    path = f"XMP.exif:{qname.localname}"
                    rec.change(path, "remove-gps", element.attrib[name], None)
                    del element.attrib[name]
                    removed = True
            qname = etree.QName(element)
            parent = element.getparent()
            if (
                qname.namespace == EXIF_NS
                and qname.localname.startswith("GPS")
                and parent is not None
            ):
                path = f"XMP.exif:{qname.localname}"
                rec.change(path, "remove-gps", "".join(element.itertext()), None)
                parent.remove(element)
                removed = True
        if not removed:
            return segment
        packet = etree.tostring(tree, encoding="UTF-8", xml_declaration=False)
        return Segment(APP1, XMP_HEADER + packet)

    def _comment(
        self, segment: Segment, ctx: DeidContext, rec: Recorder, source: str
    ) -> Segment | None:
        text = segment.payload.rstrip(b"\x00").decode("utf-8", "replace")
        rule = self._rule("COM")
        if rule is None or rule.is_remove:
            rec.change("COM", "remove", text, None, kind="text")
            return None
        if rule.is_keep:
            return segment
        try:
            result = rule.apply(text, ctx)
        except (ValueError, TypeError) as exc:
            raise MalformedFileError(source, f"COM: {rule.action} failed: {exc}") from exc
        if result is REMOVED:
            rec.change("COM", rule.action, text, None, kind="text")
            return None
        rec.change("COM", rule.action, text, str(result), kind="text")
        return Segment(COM, str(result).encode("utf-8"))

    def _exif(
        self,
        segment: Segment,
        ctx: DeidContext,
        rec: Recorder,
        source: str,
        structures: list[TiffStructure],
    ) -> Segment | None:
        blob = segment.payload[len(EXIF_HEADER) :]
        changes_before = len(rec.outcome.changes)
        try:
            structure = read_tiff(io.BytesIO(blob), len(blob), ("0th", "1st"))
        except TiffFormatError:
            # an EXIF block we cannot parse cannot be edited tag by tag either: drop it whole
            # (fail closed on its content, keep the image usable)
            rec.change("EXIF", "remove (unreadable)", blob.decode("latin-1"), None, sensitive=False)
            return None
        labels = list(ifd_labels(structure, lambda i: f"EXIF.IFD{i}"))
        if self.section.get("remove-exif"):
            for path, text in text_items(structure, labels):
                rec.change(path, "remove-exif", text, None)
            return None
        kept = apply_tag_rules(
            structure,
            self.rules,
            ctx,
            rec,
            labels,
            source,
            insert_kinds=("0th",),
            replace_with_insert=self.section.get("replace-with-insert", True),
        )
        if self.section.get("remove-gps"):
            for label, ifd in labels:
                if ifd.kind == "GPS":
                    for path, text in text_items(structure, [(label, ifd)]):
                        rec.change(path, "remove-gps", text, None)
            remove_tags(
                labels,
                structure.order,
                rec,
                lambda _i, tag: tag == GPS_POINTER,
                "remove-gps",
                set(),
            )
        remove_tags(
            labels,
            structure.order,
            rec,
            lambda ifd, tag: ifd.kind == "Exif" and tag == MAKER_NOTE,
            "remove",
            kept,
        )
        labels = list(ifd_labels(structure, lambda i: f"EXIF.IFD{i}"))
        for label, ifd in labels:
            if ifd.dropped:
                rec.change(
                    label, "remove", f"{len(ifd.dropped)} unreadable entries", None, sensitive=False
                )
        structures.append(structure)
        blob = self._clean_thumbnails(structure, blob, rec)
        if len(rec.outcome.changes) == changes_before:
            return segment  # nothing in it changed: the block as it was, byte for byte
        out = io.BytesIO()
        try:
            write_tiff(structure, io.BytesIO(blob), len(blob), out)
        except TiffFormatError as exc:
            raise MalformedFileError(source, f"EXIF block cannot be rewritten: {exc}") from exc
        payload = EXIF_HEADER + out.getvalue()
        if len(payload) > MAX_SEGMENT:
            raise MalformedFileError(
                source, "the rewritten EXIF block exceeds the 64 KiB segment limit"
            )
        return Segment(APP1, payload)

    @staticmethod
    def _clean_thumbnails(structure: TiffStructure, blob: bytes, rec: Recorder) -> bytes:
        """Strip the metadata segments of embedded JPEG thumbnails (they may carry their own EXIF,
        XMP or comments). A cleaned thumbnail is appended to the source blob and its block
        re-pointed; one that does not parse is dropped with its tags."""
        extended = bytearray(blob)
        for ifd in structure.walk():
            blocks = ifd.blocks.get(THUMBNAIL_OFFSET)
            if not blocks or THUMBNAIL_OFFSET not in ifd.entries:
                continue
            offset, count = blocks[0]
            thumbnail = blob[offset : offset + count]
            try:
                segments, _trailer = parse_jpeg(thumbnail)
            except ValueError:
                remove_entry(ifd, THUMBNAIL_OFFSET)
                rec.change(f"EXIF.{ifd.kind}.thumbnail", "remove (unreadable)", sensitive=False)
                continue
            kept = [seg for seg in segments if seg.kind() in ("image", "keep")]
            cleaned = b"\xff\xd8" + b"".join(seg.encode() for seg in kept) + b"\xff\xd9"
            if cleaned == thumbnail:
                continue
            ifd.blocks[THUMBNAIL_OFFSET] = [(len(extended), len(cleaned))]
            ifd.entries[THUMBNAIL_LENGTH] = Entry(
                THUMBNAIL_LENGTH, TYPE_LONG, 1, struct.pack(f"{structure.order}I", len(cleaned))
            )
            extended += cleaned
            rec.change(f"EXIF.{ifd.kind}.thumbnail", "remove metadata", sensitive=False)
        return bytes(extended)

    def record_value(self, path: Path, name: str) -> str | None:
        for segment in parse_jpeg(path.read_bytes())[0]:
            if segment.kind() == "exif":
                blob = segment.payload[len(EXIF_HEADER) :]
                return lookup_tag(read_tiff(io.BytesIO(blob), len(blob), ("0th", "1st")), name)
        return None

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        segments, trailer = parse_jpeg(path.read_bytes())
        for segment in segments:
            kind = segment.kind()
            if kind == "exif":
                blob = segment.payload[len(EXIF_HEADER) :]
                structure = read_tiff(io.BytesIO(blob), len(blob), ("0th", "1st"))
                yield from text_items(
                    structure, list(ifd_labels(structure, lambda i: f"EXIF.IFD{i}"))
                )
            elif kind == "com":
                yield "COM", segment.payload.decode("utf-8", "replace")
            elif kind == "xmp":
                yield from xmp_values(segment.payload)
            elif kind == "iptc":
                yield from iptc_values(segment.payload)
            elif kind == "app":
                yield f"APP{segment.marker - 0xE0}", segment.payload.decode("latin-1")
        if trailer:
            yield "trailer", trailer.decode("latin-1")


__all__ = ["JpgHandler"]
