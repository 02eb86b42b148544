"""Zip: members through sibling sections; cruft dropped; unsafe archives and bombs refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import exiftool_dump, named
from fixtures import JPEG_PLANTED, NAME, build_jpeg, scan_bytes, zip_with

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats import build_handlers
from fw_gear_deid.formats.zip import ZipHandler, ZipLimits

PROFILE = {
    "jpg": {
        "remove-gps": True,
        "fields": [
            {"name": n, "remove": True}
            for n in (
                "Artist",
                "XPAuthor",
                "ImageDescription",
                "UserComment",
                "DateTime",
                "DateTimeOriginal",
            )
        ],
    },
    "csv": {"fields": [{"name": "name", "remove": True}]},
    "zip": {},
}


def zip_handler(profile: dict = PROFILE) -> ZipHandler:
    handler = build_handlers(profile).match("x.zip", b"PK\x03\x04")
    assert isinstance(handler, ZipHandler)
    return handler


def run(handler: ZipHandler, src: Path, ctx) -> tuple[Path, object]:
    dst = src.with_name("out-" + src.name)
    return dst, handler.deidentify(src, dst, named(ctx, src.name))


def test_members_go_through_their_sections_and_cruft_is_dropped(tmp_path, ctx):
    photo = build_jpeg(tmp_path / "p.jpg").read_bytes()
    src = zip_with(
        tmp_path / "series.zip",
        {
            "visit/photo.jpg": photo,
            "visit/table.csv": b"id,name\n001,Jane Doe\n",
            "__MACOSX/visit/._photo.jpg": b"\x00\x05\x16\x07junk",
            "visit/.DS_Store": b"Bud1",
            "Thumbs.db": b"\xd0\xcf",
            "visit/desktop.ini": b"[x]",
        },
    )
    dst, outcome = run(zip_handler(), src, ctx)
    with zipfile.ZipFile(dst) as archive:
        assert archive.namelist() == ["visit/photo.jpg", "visit/table.csv"]
        assert archive.read("visit/table.csv") == b"id\n001\n"
        out_photo = archive.read("visit/photo.jpg")
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
    assert scan_bytes(out_photo) == scan_bytes(photo)
    (tmp_path / "member.jpg").write_bytes(out_photo)
    dump = exiftool_dump(tmp_path / "member.jpg")
    assert not [value for value in JPEG_PLANTED if value in dump]
    assert set(outcome.members) == {"visit/photo.jpg", "visit/table.csv"}
    assert "Jane Doe" in {s.value for s in outcome.members["visit/table.csv"].sensitive}
    texts = " ".join(text for _p, text in zip_handler().text_values(dst))
    assert NAME not in texts


def test_member_no_section_matches_blocks_the_archive_and_names_it(tmp_path, ctx):
    src = zip_with(tmp_path / "a.zip", {"ok.csv": b"a\n1\n", "notes/readme.txt": b"Jane"})
    dst = tmp_path / "out-a.zip"
    with pytest.raises(MalformedFileError, match=r"notes/readme\.txt"):
        run(zip_handler(), src, ctx)
    assert not dst.exists()


def test_validate_zip_members_false_drops_unmatched_members(tmp_path, ctx):
    profile = {**PROFILE, "zip": {"validate-zip-members": False}}
    src = zip_with(tmp_path / "a.zip", {"ok.csv": b"a\n1\n", "readme.txt": b"Jane"})
    dst, _ = run(zip_handler(profile), src, ctx)
    assert zipfile.ZipFile(dst).namelist() == ["ok.csv"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.csv", r"\.\."),
        ("/etc/cron.csv", "absolute"),
        ("C:/x.csv", "absolute"),
        ("a/../../b.csv", r"\.\."),
    ],
)
def test_traversal_and_absolute_member_names_are_refused(tmp_path, ctx, name, reason):
    src = zip_with(tmp_path / "evil.zip", {"fine.csv": b"a\n", name: b"a\n"})
    with pytest.raises(MalformedFileError, match=reason):
        run(zip_handler(), src, ctx)
    assert not (tmp_path / "out-evil.zip").exists()


def test_symlink_member_is_refused(tmp_path, ctx):
    src = zip_with(tmp_path / "link.zip", {"data.csv": b"/etc/passwd"}, symlinks=("data.csv",))
    with pytest.raises(MalformedFileError, match="symbolic link"):
        run(zip_handler(), src, ctx)


def test_zip_bomb_is_refused_by_ratio_and_size_limits(tmp_path, ctx):
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.csv", b"0" * (20 << 20))
    with pytest.raises(MalformedFileError, match="ratio"):
        run(zip_handler(), src, ctx)
    small = ZipHandler({})
    small.limits = ZipLimits(max_total_bytes=1 << 20, max_ratio=1e9)
    with pytest.raises(MalformedFileError, match="total"):
        small.deidentify(src, None, named(ctx, src.name))
    few = ZipHandler({})
    few.limits = ZipLimits(max_members=1)
    two = zip_with(tmp_path / "two.zip", {"a.csv": b"a", "b.csv": b"b"})
    with pytest.raises(MalformedFileError, match="member limit"):
        few.deidentify(two, None, named(ctx, two.name))


def test_nested_archive_is_refused(tmp_path, ctx):
    inner = zip_with(tmp_path / "inner.zip", {"a.csv": b"a\n"}).read_bytes()
    src = zip_with(tmp_path / "outer.zip", {"inner.zip": inner})
    with pytest.raises(MalformedFileError, match="nested"):
        run(zip_handler(), src, ctx)


def test_comment_is_removed_by_default_and_kept_when_listed(tmp_path, ctx):
    src = zip_with(tmp_path / "c.zip", {"a.csv": b"a\n"})
    with zipfile.ZipFile(src, "a") as archive:
        archive.comment = b"exported for Jane Doe"
    dst, outcome = run(zip_handler(), src, ctx)
    assert zipfile.ZipFile(dst).comment == b""
    assert "exported for Jane Doe" in {s.value for s in outcome.sensitive}
    kept = {**PROFILE, "zip": {"fields": [{"name": "comment", "keep": True}]}}
    dst, _ = run(zip_handler(kept), src, ctx)
    assert zipfile.ZipFile(dst).comment == b"exported for Jane Doe"


def test_two_members_with_the_same_output_name_are_refused(tmp_path, ctx):
    profile = {
        **PROFILE,
        "csv": {"filenames": [{"input-regex": r".*\.csv$", "output": "table.csv"}]},
    }
    src = zip_with(tmp_path / "d.zip", {"a.csv": b"a\n", "b.csv": b"b\n"})
    with pytest.raises(MalformedFileError, match=r"table\.csv"):
        run(zip_handler(profile), src, ctx)


def test_not_a_zip_is_malformed(tmp_path, ctx):
    src = tmp_path / "fake.zip"
    src.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(MalformedFileError, match="zip"):
        run(zip_handler(), src, ctx)


def test_hash_subdirectories_and_archive_filenames_rule(tmp_path, ctx):
    profile = {
        **PROFILE,
        "zip": {
            "hash-subdirectories": True,
            "filenames": [
                {"input-regex": r"^(?P<stem>.+)\.dicom\.zip$", "output": "{stem}.dcm.zip"}
            ],
        },
    }
    src = zip_with(tmp_path / "Doe_Jane.dicom.zip", {"Doe_Jane/visit 1/t.csv": b"id\n1\n"})
    dst, outcome = run(zip_handler(profile), src, ctx)
    assert outcome.output_name == "Doe_Jane.dcm.zip"
    expected = f"{ctx.keys.pseudonym('Doe_Jane', 16)}/{ctx.keys.pseudonym('visit 1', 16)}/t.csv"
    assert zipfile.ZipFile(dst).namelist() == [expected]


def test_preview_runs_members_and_writes_nothing(tmp_path, ctx):
    src = zip_with(tmp_path / "p.zip", {"t.csv": b"id,name\n1,Jane Doe\n"})
    outcome = zip_handler().deidentify(src, None, named(ctx, src.name))
    member = outcome.members["t.csv"]
    assert [(c.path, c.action) for c in member.changes] == [("name", "remove")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zip"]


def test_dicom_zip_members_go_through_the_dicom_section(tmp_path, ctx, ct_small, mr_small):
    import pydicom

    profile = {
        "dicom": {
            "fields": [
                {"name": "PatientName", "replace-with": "ANON"},
                {"name": "PatientID", "hash": True},
            ]
        },
        "zip": {
            "filenames": [{"input-regex": r"^.+\.dicom\.zip$", "output": "{PatientID}.dicom.zip"}]
        },
    }
    src = zip_with(
        tmp_path / "series.dicom.zip",
        {
            "series/IM0001": ct_small.read_bytes(),
            "series/IM0002": mr_small.read_bytes(),
            "series/.DS_Store": b"x",
        },
    )
    dst, outcome = run(zip_handler(profile), src, ctx)
    with zipfile.ZipFile(dst) as archive:
        names = archive.namelist()
        assert len(names) == 2
        assert all(name.startswith("series/") and name.endswith(".dcm") for name in names)
        ids = []
        for name in names:
            with archive.open(name) as member:
                dataset = pydicom.dcmread(member)
                assert str(dataset.PatientName) == "ANON"
                ids.append(str(dataset.PatientID))
    assert outcome.output_name == f"{ids[0]}.dicom.zip"  # the first member's output value
    assert "1CT1" not in ids
    assert "CompressedSamples^CT1" in {
        s.value for m in outcome.members.values() for s in m.sensitive
    }


def test_archive_name_may_use_the_first_members_deidentified_record(tmp_path, ctx):
    profile = {
        "json": {"fields": [{"name": "subject", "hash": True}]},
        "zip": {"filenames": [{"input-regex": r".*\.zip$", "output": "{subject}.zip"}]},
    }
    src = zip_with(
        tmp_path / "Jane_Doe.zip",
        {"a.json": b'{"subject": "Jane Doe"}', "b.json": b'{"subject": "x"}'},
    )
    expected = f"{ctx.keys.pseudonym('Jane Doe', 16)}.zip"
    dst, outcome = run(zip_handler(profile), src, ctx)
    assert outcome.output_name == expected  # the de-identified value, never the source's
    assert zipfile.ZipFile(dst).namelist() == ["a.json", "b.json"]
    assert zip_handler(profile).deidentify(src, None, named(ctx, src.name)).output_name == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Jane_Doe.zip", "out-Jane_Doe.zip"]


def test_member_value_reads_dicom_keywords_when_the_dicom_handler_offers_none(tmp_path, ct_small):
    from fw_gear_deid.formats.zip import member_value

    class StandInDicom:  # only what member_value looks at
        section_name = "dicom"

    assert member_value(StandInDicom(), ct_small, "PatientID") == "1CT1"
    assert member_value(StandInDicom(), ct_small, "NotAKeyword") is None
    garbage = tmp_path / "x.dcm"
    garbage.write_bytes(b"not dicom")
    assert member_value(StandInDicom(), garbage, "PatientID") is None


def test_members_copied_as_they_are_are_still_scanned(tmp_path, ctx):
    profile = {"csv": {"fields": [{"name": "name", "remove": True}]}, "zip": {}, "filename": {}}
    src = zip_with(
        tmp_path / "a.zip",
        {"t.csv": b"name\nJane Doe\n", "notes.txt": b"\x00\x01seen Jane Doe today\x00"},
    )
    handler = zip_handler(profile)
    dst, outcome = run(handler, src, ctx)
    assert (
        zipfile.ZipFile(dst).read("notes.txt") == b"\x00\x01seen Jane Doe today\x00"
    )  # filename: copied
    assert ("notes.txt", "seen Jane Doe today") in list(handler.text_values(dst))
    from fw_gear_deid.check import ResidualGate

    sensitive = [s for member in outcome.members.values() for s in member.sensitive]
    assert any("notes.txt" in hit.path for hit in ResidualGate(sensitive).scan_file(handler, dst))


def test_printable_runs_survive_chunk_edges(tmp_path):
    from fw_gear_deid.formats.zip import _printable_runs

    edge = 1 << 20
    data = b"\x00" * (edge - 5) + b"Jane Doe crosses the edge" + b"\x01" * 10 + b"tail run"
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert [text for _n, text in _printable_runs("blob", path)] == [
        "Jane Doe crosses the edge",
        "tail run",
    ]
