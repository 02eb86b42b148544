"""The Flywheel store driven through the real flywheel-sdk over HTTP (tests/fwserver)."""

from __future__ import annotations

import multiprocessing

import pytest

from fw_gear_deid.errors import StoreError
from fw_gear_deid.stores import ContainerMeta, FileMeta, ReadOnlyStoreError, open_store, with_origin
from tests.fwserver import FlywheelTestServer


def _seed(server: FlywheelTestServer) -> dict:
    project = server.add_project("grp", "src", deid_profile={"dicom": {"fields": []}})
    subject = server.add_container(
        "subject", project["_id"], "Doe^John", firstname="John", sex="male"
    )
    session = server.add_container("session", subject["_id"], "2020-01-02 MR", info={"a": 1})
    acq = server.add_container("acquisition", session["_id"], "T1")
    server.add_file(acq["_id"], "a.dcm", b"DICOM-BYTES", type="dicom", modality="MR")
    server.add_file(project["_id"], "protocol.pdf", b"%PDF")
    server.add_group("grp", deid_profile={"name": "group"})
    server.set_site_profile({"name": "site"})
    return {"project": project, "subject": subject, "session": session, "acq": acq}


def test_walks_a_project_reads_files_and_profiles(fw_server):
    ids = _seed(fw_server)
    store = open_store("fw://grp/src", read_only=True, api_key=fw_server.api_key)
    assert store.location.type == "project"
    assert [f.name for f in store.files(store.location)] == ["protocol.pdf"]
    (subject,) = store.children(store.location)
    assert (subject.label, subject.fields["firstname"]) == ("Doe^John", "John")
    (session,) = store.children(subject)
    (acq,) = store.children(session)
    (entry,) = store.files(acq)
    assert (entry.name, entry.type, entry.modality, entry.size) == ("a.dcm", "dicom", "MR", 11)
    with store.local_file(entry) as path:
        assert path.read_bytes() == b"DICOM-BYTES"
    assert [c.type for c in store.parents(acq)] == ["project", "subject", "session"]
    profiles = store.profiles()
    assert [(p.level, p.content) for p in profiles] == [
        ("project", {"dicom": {"fields": []}}),
        ("group", {"name": "group"}),
        ("site", {"name": "site"}),
    ]
    container, found = store.find_file(entry.id)
    assert (container.id, found.name) == (ids["acq"]["_id"], "a.dcm")
    by_id = open_store(f"fw://_id/session/{ids['session']['_id']}", True, api_key=fw_server.api_key)
    assert by_id.location.label == "2020-01-02 MR"
    by_path = open_store("fw://grp/src", True, subject="Doe^John", api_key=fw_server.api_key)
    assert by_path.location.type == "subject"


def test_source_is_read_only_and_bad_locations_fail_cleanly(fw_server):
    _seed(fw_server)
    store = open_store("fw://grp/src", read_only=True, api_key=fw_server.api_key)
    with pytest.raises(ReadOnlyStoreError):
        store.ensure_child(store.location, "subject", "o", ContainerMeta("x"))
    with pytest.raises(StoreError, match="cannot resolve"):
        open_store("fw://grp/nope", read_only=True, api_key=fw_server.api_key)
    with pytest.raises(StoreError, match="API key"):
        open_store("fw://grp/src", read_only=True)
    with pytest.raises(StoreError, match="cannot connect"):
        open_store(
            "fw://grp/src",
            read_only=True,
            api_key=f"127.0.0.1:{fw_server.port}:__force_insecure:wrong",
        )


def test_creates_containers_once_and_writes_files_with_metadata(fw_server, tmp_path):
    dest_project = fw_server.add_project("grp", "dest")
    store = open_store("fw://grp/dest", read_only=False, api_key=fw_server.api_key)
    meta = ContainerMeta("S-pseudo", info={"k": "v"}, tags=["deid"], fields={"sex": "female"})
    subject = store.ensure_child(store.location, "subject", "origin-1", meta)
    again = store.ensure_child(store.location, "subject", "origin-1", meta)
    assert subject.id == again.id
    assert subject.origin_id == "origin-1"
    assert subject.tags == ["deid"]
    assert subject.fields["sex"] == "female"
    assert len(fw_server.children(dest_project["_id"], "subject")) == 1
    relabel = store.ensure_child(store.location, "subject", "origin-1", ContainerMeta("S-new"))
    assert (relabel.id, relabel.label) == (subject.id, "S-new")

    src = tmp_path / "out.dcm"
    src.write_bytes(b"one")
    fmeta = FileMeta(
        type="dicom",
        modality="MR",
        classification={"Intent": ["Structural"]},
        info=with_origin({"x": 1}, "file-1"),
        tags=["t1"],
    )
    written = store.write_file(subject, "f.dcm", src, fmeta, "skip")
    assert written.action == "written"
    entry = written.entry
    assert (entry.type, entry.modality, entry.classification) == (
        "dicom",
        "MR",
        {"Intent": ["Structural"]},
    )
    assert entry.origin_id == "file-1"
    assert entry.info["x"] == 1
    assert fw_server.file_bytes(subject.id, "f.dcm") == b"one"
    assert store.write_file(subject, "f.dcm", src, fmeta, "replace").action == "unchanged"
    src.write_bytes(b"two")
    result = store.write_file(subject, "f.dcm", src, fmeta, "new-version")
    assert (result.action, result.entry.version) == ("new-version", 2)
    by_origin, by_name = store.find_dest_file(subject, "f.dcm", "file-1")
    assert by_origin.name == by_name.name == "f.dcm"


def _create(api_key, origin, barrier, results):
    store = open_store("fw://grp/dest", read_only=False, api_key=api_key)
    barrier.wait(timeout=60)  # every job looks at the same moment
    results.put(store.ensure_child(store.location, "subject", origin, ContainerMeta("same")).id)


def test_creation_race_is_detected_and_resolved(fw_server):
    dest = fw_server.add_project("grp", "dest")
    fw_server.list_delay = 0.5  # every job lists before any creates: they really race
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    jobs = [
        context.Process(target=_create, args=(fw_server.api_key, "racy-origin", barrier, results))
        for _ in range(4)
    ]
    for job in jobs:
        job.start()
    ids = [results.get(timeout=120) for _ in jobs]
    for job in jobs:
        job.join(timeout=60)
    assert len(set(ids)) == 1
    assert len(fw_server.children(dest["_id"], "subject")) == 1
    assert fw_server.creates["subject"] > 1  # the race happened...
    assert fw_server.deletes["subject"] == fw_server.creates["subject"] - 1  # ...and was resolved


def test_test_server_serves_analyses_for_the_gear(fw_server):
    import flywheel

    project = fw_server.add_project("grp", "p")
    analysis = fw_server.add_analysis("project", project["_id"], "deid run")
    client = flywheel.Client(fw_server.api_key)
    parent = client.get_analysis(analysis["_id"]).parent
    assert (parent.type, parent.id) == ("project", project["_id"])


def test_a_container_with_the_label_and_no_origin_id_is_adopted(fw_server):
    dest = fw_server.add_project("grp", "dest")
    by_hand = fw_server.add_container("subject", dest["_id"], "S, 1")
    other = fw_server.add_container(
        "subject", dest["_id"], "S, 1", info={"export": {"origin_id": "x"}}
    )
    store = open_store("fw://grp/dest", read_only=False, api_key=fw_server.api_key)
    adopted = store.ensure_child(store.location, "subject", "mine", ContainerMeta("S, 1"))
    assert adopted.id == by_hand["_id"]
    assert adopted.origin_id == "mine"
    assert (
        fw_server.containers[other["_id"]]["info"]["export"]["origin_id"] == "x"
    )  # not taken over
    assert len(fw_server.children(dest["_id"], "subject")) == 2
