"""Key-value text files (``.mhd`` headers and the like): values edited, everything else kept.

Each line is ``key<delimiter>value``. The ``delimiter`` is a regular expression, as in
flywheel-migration (a plain string such as ``" = "`` is a regex matching itself); the line is split
at its *first* match only, so a value containing the delimiter is not corrupted (the reference
splits on every match and fails). Only the value text changes: the key, the delimiter as written,
trailing spaces, the line ending (``\\n``, ``\\r\\n`` or none) and comment lines (``#`` or ``;``)
and blank lines are copied as they are. A duplicated key has every occurrence de-identified (the
reference refuses the file). A line without the delimiter is an error unless ``ignore-bad-lines``
is set, in which case it is copied unchanged (and scanned by the residual-PHI check).
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, RuleHandler, sensitive_kind
from fw_gear_deid.formats._output import output_file

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)?")
_VALUE_END = re.compile(r"[ \t]*$")


@dataclass
class Line:
    text: str  # without the line ending
    end: str
    key: str | None = None
    delimiter: str = ""
    value: str = ""
    trailing: str = ""  # spaces after the value, kept as they were

    def render(self) -> str:
        if self.key is None:
            return self.text + self.end
        return self.key + self.delimiter + self.value + self.trailing + self.end


class KeyValueHandler(RuleHandler):
    section_name = "key-value-text-file"
    shown_options = ("delimiter", "encoding", "ignore-bad-lines")
    default_filters = ("*.mhd", "*.MHD", "*.Mhd")

    @property
    def encoding(self) -> str:
        encoding = str(self.section.get("encoding") or "utf-8")
        codecs.lookup(encoding)  # the validator checked it; fail loudly here otherwise
        return encoding

    def _pattern(self) -> re.Pattern[str]:
        delimiter = self.section.get("delimiter")
        if isinstance(delimiter, re.Pattern):
            return delimiter
        return re.compile(str(delimiter if delimiter is not None else "="))

    def parse(self, text: str, source: str) -> list[Line]:
        pattern = self._pattern()
        ignore_bad = bool(self.section.get("ignore-bad-lines"))
        lines: list[Line] = []
        for number, match in enumerate(_LINE.finditer(text), start=1):
            raw = match.group(0)
            if not raw:
                continue
            body = raw.rstrip("\r\n")
            line = Line(body, raw[len(body) :])
            stripped = body.strip()
            if not stripped or stripped.startswith(("#", ";")):
                lines.append(line)
                continue
            found = pattern.search(body)
            if found is None or found.end() == found.start():
                if not ignore_bad:
                    raise MalformedFileError(
                        source,
                        f"line {number} has no delimiter {pattern.pattern!r} (set ignore-bad-lines to copy such lines)",
                    )
                lines.append(line)
                continue
            value = body[found.end() :]
            trailing = _VALUE_END.search(value).group(0)  # type: ignore[union-attr]
            line.key = body[: found.start()]
            line.delimiter = found.group(0)
            line.value = value[: len(value) - len(trailing)] if trailing else value
            line.trailing = trailing
            lines.append(line)
        return lines

    def _read(self, src: Path, source: str) -> list[Line]:
        try:
            text = src.read_bytes().decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise MalformedFileError(source, f"not {self.encoding} text: {exc}") from exc
        if "\x00" in text:
            # Binary content under a text name: passing it through would copy it raw.
            raise MalformedFileError(source, "binary content (NUL bytes), not a key-value text")
        return self.parse(text, source)

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        lines = self._read(src, source)
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)

        def values(name: str) -> str | None:
            return next(
                (ln.value for ln in lines if ln.key is not None and ln.key.strip() == name), None
            )

        for rule in self.rules:
            if rule.is_keep:
                continue
            matched = [
                ln
                for ln in lines
                if ln.key is not None
                and (
                    (rule.name is not None and ln.key.strip() == rule.name)
                    or (rule.regex is not None and rule.regex.fullmatch(ln.key.strip()))
                )
            ]
            if (
                not matched
                and rule.action == "replace-with"
                and rule.name
                and self.section.get("replace-with-insert", True)
            ):
                lines.append(self._new_line(lines, rule.name, rule.apply("", ctx)))
                rec.change(rule.name, "replace-with", None, lines[-1].value, sensitive=False)
                continue
            for line in matched:
                key = str(line.key).strip()
                before = line.value
                try:
                    result = (
                        REMOVED
                        if rule.is_remove
                        else rule.apply(before, ctx, lookup=values, path=key)
                    )
                except (ValueError, TypeError, KeyError) as exc:
                    raise MalformedFileError(source, f"{key}: {rule.action} failed: {exc}") from exc
                if result is REMOVED:
                    lines.remove(line)
                    rec.change(
                        key,
                        rule.action,
                        before,
                        None,
                        kind=sensitive_kind(rule.action, key, before),
                    )
                elif str(result) != before:
                    line.value = str(result)
                    rec.change(
                        key,
                        rule.action,
                        before,
                        line.value,
                        kind=sensitive_kind(rule.action, key, before),
                    )
        outcome.output_name = self.output_name(src, ctx, rec, values)
        if dst is not None:
            with output_file(dst) as out:
                out.write("".join(line.render() for line in lines).encode(self.encoding))  # type: ignore[union-attr]
        return outcome

    @staticmethod
    def _new_line(lines: list[Line], key: str, value: object) -> Line:
        """A line for a key that replace-with inserts: the most common delimiter and line ending."""
        delimiters = Counter(ln.delimiter for ln in lines if ln.key is not None)
        endings = Counter(ln.end for ln in lines if ln.end)
        delimiter = delimiters.most_common(1)[0][0] if delimiters else " = "
        ending = endings.most_common(1)[0][0] if endings else "\n"
        if lines and not lines[-1].end:
            lines[-1].end = ending
        text = "" if value is REMOVED else str(value)
        return Line("", ending, key, delimiter, text)

    def record_value(self, path: Path, name: str) -> str | None:
        for line in self.parse(path.read_bytes().decode(self.encoding), path.name):
            if line.key is not None and line.key.strip() == name:
                return line.value
        return None

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        text = path.read_bytes().decode(self.encoding)
        for number, line in enumerate(self.parse(text, path.name), start=1):
            if line.key is None:
                if line.text.strip():
                    yield f"line {number}", line.text
                continue
            yield f"{line.key.strip()} (key)", line.key.strip()
            if line.value.strip():
                yield line.key.strip(), line.value
