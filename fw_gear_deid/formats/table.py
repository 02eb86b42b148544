"""CSV and TSV: column actions applied row by row while every untouched byte is copied as it was.

flywheel-migration reads tables with pandas, which turns ``007`` into ``7``, reads TSV with a comma,
re-quotes everything and never matches its own default filters. Here a small tokenizer keeps, per
field, its exact source text and whether it was quoted: untouched fields, line endings and quoting
are written back verbatim; a changed field is quoted when its source was quoted or when its new
value needs it. The file is streamed row by row (a quoted field may span lines). A field longer than
:func:`csv.field_size_limit` is refused with a clear error instead of being read into memory.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import REMOVED, Recorder, Rule, RuleHandler, sensitive_kind
from fw_gear_deid.formats._output import output_file

QUOTE = '"'
_LINE_ENDS = ("\r\n", "\n", "\r", "")
#: Preview shows before/after for this many rows per column.
PREVIEW_ROWS = 20


class TableFormatError(ValueError):
    pass


@dataclass
class Cell:
    raw: str  # exact source text, quotes included
    value: str  # the value (quotes removed, doubled quotes undone)
    quoted: bool


@dataclass
class Row:
    cells: list[Cell]
    end: str  # the row's line terminator as found ('' at end of file)
    line: int  # 1-based line number where the row starts


class Tokenizer:
    """Splits a text stream into rows of :class:`Cell`, recording quoting and exact source text."""

    def __init__(self, stream: TextIO, delimiter: str, max_field: int):
        if not delimiter or QUOTE in delimiter or "\n" in delimiter or "\r" in delimiter:
            raise TableFormatError(f"unusable delimiter {delimiter!r}")
        self.stream = stream
        self.delimiter = delimiter
        self.max_field = max_field
        # possessive: an escaped quote at the end of a line must not pass for the closing quote
        self._quoted = re.compile(r'"(?:[^"]|"")*+"')
        self._plain = re.compile("(?:(?!" + re.escape(delimiter) + r")[^\r\n])*")

    def __iter__(self) -> Iterator[Row]:
        line_number = 0
        while True:
            buffer = self.stream.readline()
            if not buffer:
                return
            line_number += 1
            start = line_number
            cells: list[Cell] = []
            pos = 0
            while True:
                if buffer.startswith(QUOTE, pos):
                    match = self._quoted.match(buffer, pos)
                    while match is None:
                        more = self.stream.readline()
                        if not more:
                            raise TableFormatError(f"line {start}: a quoted field is never closed")
                        line_number += 1
                        buffer += more
                        if len(buffer) - pos > self.max_field + 2:
                            raise self._too_long(start)
                        match = self._quoted.match(buffer, pos)
                    raw = match.group(0)
                    cell = Cell(raw, raw[1:-1].replace('""', '"'), True)
                else:
                    match = self._plain.match(buffer, pos)
                    raw = match.group(0)  # type: ignore[union-attr]
                    cell = Cell(raw, raw, False)
                if len(cell.value) > self.max_field:
                    raise self._too_long(start)
                cells.append(cell)
                pos = match.end()  # type: ignore[union-attr]
                if buffer.startswith(self.delimiter, pos):
                    pos += len(self.delimiter)
                    continue
                rest = buffer[pos:]
                if rest in _LINE_ENDS:
                    yield Row(cells, rest, start)
                    break
                raise TableFormatError(f"line {line_number}: unexpected text after a quoted field")

    def _too_long(self, line: int) -> TableFormatError:
        return TableFormatError(
            f"line {line}: a field is longer than {self.max_field} characters "
            "(csv.field_size_limit); refusing to read it"
        )


def render_cell(cell: Cell, value: str, delimiter: str) -> str:
    """The text of a cell whose value changed: quoted like its source, or when the value needs it."""
    needs = cell.quoted or any(ch in value for ch in (delimiter, QUOTE, "\r", "\n"))
    return QUOTE + value.replace(QUOTE, '""') + QUOTE if needs else value


def render_row(row: Row, delimiter: str) -> str:
    return delimiter.join(cell.raw for cell in row.cells) + row.end


class _TableHandler(RuleHandler):
    shown_options = ("delimiter",)
    delimiter: str = ","

    def _delimiter(self) -> str:
        return str(self.section.get("delimiter") or self.delimiter)

    @staticmethod
    def _codec(path: Path) -> tuple[str, str]:
        """(encoding, error handler) of a table: UTF-16 when it starts with a BOM (spreadsheet
        exports), else UTF-8 with surrogateescape, so any byte sequence reads and writes back
        unchanged whatever the real 8-bit encoding."""
        with open(path, "rb") as stream:
            head = stream.read(2)
        if head == b"\xff\xfe":
            return "utf-16-le", "strict"
        if head == b"\xfe\xff":
            return "utf-16-be", "strict"
        return "utf-8", "surrogateescape"

    def _open(self, path: Path, codec: tuple[str, str]) -> TextIO:
        return open(path, encoding=codec[0], errors=codec[1], newline="")

    def _columns(self, header: Row) -> dict[int, list[Rule]]:
        names = [cell.value.lstrip("\ufeff") for cell in header.cells]
        chosen: dict[int, list[Rule]] = {}
        for rule in self.rules:
            for index, name in enumerate(names):
                if (rule.name is not None and rule.name == name) or (
                    rule.regex is not None and rule.regex.fullmatch(name)
                ):
                    chosen.setdefault(index, []).append(rule)
        return chosen

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        source = ctx.source_name or src.name
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        outcome.output_name = self.output_name(src, ctx, rec)
        delimiter = self._delimiter()
        try:
            codec = self._codec(src)
            with self._open(src, codec) as stream, output_file(dst) as out:
                rows = iter(Tokenizer(stream, delimiter, csv.field_size_limit()))
                header = next(rows, None)
                if header is None:
                    return outcome  # empty file: nothing to de-identify, written empty
                if any("\x00" in cell.value for cell in header.cells):
                    # Binary content under a table name: passing it through would copy it raw.
                    raise MalformedFileError(source, "binary content (NUL bytes), not a table")
                names = [cell.value.lstrip("\ufeff") for cell in header.cells]
                columns = self._columns(header)
                self._check_delimiter(header, names, delimiter, source)
                dropped = {i for i, rules in columns.items() if any(r.is_remove for r in rules)}
                for index in sorted(dropped):
                    rec.change(names[index], "remove", sensitive=False)
                self._write(out, self._without(header, dropped), delimiter, codec)
                seen: set[tuple[str, str]] = set()
                counts: dict[tuple[int, str], int] = {}
                for row_number, row in enumerate(rows, start=1):
                    self._row(
                        row,
                        row_number,
                        names,
                        columns,
                        dropped,
                        ctx,
                        rec,
                        seen,
                        counts,
                        source,
                        delimiter,
                    )
                    self._write(out, self._without(row, dropped), delimiter, codec)
                if not rec.preview:  # the report lists each column action once, no values
                    for index, action in counts:
                        rec.outcome.changes.append(_change(names[index], action))
        except TableFormatError as exc:
            raise MalformedFileError(source, str(exc)) from exc
        except (OSError, UnicodeError) as exc:
            raise MalformedFileError(source, f"cannot be read as text: {exc}") from exc
        return outcome

    def _check_delimiter(self, header: Row, names: list[str], delimiter: str, source: str) -> None:
        """Fail closed on a wrong delimiter: when a column a rule names is missing but would be
        there with another common delimiter (a ``;`` CSV read with ``,``), the rules would silently
        do nothing, so the file is refused with a hint instead."""
        wanted = {r.name for r in self.rules if r.name is not None and not r.is_keep}
        missing = wanted - set(names)
        if not missing:
            return
        text = render_row(header, delimiter).rstrip("\r\n").lstrip("\ufeff")
        for other in (",", ";", "\t", "|"):
            if other != delimiter and missing & {part.strip('"') for part in text.split(other)}:
                raise MalformedFileError(
                    source,
                    f"column(s) {sorted(missing)} not found with delimiter {delimiter!r}, but the "
                    f"header splits into them with {other!r}: set the section's delimiter",
                )

    @staticmethod
    def _without(row: Row, dropped: set[int]) -> Row:
        if not dropped:
            return row
        return Row([c for i, c in enumerate(row.cells) if i not in dropped], row.end, row.line)

    @staticmethod
    def _write(out, row: Row, delimiter: str, codec: tuple[str, str]) -> None:
        if out is not None:
            out.write(render_row(row, delimiter).encode(*codec))

    def _row(
        self,
        row: Row,
        number: int,
        names: list[str],
        columns: dict[int, list[Rule]],
        dropped: set[int],
        ctx: DeidContext,
        rec: Recorder,
        seen: set[tuple[str, str]],
        counts: dict[tuple[int, str], int],
        source: str,
        delimiter: str,
    ) -> None:
        for index, rules in columns.items():
            if index >= len(row.cells):
                continue
            cell = row.cells[index]
            column = names[index]
            if index in dropped:
                if cell.value.strip() and (column, cell.value) not in seen:
                    seen.add((column, cell.value))
                    rec.sensitive(sensitive_kind("remove", column, cell.value), cell.value, column)
                continue
            value = cell.value

            def lookup(other: str, cells: list[Cell] = row.cells) -> str | None:
                # other columns of the same row (regex-sub groups naming a field); rarely needed
                for column_name, other_cell in zip(names, cells, strict=False):
                    if column_name == other:
                        return other_cell.value
                return None

            # an empty cell has nothing to hash or shift; replace-with fills it like any other row
            if not value and all(rule.action != "replace-with" for rule in rules):
                continue
            for rule in rules:
                if rule.is_keep:
                    break
                try:
                    result = rule.apply(value, ctx, lookup=lookup, path=column)
                except (ValueError, TypeError, KeyError) as exc:
                    raise MalformedFileError(
                        source, f"line {row.line}, column {column}: {rule.action} failed: {exc}"
                    ) from exc
                new = "" if result is REMOVED else str(result)
                if new == value:
                    continue
                if (column, value) not in seen:
                    seen.add((column, value))
                    rec.sensitive(sensitive_kind(rule.action, column, value), value, column)
                if rec.preview and counts.get((index, rule.action), 0) < PREVIEW_ROWS:
                    rec.outcome.changes.append(
                        _change(f"row {number}.{column}", rule.action, value, new)
                    )
                counts[(index, rule.action)] = counts.get((index, rule.action), 0) + 1
                value = new
            if value != cell.value:
                row.cells[index] = Cell(render_cell(cell, value, delimiter), value, cell.quoted)

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        yield "filename", path.name
        with self._open(path, self._codec(path)) as stream:
            names: list[str] = []
            for number, row in enumerate(
                Tokenizer(stream, self._delimiter(), csv.field_size_limit())
            ):
                if number == 0:
                    names = [cell.value.lstrip("\ufeff") for cell in row.cells]
                for index, cell in enumerate(row.cells):
                    if cell.value.strip():
                        column = names[index] if index < len(names) else f"column{index + 1}"
                        yield f"row {number}.{column}", cell.value


def _change(path: str, action: str, before: str | None = None, after: str | None = None):
    from fw_gear_deid.formats._base import FieldChange

    return FieldChange(path, action, before, after)


class CsvHandler(_TableHandler):
    section_name = "csv"
    default_filters = ("*.csv", "*.CSV", "*.Csv")
    delimiter = ","


class TsvHandler(_TableHandler):
    section_name = "tsv"
    default_filters = ("*.tsv", "*.TSV", "*.Tsv")
    delimiter = "\t"
