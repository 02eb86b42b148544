"""The ``filename`` section: renames a file by its ``filenames`` rules and copies its bytes unchanged.

It is the catch-all section (default filter ``*``) and comes last in the registry, so it only takes
files no other section de-identifies. Its content is not inspected: a profile that lists it asks for
such files to be exported as they are, under a de-identified name. Groups of the matching rule may
carry actions (``hash``, ``increment-date``...) applied to the captured part of the name.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from fw_gear_deid.formats._base import DeidContext, DeidOutcome
from fw_gear_deid.formats._common import Recorder, RuleHandler


class FilenameHandler(RuleHandler):
    section_name = "filename"
    default_filters = ("*",)

    def deidentify(self, src: Path, dst: Path | None, ctx: DeidContext) -> DeidOutcome:
        outcome = DeidOutcome(output_name=src.name)
        rec = Recorder(outcome, preview=dst is None)
        outcome.output_name = self.output_name(src, ctx, rec)
        source_name = Path(ctx.source_name or src.name).name
        if outcome.output_name != source_name:
            rec.change("filename", "rename", source_name, outcome.output_name, sensitive=False)
        if dst is not None:
            shutil.copyfile(src, dst)
        return outcome

    def text_values(self, path: Path) -> Iterator[tuple[str, str]]:
        # the bytes are copied on purpose and not parsed: only the name was de-identified
        yield "filename", path.name

    def describe(self) -> list[str]:
        rules = self.section.get("filenames") or []
        return [f"filename: {len(rules)} filenames rule(s); content copied unchanged"]
