"""The gear: translate a job's config.json and inputs into an export job, run it, record the outcome.

``run.py`` opens a flywheel-gear-toolkit ``GearToolkitContext`` and calls :func:`run`; everything else
is here so it can be unit-tested without an engine. Three ways a job arrives:

- **Export mode** (an analysis on a project, subject or session, no ``input_file``): the source is the
  analysis' parent container, ``fw://_id/TYPE/ID``. A utility run on a container uses that container.
- **File mode** (a gear rule with ``input_file``): only that file (its ``file_id``) is exported; the
  source is its parent container (``hierarchy`` in config.json), or for an acquisition file its session
  (asked through the SDK), since an export opens on a project, subject or session.
- **Local** (``source_path`` set, no Flywheel): source and destination are local folder stores; in file
  mode ``input_file`` must be a file of the source store.

The secret comes from the ``secret_file`` input, else from the environment variable named by the
``secret_env`` config (default ``DEID_SECRET``), else the export falls back to ``$DEID_SECRET`` and the
profile's ``salt`` (or refuses the job). It is never a config value, never logged and never written.
The API key goes to the SDK and the export library only.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fw_gear_deid import __version__
from fw_gear_deid.errors import DeidError
from fw_gear_deid.keys import SECRET_ENV, DateShiftRange, Keys, SecretFileError, read_secret_file

log = logging.getLogger(__name__)

FLYWHEEL_SCHEME = "fw://"
#: Container types an export-mode source may have (FLYWHEEL.md A.2: acquisitions are not exported).
EXPORT_SOURCE_TYPES = ("project", "subject", "session")
#: Container types an input file's parent may have in file mode.
FILE_PARENT_TYPES = ("project", "subject", "session", "acquisition")
CONFLICT_CHOICES = ("skip", "replace", "new-version")
#: Exit code of a job that never reached the export (bad config, missing input, unreadable secret).
EXIT_CONFIG_ERROR = 2
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


#: How existing destination containers are recognised (see ExportJob.match_by).
MATCH_CHOICES = ("origin-id", "label")


class GearConfigError(DeidError):
    """config.json or the inputs cannot make a valid job (message names the key, never a secret)."""


@dataclass(frozen=True)
class GearSettings:
    """The gear's config, validated (see manifest.json for what each option means)."""

    destination_project: str
    source_path: str = ""
    conflict: str = "skip"
    container_matching: str = "origin-id"
    session_level_mapping: bool = False
    residual_phi_check: bool = True
    dry_run: bool = False
    workers: int = 0
    secret_env: str = SECRET_ENV
    date_shift_min_days: int = -3650
    date_shift_max_days: int = -1
    debug: bool = False

    @property
    def local(self) -> bool:
        return bool(self.source_path)

    @property
    def date_shift(self) -> DateShiftRange:
        try:
            return DateShiftRange(self.date_shift_min_days, self.date_shift_max_days)
        except ValueError as error:
            raise GearConfigError(f"config date_shift_min_days/max_days: {error}") from None


def _typed(config: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = config.get(key, default)
    # bool is an int subclass: keep them apart both ways.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise GearConfigError(f"config {key}: expected an integer, got {type(value).__name__}")
    if kind is not int and not isinstance(value, kind):
        raise GearConfigError(f"config {key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def read_settings(config: Mapping[str, Any]) -> GearSettings:
    """Validate config.json's ``config`` (types, choices, ranges) into :class:`GearSettings`."""
    defaults = GearSettings(destination_project="")
    known = set(GearSettings.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise GearConfigError(f"config: unknown option(s) {', '.join(unknown)}")
    values = {
        name: _typed(config, name, type(getattr(defaults, name)), getattr(defaults, name))
        for name in known
    }
    settings = GearSettings(**values)
    if not settings.destination_project.strip():
        raise GearConfigError("config destination_project: required (group/project or a folder)")
    if settings.conflict not in CONFLICT_CHOICES:
        raise GearConfigError(
            f"config conflict: {settings.conflict!r} is not one of {', '.join(CONFLICT_CHOICES)}"
        )
    if settings.container_matching not in MATCH_CHOICES:
        raise GearConfigError(
            f"config container_matching: {settings.container_matching!r} is not one of "
            f"{', '.join(MATCH_CHOICES)}"
        )
    if not 0 <= settings.workers <= 64:
        raise GearConfigError("config workers: must be between 0 and 64")
    if not _ENV_NAME.match(settings.secret_env):
        raise GearConfigError("config secret_env: must be an environment variable name")
    settings.date_shift  # noqa: B018 - validates the range
    return settings


def flywheel_destination(project: str) -> str:
    """``group/project`` (or ``fw://group/project``) as an ``fw://`` destination location."""
    path = project.strip()
    if path.startswith(FLYWHEEL_SCHEME):
        path = path[len(FLYWHEEL_SCHEME) :]
    parts = path.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise GearConfigError(
            "config destination_project: a Flywheel destination is group/project "
            f"(got {len(parts)} path part(s))"
        )
    return FLYWHEEL_SCHEME + "/".join(parts)


def flywheel_container(kind: str, container_id: str) -> str:
    """The ``fw://_id/TYPE/ID`` location of a Flywheel container."""
    if not _FW_ID.match(container_id or ""):
        raise GearConfigError(f"{kind} id {container_id!r} is not a Flywheel id")
    return f"{FLYWHEEL_SCHEME}_id/{kind}/{container_id}"


def read_secret(path: str | os.PathLike[str]) -> str:
    """The secret held in the ``secret_file`` input (see :func:`fw_gear_deid.keys.read_secret_file`)."""
    try:
        return read_secret_file(path)
    except SecretFileError as error:
        raise GearConfigError(f"input secret_file: {error}") from None


def resolve_keys(
    settings: GearSettings, secret_file: str | None, environ: Mapping[str, str]
) -> Keys | None:
    """Keys from the ``secret_file`` input, else from ``$<secret_env>``; None when neither is set."""
    if secret_file:
        secret = read_secret(secret_file)
        where = "the secret_file input"
    else:
        secret = environ.get(settings.secret_env, "")
        where = f"${settings.secret_env}"
        if not secret:
            log.info("No secret given (secret_file input or $%s)", settings.secret_env)
            return None
    keys = Keys(secret, settings.date_shift)
    log.info("Secret from %s, fingerprint %s", where, keys.fingerprint)
    return keys


@dataclass(frozen=True)
class Locations:
    """Where a job reads, writes, and (file mode) which file."""

    source: str
    destination: str
    file: str | None = None
    mode: str = "export"


class _Inputs:
    """config.json's ``inputs`` and ``destination``, read without the SDK."""

    def __init__(self, config_json: Mapping[str, Any]):
        self.inputs: Mapping[str, Any] = config_json.get("inputs") or {}
        self.destination: Mapping[str, Any] = config_json.get("destination") or {}

    def file(self, name: str) -> Mapping[str, Any] | None:
        value = self.inputs.get(name)
        if not value:
            return None
        if value.get("base") != "file":
            raise GearConfigError(f"input {name}: expected a file input")
        return value

    def path(self, name: str) -> str | None:
        value = self.file(name)
        if value is None:
            return None
        path = (value.get("location") or {}).get("path")
        if not path:
            raise GearConfigError(f"input {name}: config.json gives no location.path")
        if not Path(path).is_file():
            raise GearConfigError(f"input {name}: {path} is not a file")
        return str(path)

    def api_key(self) -> str | None:
        for value in self.inputs.values():
            if isinstance(value, Mapping) and value.get("base") == "api-key" and value.get("key"):
                return str(value["key"])
        return None


class FlywheelLookup(Protocol):
    """The two questions config.json cannot answer (asked through flywheel-sdk)."""

    def analysis_parent(self, analysis_id: str) -> tuple[str, str]:
        """``(type, id)`` of the container an analysis is attached to."""

    def file_parents(self, file_id: str) -> Mapping[str, str]:
        """The ids of a file's parent containers by type (``project``, ``subject``, ...)."""


def resolve_locations(
    settings: GearSettings, config_json: Mapping[str, Any], lookup: FlywheelLookup | None = None
) -> Locations:
    """Source, destination and (file mode) the file, from config and the job's destination.

    ``lookup`` is only used on Flywheel: for an export on an analysis (its parent is the source) and
    for a file whose parent is an acquisition (the source is then the file's session, the closest
    container an export can be opened on).
    """
    inputs = _Inputs(config_json)
    input_file = inputs.file("input_file")
    if settings.local:
        file_ref = inputs.path("input_file") if input_file is not None else None
        return Locations(
            source=settings.source_path,
            destination=settings.destination_project,
            file=file_ref,
            mode="file" if file_ref else "export",
        )
    destination = flywheel_destination(settings.destination_project)
    if input_file is not None:
        hierarchy = input_file.get("hierarchy") or {}
        kind, parent_id = hierarchy.get("type"), hierarchy.get("id")
        if kind not in FILE_PARENT_TYPES:
            raise GearConfigError(f"input input_file: its parent is a {kind!r}, not a container")
        file_id = (input_file.get("object") or {}).get("file_id")
        if not file_id:
            raise GearConfigError("input input_file: config.json gives no object.file_id")
        if kind not in EXPORT_SOURCE_TYPES:
            if lookup is None:
                raise GearConfigError("input input_file: finding its session needs an API key")
            kind, parent_id = "session", lookup.file_parents(str(file_id)).get("session")
            if not parent_id:
                raise GearConfigError("input input_file: the file's acquisition has no session")
        return Locations(flywheel_container(kind, parent_id), destination, str(file_id), "file")
    kind, container_id = inputs.destination.get("type"), inputs.destination.get("id")
    if kind == "analysis":
        if lookup is None:
            raise GearConfigError("the job runs on an analysis but there is no API key")
        kind, container_id = lookup.analysis_parent(container_id)
    if kind not in EXPORT_SOURCE_TYPES:
        raise GearConfigError(
            f"run the gear on a project, subject or session (got {kind!r}); to export one file, "
            "give it as input_file"
        )
    return Locations(flywheel_container(kind, container_id), destination, None, "export")


class SdkLookup:
    """:class:`FlywheelLookup` through flywheel-sdk (imported only when a question is asked)."""

    def __init__(self, api_key: str):
        self._api_key = api_key
        self._client = None

    def __repr__(self) -> str:  # never show the key
        return "SdkLookup()"

    @property
    def client(self):
        if self._client is None:
            import flywheel  # deferred: local runs never import the SDK

            self._client = flywheel.Client(self._api_key)
        return self._client

    def analysis_parent(self, analysis_id: str) -> tuple[str, str]:
        try:
            parent = self.client.get_analysis(analysis_id).parent
        except Exception as error:  # SDK/HTTP errors: the job cannot start
            raise GearConfigError(
                f"cannot read analysis {analysis_id} from Flywheel ({type(error).__name__})"
            ) from None
        return str(parent.type), str(parent.id)

    def file_parents(self, file_id: str) -> Mapping[str, str]:
        try:
            parents = self.client.get_file(file_id).parents
        except Exception as error:
            raise GearConfigError(
                f"cannot read file {file_id} from Flywheel ({type(error).__name__})"
            ) from None
        return {
            kind: str(value)
            for kind in ("group", "project", "subject", "session", "acquisition")
            if (value := getattr(parents, kind, None))
        }


def build_job_kwargs(
    config_json: Mapping[str, Any],
    report_dir: Path,
    environ: Mapping[str, str] | None = None,
    lookup: FlywheelLookup | None = None,
) -> tuple[GearSettings, Locations, dict[str, Any]]:
    """Everything :class:`fw_gear_deid.export.ExportJob` needs, from config.json and its inputs."""
    environ = os.environ if environ is None else environ
    settings = read_settings(config_json.get("config") or {})
    inputs = _Inputs(config_json)
    api_key = None if settings.local else inputs.api_key()
    if not settings.local and api_key is None:
        raise GearConfigError(
            "no api-key input: on Flywheel the gear needs one; for a run without Flywheel set "
            "source_path"
        )
    if lookup is None and api_key is not None:
        lookup = SdkLookup(api_key)
    locations = resolve_locations(settings, config_json, lookup)
    kwargs: dict[str, Any] = {
        "source": locations.source,
        "destination": locations.destination,
        "profile_path": _as_path(inputs.path("deid_profile")),
        "mapping_csv": _as_path(inputs.path("mapping_csv")),
        "session_level": settings.session_level_mapping,
        "conflict": settings.conflict,
        "match_by": settings.container_matching,
        "jobs": settings.workers or available_cpus(),
        "report_dir": Path(report_dir),
        "keys": resolve_keys(settings, inputs.path("secret_file"), environ),
        "residual_check": settings.residual_phi_check,
        "dry_run": settings.dry_run,
        "file": locations.file,
        "api_key": api_key,
        "date_shift": settings.date_shift,
    }
    return settings, locations, kwargs


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers restrict), at most 64."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    return max(1, min(count, 64))


def _as_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def record_metadata(context, result, settings: GearSettings, locations: Locations) -> None:
    """What the engine should record: the run summary on the analysis, types of the report files."""
    destination_type = (context.destination or {}).get("type")
    if destination_type != "analysis":
        return  # a utility run on a source container: never write metadata onto the source
    summary = {
        "gear_version": __version__,
        "mode": locations.mode,
        "dry_run": settings.dry_run,
        "exit_code": result.exit_code,
        "summary": result.summary,
    }
    context.metadata.update_container("analysis", info={"deid": summary})
    if result.report_csv is not None and Path(result.report_csv).is_file():
        context.metadata.update_file_metadata(
            Path(result.report_csv).name, container_type="analysis", type="tabular data"
        )


def run(context, environ: Mapping[str, str] | None = None) -> int:
    """Run the job described by ``context`` (a GearToolkitContext); return the exit code.

    0 only when every in-scope file was exported (or, for a dry run, previewed); 1 when the export
    ran and something was not exported or the job was rejected; 2 when the job could not start.
    """
    settings_debug = bool((context.config or {}).get("debug"))
    context.init_logging("debug" if settings_debug else "info")
    try:
        settings, locations, kwargs = build_job_kwargs(
            context.config_json, context.output_dir, environ
        )
    except DeidError as error:
        log.error("Job not started: %s", error)
        return EXIT_CONFIG_ERROR
    log.info(
        "fw-gear-deid %s: %s mode, %s -> %s%s",
        __version__,
        locations.mode,
        "local store" if settings.local else locations.source,
        "local store" if settings.local else locations.destination,
        " (dry run)" if settings.dry_run else "",
    )
    from fw_gear_deid.export import ExportJob, run_export

    try:
        result = run_export(ExportJob(**kwargs))
    except DeidError as error:
        log.error("Export failed: %s", error)
        return 1
    except Exception as error:  # never let a traceback carry values into the job log
        log.error("Export failed with %s", type(error).__name__)
        log.debug("Traceback", exc_info=True)
        return 1
    counts = result.summary.get("by_state") or {}
    log.info(
        "Done: %s file(s); %s; exit code %s",
        result.summary.get("files", 0),
        ", ".join(f"{state} {count}" for state, count in counts.items()) or "nothing to do",
        result.exit_code,
    )
    if result.summary.get("reason"):
        log.info("Reason: %s", result.summary["reason"])
    if result.report_csv is not None:
        log.info("Report: %s, %s", Path(result.report_csv).name, Path(result.report_json).name)
    try:
        record_metadata(context, result, settings, locations)
    except Exception as error:  # the export is done; only the engine's record of it is missing
        log.error("Could not record the run in .metadata.json: %s", type(error).__name__)
        return max(int(result.exit_code), 1)
    return int(result.exit_code)


def manifest_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The config values manifest.json gives by default."""
    return {
        name: spec["default"]
        for name, spec in (manifest.get("config") or {}).items()
        if "default" in spec
    }


def local_config_json(
    config: Mapping[str, Any],
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    gear_root: str | os.PathLike[str] = "/flywheel/v0",
    destination: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A config.json for a run without Flywheel (docker run, tests, the demo).

    ``inputs`` maps an input name to the *file name* the input will have under
    ``<gear_root>/input/<name>/``; copy or mount the file there. ``destination`` defaults to an
    analysis, so the run summary goes into output/.metadata.json as it would on Flywheel.
    """
    document: dict[str, Any] = {
        "config": dict(config),
        "inputs": {},
        "destination": dict(destination or {"type": "analysis", "id": "local"}),
    }
    for name, filename in (inputs or {}).items():
        base = os.path.basename(os.fspath(filename))
        document["inputs"][name] = {
            "base": "file",
            "location": {"path": f"{os.fspath(gear_root)}/input/{name}/{base}", "name": base},
            "object": {"type": None, "info": {}, "tags": [], "classification": {}},
        }
    return document
