"""The local folder store: layout, sidecars, read-only source, atomic writes, race-safe creation."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from fw_gear_deid.errors import StoreError
from fw_gear_deid.stores import ContainerMeta, FileMeta, ReadOnlyStoreError, open_store, with_origin
from fw_gear_deid.stores.local import LocalStore


def _tree(root: Path) -> Path:
    project = root / "site" / "grp" / "proj"
    acq = project / "sub-01" / "ses-1" / "acq-t1"
    acq.mkdir(parents=True)
    (acq / "a.dcm").write_bytes(b"A" * 10)
    (project / "sub-01" / "ses-1" / "notes.txt").write_text("session file")
    (project / "sub-01" / "subject.json").write_text("{}")
    (project / "protocol.pdf").write_bytes(b"%PDF")
    (project / "deid_profile.yaml").write_text("dicom: {fields: []}\n")
    (root / "site" / "grp" / "deid_profile.yaml").write_text("name: group\n")
    (root / "site" / "deid_profile.yaml").write_text("name: site\n")
    return project


def test_plain_folder_is_a_project_with_typed_children(tmp_path):
    project = _tree(tmp_path)
    store = LocalStore(project, read_only=True)
    assert store.location.type == "project"
    assert store.location.id == "grp/proj"
    assert [f.name for f in store.files(store.location)] == ["protocol.pdf"]  # profile is not data
    (subject,) = store.children(store.location)
    assert (subject.type, subject.label, subject.id) == ("subject", "sub-01", "grp/proj/sub-01")
    assert [f.name for f in store.files(subject)] == ["subject.json"]
    (session,) = store.children(subject)
    (acq,) = store.children(session)
    assert acq.type == "acquisition"
    assert [f.name for f in store.files(acq)] == ["a.dcm"]
    assert [c.type for c in store.parents(acq)] == ["project", "subject", "session"]
    assert [p.level for p in store.profiles()] == ["project", "group", "site"]
    assert [p.content for p in store.profiles()][1] == "name: group\n"


def test_sidecars_give_labels_info_fields_and_location_type(tmp_path):
    project = _tree(tmp_path)
    (project / "sub-01" / ".container.json").write_text(
        json.dumps(
            {
                "container_type": "subject",
                "label": "Subject One",
                "info": {"a": 1},
                "tags": ["t"],
                "sex": "F",
            }
        )
    )
    (project / "sub-01" / ".subject.json.meta.json").write_text(
        json.dumps({"type": "source code", "modality": "MR", "info": {"k": "v"}})
    )
    store = LocalStore(project / "sub-01", read_only=True)
    assert store.location.type == "subject"
    assert store.location.label == "Subject One"
    assert store.location.fields == {"sex": "F"}
    assert store.location.tags == ["t"]
    assert store.project().id == "grp/proj"
    (entry,) = store.files(store.location)
    assert (entry.type, entry.modality, entry.info) == ("source code", "MR", {"k": "v"})
    by_option = LocalStore(project, read_only=True, subject="Subject One", session="ses-1")
    assert by_option.location.type == "session"
    with pytest.raises(StoreError, match="no subject"):
        LocalStore(project, read_only=True, subject="nobody")
    for escape in ("..", "../grp", "."):
        with pytest.raises(StoreError, match="no subject"):
            LocalStore(project, read_only=True, subject=escape)


def test_symlinks_hidden_files_and_deep_folders_are_reported_not_followed(tmp_path):
    project = _tree(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the tree")
    acq = project / "sub-01" / "ses-1" / "acq-t1"
    (acq / "link.dcm").symlink_to(outside)
    (acq / ".DS_Store").write_bytes(b"x")
    (acq / "deeper").mkdir()
    (project / "linked-subject").symlink_to(project / "sub-01")
    store = LocalStore(project, read_only=True)
    acq_container = store.get_container("acquisition", "grp/proj/sub-01/ses-1/acq-t1")
    assert [f.name for f in store.files(acq_container)] == ["a.dcm"]
    skipped = {
        name: (reason, in_scope) for name, reason, in_scope in store.skipped_entries(acq_container)
    }
    assert skipped == {
        ".DS_Store": ("hidden file or folder", False),
        "deeper/": ("folder below acquisition level", True),
        "link.dcm": ("symbolic link (not followed)", True),
    }
    assert [c.label for c in store.children(store.location)] == ["sub-01"]
    assert store.skipped_entries(store.location) == [
        ("linked-subject", "symbolic link (not followed)", True)
    ]
    with pytest.raises(StoreError, match="symbolic link"):
        store.find_file(str(acq / "link.dcm"))
    with pytest.raises(StoreError, match="not inside"):
        store.find_file(str(outside))


def test_read_only_store_refuses_writes_and_creates_nothing(tmp_path):
    project = _tree(tmp_path)
    before = sorted(str(p) for p in project.rglob("*"))
    store = LocalStore(project, read_only=True)
    with pytest.raises(ReadOnlyStoreError):
        store.ensure_child(store.location, "subject", "o1", ContainerMeta("x"))
    src = project / "protocol.pdf"
    with pytest.raises(ReadOnlyStoreError):
        store.write_file(store.location, "x.pdf", src, FileMeta(), "skip")
    assert sorted(str(p) for p in project.rglob("*")) == before


def test_destination_project_is_created_and_files_written_atomically_with_origin(tmp_path):
    dest = open_store(str(tmp_path / "out" / "grp" / "proj"), read_only=False, create=True)
    assert dest.location.type == "project"
    subject = dest.ensure_child(
        dest.location, "subject", "origin-s", ContainerMeta("S1", tags=["x"])
    )
    again = dest.ensure_child(dest.location, "subject", "origin-s", ContainerMeta("S1", tags=["x"]))
    assert subject.id == again.id
    assert subject.origin_id == "origin-s"
    other = dest.ensure_child(dest.location, "subject", "origin-t", ContainerMeta("S1"))
    assert other.id != subject.id
    assert other.label == "S1"

    src = tmp_path / "payload.bin"
    src.write_bytes(b"one")
    meta = FileMeta(type="dicom", info=with_origin({}, "file-o"))
    result = dest.write_file(subject, "f.dcm", src, meta, "skip")
    assert result.action == "written"
    folder = dest.container_dir(subject)
    sidecar = json.loads((folder / ".f.dcm.meta.json").read_text())
    assert sidecar["info"]["export"]["origin_id"] == "file-o"
    assert sidecar["type"] == "dicom"
    assert dest.write_file(subject, "f.dcm", src, meta, "replace").action == "unchanged"
    src.write_bytes(b"two")
    assert dest.write_file(subject, "f.dcm", src, meta, "replace").action == "replaced"
    assert (folder / "f.dcm").read_bytes() == b"two"
    src.write_bytes(b"three")
    result = dest.write_file(subject, "f.dcm", src, meta, "new-version")
    assert (result.action, result.entry.version) == ("new-version", 2)
    assert (folder / ".versions" / "f.dcm" / "v1").read_bytes() == b"two"
    assert [f.name for f in dest.files(subject)] == ["f.dcm"]
    by_origin, by_name = dest.find_dest_file(subject, "other-name", "file-o")
    assert by_origin is not None
    assert by_origin.name == "f.dcm"
    assert by_name is None
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(StoreError, match="not a valid destination file name"):
        dest.write_file(subject, "../escape", src, meta, "skip")


def test_scratch_output_is_renamed_into_place_and_a_held_scratch_dir_survives_a_sweep(
    tmp_path,
):
    from fw_gear_deid.stores import local

    dest = open_store(str(tmp_path / "proj"), read_only=False, create=True)
    subject = dest.ensure_child(dest.location, "subject", "origin-s", ContainerMeta("S1"))
    meta = FileMeta(type="dicom", info=with_origin({}, "file-o"))
    with dest.scratch_dir() as scratch:
        assert scratch.parent == dest.project_dir
        assert scratch.name.startswith(".tmp-")
        assert [c.label for c in dest.children(dest.location)] == ["S1"]  # hidden
        out = scratch / "item-0.out"
        out.write_bytes(b"payload")
        inode = out.stat().st_ino
        result = dest.write_file(subject, "f.dcm", out, meta, "replace", move=True)
        assert result.action == "written"
        final = dest.container_dir(subject) / "f.dcm"
        assert not out.exists()  # moved, not copied
        assert final.stat().st_ino == inode
        assert final.read_bytes() == b"payload"
        sidecar = json.loads((final.parent / ".f.dcm.meta.json").read_text())
        assert sidecar["info"]["export"]["origin_id"] == "file-o"
        # unchanged content: nothing moved, the caller's file stays for it to remove
        out.write_bytes(b"payload")
        assert dest.write_file(subject, "f.dcm", out, meta, "replace", move=True).action == (
            "unchanged"
        )
        assert out.exists()
        # another job's first lock of the project folder sweeps stale temporaries, not this one
        stale = dest.project_dir / ".tmp-stale"
        stale.mkdir()
        local._SWEPT.discard(str(dest.project_dir))
        dest.ensure_child(dest.location, "subject", "origin-t", ContainerMeta("S2"))
        assert scratch.is_dir()
        assert not stale.exists()
    assert not scratch.exists()
    # a killed job's scratch folder (its lock no longer held) is swept
    left = dest.project_dir / ".tmp-killed"
    left.mkdir()
    (left / local.LOCK_NAME).touch()
    local._SWEPT.discard(str(dest.project_dir))
    dest.ensure_child(dest.location, "subject", "origin-u", ContainerMeta("S3"))
    assert not left.exists()


def _race(args):
    path, origin = args
    store = LocalStore(path, read_only=False)
    return store.ensure_child(store.location, "subject", origin, ContainerMeta("same")).id


def test_concurrent_creation_makes_each_container_once(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        ids = pool.map(_race, [(str(dest), "one-origin")] * 12)
    assert len(set(ids)) == 1
    folders = [p for p in dest.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1


def test_broken_sidecars_are_reported_in_a_source_and_errors_in_a_destination(tmp_path):
    project = _tree(tmp_path)
    (project / "sub-01" / ".container.json").write_text("{not json")
    (project / ".protocol.pdf.meta.json").write_text("[1]")
    store = LocalStore(project, read_only=True)
    assert store.children(store.location) == []  # not guessed from a sidecar it cannot read
    skipped = {
        name: (reason, in_scope) for name, reason, in_scope in store.skipped_entries(store.location)
    }
    assert "not valid JSON" in skipped["sub-01/"][0]
    assert "must hold a JSON object" in skipped["protocol.pdf"][0]
    assert all(in_scope for _, in_scope in skipped.values())
    assert store.files(store.location) == []
    dest = LocalStore(project, read_only=False)
    with pytest.raises(StoreError, match="not valid JSON"):
        dest.children(dest.location)
    with pytest.raises(StoreError, match="JSON object"):
        dest.files(dest.location)


def test_file_mode_reference_relative_to_location(tmp_path):
    project = _tree(tmp_path)
    store = LocalStore(project, read_only=True)
    container, entry = store.find_file("sub-01/ses-1/acq-t1/a.dcm")
    assert (container.type, entry.name, entry.size) == ("acquisition", "a.dcm", 10)
    with store.local_file(entry) as path:
        assert path.read_bytes() == b"A" * 10
    assert os.path.samefile(path, project / "sub-01" / "ses-1" / "acq-t1" / "a.dcm")


def test_temporaries_left_by_a_killed_job_are_removed_under_the_lock(tmp_path):
    dest = LocalStore(tmp_path / "grp" / "proj", read_only=False, create=True)
    folder = dest.container_dir(dest.location)
    (folder / ".tmp-deadbeef").write_bytes(b"half a file")
    (folder / ".tmp-cafe").mkdir()
    src = tmp_path / "x.bin"
    src.write_bytes(b"x")
    dest.write_file(dest.location, "x.bin", src, FileMeta(info=with_origin({}, "o")), "skip")
    assert sorted(p.name for p in folder.iterdir()) == [".deid.lock", ".x.bin.meta.json", "x.bin"]


def test_a_folder_with_the_label_and_no_origin_id_is_adopted(tmp_path):
    dest = LocalStore(tmp_path / "grp" / "proj", read_only=False, create=True)
    (dest.project_dir / "sub-01").mkdir()
    (dest.project_dir / "sub-01" / "kept.txt").write_text("made by hand")
    adopted = dest.ensure_child(dest.location, "subject", "o-1", ContainerMeta("sub-01"))
    assert adopted.id == "grp/proj/sub-01"
    assert adopted.origin_id == "o-1"
    again = dest.ensure_child(dest.location, "subject", "o-2", ContainerMeta("sub-01"))
    assert again.id == "grp/proj/sub-01~2"  # taken by another origin now: a folder of its own
    assert (dest.project_dir / "sub-01" / "kept.txt").read_text() == "made by hand"


def test_write_file_copies_large_files_whole_and_takes_a_known_digest(tmp_path, monkeypatch):
    import hashlib
    import os

    dest = open_store(str(tmp_path / "out" / "grp" / "proj"), read_only=False, create=True)
    subject = dest.ensure_child(dest.location, "subject", "origin-s", ContainerMeta("S1"))
    folder = dest.container_dir(subject)
    src = tmp_path / "payload.bin"
    data = os.urandom(3 << 20) + b"tail"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    meta = FileMeta(type="dicom", info=with_origin({}, "file-o"))
    dest.write_file(subject, "big.dcm", src, meta, "skip", sha256=digest)
    assert (folder / "big.dcm").read_bytes() == data
    assert json.loads((folder / ".big.dcm.meta.json").read_text())["sha256"] == digest
    # without the kernel copy (another file system, an old kernel): the same bytes
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    dest.write_file(subject, "big2.dcm", src, FileMeta(info=with_origin({}, "o2")), "skip")
    assert (folder / "big2.dcm").read_bytes() == data
    assert json.loads((folder / ".big2.dcm.meta.json").read_text())["sha256"] == digest


def test_a_moved_file_is_hashed_while_fsynced_and_its_digest_recorded(tmp_path, monkeypatch):
    import hashlib

    from fw_gear_deid.stores import local

    monkeypatch.setattr(local, "_OVERLAP_BYTES", 0)  # the threaded path for any size
    synced: list[Path] = []
    real_fsync_file = local._fsync_file
    monkeypatch.setattr(local, "_fsync_file", lambda p: (synced.append(p), real_fsync_file(p)))
    dest = open_store(str(tmp_path / "proj"), read_only=False, create=True)
    meta = FileMeta(type="dicom", info=with_origin({}, "file-o"))
    with dest.scratch_dir() as scratch:
        out = scratch / "item-0.out"
        out.write_bytes(b"x" * 100_000)
        assert dest.write_file(dest.location, "f.dcm", out, meta, "replace", move=True).action == (
            "written"
        )
        assert synced == [out]  # once, before the rename
        sidecar = json.loads((dest.project_dir / ".f.dcm.meta.json").read_text())
        assert sidecar["sha256"] == hashlib.sha256(b"x" * 100_000).hexdigest()
        out.write_bytes(b"x" * 100_000)
        assert dest.write_file(dest.location, "f.dcm", out, meta, "replace", move=True).action == (
            "unchanged"
        )


def test_a_scratch_output_the_caller_fsynced_is_renamed_without_a_second_fsync(
    tmp_path, monkeypatch
):
    from fw_gear_deid.stores import local

    dest = open_store(str(tmp_path / "proj"), read_only=False, create=True)
    subject = dest.ensure_child(dest.location, "subject", "origin-s", ContainerMeta("S1"))
    meta = FileMeta(type="dicom", info=with_origin({}, "file-o"))
    synced_here: list[str] = []
    monkeypatch.setattr(local, "_fsync_file", lambda path: synced_here.append(Path(path).name))
    with dest.scratch_dir() as scratch:
        for name, synced in (("a.dcm", True), ("b.dcm", False)):
            out = scratch / f"{name}.out"
            out.write_bytes(b"payload " + name.encode())
            inode = out.stat().st_ino
            result = dest.write_file(subject, name, out, meta, "replace", move=True, synced=synced)
            final = dest.container_dir(subject) / name
            assert (result.action, final.stat().st_ino) == ("written", inode)
            assert final.read_bytes() == b"payload " + name.encode()
    assert synced_here == ["b.dcm.out"]  # only the one the caller had not fsynced
