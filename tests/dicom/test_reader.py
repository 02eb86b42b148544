"""Our header reader builds exactly what pydicom's ``dcmread(stop_before_pixels=True)`` builds, for
every real file it accepts, and declines the files it must leave to pydicom."""

from __future__ import annotations

import struct
import warnings

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement, convert_raw_data_element

from fw_gear_deid.formats.dicom._reader import new_dataset, read_header, read_sequence_value

from .conftest import corpus_files

_FILES = [p for p in corpus_files() if p.stat().st_size <= 8 << 20]
#: The files our reader accepts (the others are left to pydicom: big endian, deflated, undefined
#: lengths, broken files).
_TAKEN = [p for p in _FILES if read_header(p.read_bytes(), str(p)) is not None]


def _pydicom_header(data_path):
    with open(data_path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(handle, stop_before_pixels=True, force=True)
        return dataset, handle.tell()


@pytest.mark.parametrize("path", _TAKEN, ids=[p.name for p in _TAKEN])
def test_header_is_what_pydicom_reads(path):
    dataset, pixel_start = read_header(path.read_bytes(), str(path))
    expected, expected_start = _pydicom_header(path)
    assert pixel_start == expected_start
    assert list(dataset._dict) == list(expected._dict)
    for tag, raw in dataset._dict.items():
        theirs = expected._dict[tag]
        if isinstance(theirs, RawDataElement):
            assert raw == theirs, tag
        elif (
            theirs.VR == "SQ"
        ):  # read eagerly (undefined length): the same items, element by element
            assert raw.is_undefined_length == theirs.is_undefined_length
            assert raw.file_tell == theirs.file_tell
            _assert_same_items(raw.value, theirs.value)
        else:  # pydicom converted it while reading (e.g. PixelRepresentation): same value
            assert dataset[tag].value == theirs.value, tag
    assert sorted(dataset.file_meta._dict) == sorted(expected.file_meta._dict)
    for tag in dataset.file_meta._dict:
        assert dataset.file_meta[tag].value == expected.file_meta[tag].value, tag
    assert dataset.original_encoding == expected.original_encoding
    assert dataset.original_character_set == expected.original_character_set
    assert dataset._character_set == expected._character_set
    assert dataset.preamble == expected.preamble


def _assert_same_items(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    assert ours.is_undefined_length == theirs.is_undefined_length
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.original_encoding == other.original_encoding
        assert mine.original_character_set == other.original_character_set
        assert mine.is_undefined_length_sequence_item == other.is_undefined_length_sequence_item
        assert list(mine._dict) == list(other._dict)
        for tag, elem in mine._dict.items():
            if isinstance(elem, RawDataElement):
                assert elem == other._dict[tag], tag
            elif elem.VR == "SQ":
                _assert_same_items(elem.value, other._dict[tag].value)
            else:  # converted while the item was built (e.g. PixelRepresentation)
                assert elem.value == other._dict[tag].value, tag


def test_most_real_files_take_the_fast_path():
    assert len(_TAKEN) >= len(_FILES) // 2


def _part10(dataset_bytes: bytes, syntax: bytes = b"1.2.840.10008.1.2.1\x00") -> bytes:
    meta_element = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(syntax)) + syntax
    return b"\x00" * 128 + b"DICM" + meta_element + dataset_bytes


_PATIENT_NAME = b"\x10\x00\x10\x00PN\x08\x00DOE^JOHN"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_part10(_PATIENT_NAME)[:-3], id="value cut short"),
        pytest.param(_part10(_PATIENT_NAME + b"\x10\x00"), id="partial element header"),
        pytest.param(
            _part10(b"\x10\x00\x10\x00OB\x00\x00\xff\xff\xff\xff"), id="undefined length OB"
        ),
        pytest.param(
            _part10(b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"), id="sequence never ends"
        ),
        pytest.param(_part10(b"\x10\x00\x10\x00ZZ\x08\x00DOE^JOHN"), id="not a VR"),
        pytest.param(_part10(_PATIENT_NAME + _PATIENT_NAME), id="repeated tag"),
        pytest.param(_part10(_PATIENT_NAME, b"1.2.840.10008.1.2.2\x00"), id="big endian"),
        pytest.param(
            _part10(_PATIENT_NAME, b"1.2.840.10008.1.2\x00"), id="explicit data, implicit syntax"
        ),
        pytest.param(_part10(_PATIENT_NAME)[128:], id="no preamble"),
        pytest.param(_part10(b""), id="file meta only"),
    ],
)
def test_unusual_files_are_left_to_pydicom(data):
    assert read_header(data, "x.dcm") is None


def test_an_ordinary_file_is_read():
    dataset, pixel_start = read_header(_part10(_PATIENT_NAME), "x.dcm")
    assert str(dataset.PatientName) == "DOE^JOHN"
    assert pixel_start == len(_part10(_PATIENT_NAME))
    assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def _raw_sequences(dataset, found):
    """Every sequence element still raw, at any depth (converting the others to look inside)."""
    for tag, elem in list(dataset._dict.items()):
        if isinstance(elem, RawDataElement):
            if elem.VR == "SQ" or (elem.VR is None and dictionary_VR_or_none(tag) == "SQ"):
                found.append((dataset, elem))
                converted = convert_raw_data_element(
                    elem, encoding=dataset._character_set, ds=dataset
                )
                for item in converted.value:
                    _raw_sequences(item, found)
        elif elem.VR == "SQ":
            for item in elem.value:
                _raw_sequences(item, found)
    return found


def dictionary_VR_or_none(tag):
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


_WITH_SEQUENCES = [p for p in _TAKEN if _raw_sequences(read_header(p.read_bytes(), str(p))[0], [])]


@pytest.mark.parametrize("path", _WITH_SEQUENCES, ids=[p.name for p in _WITH_SEQUENCES])
def test_sequences_are_what_pydicom_converts(path):
    dataset, _ = read_header(path.read_bytes(), str(path))
    for parent, raw in _raw_sequences(dataset, []):
        encoding = parent.original_character_set or parent._character_set
        expected = convert_raw_data_element(raw, encoding=encoding, ds=parent)
        ours = read_sequence_value(raw, encoding)
        if ours is None:
            continue  # left to pydicom (counted below)
        assert (ours.tag, ours.VR, ours.file_tell, ours.is_undefined_length) == (
            expected.tag,
            expected.VR,
            expected.file_tell,
            expected.is_undefined_length,
        )
        _assert_same_items(ours.value, expected.value)
        for mine, theirs in zip(ours.value, expected.value, strict=True):
            assert (mine.seq_item_tell, mine.file_tell) == (theirs.seq_item_tell, theirs.file_tell)
            assert mine._parent_encoding == theirs._parent_encoding


def test_most_sequences_take_the_fast_path():
    pairs = [
        (parent, raw)
        for path in _WITH_SEQUENCES
        for parent, raw in _raw_sequences(read_header(path.read_bytes(), str(path))[0], [])
    ]
    taken = [raw for parent, raw in pairs if read_sequence_value(raw, parent._character_set)]
    assert len(taken) >= 0.9 * len(pairs)


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("encoding", ["iso8859", ["iso8859"], ["iso_ir_100", "iso2022_jp"]])
def test_new_dataset_is_what_the_constructor_makes(implicit, encoding):
    raw = RawDataElement(0x00100010, "PN", 8, b"DOE^JOHN", 0, implicit, True)
    expected = pydicom.Dataset({raw.tag: raw}, parent_encoding=["iso8859"])
    expected.set_original_encoding(implicit, True, encoding)
    ours = new_dataset({raw.tag: raw}, ["iso8859"], implicit, encoding)
    assert vars(ours) == vars(expected)
    # fresh containers: nothing shared between two datasets
    other = new_dataset({}, ["iso8859"], implicit, encoding)
    for name, value in vars(ours).items():
        if isinstance(value, dict):
            assert value is not vars(other)[name], name


def _be_element(tag: int, vr: str, value: bytes) -> bytes:
    return struct.pack(">HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _big_endian_file(syntax: bytes) -> bytes:
    # 514-byte values: the length 0x0202 reads the same in either byte order, so a reader that
    # takes the file for little endian does not stop at the lengths, it mis-reads every tag
    pad = lambda value: value + b" " * (0x0202 - len(value))  # noqa: E731
    body = (
        _be_element(0x00100010, "PN", pad(b"DOE^JOHN"))
        + _be_element(0x00100020, "LO", pad(b"MRN12345"))
        + _be_element(0x00101000, "LO", pad(b"OTHERID998"))
    )
    return _part10(body, syntax)


@pytest.mark.parametrize(
    "syntax",
    [b"1.2.840.10008.1.2.2\n", b" 1.2.840.10008.1.2.2", b"1.2.840.10008.1.2.2\t\x00", b"1.2.3.4.5"],
)
def test_a_syntax_not_written_exactly_is_left_to_pydicom(syntax, tmp_path, keys):
    from fw_gear_deid.formats import DeidContext, build_handlers

    data = _big_endian_file(syntax)
    assert read_header(data, "x.dcm") is None
    if syntax.strip() != b"1.2.840.10008.1.2.2":
        return
    # pydicom reads it as big endian (its UID strips white space): the identifiers go
    src, dst = tmp_path / "src.dcm", tmp_path / "out.dcm"
    src.write_bytes(data)
    handler = build_handlers({"dicom": {"preset": "ps3.15-basic", "fields": []}}).match(
        "x.dcm", b""
    )
    outcome = handler.deidentify(src, dst, DeidContext(keys=keys, subject="s", source_name="x"))
    written = dst.read_bytes()
    for planted in (b"MRN12345", b"OTHERID998", b"DOE^JOHN"):
        assert planted not in written
    assert {"DOE^JOHN", "MRN12345", "OTHERID998"} <= {value.value for value in outcome.sensitive}


def test_an_unusable_character_set_is_left_to_pydicom():
    body = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR\x00100" + _PATIENT_NAME
    assert read_header(_part10(body), "x.dcm") is None


_ITEM_HEADER = struct.Struct("<HHL")


def _item(body: bytes) -> bytes:
    return _ITEM_HEADER.pack(0xFFFE, 0xE000, len(body)) + body


def test_bytes_after_a_sequence_delimiter_never_reach_the_output(tmp_path, keys):
    from fw_gear_deid.formats import DeidContext, build_handlers

    code = b"\x08\x00\x00\x01SH\x08\x00C-111A1 "
    hidden = b"\x10\x00\x10\x00PN\x0e\x00HIDDEN^PATIENT"
    value = _item(code) + _ITEM_HEADER.pack(0xFFFE, 0xE0DD, 0) + _item(hidden)
    # (0054,0016) Radiopharmaceutical Information Sequence: kept and walked by the preset
    sequence = b"\x54\x00\x16\x00SQ\x00\x00" + struct.pack("<L", len(value)) + value
    body = (
        b"\x08\x00\x16\x00UI\x1a\x001.2.840.10008.5.1.4.1.1.7\x00"
        + b"\x08\x00\x18\x00UI\x0c\x001.2.3.4.5.6\x00"
        + _PATIENT_NAME
        + sequence
    )
    src, dst = tmp_path / "src.dcm", tmp_path / "out.dcm"
    src.write_bytes(_part10(body))
    handler = build_handlers({"dicom": {"preset": "ps3.15-basic", "fields": []}}).match(
        "x.dcm", b""
    )
    handler.deidentify(src, dst, DeidContext(keys=keys, subject="s", source_name="x"))
    written = dst.read_bytes()
    assert b"HIDDEN^PATIENT" not in written
    assert b"C-111A1" in written  # the visible item is kept


def test_an_odd_length_file_meta_value_is_padded_in_the_output(tmp_path, keys):
    from fw_gear_deid.formats import DeidContext, build_handlers

    url = b"http://example.org/x1"  # 21 bytes: (0002,0026) Source Presentation Address
    extra = b"\x02\x00\x26\x00UR\x00\x00" + struct.pack("<L", len(url)) + url
    syntax = b"1.2.840.10008.1.2.1\x00"
    meta = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(syntax)) + syntax + extra
    src, dst = tmp_path / "src.dcm", tmp_path / "out.dcm"
    src.write_bytes(b"\x00" * 128 + b"DICM" + meta + _PATIENT_NAME)
    handler = build_handlers({"dicom": {"preset": "ps3.15-basic", "fields": []}}).match(
        "x.dcm", b""
    )
    handler.deidentify(src, dst, DeidContext(keys=keys, subject="s", source_name="x.dcm"))
    data = dst.read_bytes()
    at = data.index(b"\x02\x00\x26\x00UR")
    (length,) = struct.unpack_from("<L", data, at + 8)
    assert (length, data[at + 12 : at + 12 + length]) == (22, url + b" ")
    # the group length is the size of the rest of group 0002, as pydicom writes it
    (group_length,) = struct.unpack_from("<L", data, 140)
    assert struct.unpack_from("<H", data, 144 + group_length)[0] != 0x0002
    assert at < 144 + group_length
