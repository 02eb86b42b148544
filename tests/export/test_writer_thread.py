"""With worker processes, a local export writes the destination from one background thread: same
results, a failed write is that file's error, every write is done before the report."""

from __future__ import annotations

import threading

from fw_gear_deid.stores.local import LocalStore


def test_background_writes_match_inline_and_report_after_all(source, tmp_path, export, monkeypatch):
    original = LocalStore.write_file
    threads: set[str] = set()

    def write_file(self, container, name, path, *args, **kwargs):
        threads.add(threading.current_thread().name)
        if name == "visit.json" and "sub-02" in str(self._dir(container.id)):
            raise OSError("disk full")
        return original(self, container, name, path, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "write_file", write_file)
    pooled = export(source, tmp_path / "a" / "grp" / "dest", jobs=2)
    inline = export(source, tmp_path / "b" / "grp" / "dest", jobs=1)
    assert any(name.startswith("deid-writer") for name in threads)
    assert threading.main_thread().name in threads  # --jobs 1 writes inline
    assert pooled.exit_code == inline.exit_code == 1

    def rows(result):
        return sorted(
            (r.source_container, r.source_file, r.state, r.reason, r.dest_file, r.write)
            for r in result.rows
        )

    assert rows(pooled) == rows(inline)
    failed = [r for r in pooled.rows if r.state == "error"]
    assert [(r.source_file, r.reason) for r in failed] == [
        ("visit.json", "writing the destination failed: disk full")
    ]
    assert all(r.state != "pending" for r in pooled.rows)
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "a").rglob("*")), (
        "no temporary left behind"
    )
