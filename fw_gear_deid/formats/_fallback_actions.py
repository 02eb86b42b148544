"""Stand-in value transforms, used only while :mod:`fw_gear_deid.actions` is not available.

The shared module is the one implementation for every format; this fallback follows the same
contract (ARCHITECTURE.md "Dates and keys") so the non-DICOM handlers can be exercised on their own:
``hash`` is ``sha256(salt + value)`` with a salt, else the keyed pseudonym; dates shift by
``ctx.date_offset(section)``; ``hashuid`` uses the keyed UID map; ``jitter`` is keyed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

REMOVE = object()
_TZ = (re.compile(r"(.+)([-+]\d{4})$"), re.compile(r"(.+)([-+]\d{2}:\d{2})$"))


class FieldAction:
    def __init__(self, field: Mapping[str, Any], section: Mapping[str, Any]):
        self.field = dict(field)
        self.section = section
        self.key = next(
            (
                k
                for k in field
                if k not in ("name", "regex")
                and not k.startswith(("date-", "datetime-", "jitter-"))
            ),
            "keep",
        )

    def _option(self, name: str, default: Any = None) -> Any:
        return self.field.get(name, self.section.get(name, default))

    def apply(
        self,
        value: str,
        ctx: Any,
        *,
        lookup: Callable[[str], str | None] | None = None,
        path: str | None = None,
    ) -> Any:
        key = self.key
        if key in ("keep", "identity"):
            return value
        if key == "remove":
            return REMOVE
        if key == "replace-with":
            return "" if self.field[key] is None else str(self.field[key])
        if key == "hash":
            return hash_for(self.section, value, ctx.keys)
        if key == "hashuid":
            return ctx.keys.uid(value)
        if key in ("increment-date", "increment-datetime"):
            fmt_key = "date-format" if key == "increment-date" else "datetime-format"
            days = self.field.get("date-increment-override")
            days = ctx.date_offset(self.section) if days is None else int(days)
            return ",".join(shift(part, self._option(fmt_key), days) for part in value.split(","))
        if key == "jitter":
            span = float(self._option("jitter-range", 2))
            unit = int.from_bytes(ctx.keys.digest("jitter", value)[:8], "big") / 2**64
            delta = (unit * 2 - 1) * span or span
            if self._option("jitter-type", "float") == "int":
                return str(int(float(value)) + (round(delta) or 1))
            return str(float(value) + delta)
        if key == "regex-sub":
            for rule in self.field[key]:
                match = re.match(rule["input-regex"], value)
                if not match:
                    continue
                groups = dict(match.groupdict())
                for group in rule.get("groups", []) or []:
                    source = groups.get(group["name"])
                    if source is None and lookup is not None:
                        source = lookup(group["name"])
                    result = FieldAction(group, self.section).apply(
                        source or "", ctx, lookup=lookup
                    )
                    groups[group["name"]] = "" if result is REMOVE else result
                return re.sub(
                    r"\{([^}]+)\}", lambda m, g=groups: str(g.get(m.group(1), "")), rule["output"]
                )
            raise ValueError("value does not match any input-regex")
        raise ValueError(f"action {key} is not supported")


def hash_for(section: Mapping[str, Any], value: str, keys: Any) -> str:
    digits = int(section.get("hash-digits") or 16)
    salt = section.get("salt")
    if salt is not None:
        return hashlib.sha256((str(salt) + value).encode()).hexdigest()[:digits]
    return keys.pseudonym(value, digits)


def shift(text: str, fmt: str, days: int) -> str:
    suffix = ""
    for pattern in _TZ:
        match = pattern.match(text)
        if match:
            text, suffix = match.group(1), match.group(2)
            break
    if fmt.endswith(".%f") and "." not in text:
        text += ".0"
    return (datetime.strptime(text, fmt) + timedelta(days=days)).strftime(fmt) + suffix


_DEFAULTS = {
    "json": ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"),
    "jpg": ("%Y%m%d", "%Y:%m:%d %H:%M:%S"),
    "tiff": ("%Y%m%d", "%Y:%m:%d %H:%M:%S"),
}


def compile_field_action(
    field: Mapping[str, Any], section: Mapping[str, Any], *, section_name: str | None = None
) -> FieldAction:
    date, datetime_ = _DEFAULTS.get(section_name or "", ("%Y%m%d", "%Y%m%d%H%M%S.%f"))
    return FieldAction(field, {"date-format": date, "datetime-format": datetime_, **section})
