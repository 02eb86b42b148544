"""Bounded, reproducible fuzzing: derandomized hypothesis, small budgets, no example database.

``DEID_FUZZ_EXAMPLES`` raises the budget for a deeper local run (CI keeps the default).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "deid-fuzz",
    max_examples=int(os.environ.get("DEID_FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("deid-fuzz")
