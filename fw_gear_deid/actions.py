"""Value transforms shared by every format handler, Flywheel-compatible where the result is deterministic.

Each function here reproduces what flywheel-migration 13.10.11 computes for the same inputs (so an
export made with the reference gear and one made with this gear give the same pseudonyms), except
where the reference is random or defective; those differences are listed in ``docs/dicom.md``:

- ``hash`` with a profile ``salt``: ``sha256(salt + value)`` hex, truncated to ``hash-digits`` (16).
  Without a salt the reference hashes unsalted (guessable); we use the job's keyed HMAC instead.
- ``hashuid``: the reference algorithm (prefix nodes, six 6-digit blocks from the decimal digest,
  suffix node, cropped to 64 characters); without a salt the digest is keyed.
- ``increment-date`` / ``increment-datetime``: ``datetime.strptime`` / ``strftime`` with the section's
  formats, timezone suffix kept, comma-separated multi-values shifted one by one. The
  ``datetime-min``/``datetime-max`` clamps apply to both actions (the reference forgets them for dates).
- ``jitter`` and ``jitter-date``: the reference draws from ``random``; we derive the draw from the job
  secret (HMAC of field, subject and value) so a rerun gives the same output.
- ``regex-sub``: first matching ``input-regex`` wins, output is a ``{var}`` template of capture groups
  and ``groups`` that carry their own action.

:func:`compile_field_action` turns one profile ``fields`` entry into a :class:`FieldAction` that
non-DICOM handlers apply to string values. The DICOM engine uses the same functions element by element.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from fw_gear_deid.formats._base import DeidContext
from fw_gear_deid.keys import Keys

__all__ = [
    "ACTION_KEYS",
    "DEFAULT_FORMATS",
    "REMOVE",
    "ActionError",
    "FieldAction",
    "RegexSubRule",
    "compile_field_action",
    "compile_regex_sub",
    "flywheel_hash_digest_decimal",
    "hash_for",
    "hash_value",
    "hashuid",
    "hashuid_for",
    "jitter",
    "jitter_date_offset",
    "keyed_draw",
    "parse_datetime_bound",
    "regex_sub",
    "shift_date",
    "shift_datetime",
]


class _Remove:
    """Sentinel returned by :meth:`FieldAction.apply` when the value must be deleted."""

    _instance: _Remove | None = None

    def __new__(cls) -> _Remove:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVE"

    def __reduce__(self) -> str:  # stays a singleton across pickling (worker processes)
        return "REMOVE"


#: The value an action returns when the field must be removed.
REMOVE: Final = _Remove()

#: Action keys in the order flywheel-migration picks the first one present (the validator rejects
#: entries with several; the order only matters for the default "keep" of a bare ``{name: X}``).
ACTION_KEYS: tuple[str, ...] = (
    "identity",
    "keep",
    "remove",
    "replace-with",
    "hash",
    "hashuid",
    "increment-date",
    "jitter",
    "increment-datetime",
    "regex-sub",
    "encrypt",
    "decrypt",
)

#: Reference date/datetime formats per profile section (``FileProfile`` subclasses' class attributes).
DEFAULT_FORMATS: dict[str, tuple[str, str]] = {
    "dicom": ("%Y%m%d", "%Y%m%d%H%M%S.%f"),
    "json": ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"),
    "jpg": ("%Y%m%d", "%Y:%m:%d %H:%M:%S"),
    "tiff": ("%Y%m%d", "%Y:%m:%d %H:%M:%S"),
    "flywheel": ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"),
}
_GENERIC_FORMATS = ("%Y%m%d", "%Y%m%d%H%M%S.%f")

# Timezone suffixes the reference strips before parsing and puts back after: +0000 (DICOM), +00:00.
_RE_TIMEZONES = (re.compile(r"(.+)([-+]\d{4})$"), re.compile(r"(.+)([-+]\d{2}:\d{2})$"))
_RE_OUTPUT_VAR = re.compile(r"\{([^}]+)\}")
_RE_RELATIVE_BOUND = re.compile(r"(?P<direction>[+-])(?P<amount>\d+)(?P<unit>years|weeks|days)")
_UID_MAX_LENGTH = 64
_UID_HASH_BLOCKS = (6, 6, 6, 6, 6, 6)
_UID_MAX_SUFFIX_DIGITS = 6


class ActionError(ValueError):
    """An action cannot be applied to a value (unparsable date, regex-sub without a match...).

    Handlers turn it into :class:`fw_gear_deid.errors.MalformedFileError` naming the file and field.
    """


# -- hashing ----------------------------------------------------------------------------------------
def hash_value(value: str, salt: str | None, digits: int | None = 16) -> str:
    """flywheel-migration's ``hash``: ``sha256(salt + value)`` as hex, truncated to ``digits``.

    An empty or missing salt hashes the bare value (as the reference does); ``digits`` 0/None keeps
    all 64 hex characters.
    """
    hasher = hashlib.sha256()
    if salt:
        hasher.update(salt.encode("utf-8"))
    hasher.update(str(value).encode("utf-8"))
    result = hasher.hexdigest()
    return result[:digits] if digits else result


def flywheel_hash_digest_decimal(value: str, salt: str | None) -> str:
    """The reference's ``dec`` digest: every byte of ``sha256(salt + value)`` as decimal, joined."""
    hasher = hashlib.sha256()
    if salt:
        hasher.update(salt.encode("utf-8"))
    hasher.update(str(value).encode("utf-8"))
    return "".join(str(byte) for byte in hasher.digest())


def _keyed_decimal_digest(value: str, keys: Keys) -> str:
    return "".join(str(byte) for byte in keys.digest("hashuid", value))


def hash_for(section: Mapping[str, Any], value: str, keys: Keys) -> str:
    """The ``hash`` action of a section: Flywheel's salted sha256 when the section sets ``salt``,
    else the job's keyed HMAC pseudonym (an unsalted sha256 of a name or MRN is guessable)."""
    digits = section.get("hash-digits", 16)
    salt = section.get("salt")
    if salt:
        return hash_value(value, salt, digits)
    return keys.pseudonym(str(value), digits=digits or 64)


def hashuid(
    uid: str,
    salt: str | None,
    prefix_fields: int = 4,
    suffix_fields: int = 1,
    numeric_name: str | None = None,
    *,
    digest: str | None = None,
) -> str:
    """flywheel-migration's ``hashuid``.

    Keeps ``prefix_fields`` leading nodes of ``uid`` (or uses ``numeric_name``, whose node count must
    equal ``prefix_fields``), then six 6-digit blocks cut from the decimal digest of
    ``sha256(salt + uid)`` (a block starting with 0 starts with 1 instead), then the last
    ``suffix_fields`` nodes (each cut to its last 6 digits), cropped to 64 characters by shortening
    the nodes before the suffix. ``digest`` replaces the salted digest (keyed variant, see
    :func:`hashuid_for`).
    """
    uid = str(uid).strip().rstrip("\x00")
    if not uid:
        return uid
    parts = uid.split(".")
    if numeric_name:
        name_parts = numeric_name.split(".")
        if len(name_parts) != prefix_fields:
            raise ActionError(
                f"Registered OID numeric name must have exactly {prefix_fields} fields"
            )
        prefix = name_parts
    else:
        available = max(0, len(parts) - suffix_fields)
        prefix = parts[: min(prefix_fields, available)] if prefix_fields > 0 else []
    if digest is None:
        digest = flywheel_hash_digest_decimal(uid, salt)
    result = list(prefix)
    index = 0
    for size in _UID_HASH_BLOCKS:
        block = digest[index : index + size]
        if block[0] == "0":
            block = "1" + block[1:]
        result.append(block)
        index += size
    if suffix_fields > 0:
        for part in parts[-suffix_fields:]:
            result.append(part[-_UID_MAX_SUFFIX_DIGITS:] if len(part) > 6 else part)
    new_uid = ".".join(result)
    if len(new_uid) > _UID_MAX_LENGTH:
        rest, last = result[:-1], result[-1]
        while len(".".join(rest)) + 1 + len(last) > _UID_MAX_LENGTH:
            if len(rest[-1]) > 1:
                rest[-1] = rest[-1][:-1]
            else:
                rest.pop()
        new_uid = ".".join([*rest, last])
    return new_uid


def hashuid_for(section: Mapping[str, Any], uid: str, keys: Keys) -> str:
    """The ``hashuid`` action of a section: Flywheel-identical with ``salt``; keyed digest without."""
    salt = section.get("salt")
    clean = str(uid).strip().rstrip("\x00")
    return hashuid(
        clean,
        salt,
        int(section.get("uid-prefix-fields", 4)),
        int(section.get("uid-suffix-fields", 1)),
        section.get("uid-numeric-name"),
        digest=None if salt else _keyed_decimal_digest(clean, keys),
    )


# -- keyed randomness ----------------------------------------------------------------------------------
def keyed_draw(keys: Keys, purpose: str, *parts: str) -> float:
    """A number in [0, 1) derived from the secret and ``parts``: the same inputs give the same draw."""
    number = int.from_bytes(keys.digest(purpose, "\x1f".join(parts))[:8], "big")
    return number / 2**64


def _keyed_nonzero_int(keys: Keys, purpose: str, limit: int, *parts: str) -> int:
    """A keyed integer in [-limit, limit] \\ {0} (the reference redraws until non-zero)."""
    limit = max(1, abs(int(limit)))
    number = int.from_bytes(keys.digest(purpose, "\x1f".join(parts))[:8], "big")
    value = number % (2 * limit) - limit  # -limit .. limit-1
    return value + 1 if value >= 0 else value  # skip 0: -limit..-1, 1..limit


def jitter_date_offset(keys: Keys, jitter_range: int, jitter_unit: str, *parts: str) -> timedelta:
    """The keyed ``jitter-date`` amount: a non-zero integer in ±``jitter_range`` of ``jitter_unit``."""
    amount = _keyed_nonzero_int(keys, "jitter-date", int(jitter_range), *parts)
    return timedelta(**{jitter_unit: amount})


def jitter(
    value: str | float,
    keys: Keys,
    *parts: str,
    jitter_range: float = 2,
    jitter_type: str = "float",
    minimum: float | None = None,
    maximum: float | None = None,
) -> int | float:
    """Add a keyed non-zero offset within ±``jitter_range`` to a number (``jitter`` action).

    ``jitter_type`` ``int`` adds an integer (a decimal source such as ``"70.0"`` is read through
    float first: the reference fails on it); ``float`` adds ``u * range`` with u in [-1, 1) \\ {0}.
    ``minimum``/``maximum`` clamp the result, keeping its type. ``parts`` key the draw (field,
    subject, value), so reruns agree.
    """
    try:
        number: int | float = float(value)
        if jitter_type == "int":
            number = int(number)
    except (TypeError, ValueError):
        # The message never quotes the value: errors reach reports, which carry no PHI.
        raise ActionError("unable to cast the value to a number for jitter") from None
    if jitter_type == "int":
        new_value: int | float = number + _keyed_nonzero_int(
            keys, "jitter", int(jitter_range), *parts
        )
    else:
        draw = keyed_draw(keys, "jitter", *parts) * 2 - 1
        if draw == 0:
            draw = 0.5
        new_value = number + draw * float(jitter_range)
    if minimum is not None and new_value < minimum:
        new_value = type(new_value)(minimum)
    if maximum is not None and new_value > maximum:
        new_value = type(new_value)(maximum)
    return new_value


# -- dates ------------------------------------------------------------------------------------------
def parse_datetime_bound(value: str | int, today: datetime | None = None) -> datetime:
    """A ``datetime-min``/``datetime-max`` bound: ``YYYYMMDD`` or relative ``[+-]N(years|weeks|days)``
    from today (a year counts 365.25 days, as in the reference)."""
    text = str(value)
    match = _RE_RELATIVE_BOUND.fullmatch(text)
    if match:
        amount = float(match["amount"])
        unit = match["unit"]
        if unit == "years":
            amount, unit = amount * 365.25, "days"
        delta = timedelta(**{unit: amount})
        base = today or datetime.today()
        return base - delta if match["direction"] == "-" else base + delta
    try:
        return datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise ActionError(
            f"datetime-min/datetime-max must be YYYYMMDD or [+-]<amount><unit>, got {text!r}"
        ) from None


def _shift_one(
    text: str,
    fmt: str,
    delta: timedelta,
    minimum: datetime | None,
    maximum: datetime | None,
    timezone: bool,
) -> str:
    suffix = ""
    if timezone:
        for pattern in _RE_TIMEZONES:
            match = pattern.match(text)
            if match:
                text, suffix = match.group(1), match.group(2)
                break
    if fmt.endswith(".%f") and "." not in text:
        text += ".0"  # the reference adds missing fractional seconds before parsing
    try:
        moment = datetime.strptime(text, fmt)
    except ValueError:
        # The message never quotes the value: errors reach reports, which carry no PHI.
        raise ActionError(f"the value does not parse with the format {fmt!r}") from None
    moment += delta
    if minimum is not None:
        moment = max(moment, minimum)
    if maximum is not None:
        moment = min(moment, maximum)
    return moment.strftime(fmt) + suffix


def _shift_multi(
    text: str,
    fmt: str,
    days: float,
    extra: timedelta | None,
    minimum: datetime | None,
    maximum: datetime | None,
    timezone: bool,
) -> str:
    delta = timedelta(days=days) + (extra or timedelta())
    # The reference reads multi-valued fields as "a,b" and shifts each part.
    return ",".join(
        _shift_one(part, fmt, delta, minimum, maximum, timezone) for part in str(text).split(",")
    )


def shift_date(
    text: str,
    fmt: str,
    days: float,
    *,
    extra: timedelta | None = None,
    minimum: datetime | None = None,
    maximum: datetime | None = None,
) -> str:
    """``increment-date``: parse ``text`` with ``fmt``, add ``days`` (+ ``extra``, e.g. a jitter),
    clamp to ``minimum``/``maximum``, format back. Comma-separated values are shifted one by one."""
    return _shift_multi(text, fmt, days, extra, minimum, maximum, timezone=False)


def shift_datetime(
    text: str,
    fmt: str,
    days: float,
    *,
    extra: timedelta | None = None,
    minimum: datetime | None = None,
    maximum: datetime | None = None,
) -> str:
    """``increment-datetime``: like :func:`shift_date`; a ``+hhmm``/``+hh:mm`` suffix is kept as is,
    and a value without fraction gets ``.0`` when ``fmt`` ends in ``.%f`` (reference behaviour)."""
    return _shift_multi(text, fmt, days, extra, minimum, maximum, timezone=True)


# -- regex-sub ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegexSubRule:
    """One ``regex-sub`` item: ``input-regex``, ``output`` template and group actions."""

    input_regex: re.Pattern[str]
    output: str
    groups: Mapping[str, FieldAction] = field(default_factory=dict)

    @property
    def output_vars(self) -> list[str]:
        return _RE_OUTPUT_VAR.findall(self.output)

    def format(self, values: Mapping[str, str]) -> str:
        # "{subject.label}" cannot go through str.format (the dot is attribute access): substitute.
        return _RE_OUTPUT_VAR.sub(lambda match: values.get(match.group(1), ""), self.output)


def compile_regex_sub(
    items: Sequence[Mapping[str, Any]], section: Mapping[str, Any], section_name: str | None = None
) -> list[RegexSubRule]:
    """Compile a ``regex-sub`` list; each group becomes a :class:`FieldAction` of its own."""
    rules = []
    for item in items:
        groups = {
            group["name"]: compile_field_action(group, section, section_name=section_name)
            for group in item.get("groups", []) or []
        }
        rules.append(RegexSubRule(re.compile(item["input-regex"]), item["output"], groups))
    return rules


def regex_sub(
    value: str,
    rules: Sequence[RegexSubRule],
    resolve: Callable[[str, FieldAction | None], Any],
    apply_group: Callable[[FieldAction, str], Any] | None = None,
) -> str:
    """Apply ``regex-sub`` rules to ``value`` (reference semantics).

    The first rule whose ``input-regex`` matches at the start of ``value`` wins (none: ActionError).
    Each ``{var}`` of its output is: the group action applied to the captured text when the var is
    both a capture group and a group; the group action applied to the record's field ``var`` (via
    ``resolve(var, action)``) when it is only a group; the captured text when it is only a capture
    group. A removed/None part formats as "".
    """
    text = str(value)
    for rule in rules:
        match = rule.input_regex.match(text)
        if match:
            break
    else:
        raise ActionError("the value does not match any of the input-regex values")
    captured = match.groupdict()
    values: dict[str, str] = {}
    for var in rule.output_vars:
        group = rule.groups.get(var)
        part = captured.get(var)
        if group is not None:
            if part is not None:
                result = apply_group(group, part) if apply_group else part
            else:
                result = resolve(var, group)
        elif part is not None:
            result = part
        else:
            raise ActionError(
                f"action for {var} is not defined in groups for {rule.input_regex.pattern}"
            )
        values[var] = "" if result is None or result is REMOVE else str(result)
    return rule.format(values)


# -- one field -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldAction:
    """One compiled ``fields`` entry: its selector text, action key and options.

    ``apply(value, ctx)`` returns the new string value, or :data:`REMOVE`. It is format-agnostic:
    handlers find the values (EXIF tag, XPath node, JSON path, CSV cell...) and call it per value.
    """

    selector: str
    is_regex: bool
    action: str
    options: Mapping[str, Any]
    section: Mapping[str, Any]
    date_format: str
    datetime_format: str
    regex_rules: tuple[RegexSubRule, ...] = ()

    @property
    def replacement(self) -> Any:
        return self.options.get("replace-with")

    @property
    def inserts(self) -> bool:
        """Whether ``replace-with`` creates the field when it is missing (``replace-with-insert``)."""
        if "replace-with-insert" in self.options:
            return bool(self.options["replace-with-insert"])
        return bool(self.section.get("replace-with-insert", True))

    def describe(self) -> str:
        kind = "regex" if self.is_regex else "name"
        return f"{kind} {self.selector}: {self.action}"

    # -- pieces shared with the DICOM engine --------------------------------------------------------
    def date_delta_days(self, ctx: DeidContext) -> float:
        """Days to add: ``date-increment-override``, else the section's ``date-increment`` (may be
        fractional), else the subject's offset (mapping CSV, then keyed)."""
        override = self.options.get("date-increment-override")
        if override is not None:
            return float(override)
        increment = self.section.get("date-increment")
        if increment is not None:
            return float(increment)
        return float(ctx.date_offset(self.section))

    def clamps(self) -> tuple[datetime | None, datetime | None]:
        low = self.options.get("datetime-min")
        high = self.options.get("datetime-max")
        return (
            parse_datetime_bound(low) if low is not None else None,
            parse_datetime_bound(high) if high is not None else None,
        )

    def jitter_extra(self, ctx: DeidContext, path: str, value: str) -> timedelta | None:
        if not self.options.get("jitter-date"):
            return None
        return jitter_date_offset(
            ctx.keys,
            self.options.get("jitter-range", 10),
            self.options.get("jitter-unit", "days"),
            path,
            ctx.subject or "",
            value,
        )

    def jitter_number(self, value: str, ctx: DeidContext, path: str) -> int | float:
        return jitter(
            value,
            ctx.keys,
            path,
            ctx.subject or "",
            str(value),
            jitter_range=self.options.get("jitter-range", self.section.get("jitter-range", 2)),
            jitter_type=self.options.get("jitter-type", self.section.get("jitter-type", "float")),
            minimum=self.options.get("jitter-min"),
            maximum=self.options.get("jitter-max"),
        )

    def shift(self, value: str, ctx: DeidContext, path: str, *, fmt: str | None = None) -> str:
        """``increment-date``/``increment-datetime`` on one string value (may be comma-separated)."""
        low, high = self.clamps()
        days = self.date_delta_days(ctx)
        extra = self.jitter_extra(ctx, path, value)
        if self.action == "increment-date":
            return shift_date(
                value, fmt or self.date_format, days, extra=extra, minimum=low, maximum=high
            )
        return shift_datetime(
            value, fmt or self.datetime_format, days, extra=extra, minimum=low, maximum=high
        )

    def apply(
        self,
        value: Any,
        ctx: DeidContext,
        *,
        lookup: Callable[[str], Any] | None = None,
        path: str | None = None,
    ) -> Any:
        """The new value of ``value`` (a string, or None when the field is missing), or REMOVE.

        ``lookup(name)`` reads another field of the same record (regex-sub groups that reference a
        field). ``path`` keys jitter draws (defaults to the selector). A missing value (None) stays
        None except for ``replace-with`` with insert, which returns the replacement.
        """
        where = path or self.selector
        action = self.action
        if action in ("keep", "identity"):
            return value
        if action == "remove":
            return REMOVE
        if action == "replace-with":
            if value is None and not self.inserts:
                return None
            return self.replacement
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        if action == "hash":
            return hash_for(self.section, text, ctx.keys) if text else text
        if action == "hashuid":
            return hashuid_for(self.section, text, ctx.keys) if text else text
        if action in ("increment-date", "increment-datetime"):
            return self.shift(text, ctx, where) if text else text
        if action == "jitter":
            return str(self.jitter_number(text, ctx, where))
        if action == "regex-sub":

            def resolve(name: str, group: FieldAction | None) -> Any:
                current = lookup(name) if lookup else None
                return group.apply(current, ctx, lookup=lookup) if group else current

            def apply_group(group: FieldAction, part: str) -> Any:
                return group.apply(part, ctx, lookup=lookup, path=f"{where}:{group.selector}")

            return regex_sub(text, self.regex_rules, resolve, apply_group)
        raise ActionError(f"action {action!r} is not supported here")


def action_key(entry: Mapping[str, Any]) -> str:
    """The action of a ``fields`` entry: the first action key present, else ``keep``."""
    for key in ACTION_KEYS:
        if key in entry:
            return "keep" if key == "identity" else key
    return "keep"


def compile_field_action(
    entry: Mapping[str, Any],
    section: Mapping[str, Any],
    *,
    section_name: str | None = None,
) -> FieldAction:
    """Compile one validated ``fields`` entry of ``section`` into a :class:`FieldAction`.

    Date formats: the field's ``date-format``/``datetime-format``, else the section's, else the
    reference default of ``section_name`` (:data:`DEFAULT_FORMATS`; DICOM's when unknown).
    """
    default_date, default_datetime = DEFAULT_FORMATS.get(section_name or "", _GENERIC_FORMATS)
    action = action_key(entry)
    selector = entry.get("name") if entry.get("name") is not None else entry.get("regex", "")
    options = {key: value for key, value in entry.items() if key not in ("name", "regex")}
    rules: tuple[RegexSubRule, ...] = ()
    if action == "regex-sub":
        rules = tuple(compile_regex_sub(entry["regex-sub"], section, section_name))
    return FieldAction(
        selector=str(selector),
        is_regex=entry.get("name") is None and "regex" in entry,
        action=action,
        options=options,
        section=section,
        date_format=entry.get("date-format") or section.get("date-format") or default_date,
        datetime_format=entry.get("datetime-format")
        or section.get("datetime-format")
        or default_datetime,
        regex_rules=rules,
    )
