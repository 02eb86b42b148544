"""pytest fixtures for the in-process Flywheel API. Use with ``pytest_plugins = ["tests.fwserver.fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FlywheelTestServer


@pytest.fixture
def fw_server() -> Iterator[FlywheelTestServer]:
    """A fresh, empty in-memory Flywheel on 127.0.0.1 (``.api_key`` goes to the SDK)."""
    with FlywheelTestServer() as server:
        yield server
