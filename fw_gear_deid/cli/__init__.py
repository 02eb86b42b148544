"""The ``deid`` command: one module per sub-command, each with ``register(subparsers)``.

Exit codes: 0 success, 1 the work found problems (invalid profile, a file not exported, residual PHI),
2 bad usage or an unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fw_gear_deid import __version__

_SUBCOMMANDS = ("validate", "preview", "run", "verify")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deid", description="De-identify imaging datasets with a Flywheel de-id profile."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMANDS:
        importlib.import_module(f"fw_gear_deid.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
