"""Structure check with the shipped JSON Schema, and jsonschema errors turned into our messages."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from fw_gear_deid.profile._issues import Path_, ProfileIssue, closest, dotted
from fw_gear_deid.profile._loader import Loaded

_TYPE_WORDS = {
    "boolean": "true or false",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}
#: Top-level keys people put in the wrong place, and where they belong.
_MISPLACED = {
    "salt": "salt belongs in each file section, e.g. dicom: {salt: ...}; at the top level "
    "Flywheel ignores it",
    "preset": "preset belongs in the dicom section: dicom: {preset: ps3.15-basic}",
    "options": "options belong in the dicom section, next to preset",
    "fields": "fields belong in a file section, e.g. dicom: {fields: [...]}",
    "date-increment": "date-increment belongs in a file section or in flywheel:",
}


@cache
def schema() -> dict[str, Any]:
    """The profile JSON Schema shipped with the package (``profile/schema.json``)."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def check_structure(data: Any, loaded: Loaded, source: str) -> list[ProfileIssue]:
    """Every schema violation, worded for people and located by line."""
    issues: list[ProfileIssue] = []
    for error in _validator().iter_errors(data):
        if _is_empty_entry(error):
            continue  # reported by the semantic check as "empty field entry"
        issues.extend(_translate(error, loaded, source))
    return issues


def _is_empty_entry(error: jsonschema.ValidationError) -> bool:
    path = list(error.absolute_path)
    return (
        error.validator == "type"
        and error.instance is None
        and len(path) >= 2
        and isinstance(path[-1], int)
        and path[-2] in ("fields", "groups")
    )


def _issue(loaded: Loaded, source: str, path: Path_, message: str, suggestion: str | None = None):
    return ProfileIssue(source, loaded.line(path), dotted(path), message, suggestion)


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    return f"the number {value!r}"


def _translate(
    error: jsonschema.ValidationError, loaded: Loaded, source: str
) -> list[ProfileIssue]:
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        issues = []
        for key in error.instance:
            if key in allowed:
                continue
            if not path and key in _MISPLACED:
                issues.append(
                    _issue(loaded, source, (key,), f"unknown key {key!r}: {_MISPLACED[key]}")
                )
                continue
            issues.append(
                _issue(loaded, source, (*path, key), f"unknown key {key!r}", closest(key, allowed))
            )
        return issues
    if kind == "type":
        wanted = error.validator_value
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        words = " or ".join(_TYPE_WORDS.get(item, item) for item in wanted if item != "null")
        if wanted == ["array"] and error.schema.get("items"):
            words = "a list"
        message = f"must be {words}, not {_describe(error.instance)}"
        raw = loaded.raw.get(path)
        if "boolean" in wanted and isinstance(error.instance, str):
            message += " (write true or false without quotes)"
        elif "string" in wanted and raw and raw[0] and not isinstance(error.instance, str):
            message += f" (quote it: '{raw[1]}')"
        return [_issue(loaded, source, path, message)]
    if kind == "enum":
        choices = [str(choice) for choice in error.validator_value]
        return [
            _issue(
                loaded,
                source,
                path,
                f"{_describe(error.instance)} is not one of: {', '.join(choices)}",
                closest(str(error.instance), choices),
            )
        ]
    if kind == "const":
        return [_issue(loaded, source, path, f"must be {error.validator_value!r}")]
    if kind == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return [_issue(loaded, source, path, f"missing required key {key!r}") for key in missing]
    if kind in ("minimum", "exclusiveMinimum"):
        return [_issue(loaded, source, path, f"must be at least {error.validator_value}")]
    if kind in ("maximum", "exclusiveMaximum"):
        return [_issue(loaded, source, path, f"must be at most {error.validator_value}")]
    if kind == "minItems":
        return [_issue(loaded, source, path, "must not be an empty list")]
    if kind == "minLength":
        return [_issue(loaded, source, path, "must not be empty")]
    if kind == "uniqueItems":
        return [_issue(loaded, source, path, "lists the same item twice")]
    return [_issue(loaded, source, path, error.message)]  # pragma: no cover - keyword not used


def wanted_types(path: Path_) -> set[str]:
    """The JSON types the schema wants at ``path`` (empty when any value is allowed)."""
    node: dict[str, Any] | None = schema()
    for part in path:
        node = _resolve(node)
        if node is None:
            return set()
        if isinstance(part, int):
            node = node.get("items")
        else:
            properties = node.get("properties", {})
            node = properties.get(part)
    node = _resolve(node)
    if node is None:
        return set()
    if "type" in node:
        kinds = node["type"]
        return {kinds} if isinstance(kinds, str) else set(kinds)
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return {type(value).__name__ for value in values} & {"int", "str"}
    return set()


def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema()["$defs"][name]
    return node if isinstance(node, dict) else None
