"""JPEG structure: the marker segments of a file, and the values inside IPTC and XMP segments.

Used by the ``jpg`` handler (and for EXIF thumbnails, which are JPEGs themselves). Parsing keeps
every byte: a segment's payload and the entropy-coded scan data are held exactly as found, so
writing the kept segments back reproduces the source byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

SOI, EOI, SOS, COM = 0xD8, 0xD9, 0xDA, 0xFE
APP0, APP1, APP2, APP13, APP14 = 0xE0, 0xE1, 0xE2, 0xED, 0xEE
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXT_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass
class Segment:
    """A marker segment (``marker`` set) or raw entropy-coded bytes (``marker`` None)."""

    marker: int | None
    payload: bytes

    def kind(self) -> str:
        m, p = self.marker, self.payload
        if m == APP1 and p.startswith((EXIF_HEADER, b"Exif\x00\xff")):
            return "exif"
        if m == APP1 and p.startswith((XMP_HEADER, XMP_EXT_HEADER)):
            return "xmp"
        if m == APP13 and p.startswith(PHOTOSHOP_HEADER):
            return "iptc"
        if m == COM:
            return "com"
        if m == APP0 and p.startswith((b"JFIF\x00", b"JFXX\x00")):
            return "keep"
        if m == APP2 and p.startswith(b"ICC_PROFILE\x00"):
            return "keep"
        if m == APP14 and p.startswith(b"Adobe"):
            return "keep"
        if m is not None and 0xE0 <= m <= 0xEF:
            return "app"
        return "image"

    def encode(self) -> bytes:
        if self.marker is None:
            return self.payload
        if self.marker in _STANDALONE or self.marker in (SOI, EOI):
            return bytes([0xFF, self.marker])
        return bytes([0xFF, self.marker]) + struct.pack(">H", len(self.payload) + 2) + self.payload


def parse_jpeg(data: bytes) -> tuple[list[Segment], bytes]:
    """The segments between SOI and EOI (scan data as raw segments) and the bytes after EOI."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("no JPEG start-of-image marker")
    segments: list[Segment] = []
    pos, size = 2, len(data)
    while True:
        if pos >= size:
            raise ValueError("truncated: no end-of-image marker")
        if data[pos] != 0xFF:
            # stray bytes between segments (decoders skip them with a warning): dropped
            following = data.find(b"\xff", pos)
            if following < 0:
                raise ValueError(f"expected a marker at byte {pos}")
            pos = following
            continue
        while pos + 1 < size and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= size:
            raise ValueError("truncated marker")
        marker = data[pos + 1]
        if marker == EOI:
            return segments, data[pos + 2 :]
        if marker in _STANDALONE:
            segments.append(Segment(marker, b""))
            pos += 2
            continue
        if pos + 4 > size:
            raise ValueError("truncated segment header")
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2 or pos + 2 + length > size:
            raise ValueError(
                f"segment 0xFF{marker:02X} at byte {pos} runs past the end of the file"
            )
        segments.append(Segment(marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == SOS:
            end = _scan_end(data, pos)
            segments.append(Segment(None, data[pos:end]))
            pos = end


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at ``pos`` ends (the next real marker)."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise ValueError("truncated scan data: no end-of-image marker")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = found + 2
            continue
        if following == 0xFF:  # fill byte before a marker
            pos = found + 1
            continue
        return found


#: IPTC-IIM dataset names (record 2, the application record), for readable report paths.
IPTC_NAMES = {
    (1, 90): "CodedCharacterSet",
    (2, 5): "ObjectName",
    (2, 25): "Keywords",
    (2, 40): "SpecialInstructions",
    (2, 55): "DateCreated",
    (2, 60): "TimeCreated",
    (2, 62): "DigitalCreationDate",
    (2, 80): "By-line",
    (2, 85): "By-lineTitle",
    (2, 90): "City",
    (2, 92): "Sub-location",
    (2, 95): "Province-State",
    (2, 101): "Country",
    (2, 103): "OriginalTransmissionReference",
    (2, 105): "Headline",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 116): "CopyrightNotice",
    (2, 118): "Contact",
    (2, 120): "Caption-Abstract",
    (2, 122): "Writer-Editor",
}


def iptc_values(payload: bytes) -> Iterator[tuple[str, str]]:
    """IPTC-IIM datasets (record:dataset, text) inside an APP13 Photoshop segment."""
    body = payload[len(PHOTOSHOP_HEADER) :]
    pos = 0
    while pos + 12 <= len(body) and body[pos : pos + 4] == b"8BIM":
        resource = struct.unpack(">H", body[pos + 4 : pos + 6])[0]
        name_len = body[pos + 6]
        pos += 7 + name_len + ((name_len + 1) % 2)
        if pos + 4 > len(body):
            return
        size = struct.unpack(">I", body[pos : pos + 4])[0]
        data = body[pos + 4 : pos + 4 + size]
        pos += 4 + size + (size % 2)
        if resource != 0x0404:
            yield f"IPTC.8BIM{resource:04X}", data.decode("latin-1")
            continue
        i = 0
        while i + 5 <= len(data) and data[i] == 0x1C:
            record, dataset = data[i + 1], data[i + 2]
            length = struct.unpack(">H", data[i + 3 : i + 5])[0]
            label = IPTC_NAMES.get((record, dataset), f"{record}:{dataset}")
            yield f"IPTC.{label}", data[i + 5 : i + 5 + length].decode("utf-8", "replace")
            i += 5 + length


def xmp_values(payload: bytes) -> Iterator[tuple[str, str]]:
    """Every text and attribute value of an XMP packet (``XMP.dc:creator/rdf:Seq/rdf:li``...).

    Parsed with entities, DTDs and network off; a packet that does not parse (extended XMP chunks,
    broken packets) yields its printable text whole, so nothing in it escapes the residual scan.
    """
    from lxml import etree

    header = XMP_HEADER if payload.startswith(XMP_HEADER) else XMP_EXT_HEADER
    body = payload[len(header) :]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
    )
    try:
        root = etree.fromstring(body.strip(b"\x00 \r\n\t"), parser)
    except (etree.XMLSyntaxError, ValueError):
        yield "XMP", body.decode("utf-8", "replace")
        return
    tree = root.getroottree()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        where = "XMP." + _qname(element, tree)
        if element.text and element.text.strip():
            yield where, element.text
        for name, value in element.attrib.items():
            if value.strip():
                yield f"{where}/@{etree.QName(name).localname}", value


def _qname(element, tree) -> str:
    """``prefix:local`` path of an element, short enough for a report line."""
    from lxml import etree

    parts = []
    node = element
    while node is not None and len(parts) < 4:
        qname = etree.QName(node)
        prefix = node.prefix + ":" if node.prefix else ""
        parts.append(prefix + qname.localname)
        node = node.getparent()
    return "/".join(reversed(parts))
