"""Writing an output so that a failure leaves nothing behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def output_file(dst: Path | None) -> Iterator[BinaryIO | None]:
    """Open ``dst`` for writing (None: preview, nothing opened); delete it again if the body fails,
    so a malformed source never leaves a partial output behind."""
    if dst is None:
        yield None
        return
    handle = open(dst, "wb")  # noqa: SIM115 - closed below, unlinked on failure
    try:
        yield handle
    except BaseException:
        handle.close()
        dst.unlink(missing_ok=True)
        raise
    handle.close()
