"""Hypothesis settings for the property tests: reproducible and quick.

The ``ci`` profile (the default) is derandomized, so a run explores the same examples everywhere and a failure
seen in CI is seen again locally; ``HYPOTHESIS_PROFILE=explore`` searches many more, random examples.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,  # nothing to replay: the examples are the same on every run
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
