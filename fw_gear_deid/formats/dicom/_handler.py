"""``DicomHandler``: the dicom profile section applied to one file, streamed (see ``_stream``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pathvalidate import sanitize_filename

from fw_gear_deid.actions import ActionError, compile_field_action
from fw_gear_deid.errors import MalformedFileError
from fw_gear_deid.formats._base import DeidContext, DeidOutcome, FormatHandler, HandlerSet
from fw_gear_deid.formats.dicom._engine import DicomEngine, iter_text_values
from fw_gear_deid.formats.dicom._raw import peek_value
from fw_gear_deid.formats.dicom._stream import SourceFile, read_source, write_output

_OUTPUT_VAR = re.compile(r"\{([^}]+)\}")


class DicomHandler(FormatHandler):
    """De-identifies DICOM files with a validated ``dicom`` section (Flywheel grammar + preset)."""

    section_name: ClassVar[str] = "dicom"
    default_filters: ClassVar[tuple[str, ...]] = ("*.dcm", "*.DCM", "*.ima", "*.IMA")

    def __init__(self, section: Mapping[str, Any], siblings: HandlerSet | None = None):
        super().__init__(section, siblings)
        self.engine = DicomEngine(section)

    def matches_signature(self, head: bytes) -> bool:
        return len(head) >= 132 and head[128:132] == b"DICM"

    def describe(self) -> list[str]:
        return self.engine.describe()

    # -- work --------------------------------------------------------------------------------------
    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        src = Path(src)
        label = ctx.source_name or src.name
        try:
            source = read_source(src, name=label)
            state = self.engine.run(source.dataset, source.trailing, ctx, preview=dst is None)
            output_name = self.output_name(source, label, ctx)
        except MalformedFileError:
            raise
        except ActionError as error:
            raise MalformedFileError(label, str(error)) from None
        except OSError:
            raise  # the source cannot be read: a store problem, not a malformed file
        except Exception as error:  # pydicom raises many types for values it cannot decode
            # The type only: pydicom's messages quote the offending value, and reasons reach reports.
            raise MalformedFileError(
                label, f"a value cannot be decoded ({type(error).__name__})"
            ) from None
        if dst is not None:
            try:
                write_output(Path(dst), source, source.dataset, source.trailing)
            except OSError:
                _discard(dst)
                raise  # disk full, permissions: the destination's problem, reported as such
            except Exception as error:  # a value pydicom cannot encode
                _discard(dst)
                raise MalformedFileError(
                    label, f"a value cannot be encoded ({type(error).__name__})"
                ) from None
        outcome = DeidOutcome(output_name, state.changes, state.sensitive)
        if dst is not None:
            # What text_values(dst) reads, from the dataset just encoded into dst (file meta as
            # written): the gate scans it without parsing the output a second time.
            outcome.text_values = lambda: _source_text_values(source)
        return outcome

    def output_name(self, source: SourceFile, label: str, ctx: DeidContext) -> str:
        """``filenames`` rules (first matching ``input-regex``), else ``<SOPInstanceUID>.<Modality>.dcm``.

        Output variables read the de-identified values (the reference reads some before de-id)."""
        dataset = source.dataset
        base = Path(label).name
        rules = self.section.get("filenames") or []
        if not rules:
            sop = peek_value(dataset, 0x00080018, "UI")
            if not sop:
                return _sanitize(base)
            modality = peek_value(dataset, 0x00080060, "CS")
            modality = str(modality or "NA").replace("/", "_")
            return _sanitize(f"{sop}.{modality}.dcm")
        for rule in rules:
            values: dict[str, str] = {}
            regex = rule.get("input-regex")
            if regex:
                match = re.match(regex, base)
                if not match:
                    continue
                groups = {group["name"]: group for group in rule.get("groups", []) or []}
                for name, captured in match.groupdict().items():
                    entry = groups.get(name)
                    if entry is not None and captured is not None:
                        action = compile_field_action(entry, self.section, section_name="dicom")
                        result = action.apply(captured, ctx, path=f"filename:{name}")
                        values[name] = "" if result is None else str(result)
                    else:
                        values[name] = captured or ""
            for var in _OUTPUT_VAR.findall(rule["output"]):
                if var not in values:
                    elem = dataset.get(var) if var.isidentifier() else None
                    values[var] = "" if elem is None else str(elem)
            name = _OUTPUT_VAR.sub(lambda m, v=values: v.get(m.group(1), ""), rule["output"])
            return _sanitize(name)
        raise MalformedFileError(label, "no filenames input-regex matches this file name")

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        return _source_text_values(read_source(Path(path)))


def _source_text_values(source: SourceFile) -> Iterator[tuple[str, str]]:
    meta = getattr(source.dataset, "file_meta", None)
    if meta is not None:
        yield from iter_text_values(meta)
    yield from iter_text_values(source.dataset)
    if source.trailing is not None:
        yield from iter_text_values(source.trailing)


#: ``<UID>.<Modality>.dcm``, the usual output name: nothing in it for ``sanitize_filename`` to change
#: (digits first, so never a reserved device name; no invalid or trailing characters).
_PLAIN_NAME = re.compile(r"[0-9][0-9.]*\.[A-Za-z0-9_]+\.dcm")


def _sanitize(name: str) -> str:
    if len(name) <= 200 and _PLAIN_NAME.fullmatch(name):
        return name
    name = name.replace("*", "star")  # reference: t2* -> t2star
    return sanitize_filename(name, platform="universal") or "unnamed.dcm"


def _discard(dst: Path | None) -> None:
    if dst is not None:
        with contextlib.suppress(FileNotFoundError):
            Path(dst).unlink()


__all__ = ["DicomHandler"]
