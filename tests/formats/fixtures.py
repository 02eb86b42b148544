"""Fixture builders for the non-DICOM format tests: real files made with Pillow, piexif and the stdlib.

Every builder plants identifying values (``PLANTED``) in a different metadata carrier, so a test can
check independently (exiftool, Pillow, byte comparisons) that none of them survives.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import piexif
from PIL import Image, PngImagePlugin, TiffImagePlugin

NAME = "Jane Q Doe"
MRN = "MRN0042917"
BIRTH = "1961:07:14 08:30:00"
XMP_NAME = "Johanna Xmpname"
IPTC_NAME = "Ivana Iptcname"
COMMENT = "Patient Cornelius Comment scanned at Mercyvale Clinic"
MAKER = "SerialOwner-Makernote-77"
GPS_LAT = ((47, 1), (36, 1), (1234, 100))

#: Values planted in the JPEG fixture, each in a different carrier.
JPEG_PLANTED = (NAME, MRN, XMP_NAME, IPTC_NAME, "Cornelius Comment", MAKER, "1961:07:14")


def _image(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            if mode == "RGB":
                pixels[x, y] = ((x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256)
            else:
                pixels[x, y] = (x * 3 + y) % 256
    return image


def exif_bytes(*, thumbnail: bool = True, thumbnail_comment: bytes = b"") -> bytes:
    thumb = io.BytesIO()
    _image(16, 12).save(thumb, "JPEG", quality=80, comment=thumbnail_comment)
    exif = {
        "0th": {
            piexif.ImageIFD.Artist: NAME.encode(),
            piexif.ImageIFD.ImageDescription: f"Scan of {NAME} {MRN}".encode(),
            piexif.ImageIFD.DateTime: BIRTH.encode(),
            piexif.ImageIFD.Make: b"ExampleCam",
            piexif.ImageIFD.Orientation: 1,
            piexif.ImageIFD.XPAuthor: NAME.encode("utf-16-le") + b"\x00\x00",
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: BIRTH.encode(),
            piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00" + f"patient {MRN}".encode(),
            piexif.ExifIFD.MakerNote: MAKER.encode(),
            piexif.ExifIFD.BodySerialNumber: b"BODY-1234",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: GPS_LAT,
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((8, 1), (32, 1), (5678, 100)),
            piexif.GPSIFD.GPSDateStamp: b"1961:07:14",
        },
        "1st": {piexif.ImageIFD.Artist: NAME.encode(), piexif.ImageIFD.DateTime: BIRTH.encode()},
        "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
        "thumbnail": thumb.getvalue() if thumbnail else None,
    }
    return piexif.dump(exif)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def xmp_packet(name: str = XMP_NAME) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="47,36.2057N">'
        f"<dc:creator><rdf:Seq><rdf:li>{name}</rdf:li></rdf:Seq></dc:creator>"
        "<exif:GPSLongitude>8,32.9463E</exif:GPSLongitude></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def iptc_segment(name: str = IPTC_NAME) -> bytes:
    byline = name.encode()
    datasets = (
        b"\x1c\x01\x5a\x00\x03\x1b%G" + b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    )
    resource = b"8BIM" + b"\x04\x04" + b"\x00\x00" + struct.pack(">I", len(datasets)) + datasets
    if len(datasets) % 2:
        resource += b"\x00"
    return _segment(0xED, b"Photoshop 3.0\x00" + resource)


THUMB_COMMENT = b"thumbnail of Thumbelina Namesake"


def build_jpeg(path: Path, *, progressive: bool = False) -> Path:
    """A JPEG with EXIF (0th/Exif/GPS/Interop/1st + thumbnail with its own comment, MakerNote),
    XMP, IPTC and COM."""
    buffer = io.BytesIO()
    exif = exif_bytes(thumbnail_comment=THUMB_COMMENT)
    _image().save(buffer, "JPEG", quality=90, exif=exif, progressive=progressive)
    data = buffer.getvalue()
    extra = (
        _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet())
        + iptc_segment()
        + _segment(0xFE, COMMENT.encode())
        + _segment(0xEC, b"Ducky\x00vendor blob " + NAME.encode())
    )
    # after the APP1 EXIF segment, before the tables
    exif_end = 2
    while data[exif_end + 1] in (0xE0, 0xE1):
        exif_end += 2 + struct.unpack(">H", data[exif_end + 2 : exif_end + 4])[0]
    path.write_bytes(data[:exif_end] + extra + data[exif_end:])
    return path


def scan_bytes(data: bytes) -> bytes:
    """The bytes from the first SOS marker to the end (the compressed image), found independently."""
    pos = 2
    while True:
        marker = data[pos + 1]
        if marker == 0xDA:
            return data[pos:]
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def build_png(path: Path, mode: str = "RGB") -> Path:
    """A PNG with tEXt, zTXt, iTXt, eXIf, tIME and a private chunk, each carrying a planted value."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", NAME)
    info.add_text("Comment", f"record {MRN}", zip=True)
    info.add_itxt("Description", f"Patient {XMP_NAME}", lang="en", tkey="Beschreibung", zip=True)
    info.add_text("Software", "ExampleScanner 1.0")
    buffer = io.BytesIO()
    _image(mode=mode).save(buffer, "PNG", pnginfo=info)
    data = buffer.getvalue()
    ihdr_end = 8 + 25
    extra = (
        _chunk(b"tIME", struct.pack(">HBBBBB", 1961, 7, 14, 8, 30, 0))
        + _chunk(b"eXIf", exif_bytes(thumbnail=False)[6:])
        + _chunk(b"prVt", f"private {IPTC_NAME}".encode())
    )
    path.write_bytes(data[:ihdr_end] + extra + data[ihdr_end:])
    return path


PRIVATE_TAG = 65000


def build_tiff(path: Path, pages: int = 3, compression: str = "tiff_lzw") -> Path:
    """A multi-page TIFF whose pages carry Artist, DateTime, a private ASCII tag and XMP."""
    images = [_image(40 + 8 * i, 30 + 4 * i) for i in range(pages)]
    infos = []
    for index in range(pages):
        ifd = TiffImagePlugin.ImageFileDirectory_v2()
        ifd[315] = f"{NAME} page {index}"
        ifd[306] = BIRTH
        ifd[270] = f"Study of {MRN}"
        ifd[305] = "ExampleScanner"
        ifd[700] = xmp_packet()
        ifd.tagtype[700] = 1
        ifd[PRIVATE_TAG] = f"private {IPTC_NAME}"
        ifd.tagtype[PRIVATE_TAG] = 2
        infos.append(ifd)
    with open(path, "w+b") as handle, TiffImagePlugin.AppendingTiffWriter(handle, new=True) as tiff:
        for image, info in zip(images, infos, strict=True):
            image.save(tiff, "TIFF", tiffinfo=info, compression=compression)
            tiff.newFrame()
    return path


def zip_with(path: Path, members: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2020, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (0o120777 << 16) | 0x20
                info.create_system = 3
            archive.writestr(info, data)
    return path


def _ifd(
    entries: list[tuple[int, int, int, bytes]], at: int, next_ifd: int = 0, order: str = "<"
) -> tuple[bytes, bytes]:
    """An IFD table placed at ``at`` plus its out-of-line values (written after it)."""
    table = struct.pack(f"{order}H", len(entries))
    values = b""
    base = at + 2 + 12 * len(entries) + 4
    for tag, typ, count, data in sorted(entries):
        if len(data) <= 4:
            table += struct.pack(f"{order}HHI", tag, typ, count) + data.ljust(4, b"\x00")
        else:
            table += struct.pack(f"{order}HHII", tag, typ, count, base + len(values))
            values += data + (b"\x00" if len(data) % 2 else b"")
    return table + struct.pack(f"{order}I", next_ifd), values


def build_tiff_with_exif(path: Path, order: str = "<") -> Path:
    """A hand-assembled single-page TIFF whose IFD0 points to an EXIF and a GPS IFD (Pillow cannot
    write these sub-IFDs into a TIFF)."""
    width, height = 8, 4
    pixels = bytes((x * 31 + y * 7) % 256 for y in range(height) for x in range(width * 3))
    strip_at = 8
    exif_at = strip_at + len(pixels)
    exif_table, exif_values = _ifd(
        [
            (36867, 2, 20, BIRTH.encode() + b"\x00"),
            (37510, 7, 8 + len(MRN), b"ASCII\x00\x00\x00" + MRN.encode()),
        ],
        exif_at,
        order=order,
    )
    gps_at = exif_at + len(exif_table) + len(exif_values)
    gps_table, gps_values = _ifd(
        [(1, 2, 2, b"N\x00"), (2, 5, 3, struct.pack(f"{order}6I", 47, 1, 36, 1, 1234, 100))],
        gps_at,
        order=order,
    )
    ifd0_at = gps_at + len(gps_table) + len(gps_values)
    artist = NAME.encode() + b"\x00"
    ifd0_table, ifd0_values = _ifd(
        [
            (256, 3, 1, struct.pack(f"{order}H", width)),
            (257, 3, 1, struct.pack(f"{order}H", height)),
            (258, 3, 3, struct.pack(f"{order}3H", 8, 8, 8)),
            (259, 3, 1, struct.pack(f"{order}H", 1)),
            (262, 3, 1, struct.pack(f"{order}H", 2)),
            (273, 4, 1, struct.pack(f"{order}I", strip_at)),
            (277, 3, 1, struct.pack(f"{order}H", 3)),
            (278, 3, 1, struct.pack(f"{order}H", height)),
            (279, 4, 1, struct.pack(f"{order}I", len(pixels))),
            (315, 2, len(artist), artist),
            (34665, 4, 1, struct.pack(f"{order}I", exif_at)),
            (34853, 4, 1, struct.pack(f"{order}I", gps_at)),
        ],
        ifd0_at,
        order=order,
    )
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(f"{order}I", ifd0_at)
    path.write_bytes(
        header
        + pixels
        + exif_table
        + exif_values
        + gps_table
        + gps_values
        + ifd0_table
        + ifd0_values
    )
    return path


def build_bigtiff(path: Path, pages: int = 2) -> Path:
    """A hand-assembled little-endian BigTIFF (64-bit offsets), one uncompressed strip per page,
    each page with an Artist and a private ASCII tag."""
    width, height = 6, 4
    body = b""
    base = 16
    strips = []
    for page in range(pages):
        pixels = bytes(
            (x * 29 + y * 11 + page * 50) % 256 for y in range(height) for x in range(width * 3)
        )
        strips.append((base + len(body), pixels))
        body += pixels
    tables = b""
    offsets = []
    at = base + len(body)
    for page, (strip_at, pixels) in enumerate(strips):
        artist = f"{NAME} page {page}".encode() + b"\x00"
        private = f"private {IPTC_NAME}".encode() + b"\x00"
        entries = sorted(
            [
                (256, 3, 1, struct.pack("<H", width)),
                (257, 3, 1, struct.pack("<H", height)),
                (258, 3, 3, struct.pack("<3H", 8, 8, 8)),
                (259, 3, 1, struct.pack("<H", 1)),
                (262, 3, 1, struct.pack("<H", 2)),
                (273, 16, 1, struct.pack("<Q", strip_at)),
                (277, 3, 1, struct.pack("<H", 3)),
                (278, 3, 1, struct.pack("<H", height)),
                (279, 16, 1, struct.pack("<Q", len(pixels))),
                (315, 2, len(artist), artist),
                (PRIVATE_TAG, 2, len(private), private),
            ]
        )
        offsets.append(at)
        values_at = at + 8 + 20 * len(entries) + 8
        table, values = struct.pack("<Q", len(entries)), b""
        for tag, typ, count, data in entries:
            if len(data) <= 8:
                table += struct.pack("<HHQ", tag, typ, count) + data.ljust(8, b"\x00")
            else:
                table += struct.pack("<HHQQ", tag, typ, count, values_at + len(values))
                values += data + (b"\x00" if len(data) % 2 else b"")
        table += b"\x00" * 8  # next IFD, patched below
        tables += table + values
        at += len(table) + len(values)
    data = bytearray(b"II" + struct.pack("<HHHQ", 43, 8, 0, offsets[0]) + body + tables)
    for page in range(pages - 1):  # chain the pages
        count = struct.unpack("<Q", data[offsets[page] : offsets[page] + 8])[0]
        next_at = offsets[page] + 8 + 20 * count
        data[next_at : next_at + 8] = struct.pack("<Q", offsets[page + 1])
    path.write_bytes(bytes(data))
    return path
