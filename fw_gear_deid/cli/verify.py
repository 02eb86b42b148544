"""``deid verify SOURCE DEST``: re-run the residual-PHI scan over an existing destination.

Prints one line per problem (``RESIDUAL-PHI dest/file: element path (kind)`` or ``UNVERIFIED
dest/file: reason``), never a value, then a summary. Exit 0 when every destination file was paired
with its source and is clean, 1 when any residual PHI was found or a file could not be verified,
2 for bad usage or an unreadable location.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from fw_gear_deid.keys import SECRET_ENV, Keys, SecretFileError, read_secret_file

API_KEY_ENV = "FW_API_KEY"

#: Handlers used to read values when no profile is given: every section, default file filters.
GENERIC_PROFILE = """
name: verify
dicom: {fields: []}
jpg: {fields: []}
png: {fields: []}
tiff: {fields: []}
xml: {fields: []}
json: {fields: []}
key-value-text-file: {delimiter: "=", fields: []}
csv: {fields: []}
tsv: {fields: []}
zip: {fields: []}
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="scan an existing destination for identifying values of its source",
        description=(
            "Pair every file of the destination project DEST with its source in SOURCE (by the "
            "keyed origin id recorded at export, which needs the job's secret, else by mirrored "
            "path) and scan it and its containers' metadata for the source values that were "
            "removed or replaced. Prints element paths and kinds, never values."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="the source location that was exported")
    parser.add_argument("dest", metavar="DEST", help="the destination project")
    parser.add_argument(
        "--profile", type=Path, help="the profile used (default: every section's default filters)"
    )
    parser.add_argument(
        "--secret-file",
        type=Path,
        help=f"the job's secret, to pair files by origin id (default: ${SECRET_ENV})",
    )
    parser.add_argument("--api-key", help=f"Flywheel API key (default: ${API_KEY_ENV})")
    parser.add_argument("--subject", help="the source is this subject (label) of SOURCE")
    parser.add_argument("--session", help="the source is this session (label) of the subject")
    parser.add_argument("--report", type=Path, help="also write the findings as JSON here")
    parser.set_defaults(func=main)


def _handlers(profile: Path | None):
    from fw_gear_deid.formats import SECTION_NAMES, HandlerSet, handler_class
    from fw_gear_deid.profile import load_profile

    data = (
        load_profile(profile).data
        if profile
        else load_profile(text=GENERIC_PROFILE, source="verify").data
    )
    handlers = HandlerSet()
    for section in SECTION_NAMES:
        if data.get(section) is None:
            continue
        try:
            cls = handler_class(section)
        except (ImportError, AttributeError):  # a build without that format: DICOM is still walked
            logging.getLogger(__name__).warning("no %s handler in this build", section)
            continue
        handlers.add(cls(data[section]))
    return handlers


def _keys(secret_file: Path | None) -> Keys | None:
    if secret_file is not None:
        try:
            return Keys(read_secret_file(secret_file))
        except SecretFileError as error:
            raise ValueError(f"{secret_file}: {error}") from None
    return Keys.from_env()


def main(args: argparse.Namespace) -> int:
    from fw_gear_deid.check.verify import Verifier
    from fw_gear_deid.errors import DeidError
    from fw_gear_deid.stores import open_store

    logging.basicConfig(level=logging.WARNING, format="deid: %(message)s", stream=sys.stderr)
    try:
        keys = _keys(args.secret_file)
        handlers = _handlers(args.profile)
        api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
        source = open_store(
            args.source, True, subject=args.subject, session=args.session, api_key=api_key
        )
        dest = open_store(args.dest, True, api_key=api_key)
    except (DeidError, OSError, ValueError) as error:
        print(f"deid verify: {error}", file=sys.stderr)
        return 2
    if keys is None:
        print(
            "deid verify: no secret given: pairing files by mirrored path only",
            file=sys.stderr,
        )
    with source, dest:
        try:
            result = Verifier(source, dest, handlers, keys).run()
        except DeidError as error:
            print(f"deid verify: {error}", file=sys.stderr)
            return 2
    for finding in result.findings:
        for line in finding.lines():
            print(line)
    print(result.summary())
    if args.report is not None:
        args.report.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return result.exit_code
