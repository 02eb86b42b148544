"""``deid run``: de-identify a source container into a destination project.

Exit codes: 0 every in-scope file exported; 1 some file was not (skipped, blocked, quarantined,
error) or no profile was valid; 2 bad usage, an unreadable location or no secret.
The API key and the secret are never printed or logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fw_gear_deid.keys import SECRET_ENV, DateShiftRange, Keys, SecretFileError, read_secret_file
from fw_gear_deid.stores import CONFLICT_POLICIES

API_KEY_ENV = "FW_API_KEY"


def _date_shift(text: str) -> DateShiftRange:
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return DateShiftRange(int(low), int(high))
    except ValueError as error:
        detail = str(error) if str(error) else "expected MIN:MAX in days, e.g. -3650:-1"
        raise argparse.ArgumentTypeError(detail) from None


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="de-identify SOURCE into the destination project DEST",
        description=(
            "De-identify a project, subject, session or single file into the destination project. "
            "SOURCE and DEST are local folder paths or fw://GROUP/PROJECT[/SUBJECT[/SESSION]] "
            "(fw://_id/TYPE/ID for a Flywheel container id)."
        ),
    )
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument(
        "dest", metavar="DEST", help="destination project (created locally if missing)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="de-id profile (YAML/JSON); default: the destination's project, group, site cascade",
    )
    parser.add_argument("--mapping-csv", type=Path, help="per-subject values for {{ VAR }}s")
    parser.add_argument(
        "--session-level", action="store_true", help="match mapping rows by subject and session"
    )
    parser.add_argument(
        "--conflict",
        choices=CONFLICT_POLICIES,
        default="skip",
        help="a destination file already there: skip (default; a re-run changes nothing), "
        "replace, or new-version (keep the previous one)",
    )
    parser.add_argument(
        "--match-by",
        choices=("origin-id", "label"),
        default="origin-id",
        help="how an existing destination container is recognised: origin-id (default: the keyed "
        "id of its source container) or label (the same de-identified label, e.g. one subject "
        "exported from two source projects under one mapped label)",
    )
    parser.add_argument("--jobs", type=_jobs, default=1, help="worker processes (default 1)")
    parser.add_argument("--report-dir", type=Path, default=Path("."), help="default: .")
    parser.add_argument(
        "--secret-file", type=Path, help=f"file holding the secret (default: ${SECRET_ENV})"
    )
    parser.add_argument(
        "--api-key", help=f"Flywheel API key (default: ${API_KEY_ENV}); never logged"
    )
    parser.add_argument(
        "--no-residual-check",
        "--no-residual-phi-check",
        dest="residual_check",
        action="store_false",
        help="do not scan outputs for residual PHI (logged as a warning)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="de-identify and report; write nothing"
    )
    parser.add_argument("--subject", help="export only this subject (label) of SOURCE")
    parser.add_argument("--session", help="export only this session (label) of the subject")
    parser.add_argument("--file", help="file mode: one file (path, or a Flywheel file id)")
    parser.add_argument(
        "--date-shift-range",
        type=_date_shift,
        metavar="MIN:MAX",
        help="days from which each subject's keyed date offset is drawn, e.g. --date-shift-range=-3650:-1",
    )
    parser.add_argument("--no-progress", action="store_true", help="plain progress lines only")
    parser.set_defaults(func=main)


class _StderrHandler(logging.StreamHandler):
    """Writes to the *current* ``sys.stderr`` (it may be replaced after the handler is made)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr() -> None:
    """Progress and warnings of the package as ``deid: ...`` lines on stderr (once per process)."""
    logger = logging.getLogger("fw_gear_deid")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("deid: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)


def main(args: argparse.Namespace) -> int:
    from fw_gear_deid.export import ExportJob, run_export

    _log_to_stderr()
    try:
        secret = (
            read_secret_file(args.secret_file)
            if args.secret_file is not None
            else os.environ.get(SECRET_ENV) or None
        )
    except SecretFileError as error:
        print(f"deid run: {args.secret_file}: {error}", file=sys.stderr)
        return 2
    keys = Keys(secret, args.date_shift_range) if secret else None
    if args.session and not args.subject:
        print("deid run: --session needs --subject", file=sys.stderr)
        return 2
    job = ExportJob(
        source=args.source,
        destination=args.dest,
        report_dir=args.report_dir,
        profile_path=args.profile,
        mapping_csv=args.mapping_csv,
        session_level=args.session_level,
        conflict=args.conflict,
        match_by=args.match_by,
        jobs=args.jobs,
        keys=keys,
        residual_check=args.residual_check,
        dry_run=args.dry_run,
        file=args.file,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        date_shift=args.date_shift_range,
        subject=args.subject,
        session=args.session,
    )
    result = run_export(job, progress=False if args.no_progress else None)
    counts = result.summary.get("by_state", {})
    detail = ", ".join(f"{state} {count}" for state, count in counts.items() if count) or "no files"
    print(f"deid run: {detail}; report {result.report_csv}", file=sys.stderr)
    if result.summary.get("reason"):
        print(f"deid run: {result.summary['reason']}", file=sys.stderr)
    for level, issues in (result.summary.get("profile") or {}).get("issues_by_level", {}).items():
        for issue in issues:
            print(f"deid run: profile {level}: {issue}", file=sys.stderr)
    return result.exit_code
