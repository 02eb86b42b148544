"""Small DICOM files built in the tests (nothing binary is committed)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def dataset(**elements: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    ds.StudyInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    ds.SeriesInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    ds.Modality = "CT"
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path


def csa_blob(*strings: str) -> bytes:
    """A Siemens-CSA-like binary blob: a header, binary lengths and NUL-padded strings."""
    out = bytearray(b"SV10\x04\x03\x02\x01")
    for text in strings:
        data = text.encode("latin-1") + b"\x00"
        out += len(data).to_bytes(4, "little") + b"\x4d\x00\x00\x00" + data
        out += b"\x00" * (-len(out) % 4)
    return bytes(out)


def nested(depth: int) -> Dataset:
    """A dataset whose ReferencedImageSequence is nested ``depth`` levels deep."""
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedImageSequence = Sequence([inner])
        inner = outer
    return inner
