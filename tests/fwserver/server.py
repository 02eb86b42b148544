"""An in-process Flywheel API on 127.0.0.1 for driving the real flywheel-sdk over HTTP.

It keeps an in-memory hierarchy (groups, projects, subjects, sessions, acquisitions, files with their
bytes, site/group/project de-id profiles) and implements exactly the endpoints the Flywheel store and
the gear use. The SDK reaches it with the API key ``127.0.0.1:PORT:__force_insecure:KEY`` (plain HTTP).

Usable outside pytest (the gear's ``docker run --network host`` test)::

    server = FlywheelTestServer(); server.start()
    project = server.add_project("grp", "proj"); ...
    server.api_key  # give this to the SDK
    server.stop()

Knobs for race tests: ``list_delay`` (seconds slept in every child listing, widening the window between
"find" and "create" so concurrent jobs really race) and ``creates`` (containers created per type).
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHILD = {"group": "project", "project": "subject", "subject": "session", "session": "acquisition"}
PARENT = {child: parent for parent, child in CHILD.items()}
PLURAL = {
    "projects": "project",
    "subjects": "subject",
    "sessions": "session",
    "acquisitions": "acquisition",
}
DEFAULT_KEY = "test-api-key"


class _Error(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _match_filter(doc: dict[str, Any], expression: str) -> bool:
    """Flywheel's ``filter`` query: comma-separated ``path=value`` terms (values may be quoted)."""
    for term in re.split(r"(?<!\\),", expression):
        key, sep, value = term.partition("=")
        if not sep:
            raise _Error(400, f"unsupported filter term {term!r}")
        value = value.strip().strip('"').replace("\\,", ",")
        node: Any = doc
        for part in key.strip().split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or str(node) != value:
            return False
    return True


class FlywheelTestServer:
    """In-memory Flywheel API. Thread-safe: every request holds one lock while it touches state."""

    def __init__(self, api_key: str = DEFAULT_KEY, host: str = "127.0.0.1", port: int = 0):
        self.key = api_key
        self.host = host
        self._requested_port = port
        self.lock = threading.RLock()
        self.containers: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.analyses: dict[str, dict[str, Any]] = {}
        self.site_settings: dict[str, Any] = {"deid_profile": None}
        self.project_settings: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        #: Files received by upload (every version counts).
        self.uploads = 0
        self.requests: list[tuple[str, str]] = []
        self.list_delay = 0.0
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FlywheelTestServer:
        server = self

        class Handler(_Handler):
            state = server

        self._httpd = ThreadingHTTPServer((self.host, self._requested_port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FlywheelTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def api_key(self) -> str:
        """The key to give the SDK: plain HTTP to this server."""
        return f"{self.host}:{self.port}:__force_insecure:{self.key}"

    # -- seeding ------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        # Monotonic, ObjectId-like: sorting ids sorts by creation.
        return f"{int(time.time()):08x}{next(self._ids):016x}"

    @staticmethod
    def _stamp() -> str:
        return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")

    def add_group(self, group_id: str, label: str | None = None, deid_profile: Any = None) -> dict:
        with self.lock:
            group = {
                "_id": group_id,
                "label": label or group_id,
                "settings": {"deid_profile": deid_profile},
            }
            self.groups[group_id] = group
            return group

    def add_project(self, group: str, label: str, deid_profile: Any = None, **fields: Any) -> dict:
        with self.lock:
            if group not in self.groups:
                self.add_group(group)
            project = self._insert("project", {"group": group, "label": label, **fields}, group)
            self.project_settings[project["_id"]] = {"deid_profile": deid_profile}
            return project

    def add_container(self, kind: str, parent_id: str, label: str, **fields: Any) -> dict:
        with self.lock:
            return self._insert(kind, {"label": label, **fields}, parent_id)

    def add_file(self, container_id: str, name: str, content: bytes, **meta: Any) -> dict[str, Any]:
        with self.lock:
            return self._store_file(self.containers[container_id], name, content, meta)

    def seed_from_folder(
        self, group: str, project_label: str, folder: str | Path
    ) -> dict[str, Any]:
        """A project built from a local-store project folder (sidecars give labels, fields, info,
        tags and file metadata; hidden files and symbolic links are left out)."""
        folder = Path(folder)
        project = self.add_project(group, project_label)

        def sidecar(path: Path) -> dict[str, Any]:
            return json.loads(path.read_text()) if path.is_file() else {}

        def fill(container: dict[str, Any], path: Path, depth: int) -> None:
            for entry in sorted(path.iterdir()):
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                if entry.is_file():
                    if depth == 0 and entry.name == "deid_profile.yaml":
                        continue
                    meta = sidecar(path / f".{entry.name}.meta.json")
                    meta.pop("version", None)
                    meta.pop("sha256", None)
                    self.add_file(container["_id"], entry.name, entry.read_bytes(), **meta)
                elif entry.is_dir() and depth < 3:
                    data = sidecar(entry / ".container.json")
                    data.pop("container_type", None)
                    label = data.pop("label", None) or entry.name
                    kind = ("subject", "session", "acquisition")[depth]
                    child = self.add_container(kind, container["_id"], label, **data)
                    fill(child, entry, depth + 1)

        with self.lock:
            fill(project, folder, 0)
        return project

    def add_analysis(self, parent_type: str, parent_id: str, label: str = "analysis") -> dict:
        """An analysis on a container (what a gear job's destination is); not exported."""
        with self.lock:
            parent = self.containers[parent_id]
            analysis = {
                "_id": self._new_id(),
                "label": label,
                "parent": {"type": parent_type, "id": parent_id},
                "parents": {**parent["parents"], parent_type: parent_id},
                "files": [],
                "created": self._stamp(),
            }
            self.analyses[analysis["_id"]] = analysis
            return analysis

    def set_site_profile(self, profile: Any) -> None:
        self.site_settings["deid_profile"] = profile

    # -- queries for tests --------------------------------------------------------------------------
    def children(self, parent_id: str, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [
                c
                for c in self.containers.values()
                if c["_parent"] == parent_id and (kind is None or c["container_type"] == kind)
            ]

    def find(self, label: str, kind: str | None = None) -> list[dict]:
        with self.lock:
            return [
                c
                for c in self.containers.values()
                if c["label"] == label and (kind is None or c["container_type"] == kind)
            ]

    def file_bytes(self, container_id: str, name: str) -> bytes:
        with self.lock:
            for entry in self.containers[container_id]["files"]:
                if entry["name"] == name:
                    return self.blobs[entry["_blob"]]
        raise KeyError(name)

    def snapshot(self) -> str:
        """Every byte of state as canonical JSON (to prove a source was not modified)."""
        with self.lock:
            return json.dumps(
                {
                    "containers": self.containers,
                    "blobs": {k: v.hex() for k, v in self.blobs.items()},
                    "groups": self.groups,
                    "site": self.site_settings,
                    "settings": self.project_settings,
                },
                sort_keys=True,
                default=str,
            )

    # -- state changes ------------------------------------------------------------------------------
    def _insert(self, kind: str, body: dict[str, Any], parent_id: str) -> dict[str, Any]:
        parents: dict[str, Any] = {}
        if kind == "project":
            parents = {"group": parent_id}
        else:
            parent = self.containers.get(parent_id)
            if parent is None or parent["container_type"] != PARENT[kind]:
                raise _Error(404, f"{PARENT[kind]} {parent_id} not found")
            parents = {**parent["parents"], PARENT[kind]: parent_id}
        now = self._stamp()
        doc = {
            **{
                k: v for k, v in body.items() if k not in ("project", "subject", "session", "group")
            },
            "_id": self._new_id(),
            "container_type": kind,
            "label": body.get("label") or "",
            "info": body.get("info") or {},
            "tags": list(body.get("tags") or []),
            "files": [],
            "parents": parents,
            "created": now,
            "modified": now,
            "_parent": parent_id,
        }
        if kind == "project":
            doc["group"] = parent_id
        else:
            for key in ("project", "subject", "session"):
                if key in parents:
                    doc[key] = parents[key]
        self.containers[doc["_id"]] = doc
        self.creates[kind] += 1
        return doc

    def _store_file(
        self, container: dict[str, Any], name: str, content: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        blob = self._new_id()
        self.blobs[blob] = content
        now = self._stamp()
        files = container["files"]
        old = next((f for f in files if f["name"] == name), None)
        entry = {
            "name": name,
            "file_id": old["file_id"] if old else self._new_id(),
            "version": old["version"] + 1 if old else 1,
            "size": len(content),
            "type": meta.get("type"),
            "modality": meta.get("modality"),
            "classification": meta.get("classification") or {},
            "info": meta.get("info") or {},
            "tags": list(meta.get("tags") or []),
            "mimetype": meta.get("mimetype") or "application/octet-stream",
            "created": old["created"] if old else now,
            "modified": now,
            "parent_ref": {"type": container["container_type"], "id": container["_id"]},
            "parents": {**container["parents"], container["container_type"]: container["_id"]},
            "origin": {"type": "user", "id": "test@example.org"},
            "_blob": blob,
        }
        if old is not None:
            files.remove(old)
        files.append(entry)
        return entry

    def _delete(self, container_id: str) -> None:
        doc = self.containers.pop(container_id, None)
        if doc is None:
            raise _Error(404, f"container {container_id} not found")
        self.deletes[doc["container_type"]] += 1
        for child in [c for c in self.containers.values() if c["_parent"] == container_id]:
            self._delete(child["_id"])

    # -- request handling ---------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: Any
    ) -> tuple[int, Any]:
        route = path.removeprefix("/api").strip("/")
        parts = [urllib.parse.unquote(p) for p in route.split("/")] if route else []
        with self.lock:
            self.requests.append((method, "/" + "/".join(parts[:1])))
        if method == "GET" and parts and parts[0] in PLURAL and len(parts) == 3 and self.list_delay:
            time.sleep(self.list_delay)  # outside the lock: lets concurrent jobs interleave
        with self.lock:
            return self._route(method, parts, query, body, headers)

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body or b"{}")
        except ValueError as error:
            raise _Error(400, f"invalid JSON: {error}") from None

    def _container(self, container_id: str, kind: str | None = None) -> dict[str, Any]:
        doc = self.containers.get(container_id)
        if doc is None or (kind is not None and doc["container_type"] != kind):
            raise _Error(404, f"{kind or 'container'} {container_id} not found")
        return doc

    def _public(self, doc: dict[str, Any]) -> dict[str, Any]:
        result = {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}
        if doc["container_type"] == "session":  # sessions embed their subject, as Flywheel does
            subject = self.containers.get(doc["subject"], {})
            result["subject"] = {"_id": doc["subject"], "label": subject.get("label")}
        result["files"] = [
            {k: v for k, v in f.items() if not k.startswith("_")} for f in doc.get("files", [])
        ]
        return result

    def _file(self, doc: dict[str, Any], name: str) -> dict[str, Any]:
        for entry in doc["files"]:
            if entry["name"] == name:
                return entry
        raise _Error(404, f"file {name} not found")

    def _route(
        self, method: str, parts: list[str], query: dict, body: bytes, headers: Any
    ) -> tuple[int, Any]:
        head = parts[0] if parts else ""
        if parts == ["auth", "status"] and method == "GET":
            return 200, {
                "origin": {"type": "user", "id": "test@example.org"},
                "user_is_admin": True,
                "is_device": False,
            }
        if parts == ["config"] and method == "GET":
            return 200, {"features": {"signed_url": False}, "signed_url": False}
        if parts == ["version"] and method == "GET":
            return 200, {"database": 0, "release": "20.0.0", "flywheel_release": "20.0.0"}
        if parts == ["site", "settings"] and method == "GET":
            return 200, self.site_settings
        if parts == ["lookup"] and method == "POST":
            return 200, self._lookup(self._json(body).get("path") or [])
        if head == "groups" and len(parts) == 2 and method == "GET":
            group = self.groups.get(parts[1])
            if group is None:
                raise _Error(404, f"group {parts[1]} not found")
            return 200, group
        if head in PLURAL:
            return self._containers(method, PLURAL[head], parts, query, body)
        if head == "containers":
            return self._generic(method, parts, query, body, headers)
        if head == "analyses" and len(parts) == 2 and method == "GET":
            if parts[1] not in self.analyses:
                raise _Error(404, f"analysis {parts[1]} not found")
            return 200, self.analyses[parts[1]]
        if head == "files" and len(parts) == 2:
            for doc in self.containers.values():
                for entry in doc["files"]:
                    if entry["file_id"] == parts[1]:
                        if method == "GET":
                            return 200, {k: v for k, v in entry.items() if not k.startswith("_")}
                        if method == "DELETE":
                            doc["files"].remove(entry)
                            return 200, {"deleted": 1}
            raise _Error(404, f"file {parts[1]} not found")
        raise _Error(404, f"no route for {method} /{'/'.join(parts)}")

    def _lookup(self, path: list[str]) -> dict[str, Any]:
        if not path or path[0] not in self.groups:
            raise _Error(404, "group not found")
        parent_id, doc = path[0], None
        for label, kind in zip(
            path[1:], ("project", "subject", "session", "acquisition"), strict=False
        ):
            matches = [
                c
                for c in self.containers.values()
                if c["_parent"] == parent_id and c["container_type"] == kind and c["label"] == label
            ]
            if not matches:
                raise _Error(404, f"{kind} {label} not found")
            doc = min(matches, key=lambda c: c["_id"])
            parent_id = doc["_id"]
        if doc is None:
            return {**self.groups[path[0]], "container_type": "group"}
        return self._public(doc)

    def _containers(
        self, method: str, kind: str, parts: list[str], query: dict, body: bytes
    ) -> tuple[int, Any]:
        if len(parts) == 1 and method == "POST":
            data = self._json(body)
            parent_key = PARENT[kind]
            parent = data.get(parent_key)
            if isinstance(parent, dict):
                parent = parent.get("_id")
            if not parent:
                raise _Error(400, f"{parent_key} is required")
            doc = self._insert(kind, data, parent)
            return 200, {"_id": doc["_id"]}
        if len(parts) < 2:
            raise _Error(404, "not found")
        doc = self._container(parts[1], kind)
        if len(parts) == 2:
            if method == "GET":
                return 200, self._public(doc)
            if method == "PUT":
                data = self._json(body)
                for key, value in data.items():
                    if key in (
                        "_id",
                        "files",
                        "parents",
                        "container_type",
                        "project",
                        "subject",
                        "session",
                    ):
                        continue
                    doc[key] = value
                doc["modified"] = self._stamp()
                return 200, {"modified": 1}
            if method == "DELETE":
                self._delete(doc["_id"])
                return 200, {"deleted": 1}
        if len(parts) == 3 and method == "GET" and parts[2] == "settings" and kind == "project":
            return 200, self.project_settings.get(doc["_id"], {"deid_profile": None})
        if (
            len(parts) == 3
            and method == "GET"
            and parts[2] in PLURAL
            and PLURAL[parts[2]] == CHILD[kind]
        ):
            children = [
                self._public(c)
                for c in self.containers.values()
                if c["_parent"] == doc["_id"] and c["container_type"] == CHILD[kind]
            ]
            expression = (query.get("filter") or [""])[0]
            if expression:
                children = [c for c in children if _match_filter(c, expression)]
            if (query.get("include_all_info") or ["false"])[0].lower() != "true":
                # as Flywheel does: list outputs carry info only when asked for it
                children = [{**c, "info": None, "info_exists": bool(c["info"])} for c in children]
            return 200, sorted(children, key=lambda c: c["_id"])
        raise _Error(404, f"no route for {method} /{'/'.join(parts)}")

    def _generic(
        self, method: str, parts: list[str], query: dict, body: bytes, headers: Any
    ) -> tuple[int, Any]:
        if len(parts) < 2:
            raise _Error(404, "not found")
        doc = self._container(parts[1])
        if len(parts) == 2 and method == "GET":
            return 200, self._public(doc)
        sub = parts[2]
        if sub == "tags" and method == "POST" and len(parts) == 3:
            value = self._json(body).get("value")
            if value in doc["tags"]:
                raise _Error(409, "Tag already exists")
            doc["tags"].append(value)
            return 200, {"modified": 1}
        if sub == "info" and method in ("POST", "PATCH") and len(parts) == 3:
            self._update_info(doc, self._json(body))
            return 200, {"modified": 1}
        if sub == "files" and len(parts) == 3 and method == "POST":
            return 200, self._upload(doc, body, headers)
        if sub == "files" and len(parts) >= 4:
            entry = self._file(doc, parts[3])
            if len(parts) == 4 and method == "GET":
                return 200, self.blobs[entry["_blob"]]
            if len(parts) == 4 and method == "PUT":
                for key, value in self._json(body).items():
                    if key in ("type", "modality", "mimetype"):
                        entry[key] = value
                return 200, {"modified": 1}
            if len(parts) == 4 and method == "DELETE":
                doc["files"].remove(entry)
                return 200, {"deleted": 1}
            if len(parts) == 5 and parts[4] == "info" and method in ("POST", "PATCH"):
                self._update_info(entry, self._json(body))
                return 200, {"modified": 1}
            if len(parts) == 5 and parts[4] == "classification" and method in ("POST", "PATCH"):
                data = self._json(body)
                if "replace" in data:
                    entry["classification"] = data["replace"] or {}
                for key, values in (data.get("add") or {}).items():
                    entry["classification"].setdefault(key, [])
                    entry["classification"][key] += [
                        v for v in values if v not in entry["classification"][key]
                    ]
                return 200, {"modified": 1}
        raise _Error(404, f"no route for {method} /{'/'.join(parts)}")

    @staticmethod
    def _update_info(doc: dict[str, Any], data: dict[str, Any]) -> None:
        if "replace" in data:
            doc["info"] = data["replace"] or {}
        doc["info"].update(data.get("set") or {})
        for key in data.get("delete") or []:
            doc["info"].pop(key, None)

    def _upload(self, doc: dict[str, Any], body: bytes, headers: Any) -> list[dict[str, Any]]:
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise _Error(400, "expected multipart/form-data")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        meta: dict[str, Any] = {}
        uploads: list[tuple[str, bytes]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "metadata":
                meta = json.loads(payload or b"{}")
            elif part.get_filename():
                uploads.append((part.get_filename(), payload))
        if not uploads:
            raise _Error(400, "no file in upload")
        if isinstance(meta, list):
            meta = meta[0] if meta else {}
        stored = []
        self.uploads += len(uploads)
        for filename, payload in uploads:
            entry = self._store_file(doc, meta.get("name") or filename, payload, meta)
            stored.append({k: v for k, v in entry.items() if not k.startswith("_")})
        return stored


class _Handler(BaseHTTPRequestHandler):
    state: FlywheelTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes: without TCP_NODELAY each keep-alive request
        # waits for a delayed ACK (~40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        try:
            if not auth.endswith(f" {self.state.key}"):
                raise _Error(401, "not authenticated")
            status, payload = self.state.handle(
                method, parsed.path, urllib.parse.parse_qs(parsed.query), body, self.headers
            )
        except _Error as error:
            status, payload = error.status, {"message": str(error), "status_code": error.status}
        except Exception as error:  # a bug in the test server: visible to the test as a 500
            status, payload = (
                500,
                {"message": f"{type(error).__name__}: {error}", "status_code": 500},
            )
        if isinstance(payload, bytes):
            data, content_type = payload, "application/octet-stream"
        else:
            data, content_type = json.dumps(payload, default=str).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")


__all__ = ["DEFAULT_KEY", "FlywheelTestServer", "HTTPStatus"]
