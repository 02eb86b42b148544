"""Real handlers for the hardening and fuzz tests, built from one validated profile."""

from __future__ import annotations

from functools import cache

import pytest

from fw_gear_deid.formats import SECTION_NAMES, FormatHandler, HandlerSet, handler_class
from fw_gear_deid.keys import Keys

#: A small valid profile with a rule in every file section (so each handler has work to do).
PROFILE_TEXT = """
name: hardening
dicom:
  fields:
    - name: PatientName
      replace-with: ANON
    - name: PatientID
      hash: true
    - name: StudyDate
      increment-date: true
jpg: {remove-exif: true}
png: {remove-private-chunks: true}
tiff: {remove-private-tags: true}
xml:
  fields:
    - name: /root/Name
      replace-with: X
json:
  fields:
    - name: name
      remove: true
key-value-text-file:
  delimiter: "="
  fields:
    - name: Name
      remove: true
csv:
  fields:
    - name: name
      remove: true
tsv:
  fields:
    - name: name
      remove: true
zip:
  fields: []
filename:
  fields: []
"""

KEYS = Keys("hardening-secret")


@cache
def _profile_data() -> dict:
    from fw_gear_deid.profile import load_profile

    return load_profile(text=PROFILE_TEXT, source="hardening.yaml").data


def available_handlers() -> tuple[HandlerSet, dict[str, str]]:
    """Every committed handler in registry order, and why the others are missing."""
    data = _profile_data()
    handlers, missing = HandlerSet(), {}
    for section in SECTION_NAMES:
        try:
            cls = handler_class(section)
        except (ImportError, AttributeError) as error:
            missing[section] = f"{type(error).__name__}: {error}"
            continue
        handlers.add(cls(data[section]))
    return handlers, missing


def handler_for(section: str) -> FormatHandler:
    """The registry's handler for ``section`` (siblings included, for archives); skips with the
    reason while it is not committed."""
    handlers, missing = available_handlers()
    if section in missing:
        pytest.skip(f"handler for '{section}' not available yet ({missing[section]})")
    return next(h for h in handlers if h.section_name == section)
