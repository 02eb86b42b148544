"""The de-id profile language: loading with line numbers, validation, cascade, mapping CSV.

Public API (everything else in this package is private):

* :func:`load_profile` -> :class:`Profile` or :class:`~fw_gear_deid.errors.ProfileError`
  (:class:`ProfileReadError` when the file cannot be read);
* :func:`validate_profile_text` -> list of :class:`ProfileIssue` (empty when valid);
* :func:`resolve_cascade` over :class:`ProfileSource` levels -> :class:`CascadeResult`;
* :class:`MappingTable` (mapping CSV) and :func:`container_variables` for ``{{ VAR }}`` values,
  :class:`MappingError` when a subject or session has no row.

The grammar is documented in ``docs/profile.md``; its JSON Schema is ``profile/schema.json``.
"""

from __future__ import annotations

from fw_gear_deid.errors import ProfileError
from fw_gear_deid.profile._cascade import CascadeResult, ProfileSource, resolve_cascade
from fw_gear_deid.profile._issues import ProfileIssue
from fw_gear_deid.profile._mapping import (
    MappingError,
    MappingReadError,
    MappingTable,
    container_variables,
)
from fw_gear_deid.profile._profile import (
    OPT_OUT,
    Profile,
    ProfileReadError,
    canonical_sha256,
    load_profile,
    validate_profile_text,
)
from fw_gear_deid.profile._schema import schema
from fw_gear_deid.profile._semantics import ACTIONS, FILE_SECTIONS, UNSUPPORTED_ACTIONS

__all__ = [
    "ACTIONS",
    "FILE_SECTIONS",
    "OPT_OUT",
    "UNSUPPORTED_ACTIONS",
    "CascadeResult",
    "MappingError",
    "MappingReadError",
    "MappingTable",
    "Profile",
    "ProfileError",
    "ProfileIssue",
    "ProfileReadError",
    "ProfileSource",
    "canonical_sha256",
    "container_variables",
    "load_profile",
    "resolve_cascade",
    "schema",
    "validate_profile_text",
]
