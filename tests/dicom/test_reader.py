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
