"""Fixtures of the store tests: the in-process Flywheel API (tests/fwserver)."""

from tests.fwserver.fixtures import fw_server  # noqa: F401 - a fixture, used by name
