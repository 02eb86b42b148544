#!/usr/bin/env python3
"""The gear's entry point (/flywheel/v0/run): read config.json and inputs, run the export, exit.

All logic lives in :mod:`fw_gear_deid.gear`; this file only opens the gear context. The context
writes output/.metadata.json when the block exits without an exception.
"""

import sys

from flywheel_gear_toolkit import GearToolkitContext

from fw_gear_deid.gear import run


def main() -> int:
    with GearToolkitContext(log_metadata=False) as context:
        exit_code = run(context)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
