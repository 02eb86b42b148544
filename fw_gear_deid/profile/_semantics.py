"""Checks the JSON Schema cannot express: selectors, one action per field, VR compatibility,
regexes, date formats, file filters, duplicates, and the features this gear refuses.

Runs on data that already passed the schema where it matters: each check guards its own types so
one structural mistake does not hide the semantic ones elsewhere.
"""

from __future__ import annotations

import codecs
import re
from datetime import datetime
from functools import cache
from typing import Any

from fw_gear_deid.actions import ACTION_KEYS
from fw_gear_deid.formats.dicom.selectors import (
    PrivateSelector,
    RepeaterSelector,
    SelectorError,
    SequencePath,
    TagSelector,
    keyword_or_tag_str,
    parse_selector,
    suggest_keyword,
)
from fw_gear_deid.formats.png import PUBLIC_CHUNKS
from fw_gear_deid.profile import _vr
from fw_gear_deid.profile._issues import Path_, ProfileIssue, closest, dotted
from fw_gear_deid.profile._loader import Loaded
from fw_gear_deid.standard import OPTIONS, UNSUPPORTED_OPTIONS

FILE_SECTIONS = (
    "dicom",
    "jpg",
    "png",
    "tiff",
    "xml",
    "json",
    "key-value-text-file",
    "csv",
    "tsv",
    "zip",
    "filename",
)
#: flywheel-migration sections this gear has no handler for: naming one is an error.
UNHANDLED_SECTIONS = {
    "table": "the generic 'table' section is not supported by this gear: use csv or tsv",
    "nifti": "NIfTI files are not supported by this gear (no handler): remove the section",
}
#: Actions in Flywheel's precedence order; `identity` is the deprecated alias of `keep`.
ACTIONS = ACTION_KEYS
BOOLEAN_ACTIONS = frozenset(ACTIONS) - {"replace-with", "regex-sub"}
#: Actions the gear refuses, and why. The DICOM engine may take one off this list when it ships it.
UNSUPPORTED_ACTIONS = {
    "encrypt": "encrypt is not supported by this gear (it would keep recoverable PHI in the "
    "output): use remove, hash or replace-with",
    "decrypt": "decrypt is not supported by this gear (it restores original values)",
}
_DATE_OPTIONS = (
    "date-increment-override",
    "jitter-date",
    "jitter-range",
    "jitter-unit",
    "datetime-min",
    "datetime-max",
)
#: Field option -> the actions it belongs to.
OPTION_OWNERS: dict[str, tuple[str, ...]] = {
    "replace-with-insert": ("replace-with",),
    "date-format": ("increment-date",),
    "datetime-format": ("increment-datetime",),
    **dict.fromkeys(_DATE_OPTIONS, ("increment-date", "increment-datetime")),
    "jitter-range": ("jitter", "increment-date", "increment-datetime"),
    "jitter-type": ("jitter",),
    "jitter-min": ("jitter",),
    "jitter-max": ("jitter",),
    "force-nonce": ("encrypt",),
}
REGEX_SECTIONS = frozenset({"dicom", "json", "flywheel"})
#: deid-export's allow-list of container fields (A.5): a field outside it is never in the record.
CONTAINER_FIELDS = {
    "subject": (
        "firstname",
        "lastname",
        "date_of_birth",
        "sex",
        "cohort",
        "mlset",
        "ethnicity",
        "race",
        "species",
        "strain",
        "info",
        "type",
        "label",
        "tags",
    ),
    "session": (
        "age",
        "operator",
        "timestamp",
        "timezone",
        "uid",
        "weight",
        "info",
        "label",
        "tags",
    ),
    "acquisition": ("timestamp", "timezone", "uid", "info", "label", "tags"),
    "file": ("classification", "info", "modality", "type"),
}
CONTAINER_ENUMS = {
    ("subject", "sex"): ("male", "female", "other", "unknown"),
    ("subject", "cohort"): ("Control", "Study"),
    ("subject", "mlset"): ("Training", "Test", "Validation"),
    ("subject", "type"): ("human", "animal", "phantom"),
}
PARENT_PREFIXES = ("project.", "subject.", "session.")
# The chunk types the png handler knows (one list: the handler's).
PNG_PUBLIC_CHUNKS = PUBLIC_CHUNKS
FLYWHEEL_OID_ROOT = "2.16.840.1.114570"
FLYWHEEL_MTK_OID = "2.16.840.1.114570.2.2"
_OUTPUT_VAR = re.compile(r"\{([^{}]+)\}")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_MINMAX = re.compile(r"[+-]\d+(years|weeks|days)")
_OID = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")


@cache
def _strptime_codes() -> frozenset[str]:
    import _strptime  # the codes strptime itself accepts

    return frozenset(_strptime.TimeRE().keys())


@cache
def _exif_names() -> dict[str, str]:
    import piexif

    # The JPEG segments the jpg handler edits besides EXIF tags (and their piexif spellings).
    names: dict[str, str] = {
        name.lower(): name
        for name in ("XMP", "XMLPacket", "IPTC", "ImageResources", "COM", "Comment")
    }
    for ifd in ("0th", "1st", "Exif", "GPS", "Interop"):
        for info in piexif.TAGS[ifd].values():
            names.setdefault(info["name"].lower(), info["name"])
    return names


def _is_png_chunk_type(name: Any) -> bool:
    return isinstance(name, str) and len(name) == 4 and name.isascii() and name.isalpha()


@cache
def _tiff_names() -> dict[str, str]:
    from PIL.TiffTags import TAGS_V2

    return {info.name.lower(): info.name for info in TAGS_V2.values()}


@cache
def _xpath_compiles(expression: str) -> str | None:
    from lxml import etree

    try:
        etree.XPath(expression)
    except etree.XPathSyntaxError as error:
        return str(error)
    return None


def has_variable(value: Any) -> bool:
    """Whether a value still holds a ``{{ VAR }}`` placeholder (a template not yet rendered)."""
    return isinstance(value, str) and bool(_VARIABLE.search(value))


class Checker:
    """Collects issues with the line of the path they concern."""

    def __init__(self, loaded: Loaded, source: str):
        self.loaded = loaded
        self.source = source
        self.issues: list[ProfileIssue] = []
        #: (path of a name, the dictionary spelling) for DICOM keywords written in another case
        self.corrections: list[tuple[Path_, str]] = []

    def add(self, path: Path_, message: str, suggestion: str | None = None) -> None:
        self.issues.append(
            ProfileIssue(self.source, self.loaded.line(path), dotted(path), message, suggestion)
        )

    def raw_text(self, path: Path_) -> tuple[bool, str] | None:
        return self.loaded.raw.get(tuple(path))

    # -- top level -------------------------------------------------------------------------

    def check(self, data: Any) -> list[ProfileIssue]:
        if not isinstance(data, dict):
            return self.issues
        if "deid-log" in data:
            self.add(
                ("deid-log",),
                "deid-log writes the original (PHI) values to a CSV file; this gear never "
                "writes one: remove the key (the report lists the actions without values)",
            )
        if "map-subjects" in data:
            self.add(
                ("map-subjects",),
                "map-subjects (the migration CLI's subject map) is not supported by this gear: "
                "use {{ VAR }} variables with a mapping CSV",
            )
        for name, reason in UNHANDLED_SECTIONS.items():
            if name in data:
                self.add((name,), reason)
        if not any(name in data for name in FILE_SECTIONS) and not any(
            name in data for name in UNHANDLED_SECTIONS
        ):
            self.add(
                (),
                "the profile has no file section (" + ", ".join(FILE_SECTIONS) + "): "
                "every file would be skipped",
            )
        for name in FILE_SECTIONS:
            section = data.get(name)
            if isinstance(section, dict):
                self.section(name, section, (name,))
        flywheel = data.get("flywheel")
        if isinstance(flywheel, dict):
            for container in CONTAINER_FIELDS:
                section = flywheel.get(container)
                if isinstance(section, dict):
                    self.container(container, section, ("flywheel", container))
        return self.issues

    # -- file sections ---------------------------------------------------------------------

    def section(self, name: str, section: dict[str, Any], path: Path_) -> None:
        self.formats(section, path)
        self.jitter_settings(section, path)
        self.uid_settings(section, path)
        self.file_filter(name, section.get("file-filter"), (*path, "file-filter"))
        if isinstance(section.get("force-nonce"), str):
            self.force_nonce(section["force-nonce"], (*path, "force-nonce"))
        if name == "dicom":
            self.dicom_options(section, path)
        elif name == "key-value-text-file":
            encoding = section.get("encoding")
            if isinstance(encoding, str):
                try:
                    codecs.lookup(encoding)
                except LookupError:
                    self.add((*path, "encoding"), f"unknown text encoding {encoding!r}")
        elif name in ("csv", "tsv"):
            reader = section.get("reader")
            if isinstance(reader, str) and reader != "csv":
                self.add(
                    (*path, "reader"),
                    f"reader {reader!r} is not supported by this gear: the {name} section "
                    "reads delimited text only (reader: csv)",
                )
        fields = section.get("fields")
        if isinstance(fields, list):
            self.fields(name, fields, (*path, "fields"), section)
        filenames = section.get("filenames")
        if isinstance(filenames, list):
            for index, rule in enumerate(filenames):
                if isinstance(rule, dict):
                    self.filename_rule(name, rule, (*path, "filenames", index), section)

    def container(self, container: str, section: dict[str, Any], path: Path_) -> None:
        self.formats(section, path)
        self.jitter_settings(section, path)
        self.uid_settings(section, path)
        fields = section.get("fields")
        if isinstance(fields, list):
            self.fields("flywheel", fields, (*path, "fields"), section, container=container)

    def formats(self, section: dict[str, Any], path: Path_) -> None:
        for key in ("date-format", "datetime-format"):
            value = section.get(key)
            if isinstance(value, str):
                self.date_format(value, (*path, key))

    def date_format(self, value: str, path: Path_) -> None:
        if has_variable(value):
            return
        problem = date_format_problem(value)
        if problem:
            self.add(path, problem)

    def jitter_settings(self, holder: dict[str, Any], path: Path_) -> None:
        jitter_range = holder.get("jitter-range")
        if not isinstance(jitter_range, int | float) or isinstance(jitter_range, bool):
            return
        if jitter_range <= 0:
            self.add((*path, "jitter-range"), "jitter-range must be greater than 0")
        elif holder.get("jitter-type") == "int" and jitter_range < 1:
            self.add(
                (*path, "jitter-range"), "jitter-range must be at least 1 when jitter-type is int"
            )

    def uid_settings(self, section: dict[str, Any], path: Path_) -> None:
        name = section.get("uid-numeric-name")
        if not isinstance(name, str) or has_variable(name):
            return
        where = (*path, "uid-numeric-name")
        if not _OID.fullmatch(name) or len(name) > 64:
            self.add(where, f"{name!r} is not an OID (digits separated by dots)")
            return
        if name.startswith(FLYWHEEL_OID_ROOT) and name != FLYWHEEL_MTK_OID:
            self.add(
                where,
                "under Flywheel's root OID only the migration-toolkit zone is allowed",
                FLYWHEEL_MTK_OID,
            )
        prefix_fields = section.get("uid-prefix-fields", 4)
        nodes = len(name.split("."))
        if isinstance(prefix_fields, int) and nodes != prefix_fields:
            self.add(
                where,
                f"uid-numeric-name has {nodes} nodes but uid-prefix-fields is {prefix_fields}: "
                "they must be equal",
            )

    def force_nonce(self, value: str, path: Path_) -> None:
        if value and len(value) != 12:
            self.add(path, "force-nonce must be 12 characters (8 bytes, base64)")

    def file_filter(self, section_name: str, value: Any, path: Path_) -> None:
        patterns: list[tuple[Path_, Any]]
        if isinstance(value, str):
            patterns = [(path, value)]
        elif isinstance(value, list):
            patterns = [((*path, index), item) for index, item in enumerate(value)]
        else:
            return
        for where, pattern in patterns:
            if not isinstance(pattern, str) or has_variable(pattern):
                continue
            if pattern.startswith("r!"):
                try:
                    re.compile(pattern[2:])
                except re.error as error:
                    self.add(where, f"file-filter regex does not compile: {error}")
                continue
            if not pattern.strip():
                self.add(where, "an empty file-filter matches no file")
            elif pattern.startswith(".") and not any(c in pattern for c in "*?["):
                self.add(
                    where,
                    f"file-filter {pattern!r} matches only a file named exactly {pattern!r} "
                    "(a glob needs a wildcard)",
                    f"*{pattern}",
                )

    def dicom_options(self, section: dict[str, Any], path: Path_) -> None:
        if section.get("retain") is True:
            self.add(
                (*path, "retain"),
                "retain (keeping encrypted originals in the output) is not supported by this gear",
            )
        if "alter_pixels" in section:
            self.add(
                (*path, "alter_pixels"),
                "alter_pixels (pixel masking) is not supported by this gear",
            )
        options = section.get("options")
        if "options" in section and "preset" not in section:
            self.add((*path, "options"), "options need a preset: add preset: ps3.15-basic")
        if isinstance(options, list):
            for index, option in enumerate(options):
                where = (*path, "options", index)
                if not isinstance(option, str):
                    self.add(where, "an option is a name, e.g. retain-uids")
                elif option in UNSUPPORTED_OPTIONS:
                    self.add(
                        where,
                        f"option {option} needs pixel-data analysis, which this gear does not do",
                    )
                elif option not in OPTIONS:
                    self.add(
                        where,
                        f"unknown PS3.15 option {option!r}",
                        closest(option, OPTIONS),
                    )
            if {"retain-long-full-dates", "retain-long-modified-dates"} <= set(
                item for item in options if isinstance(item, str)
            ):
                self.add(
                    (*path, "options"),
                    "retain-long-full-dates and retain-long-modified-dates exclude each other: "
                    "choose one",
                )
        if section.get("recurse-sequence") is True and isinstance(section.get("fields"), list):
            for index, entry in enumerate(section["fields"]):
                if not isinstance(entry, dict):
                    continue
                if "regex" in entry:
                    self.add(
                        (*path, "fields", index, "regex"),
                        "a regex field cannot be combined with recurse-sequence: true",
                    )
                elif isinstance(entry.get("name"), str) and "." in entry["name"]:
                    try:
                        selector = parse_selector(entry["name"])
                    except SelectorError:
                        continue
                    if isinstance(selector, SequencePath):
                        self.add(
                            (*path, "fields", index, "name"),
                            "a sequence path cannot be combined with recurse-sequence: true",
                        )

    # -- fields ----------------------------------------------------------------------------

    def fields(
        self,
        section_name: str,
        fields: list[Any],
        path: Path_,
        section: dict[str, Any],
        *,
        container: str | None = None,
    ) -> None:
        seen: dict[Any, int] = {}
        for index, entry in enumerate(fields):
            where = (*path, index)
            if entry is None or entry == {}:
                self.add(where, "empty field entry: give a name (or regex) and one action")
                continue
            if not isinstance(entry, dict):
                continue
            key = self.field(section_name, entry, where, section, container=container)
            if key is None:
                continue
            if key in seen:
                first = seen[key]
                self.add(
                    where,
                    f"duplicate field: it selects the same as {dotted((*path, first))} "
                    f"(line {self.loaded.line((*path, first))})",
                )
            else:
                seen[key] = index

    def field(
        self,
        section_name: str,
        entry: dict[str, Any],
        path: Path_,
        section: dict[str, Any],
        *,
        container: str | None = None,
        group_names: frozenset[str] | None = None,
    ) -> Any:
        """Check one field entry; return its identity for duplicate detection (or None)."""
        has_name, has_regex = "name" in entry, "regex" in entry
        if has_name and has_regex:
            self.add((*path, "regex"), "a field has either name or regex, not both")
            return None
        if not has_name and not has_regex:
            self.add(path, "a field needs a name (or a regex) saying what it selects")
            return None
        # In the order written, so the message points at the second action the user wrote.
        actions = [key for key in entry if key in ACTIONS]
        if len(actions) > 1:
            self.add(
                (*path, actions[1]),
                f"one action per field: this entry has {' and '.join(actions)}; keep one",
            )
        action = actions[0] if actions else None
        self.action_values(entry, path, actions)
        self.field_options(entry, path, action)
        if (
            section_name == "png"
            and action not in (None, "keep", "identity", "remove")
            and _is_png_chunk_type(entry.get("name"))
        ):
            # A whole chunk can only be kept or removed; a value action needs a text keyword.
            self.add(
                (*path, action),
                f"a PNG chunk type supports only remove and keep, not {action} "
                "(name a tEXt/zTXt/iTXt keyword, e.g. Author, to edit its text)",
            )
        if isinstance(entry.get("regex-sub"), list):
            self.regex_sub(
                section_name, entry["regex-sub"], (*path, "regex-sub"), section, container
            )
        if has_regex:
            return self.regex_field(section_name, entry["regex"], (*path, "regex"))
        name = entry["name"]
        name_path = (*path, "name")
        if group_names is not None and isinstance(name, str) and name in group_names:
            return ("group", name)
        if section_name == "dicom":
            return self.dicom_field(name, name_path, entry, action, section)
        if not isinstance(name, str):
            self.add(name_path, f"a field name in the {section_name} section must be a string")
            return None
        if not name.strip():
            self.add(name_path, "empty field name")
            return None
        if has_variable(name):
            return None
        return self.named_field(section_name, name, name_path, action, entry, container)

    def action_values(self, entry: dict[str, Any], path: Path_, actions: list[str]) -> None:
        for action in actions:
            value = entry[action]
            if action in UNSUPPORTED_ACTIONS:
                self.add((*path, action), UNSUPPORTED_ACTIONS[action])
            elif action in BOOLEAN_ACTIONS and value is False:
                self.add(
                    (*path, action),
                    f"{action}: false is not allowed: Flywheel applies the action whatever its "
                    "value; delete the entry (or use keep: true) to leave the field unchanged",
                )

    def field_options(self, entry: dict[str, Any], path: Path_, action: str | None) -> None:
        for option, owners in OPTION_OWNERS.items():
            if option not in entry:
                continue
            if action is None:
                self.add(
                    (*path, option),
                    f"{option} needs an action ({' or '.join(owners)}) in the same entry",
                )
            elif action not in owners:
                self.add(
                    (*path, option),
                    f"{option} is an option of {' / '.join(owners)}, not of {action}",
                )
        for key in ("date-format", "datetime-format"):
            if isinstance(entry.get(key), str):
                self.date_format(entry[key], (*path, key))
        if action in ("jitter", "increment-date", "increment-datetime"):
            self.jitter_settings(entry, path)
        low, high = entry.get("jitter-min"), entry.get("jitter-max")
        if _is_number(low) and _is_number(high) and low > high:
            self.add((*path, "jitter-min"), "jitter-min is greater than jitter-max")
        for key in ("datetime-min", "datetime-max"):
            value = entry.get(key)
            if value is None or has_variable(value):
                continue
            if not datetime_bound_ok(value):
                self.add(
                    (*path, key),
                    f"{key} must be a date YYYYMMDD or a relative bound like -80years, "
                    "+3weeks, -5days",
                )
        if isinstance(entry.get("force-nonce"), str):
            self.force_nonce(entry["force-nonce"], (*path, "force-nonce"))

    def regex_field(self, section_name: str, pattern: Any, path: Path_) -> Any:
        if section_name not in REGEX_SECTIONS:
            self.add(
                path,
                f"regex fields are not supported in the {section_name} section "
                "(only dicom, json and flywheel); use name",
            )
            return None
        if not isinstance(pattern, str) or not pattern:
            self.add(path, "regex must be a non-empty string")
            return None
        problem = regex_problem(pattern)
        if problem:
            self.add(path, problem)
            return None
        return ("regex", pattern)

    def dicom_field(
        self,
        name: Any,
        path: Path_,
        entry: dict[str, Any],
        action: str | None,
        section: dict[str, Any],
    ) -> Any:
        if isinstance(name, str) and has_variable(name):
            return None
        try:
            selector = parse_selector(name)
        except SelectorError as error:
            self.add(path, error.message, error.suggestion)
            return None
        if isinstance(selector, TagSelector) and isinstance(name, str):
            spelled = keyword_or_tag_str(selector.tag)
            if spelled != name.strip() and spelled.lower() == name.strip().lower():
                # Flywheel corrects the case of keywords (`patientname`); so do we, in the data.
                self.corrections.append((path, spelled))
        if action is not None:
            self.dicom_action(selector, action, entry, path[:-1], section)
        return selector

    def dicom_action(
        self,
        selector: Any,
        action: str,
        entry: dict[str, Any],
        path: Path_,
        section: dict[str, Any],
    ) -> None:
        leaf = selector.leaf if isinstance(selector, SequencePath) else selector
        if isinstance(leaf, PrivateSelector):
            return
        if isinstance(leaf, TagSelector | RepeaterSelector):
            vr = leaf.vr
        else:  # pragma: no cover - every selector kind is handled above
            return
        label = str(selector)
        if action == "replace-with":
            value = entry["replace-with"]
            if _contains_variable(value):
                return
            problem = _vr.value_problem(vr, value)
            if problem:
                hint = self._bool_hint((*path, "replace-with"), value)
                self.add((*path, "replace-with"), f"{label}: {problem}{hint}")
            return
        custom = any(key in entry for key in ("date-format", "datetime-format"))
        custom = custom or any(
            key in section and section[key] not in (None, "%Y%m%d", "%Y%m%d%H%M%S.%f")
            for key in ("date-format", "datetime-format")
        )
        problem = _vr.action_problem(action, vr, custom_format=custom)
        if problem:
            self.add((*path, action), f"{label}: {problem}")

    def _bool_hint(self, path: Path_, value: Any) -> str:
        raw = self.raw_text(path)
        if isinstance(value, bool) and raw and raw[0] and raw[1].lower() not in ("true", "false"):
            return f" (YAML reads an unquoted {raw[1]} as {str(value).lower()}: quote it)"
        return ""

    def named_field(
        self,
        section_name: str,
        name: str,
        path: Path_,
        action: str | None,
        entry: dict[str, Any],
        container: str | None,
    ) -> Any:
        if section_name == "jpg":
            return self._known_name(name, path, _exif_names(), "an EXIF tag name")
        if section_name == "tiff":
            return self._known_name(name, path, _tiff_names(), "a TIFF tag name")
        if section_name == "png":
            return self.png_chunk(name, path)
        if section_name == "xml":
            if not (name.startswith("/") or name.startswith("./")):
                self.add(path, "an xml field name is an XPath starting with / or ./")
                return None
            problem = _xpath_compiles(name)
            if problem:
                self.add(path, f"XPath does not compile: {problem}")
                return None
            return name
        if section_name == "flywheel" and container is not None:
            return self.container_field(container, name, path, action, entry)
        return name

    def _known_name(self, name: str, path: Path_, known: dict[str, str], what: str) -> Any:
        if name.lower() in known:
            return known[name.lower()]
        self.add(path, f"{name!r} is not {what}", closest(name, known.values(), cutoff=0.75))
        return None

    def png_chunk(self, name: str, path: Path_) -> Any:
        public = {chunk.lower(): chunk for chunk in PNG_PUBLIC_CHUNKS}
        if name.lower() in public:
            return public[name.lower()]
        if len(name) != 4 or not name.isascii() or not name.isalpha():
            # Not a chunk type: the keyword of text chunks (PNG: 1-79 Latin-1 characters).
            if not 1 <= len(name) <= 79 or not all(" " <= c <= "\xff" for c in name):
                self.add(path, f"{name!r} is neither a PNG chunk type nor a text keyword")
                return None
            return ("keyword", name)
        if name[1].isupper():
            # An upper-case second letter marks a public chunk: it must be a known one.
            self.add(
                path,
                f"{name!r} is not a known public PNG chunk type",
                closest(name, PNG_PUBLIC_CHUNKS, cutoff=0.5),
            )
            return None
        return name

    def container_field(
        self, container: str, name: str, path: Path_, action: str | None, entry: dict[str, Any]
    ) -> Any:
        allowed = CONTAINER_FIELDS[container]
        head = name.split(".", 1)[0]
        if head not in allowed:
            self.add(
                path,
                f"{name!r} is not a {container} field this gear exports ({', '.join(allowed)})",
                closest(head, allowed),
            )
            return None
        choices = CONTAINER_ENUMS.get((container, name))
        if choices and action == "replace-with":
            value = entry["replace-with"]
            if value is not None and not has_variable(value) and value not in choices:
                self.add(
                    (*path[:-1], "replace-with"),
                    f"{container}.{name} must be one of {', '.join(choices)}",
                    closest(str(value), choices),
                )
        return name

    # -- regex-sub and filenames -----------------------------------------------------------

    def regex_sub(
        self,
        section_name: str,
        rules: list[Any],
        path: Path_,
        section: dict[str, Any],
        container: str | None,
    ) -> None:
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            where = (*path, index)
            captures = self._capture_groups(rule.get("input-regex"), (*where, "input-regex"))
            groups = rule.get("groups") if isinstance(rule.get("groups"), list) else []
            group_names = {
                g["name"] for g in groups if isinstance(g, dict) and isinstance(g.get("name"), str)
            }
            for g_index, group in enumerate(groups):
                if isinstance(group, dict) and group:
                    self._group_field(
                        section_name,
                        group,
                        (*where, "groups", g_index),
                        section,
                        container,
                        captures,
                    )
                elif group is None or group == {}:
                    self.add((*where, "groups", g_index), "empty group entry")
            output = rule.get("output")
            if isinstance(output, str) and captures is not None and not has_variable(output):
                missing = [
                    var
                    for var in _OUTPUT_VAR.findall(output)
                    if var not in captures and var not in group_names
                ]
                if missing:
                    self.add(
                        (*where, "output"),
                        "output uses "
                        + ", ".join(repr(var) for var in missing)
                        + ", which is neither a named group of input-regex nor in groups",
                    )

    def _group_field(
        self,
        section_name: str,
        group: dict[str, Any],
        path: Path_,
        section: dict[str, Any],
        container: str | None,
        captures: frozenset[str] | None,
    ) -> None:
        name = group.get("name")
        if "regex" in group:
            self.add((*path, "regex"), "a group is named by name, not regex")
            return
        if name is None:
            self.add(path, "a group needs a name (a named group of input-regex or a field)")
            return
        if captures is not None and isinstance(name, str) and name in captures:
            # A capture group: the action applies to the captured text, whatever the section.
            self.field(
                section_name,
                group,
                path,
                section,
                container=None,
                group_names=captures,
            )
            return
        if (
            section_name == "flywheel"
            and isinstance(name, str)
            and name.startswith(PARENT_PREFIXES)
        ):
            self.field(section_name, group, path, section, group_names=frozenset({name}))
            return
        self.field(section_name, group, path, section, container=container)

    def _capture_groups(self, pattern: Any, path: Path_) -> frozenset[str] | None:
        if not isinstance(pattern, str) or has_variable(pattern):
            return None
        problem = regex_problem(pattern)
        if problem:
            self.add(path, problem)
            return None
        return frozenset(re.compile(pattern).groupindex)

    def filename_rule(
        self, section_name: str, rule: dict[str, Any], path: Path_, section: dict[str, Any]
    ) -> None:
        captures = self._capture_groups(rule.get("input-regex"), (*path, "input-regex"))
        groups = rule.get("groups") if isinstance(rule.get("groups"), list) else []
        for index, group in enumerate(groups):
            where = (*path, "groups", index)
            if not isinstance(group, dict):
                continue
            if not group:
                self.add(where, "empty group entry")
                continue
            name = group.get("name")
            if captures is not None and isinstance(name, str | int) and name not in captures:
                self.add(
                    (*where, "name"),
                    f"{name!r} is not a named group of input-regex",
                    closest(name, captures),
                )
                continue
            self.field("filename", group, where, section, group_names=captures or frozenset())
        output = rule.get("output")
        if not isinstance(output, str) or has_variable(output):
            return
        if not output.strip():
            self.add((*path, "output"), "output file name is empty")
            return
        if captures is None:
            return
        variables = _OUTPUT_VAR.findall(output)
        if section_name == "dicom":
            for capture in sorted(captures):
                if suggest_keyword_exact(capture):
                    self.add(
                        (*path, "input-regex"),
                        f"named group {capture!r} has the name of a DICOM keyword: rename it",
                    )
            for var in variables:
                if var not in captures and not suggest_keyword_exact(var):
                    self.add(
                        (*path, "output"),
                        f"output uses {var!r}, which is neither a named group of input-regex "
                        "nor a DICOM keyword",
                        suggest_keyword(var) or closest(var, captures),
                    )
        elif section_name == "filename":
            for var in variables:
                if var not in captures:
                    self.add(
                        (*path, "output"),
                        f"output uses {var!r}, which is not a named group of input-regex",
                        closest(var, captures),
                    )


def suggest_keyword_exact(word: str) -> bool:
    """Whether ``word`` is a DICOM keyword ignoring case (Flywheel's filename rule): a tag number
    such as ``00100010`` is not a keyword."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", word):
        return False
    try:
        selector = parse_selector(word)
    except SelectorError:
        return False
    if isinstance(selector, TagSelector):
        return keyword_or_tag_str(selector.tag).lower() == word.lower()
    return isinstance(selector, RepeaterSelector)


def date_format_problem(value: str) -> str | None:
    """Why a strftime/strptime format would fail (None when every %-code is known)."""
    codes = _strptime_codes()
    index = 0
    while index < len(value):
        if value[index] == "%":
            if index + 1 >= len(value):
                return f"format {value!r} ends with a lone %"
            code = value[index + 1]
            if code != "%" and code not in codes:
                return f"%{code} is not a supported date/time format code"
            index += 2
        else:
            index += 1
    return None


def regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as error:
        return f"regex does not compile: {error}"
    return None


def datetime_bound_ok(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return False
    if _MINMAX.fullmatch(value):
        return True
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return len(value) == 8


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _contains_variable(value: Any) -> bool:
    if isinstance(value, list):
        return any(_contains_variable(item) for item in value)
    return has_variable(value)


def check_semantics(
    data: Any, loaded: Loaded, source: str
) -> tuple[list[ProfileIssue], list[tuple[Path_, str]]]:
    """Every semantic issue of a profile whose structure passed (or mostly passed) the schema,
    and the DICOM keyword spellings to correct in its data."""
    checker = Checker(loaded, source)
    issues = checker.check(data)
    return issues, checker.corrections


__all__ = [
    "ACTIONS",
    "FILE_SECTIONS",
    "UNSUPPORTED_ACTIONS",
    "check_semantics",
    "has_variable",
]
