"""The generic safety net: whatever a parser throws becomes a clear, value-free MalformedFileError.

Handlers are meant to raise :class:`MalformedFileError` themselves; this net is for what they missed
(a ``struct.error`` deep in a library, a ``RecursionError`` from hostile nesting, a ``MemoryError``
from a bomb). It also removes partial outputs, so nothing half-written remains. The reason it gives is
built from the exception *type* only: exception messages can quote the data (a ``UnicodeDecodeError``
carries the bytes, pydicom quotes values), so they are never shown.

Use it around every per-file step of the pipeline::

    with guarded(src.name, cleanup=[tmp]):
        outcome = handler.deidentify(src, tmp, ctx)
"""

from __future__ import annotations

import csv
import logging
import shutil
import struct
import traceback
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from fw_gear_deid.errors import DeidError, MalformedFileError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _reason_for(error: BaseException) -> str | None:
    """A readable reason for the errors parsers are known to raise on bad input."""
    # optional libraries: matched by name so this module imports nothing heavy
    name = type(error).__name__
    module = type(error).__module__
    by_name = {
        "InvalidDicomError": "not a DICOM file (no valid preamble/header)",
        "UnidentifiedImageError": "image data cannot be identified (corrupt or not an image)",
        "DecompressionBombError": "image is a decompression bomb (too many pixels)",
        "DecompressionBombWarning": "image is a decompression bomb (too many pixels)",
        "EntitiesForbidden": "XML declares entities (refused: entity expansion attack)",
        "DTDForbidden": "XML has a DTD (refused)",
        "ExternalReferenceForbidden": "XML references external resources (refused)",
        "NotSupportedError": "XML uses an unsupported construct",
        "ParseError": "XML is not well-formed",
        "XMLSyntaxError": "XML is not well-formed",
        "JSONDecodeError": "not valid JSON",
        "LargeZipFile": "archive needs ZIP64 beyond the allowed size",
        "InvalidExifError": "EXIF metadata is corrupt",
    }
    if name in by_name:
        return by_name[name]
    if module.startswith("yaml"):
        return "YAML cannot be read"
    if isinstance(error, RecursionError):
        return "structure nested too deep to read (recursion limit)"
    if isinstance(error, MemoryError):
        return "too large to process (memory exhausted)"
    if isinstance(error, struct.error):
        return "truncated or inconsistent binary structure"
    if isinstance(error, UnicodeError):
        return "text is not valid in its declared encoding"
    if isinstance(error, EOFError):
        return "file ends unexpectedly (truncated)"
    if isinstance(error, zipfile.BadZipFile):
        return "corrupt or unsupported archive"
    if isinstance(error, zlib.error):
        return "corrupt compressed data"
    if isinstance(error, csv.Error):
        return "table cannot be parsed (malformed row or field larger than the limit)"
    if isinstance(error, OverflowError):
        return "a value or length is out of range"
    if isinstance(error, OSError):
        return f"cannot be read or written ({name})"
    return None


def _where(error: BaseException) -> str:
    """``module.py:line`` of the innermost frame: locates the bug without quoting any data."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


def to_malformed(filename: str, error: BaseException) -> MalformedFileError:
    """Convert any exception into a value-free :class:`MalformedFileError` for ``filename``."""
    if isinstance(error, MalformedFileError):
        return error
    reason = _reason_for(error)
    if reason is None:
        # not a known parse error: most likely a handler bug triggered by odd input. Still a
        # quarantine (the batch goes on), with the place to look at for whoever fixes it.
        reason = f"unexpected {type(error).__name__} while processing (at {_where(error)})"
    log.debug("%s: %s at %s", filename, type(error).__name__, _where(error))
    return MalformedFileError(filename, reason)


def _remove(paths: Iterable[Path | str | None]) -> None:
    for path in paths:
        if path is None:
            continue
        target = Path(path)
        try:
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
        except OSError as error:  # cleanup must not mask the real error
            log.warning(
                "could not remove partial output %s (%s)", target.name, type(error).__name__
            )


@contextmanager
def guarded(filename: str, *, cleanup: Iterable[Path | str | None] = ()) -> Iterator[None]:
    """Run a per-file step: any exception becomes a :class:`DeidError` naming ``filename`` (other
    DeidErrors pass unchanged) and every ``cleanup`` path is removed when the step fails."""
    try:
        yield
    except DeidError:
        _remove(cleanup)
        raise
    except Exception as error:
        _remove(cleanup)
        raise to_malformed(filename, error) from None


def run_guarded(
    fn: Callable[..., T],
    filename: str,
    *args: object,
    cleanup: Iterable[Path | str | None] = (),
    **kwargs: object,
) -> T:
    """``fn(*args, **kwargs)`` under :func:`guarded`."""
    with guarded(filename, cleanup=cleanup):
        return fn(*args, **kwargs)
