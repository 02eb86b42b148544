"""An in-process Flywheel API for tests: :class:`FlywheelTestServer` (also usable outside pytest)."""

from .server import DEFAULT_KEY, FlywheelTestServer

__all__ = ["DEFAULT_KEY", "FlywheelTestServer"]
