"""Load -> (render variables) -> schema -> semantics: the pipeline behind ``load_profile``."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fw_gear_deid.errors import ProfileError
from fw_gear_deid.profile._issues import Path_, ProfileIssue, dotted, sort_issues
from fw_gear_deid.profile._loader import Loaded, LoadError, load_text
from fw_gear_deid.profile._schema import check_structure, wanted_types
from fw_gear_deid.profile._semantics import FILE_SECTIONS, check_semantics

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_WHOLE_VARIABLE = re.compile(r"\s*\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}\s*")
#: The explicit opt-out: copy files unchanged. Exactly this and nothing else.
OPT_OUT = {"dicom": {"fields": []}}


class ProfileReadError(ProfileError):
    """The profile file cannot be read at all (missing, unreadable, not text)."""

    def __init__(self, source: str, reason: str):
        issue = ProfileIssue(source, 1, "(root)", reason)
        super().__init__(source, [issue], message=reason)
        self.reason = reason


@dataclass(frozen=True)
class Profile:
    """A validated profile.

    ``data`` is plain data with keys exactly as in the YAML grammar; ``variables`` names the
    ``{{ VAR }}`` placeholders still in it (non-empty only for a template: call :meth:`render`
    with a mapping-CSV row before use).
    """

    data: dict[str, Any]
    source: str
    sha256: str
    is_opt_out: bool
    level: str | None = None
    variables: frozenset[str] = frozenset()
    _loaded: Loaded | None = field(default=None, repr=False, compare=False)

    @property
    def is_template(self) -> bool:
        return bool(self.variables)

    def render(self, variables: Mapping[str, str]) -> Profile:
        """This template with its variables filled in, validated again (raises ProfileError)."""
        if not self.variables:
            return self
        loaded = self._loaded or Loaded(copy.deepcopy(self.data), {(): 1})
        rendered = _pipeline(loaded, self.source, variables=variables, template_ok=False)
        return replace(rendered, level=self.level)


def canonical_sha256(data: Any) -> str:
    """SHA-256 of the canonical JSON of the data (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_profile_text(path: str | Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ProfileReadError(
            str(path), f"cannot read the profile: {error.strerror or error}"
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileReadError(str(path), "the profile is not UTF-8 text") from None


def load_profile(
    path: str | Path | None = None,
    *,
    text: str | Mapping[str, Any] | None = None,
    source: str | None = None,
    variables: Mapping[str, str] | None = None,
    template_ok: bool = False,
) -> Profile:
    """Load and validate a profile file (``path``) or text (``text``, YAML/JSON or a dict).

    With ``variables`` the ``{{ VAR }}`` placeholders are filled in; without them a profile that
    has placeholders is an error unless ``template_ok`` (then call :meth:`Profile.render`).
    Raises :class:`ProfileReadError` when the file cannot be read, :class:`ProfileError` (with
    every issue) when the profile is invalid.
    """
    if path is None and text is None:
        raise TypeError("load_profile needs a path or a text")
    if isinstance(path, str) and text is None and ("\n" in path or path.lstrip()[:1] == "{"):
        # ARCHITECTURE.md documents `load_profile(path_or_text, ...)`: a profile text passed
        # positionally (it has a newline or is a JSON object) is taken as text, not as a path.
        path, text = None, path
    label = source or (str(path) if path is not None else "<profile>")
    if text is None:
        text = read_profile_text(path)  # type: ignore[arg-type]
    loaded = _load(text, label)
    return _pipeline(loaded, label, variables=variables, template_ok=template_ok)


def validate_profile_text(text: str | Mapping[str, Any], source: str) -> list[ProfileIssue]:
    """Every issue of a profile text, sorted by line (empty when valid). Placeholders are allowed."""
    try:
        load_profile(text=text, source=source, template_ok=True)
    except ProfileError as error:
        return list(error.issues)
    return []


def _load(text: str | Mapping[str, Any], source: str) -> Loaded:
    if isinstance(text, Mapping):
        # Flywheel settings store a profile as a JSON object: no lines to report, only paths.
        return Loaded(json.loads(json.dumps(dict(text))), {(): 1})
    try:
        return load_text(text, source)
    except LoadError as error:
        raise ProfileError(source, error.issues) from None


def _pipeline(
    loaded: Loaded,
    source: str,
    *,
    variables: Mapping[str, str] | None,
    template_ok: bool,
) -> Profile:
    data = loaded.data
    if data is None or data == "":
        raise ProfileError(source, [ProfileIssue(source, 1, "(root)", "the profile is empty")])
    if not isinstance(data, dict):
        raise ProfileError(
            source,
            [ProfileIssue(source, loaded.line(()), "(root)", "a profile is a mapping of sections")],
        )
    data = copy.deepcopy(data)
    # `dicom:` with nothing under it is an empty section (Flywheel builds a default one).
    for name in FILE_SECTIONS:
        if name in data and data[name] is None:
            data[name] = {}
    issues: list[ProfileIssue] = []
    used = _variables_in(data)
    if variables is not None:
        data = _substitute(data, (), variables, loaded, source, issues)
        placeholders: frozenset[str] = frozenset()
    elif used and not template_ok:
        for name, path in sorted(used.items(), key=lambda item: loaded.line(item[1])):
            issues.append(
                ProfileIssue(
                    source,
                    loaded.line(path),
                    dotted(path),
                    f"variable {name!r} has no value: give a mapping CSV with a {name} column",
                )
            )
        placeholders = frozenset(used)
    else:
        placeholders = frozenset(used)
    # Placeholders left in typed places (a template, or a failed substitution already reported)
    # are checked as neutral values, so one mistake is reported once.
    checked = _with_dummies(data, (), loaded)
    issues.extend(check_structure(checked, loaded, source))
    semantic_issues, corrections = check_semantics(checked, loaded, source)
    issues.extend(semantic_issues)
    if issues:
        raise ProfileError(source, sort_issues(issues))
    for path, spelled in corrections:
        _set(data, path, spelled)
    return Profile(
        data=data,
        source=source,
        sha256=canonical_sha256(data),
        is_opt_out=data == OPT_OUT,
        variables=placeholders,
        _loaded=Loaded(loaded.data, loaded.lines, loaded.raw) if placeholders else None,
    )


def _set(data: Any, path: Path_, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _variables_in(value: Any, path: Path_ = ()) -> dict[str, Path_]:
    found: dict[str, Path_] = {}
    if isinstance(value, str):
        for name in VARIABLE.findall(value):
            found.setdefault(name, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            for name, where in _variables_in(item, (*path, key)).items():
                found.setdefault(name, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for name, where in _variables_in(item, (*path, index)).items():
                found.setdefault(name, where)
    return found


def _substitute(
    value: Any,
    path: Path_,
    variables: Mapping[str, str],
    loaded: Loaded,
    source: str,
    issues: list[ProfileIssue],
) -> Any:
    """Fill placeholders in parsed values: a value is never re-parsed as YAML, so it stays exact."""
    if isinstance(value, dict):
        return {
            key: _substitute(item, (*path, key), variables, loaded, source, issues)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(item, (*path, index), variables, loaded, source, issues)
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str) or not VARIABLE.search(value):
        return value

    def report(message: str) -> None:
        issues.append(ProfileIssue(source, loaded.line(path), dotted(path), message))

    missing = [name for name in VARIABLE.findall(value) if name not in variables]
    if missing:
        for name in dict.fromkeys(missing):
            report(f"variable {name!r} has no value (not a mapping CSV column nor container field)")
        return value
    whole = _WHOLE_VARIABLE.fullmatch(value)
    if whole:
        wanted = wanted_types(path)
        text = str(variables[whole.group(1)])
        if wanted and "string" not in wanted:
            converted = _convert(text, wanted)
            if converted is None:
                kinds = " or ".join(_KIND_WORDS.get(kind, kind) for kind in sorted(wanted))
                report(f"the value of variable {whole.group(1)!r} is not {kinds}, as needed here")
                return value
            return converted
        return text
    return VARIABLE.sub(lambda match: str(variables[match.group(1)]), value)


_KIND_WORDS = {"boolean": "true or false", "integer": "a whole number", "number": "a number"}


def _convert(text: str, wanted: set[str]) -> Any:
    stripped = text.strip()
    if "boolean" in wanted and stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if wanted & {"integer", "number", "int"}:
        try:
            return int(stripped)
        except ValueError:
            pass
    if "number" in wanted:
        try:
            number = float(stripped)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def _with_dummies(value: Any, path: Path_, loaded: Loaded) -> Any:
    """For validating a template: a whole placeholder where a number/boolean is wanted becomes a
    neutral value of that type, so the structure can be checked before the CSV is known."""
    if isinstance(value, dict):
        return {key: _with_dummies(item, (*path, key), loaded) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_dummies(item, (*path, index), loaded) for index, item in enumerate(value)]
    if isinstance(value, str) and _WHOLE_VARIABLE.fullmatch(value):
        wanted = wanted_types(path)
        if wanted and "string" not in wanted:
            if "boolean" in wanted:
                return True
            if wanted & {"integer", "number", "int"}:
                return 1
    return value
