"""A corpus of broken and hostile inputs, generated on the fly (no binary is committed).

Each :class:`Case` names the profile section whose handler must reject it, a file name, and a builder
writing the bytes. ``may_succeed`` marks inputs a handler may legitimately process (an empty CSV is a
valid empty table); all others must become a clear :class:`MalformedFileError` (or
:class:`ProfileError` for profiles).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

INVALID_UTF8 = b"name\xff\xfe\xc3\x28 \xed\xa0\x80 end"


@dataclass(frozen=True)
class Case:
    id: str
    section: str
    filename: str
    build: Callable[[], bytes]
    may_succeed: bool = False
    #: For inputs that may succeed: bytes the output must still contain (lossless handling).
    keeps: bytes = b""

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename
        path.write_bytes(self.build())
        return path


# -- DICOM ----------------------------------------------------------------------------------------
def _ct_small() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


def _dicom_head(*elements: tuple[str, object]) -> bytes:
    """File meta + a few low-numbered elements, explicit VR little endian (room to append more)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    for keyword, value in elements:
        setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _tag(group: int, element: int) -> bytes:
    return struct.pack("<HH", group, element)


def dicom_deep_sequences(depth: int = 5000) -> bytes:
    """ReferencedImageSequence items nested ``depth`` deep, undefined lengths: exhausts recursion."""
    opening = (
        _tag(0x0008, 0x1140) + b"SQ\x00\x00\xff\xff\xff\xff" + _tag(0xFFFE, 0xE000) + b"\xff" * 4
    )
    closing = _tag(0xFFFE, 0xE00D) + b"\x00" * 4 + _tag(0xFFFE, 0xE0DD) + b"\x00" * 4
    return _dicom_head() + opening * depth + closing * depth


def dicom_wrong_length() -> bytes:
    """PatientName claims 0xFFF0 bytes; the file ends 10 bytes later."""
    return _dicom_head() + _tag(0x0010, 0x0010) + b"PN" + struct.pack("<H", 0xFFF0) + b"DOE^JOHN  "


def dicom_huge_private_length() -> bytes:
    """A private OB element claiming 2 GB of data in a small file."""
    creator = _tag(0x0029, 0x0010) + b"LO" + struct.pack("<H", 18) + b"SIEMENS CSA HEADER"
    blob = _tag(0x0029, 0x1010) + b"OB\x00\x00" + struct.pack("<I", 0x7FFFFFF0) + b"SV10" * 4
    return _dicom_head() + creator + blob


def dicom_garbage_after_header() -> bytes:
    return b"\x00" * 128 + b"DICM" + bytes((i * 37 + 11) % 256 for i in range(2000))


def dicom_invalid_utf8() -> bytes:
    """SpecificCharacterSet ISO_IR 192 (UTF-8) with a PatientName that is not UTF-8."""
    head = _dicom_head(("SpecificCharacterSet", "ISO_IR 192"))
    value = b"DOE^\xff\xfe\xc3\x28"
    return head + _tag(0x0010, 0x0010) + b"PN" + struct.pack("<H", len(value)) + value


# -- archives -------------------------------------------------------------------------------------
def _zip(members: list[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo("link")
            info.create_system = 3
            info.external_attr = 0o120777 << 16  # a symlink
            archive.writestr(info, symlink)
    return out.getvalue()


def zip_bomb(size: int = 512 * 1024 * 1024) -> bytes:
    """One member of ``size`` zero bytes compressed about 1000:1, written without holding it."""
    out = io.BytesIO()
    info = zipfile.ZipInfo("zeros.csv")
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(info, "w", force_zip64=True) as member,
    ):
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return out.getvalue()


def zip_nested_bomb(levels: int = 6) -> bytes:
    """An archive of archives of archives...: each level multiplies what a naive walk extracts."""
    data = zlib.compress(b"0" * 1024)
    for level in range(levels):
        data = _zip([(f"l{level}-{i}.zip", data) for i in range(10)])
    return data


# -- text formats ---------------------------------------------------------------------------------
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<root><Name>&lol9;</Name></root>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<root><Name>&x;</Name></root>
"""

YAML_ALIAS_BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
dicom:
  fields:
    - name: PatientName
      replace-with: *i
"""


def _tiff(ifd_offset: int, entries: list[tuple[int, int, int, int]], tail: bytes = b"") -> bytes:
    head = b"II*\x00" + struct.pack("<I", ifd_offset)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return head + ifd + struct.pack("<I", ifd_offset) + tail  # next IFD = itself: a loop


def _png(chunks: list[tuple[bytes, bytes, int | None]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data, length in chunks:
        out += struct.pack(">I", len(data) if length is None else length) + kind + data
        out += struct.pack(">I", zlib.crc32(kind + data))
    return out


_IHDR = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)


CASES: list[Case] = [
    # DICOM
    Case("dicom-empty", "dicom", "empty.dcm", lambda: b""),
    Case(
        "dicom-not-dicom", "dicom", "notes.dcm", lambda: b"Patient notes, not DICOM at all.\n" * 20
    ),
    Case("dicom-truncated-header", "dicom", "cut-header.dcm", lambda: _ct_small()[:700]),
    Case("dicom-truncated-pixels", "dicom", "cut-pixels.dcm", lambda: _ct_small()[:20000]),
    Case("dicom-garbage", "dicom", "garbage.dcm", dicom_garbage_after_header),
    Case("dicom-wrong-length", "dicom", "wrong-length.dcm", dicom_wrong_length),
    Case("dicom-huge-private-length", "dicom", "huge-length.dcm", dicom_huge_private_length),
    Case("dicom-deep-sequences", "dicom", "deep.dcm", dicom_deep_sequences),
    # a decoder may replace undecodable bytes; what matters is no crash and no half-written file
    Case("dicom-invalid-utf8", "dicom", "bad-charset.dcm", dicom_invalid_utf8, may_succeed=True),
    # JPEG / PNG / TIFF
    Case("jpg-empty", "jpg", "empty.jpg", lambda: b""),
    Case("jpg-not-jpeg", "jpg", "photo.jpg", lambda: b"GIF89a not a jpeg at all" * 10),
    Case(
        "jpg-segment-past-eof",
        "jpg",
        "cut.jpg",
        lambda: b"\xff\xd8\xff\xe1" + struct.pack(">H", 0xFFF0) + b"Exif\x00\x00II*\x00",
    ),
    Case("jpg-truncated", "jpg", "trunc.jpg", lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"),
    Case("png-empty", "png", "empty.png", lambda: b""),
    Case(
        "png-chunk-length-past-eof",
        "png",
        "len.png",
        lambda: _png([(b"IHDR", _IHDR, None), (b"tEXt", b"Author\x00DOE", 0x7FFFFFF0)]),
    ),
    Case("png-truncated", "png", "trunc.png", lambda: _png([(b"IHDR", _IHDR, None)])[:20]),
    Case("tiff-empty", "tiff", "empty.tif", lambda: b""),
    Case("tiff-ifd-loop", "tiff", "loop.tif", lambda: _tiff(8, [(256, 4, 1, 1), (257, 4, 1, 1)])),
    Case(
        "tiff-offset-past-eof",
        "tiff",
        "offset.tif",
        lambda: _tiff(8, [(270, 2, 100000, 0x7FFFFFF0)]),
    ),
    Case(
        "tiff-ifd-past-eof", "tiff", "ifd.tif", lambda: b"II*\x00" + struct.pack("<I", 0x7FFFFFF0)
    ),
    # text formats
    Case("xml-billion-laughs", "xml", "laughs.xml", lambda: BILLION_LAUGHS),
    Case("xml-external-entity", "xml", "xxe.xml", lambda: XXE),
    Case(
        "xml-invalid-utf8",
        "xml",
        "bad.xml",
        lambda: (
            b"<?xml version='1.0' encoding='utf-8'?><root><Name>" + INVALID_UTF8 + b"</Name></root>"
        ),
    ),
    Case("xml-truncated", "xml", "trunc.xml", lambda: b"<?xml version='1.0'?><root><Name>DOE</Na"),
    Case("xml-empty", "xml", "empty.xml", lambda: b""),
    Case("json-invalid-utf8", "json", "bad.json", lambda: b'{"name": "' + INVALID_UTF8 + b'"}'),
    Case("json-deep-nesting", "json", "deep.json", lambda: b"[" * 200000 + b"]" * 200000),
    Case("json-truncated", "json", "trunc.json", lambda: b'{"name": "DOE", "id": [1, 2'),
    Case("json-empty", "json", "empty.json", lambda: b""),
    # undecodable bytes in a kept column: either refused, or written back byte for byte
    Case(
        "csv-invalid-utf8",
        "csv",
        "bad.csv",
        lambda: b"name,id\nA," + INVALID_UTF8 + b"\n",
        may_succeed=True,
        keeps=INVALID_UTF8,
    ),
    Case(
        "csv-huge-field",
        "csv",
        "huge.csv",
        lambda: b"name,id\n" + b"A" * (8 * 1024 * 1024) + b",1\n",
        may_succeed=True,
    ),
    Case(
        "csv-huge-quoted-field",
        "csv",
        "quoted.csv",
        lambda: b'name,id\n"' + b"A" * (8 * 1024 * 1024) + b",1\n",
    ),
    Case("csv-nul-bytes", "csv", "nul.csv", lambda: b"name,id\nDOE\x00,1\n", may_succeed=True),
    Case(
        "tsv-invalid-utf8",
        "tsv",
        "bad.tsv",
        lambda: b"name\tid\nA\t" + INVALID_UTF8 + b"\n",
        may_succeed=True,
        keeps=INVALID_UTF8,
    ),
    Case(
        "kv-invalid-utf8", "key-value-text-file", "bad.txt", lambda: b"Name=" + INVALID_UTF8 + b"\n"
    ),
    Case(
        "kv-huge-line",
        "key-value-text-file",
        "huge.txt",
        lambda: b"Name=" + b"A" * (8 * 1024 * 1024) + b"\n",
        may_succeed=True,
    ),
    # archives
    Case("zip-empty", "zip", "empty.zip", lambda: b""),
    Case("zip-corrupt", "zip", "corrupt.zip", lambda: b"PK\x03\x04" + b"\x13" * 200),
    Case(
        "zip-slip",
        "zip",
        "slip.zip",
        lambda: _zip([("ok.csv", b"name\nA\n"), ("../../evil.csv", b"name\nB\n")]),
    ),
    Case("zip-absolute-member", "zip", "abs.zip", lambda: _zip([("/tmp/evil.csv", b"name\nB\n")])),
    Case(
        "zip-symlink-member",
        "zip",
        "link.zip",
        lambda: _zip([("ok.csv", b"name\nA\n")], symlink="/etc/passwd"),
    ),
    Case("zip-bomb", "zip", "bomb.zip", zip_bomb),
    Case("zip-nested-bomb", "zip", "nested.zip", zip_nested_bomb),
    # profiles
    Case("profile-yaml-alias-bomb", "profile", "bomb.yaml", lambda: YAML_ALIAS_BOMB),
    Case(
        "profile-invalid-utf8",
        "profile",
        "bad.yaml",
        lambda: b"dicom:\n  fields: []\nname: " + INVALID_UTF8 + b"\n",
    ),
    Case(
        "profile-deep-nesting",
        "profile",
        "deep.yaml",
        lambda: b"dicom: " + b"[" * 50000 + b"]" * 50000 + b"\n",
    ),
    Case(
        "profile-python-tag",
        "profile",
        "tag.yaml",
        lambda: b"dicom: !!python/object/apply:os.system ['true']\n",
    ),
    Case("profile-empty", "profile", "empty.yaml", lambda: b""),
    Case("profile-binary", "profile", "binary.yaml", lambda: bytes(range(256)) * 4),
]


def cases(section: str | None = None) -> list[Case]:
    return [case for case in CASES if section is None or case.section == section]
