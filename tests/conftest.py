"""Test-suite settings: hypothesis runs a fixed, derandomised example budget (same examples in
every run, CI or not), with no per-example deadline (the first torch call warms up)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "initsuite",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("initsuite")
