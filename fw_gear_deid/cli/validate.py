"""``deid validate PROFILE...``: check profiles before any data is touched.

Prints one line per problem (``FILE:LINE: path: message``) and ``FILE: valid`` for a good profile.
Exit 0 when every profile is valid, 1 when any is invalid, 2 when a file (profile or mapping CSV)
cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from fw_gear_deid.errors import ProfileError
from fw_gear_deid.profile import (
    MappingError,
    MappingReadError,
    MappingTable,
    Profile,
    ProfileReadError,
    load_profile,
)

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check de-id profiles (YAML or JSON) and report every error with its line",
        description=(
            "Check de-id profiles: structure, DICOM keywords and tags, actions, regexes, formats. "
            "Exit 0 when all are valid, 1 when any is invalid, 2 when a file cannot be read."
        ),
    )
    parser.add_argument("profiles", nargs="+", metavar="PROFILE", help="profile file(s)")
    parser.add_argument(
        "--mapping-csv",
        metavar="CSV",
        help="also check that this mapping CSV fills every {{ VAR }} of the profiles, row by row",
    )
    parser.add_argument(
        "--session-level",
        action="store_true",
        help="the mapping CSV is keyed by subject.label and session.label",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    unreadable = False
    invalid = False
    table: MappingTable | None = None
    if args.mapping_csv:
        try:
            table = MappingTable.from_csv(args.mapping_csv, session_level=args.session_level)
        except MappingReadError as error:
            print(error, file=sys.stderr)
            return EXIT_UNREADABLE
        except MappingError as error:
            print(error, file=out)
            return EXIT_INVALID
    for path in args.profiles:
        try:
            profile = load_profile(path, template_ok=True)
        except ProfileReadError as error:
            print(f"{path}: {error.reason}", file=sys.stderr)
            unreadable = True
            continue
        except ProfileError as error:
            for issue in error.issues:
                print(issue, file=out)
            invalid = True
            continue
        problems = _mapping_problems(profile, table) if table is not None else []
        for problem in problems:
            print(problem, file=out)
        if problems:
            invalid = True
            continue
        notes = []
        if profile.is_opt_out:
            notes.append("blank opt-out profile: files are copied unchanged")
        if profile.variables:
            notes.append("uses variables " + ", ".join(sorted(profile.variables)))
        print(f"{path}: valid" + (f" ({'; '.join(notes)})" if notes else ""), file=out)
    if unreadable:
        return EXIT_UNREADABLE
    return EXIT_INVALID if invalid else EXIT_VALID


def _mapping_problems(profile: Profile, table: MappingTable) -> list[str]:
    """Missing columns, then each row rendered into the profile (a bad value is found here)."""
    if not profile.variables:
        return []
    missing = table.missing_columns(profile.variables)
    if missing:
        return [
            f"{profile.source}: variable {name!r} is not a column of {table.source}"
            for name in missing
        ]
    problems: list[str] = []
    needs_metadata = any(
        name.startswith(("project.", "subject.", "session.", "acquisition."))
        for name in profile.variables
    )
    for key, row in table.rows.items():
        values = dict(row)
        if needs_metadata:
            # Container metadata is only known at run time: stand in the row's own labels.
            for name in profile.variables:
                values.setdefault(name, row.get(name, "x"))
        try:
            profile.render(values)
        except ProfileError as error:
            label = " / ".join(key)
            problems.extend(f"{issue} [mapping row {label}]" for issue in error.issues)
    return problems
