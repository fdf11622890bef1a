"""Test-suite settings: hypothesis runs a fixed, derandomised example budget (same examples in
every run, CI or not), with no per-example deadline (the first torch call warms up). Keras, where
a test checks initsuite against it, runs on its torch backend (no TensorFlow is installed)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

os.environ.setdefault("KERAS_BACKEND", "torch")

settings.register_profile(
    "initsuite",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("initsuite")
