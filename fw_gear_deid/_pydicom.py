"""pydicom settings for processes that handle PHI: element values are never echoed to logs.

pydicom's value validation warns with the offending value quoted (``Invalid value for VR UI:
'1.2.3.MRN123'``), through both :mod:`warnings` and its logger, which would put source identifiers
into job logs. Validation only warns by default (it never rejects a file), so turning it off loses
nothing; genuine failures still raise and are reported by type, without values.
"""

from __future__ import annotations

import logging
import warnings

import pydicom.config


def quiet_pydicom() -> None:
    """Stop pydicom from quoting element values in warnings and log lines (idempotent)."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    logger = logging.getLogger("pydicom")
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")


# Every module that reads DICOM imports this one, so worker processes are covered too.
quiet_pydicom()
