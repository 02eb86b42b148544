"""``deid preview --profile PROFILE FILE...``: per file, per field, before -> after; writes nothing.

Any file type the profile has a section for is previewed through the same handlers the export uses
(``build_handlers`` over the loaded profile), called with no destination. The preview is for operators
on the source side: it shows source values. Pseudonyms use the job secret (``--secret-file`` or
``$DEID_SECRET``) so they are the ones an export would write; without a secret a throwaway key is used
and the output says so.

Exit 0 when every file could be previewed, 1 when a file is malformed or no section takes it, 2 when
the profile is invalid or a file cannot be read.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from fw_gear_deid.errors import DeidError, ProfileError, UnsupportedFileError
from fw_gear_deid.formats import DeidContext, DeidOutcome, build_handlers
from fw_gear_deid.keys import SECRET_ENV, Keys, SecretFileError, read_secret_file

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNREADABLE = 2
_WIDTH = 48


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preview",
        help="show, per file and field, the value before and after de-identification",
        description=(
            "De-identify FILEs in memory with PROFILE and print a before/after table per file. "
            "Nothing is written. Shows source values: run it where the sources may be seen."
        ),
    )
    parser.add_argument("--profile", required=True, type=Path, help="de-id profile (YAML/JSON)")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to preview")
    parser.add_argument(
        "--secret-file", type=Path, help=f"file holding the secret (default: ${SECRET_ENV})"
    )
    parser.add_argument(
        "--subject", default=None, help="subject key for the date offset (default: none)"
    )
    parser.add_argument(
        "--describe", action="store_true", help="also print the rules each section applies"
    )
    parser.set_defaults(func=run)


def _keys(args: argparse.Namespace, out: TextIO) -> Keys:
    if args.secret_file is not None:
        return Keys(read_secret_file(args.secret_file))
    keys = Keys.from_env()
    if keys is not None:
        return keys
    print("note: no secret given: pseudonyms below come from a throwaway key", file=out)
    return Keys(secrets.token_hex(32))


def _clip(text: str | None) -> str:
    if text is None:
        return "(absent)"
    text = text.replace("\n", "\\n")
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"


def format_outcome(outcome: DeidOutcome, indent: str = "  ") -> Iterable[str]:
    """The rows of one file's preview table (path, action, before, after)."""
    if not outcome.changes and not outcome.members:
        yield f"{indent}(no change)"
    rows = [(c.path, c.action, _clip(c.before), _clip(c.after)) for c in outcome.changes]
    if rows:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for path, action, before, after in rows:
            yield (
                f"{indent}{path:<{widths[0]}}  {action:<{widths[1]}}  "
                f"{before:<{widths[2]}}  -> {after}"
            )
    for name, member in outcome.members.items():
        yield f"{indent}{name} -> {member.output_name}"
        yield from format_outcome(member, indent + "  ")


def run(args: argparse.Namespace) -> int:
    from fw_gear_deid.profile import ProfileReadError, load_profile  # heavy: imported on use

    out = sys.stdout
    try:
        profile = load_profile(args.profile)
    except ProfileReadError as error:
        print(f"deid preview: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    except ProfileError as error:
        print(error, file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        keys = _keys(args, out)
    except SecretFileError as error:
        print(f"deid preview: {args.secret_file}: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    handlers = build_handlers(profile.data)
    if args.describe:
        for handler in handlers:
            for line in handler.describe():
                print(f"rule: {line}", file=out)
    status = EXIT_OK
    for path in args.files:
        try:
            with open(path, "rb") as handle:
                head = handle.read(1024)
        except OSError as error:
            print(f"{path}: cannot read ({error.strerror})", file=sys.stderr)
            status = max(status, EXIT_UNREADABLE)
            continue
        try:
            handler = handlers.match(path.name, head)
        except UnsupportedFileError as error:
            print(f"{path}: skipped: {error.reason}", file=out)
            status = max(status, EXIT_PROBLEMS)
            continue
        if handler is None:
            print(f"{path}: skipped: no profile section matches this file (fail closed)", file=out)
            status = max(status, EXIT_PROBLEMS)
            continue
        ctx = DeidContext(keys=keys, subject=args.subject, source_name=path.name)
        try:
            outcome = handler.deidentify(path, None, ctx)
        except DeidError as error:
            print(f"{path}: refused: {error}", file=out)
            status = max(status, EXIT_PROBLEMS)
            continue
        print(f"{path} -> {outcome.output_name} [{handler.section_name}]", file=out)
        for line in format_outcome(outcome):
            print(line, file=out)
    return status
