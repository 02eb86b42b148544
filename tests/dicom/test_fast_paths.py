"""The engine's shortcuts around pydicom give exactly what pydicom gives (values read, bytes written)."""

from __future__ import annotations

import warnings

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue

from fw_gear_deid.formats.dicom._raw import UNDECODED, encode_plain, peek_value, plain_value

from .conftest import corpus_files

_FILES = [p for p in corpus_files() if p.suffix == ".dcm"][::2]
_TAGS = {"UI": 0x00080018, "DA": 0x00080020, "DT": 0x0008002A, "TM": 0x00080030,
         "CS": 0x00080060, "AS": 0x00101010, "LO": 0x00081030, "SH": 0x00200010,
         "UC": 0x00400600, "PN": 0x00100010, "LT": 0x00204000, "ST": 0x00080081,
         "UT": 0x00402400, "AE": 0x00020016}  # fmt: skip


def _as_plain(value):
    return [str(v) for v in value] if isinstance(value, MultiValue | list) else str(value)


@pytest.mark.parametrize("path", _FILES, ids=[p.name for p in _FILES])
def test_plain_values_are_pydicoms_conversion(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:
            pytest.skip("unreadable")
    for raw in list(dataset._dict.values()):
        if not isinstance(raw, RawDataElement) or raw.VR is None:
            continue
        value = plain_value(raw, raw.VR)
        if value is UNDECODED:
            continue
        try:
            elem = convert_raw_data_element(raw, encoding=dataset._character_set, ds=dataset)
        except Exception:
            continue
        assert value == _as_plain(elem.value), raw.tag


@pytest.mark.parametrize("vr", sorted(_TAGS))
@pytest.mark.parametrize(
    "value", ["", "A", "AB", "1.2.840.10008.5.1.4", "20200101", "DOE^JOHN", ["A", "BC"], ["", "X"]]
)
def test_encoded_values_are_what_pydicom_writes(vr, value):
    encoded = encode_plain(vr, value)
    assert encoded is not None
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_data_element(buffer, DataElement(_TAGS[vr], vr, value), ["iso8859"])
    assert buffer.getvalue()[8:] == encoded


@pytest.mark.parametrize("value", [" A", "A ", "é", ["A ", "B"], 3, None, b"AB"])
def test_values_pydicom_would_alter_are_not_pre_encoded(value):
    assert encode_plain("LO", value) is None


def test_iso2022_text_is_left_to_pydicom():
    # 7-bit bytes with escape sequences are ISO 2022 (e.g. Japanese), not ASCII text
    data = b"\x1b$B;3ED\x1b(B^\x1b$B@>;R\x1b(B"
    raw = RawDataElement(0x00100010, "PN", len(data), data, 0, False, True)
    assert plain_value(raw, "PN") is UNDECODED


def test_person_names_decode_to_their_text():
    data = b"DOE^JOHN\\ROE "
    raw = RawDataElement(0x00100010, "PN", len(data), data, 0, False, True)
    assert plain_value(raw, "PN") == ["DOE^JOHN", "ROE"]


def test_peeking_leaves_the_raw_element_in_place():
    dataset = pydicom.Dataset()
    raw = RawDataElement(0x00080060, "CS", 2, b"CT", 0, False, True)
    dataset._dict[raw.tag] = raw
    assert peek_value(dataset, 0x00080060, "CS") == "CT"
    assert dataset._dict[raw.tag] is raw
    assert peek_value(dataset, 0x00100010, "PN") is None


@pytest.mark.parametrize(
    "name",
    [
        "1.2.840.113619.2.55.3.604688119.969.1268071029.320.CT.dcm",
        "2.25.123456789012345678901234567890.MR.dcm",
        "1.2.3.NA.dcm",
        "1..2.SR.dcm",
        "9.OT_X.dcm",
        "2.25." + "1" * 190 + ".CT.dcm",
    ],
)
def test_plain_output_names_are_what_sanitize_filename_gives(name):
    from pathvalidate import sanitize_filename

    from fw_gear_deid.formats.dicom._handler import _sanitize

    assert _sanitize(name) == sanitize_filename(name, platform="universal")


def _with_removed_sequence(folder, implicit: bool):
    """A file whose removed sequence (ReferencedPatientSequence, X) holds a name, an ID, a date,
    a UID and a nested sequence with another name."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    inner = Dataset()
    inner.PersonName = "ROE^RICHARD"
    item = Dataset()
    item.PatientName = "DOE^JANE^Q"
    item.PatientID = "MRN-0042"
    item.PatientBirthDate = "19700101"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7"
    item.ContentSequence = Sequence([inner])
    dataset = Dataset()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID = "1.2.3.4.5.6.8"
    dataset.ReferencedPatientSequence = Sequence([item])
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    )
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    path = folder / f"removed-sequence-{'implicit' if implicit else 'explicit'}.dcm"
    dataset.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


_ENGINE_FILES = [p for p in corpus_files() if p.suffix == ".dcm"]


@pytest.mark.parametrize(
    "path",
    [*_ENGINE_FILES, "implicit", "explicit"],
    ids=[*(p.name for p in _ENGINE_FILES), "implicit", "explicit"],
)
def test_raw_value_shortcuts_change_nothing_the_engine_reports(path, monkeypatch, keys, tmp_path):
    """Every value the engine lists (for the gate) or changes is the same with the raw-byte
    shortcuts as when pydicom converts every element."""
    from fw_gear_deid.formats import DeidContext
    from fw_gear_deid.formats.dicom import _engine
    from fw_gear_deid.formats.dicom._stream import read_source

    if isinstance(path, str):
        path = _with_removed_sequence(tmp_path, path == "implicit")
    engine = _engine.DicomEngine({"preset": "ps3.15-basic", "fields": []})

    def run():
        try:
            source = read_source(path)
        except Exception:
            return None
        ctx = DeidContext(keys=keys, subject="s", source_name=path.name)
        state = engine.run(source.dataset, source.trailing, ctx, preview=True)
        return state.changes, state.sensitive

    fast = run()
    monkeypatch.setattr(_engine, "plain_value", lambda raw, vr: UNDECODED)
    monkeypatch.setattr(_engine, "read_sequence_value", lambda raw, encoding: None)
    assert fast == run()


@pytest.mark.parametrize("implicit", [True, False])
def test_values_of_a_removed_sequence_are_listed(implicit, keys, tmp_path):
    from fw_gear_deid.formats import DeidContext
    from fw_gear_deid.formats.dicom._engine import DicomEngine
    from fw_gear_deid.formats.dicom._stream import read_source

    source = read_source(_with_removed_sequence(tmp_path, implicit))
    ctx = DeidContext(keys=keys, subject="s", source_name="x.dcm")
    state = DicomEngine({"preset": "ps3.15-basic", "fields": []}).run(
        source.dataset, source.trailing, ctx, preview=False
    )
    listed = {(value.kind, value.value) for value in state.sensitive}
    assert {("name", "DOE^JANE^Q"), ("id", "MRN-0042"), ("date", "19700101")} <= listed
    assert ("uid", "1.2.3.4.5.6.7") in listed
    assert ("name", "ROE^RICHARD") in listed


@pytest.mark.parametrize(
    ("vr", "data"),
    [
        ("UI", b" 1.2.3.4"),
        ("UI", b"1.2.3.4\t\x00"),
        ("UI", b"1.2\\ 3.4 "),
        ("PN", b"DOE^JOHN=="),
        ("PN", b"A=\\B"),
    ],
)
def test_values_pydicom_would_normalise_are_left_to_it(vr, data):
    raw = RawDataElement(
        0x00080018 if vr == "UI" else 0x00100010, vr, len(data), data, 0, False, True
    )
    assert plain_value(raw, vr) is UNDECODED
