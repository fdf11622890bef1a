"""One API shape: the studies name the same things alike and each returns a Result."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import initsuite

# a plural name takes one value or several (the study runs each); a singular name takes one
PLURAL = {"schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes", "archs"}
SINGULAR = {"scheme", "activation", "depth", "width", "seed", "device", "dtype", "arch"}
STUDIES = {
    "sweep": {"schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes",
              "archs", "bias", "progress"},
    "train": {"schemes", "activations", "depth", "width", "seeds", "device", "dtype", "bias",
              "progress"},
    "probe_factory": {"schemes", "activation", "seed", "device", "dtype", "progress"},
    "probe": {"scheme", "activation", "seed"},
    "apply": {"scheme", "activation"},
    "reproduce": {"seeds", "progress"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_studies_share_one_vocabulary(name: str) -> None:
    params = inspect.signature(getattr(initsuite, name)).parameters
    vocabulary = set(params) & (PLURAL | SINGULAR | {"bias", "progress"})
    assert vocabulary == STUDIES[name]
    # the subjects are positional; every setting is keyword-only
    subjects = [p for p in params.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert {"seeds", "seed", "bias", "progress", "devices", "dtypes"}.isdisjoint(
        p.name for p in subjects
    )


@pytest.mark.parametrize("name", ["sweep", "train"])
def test_bias_names_a_law_or_none(name: str) -> None:
    assert inspect.signature(getattr(initsuite, name)).parameters["bias"].default is None


def test_results_come_from_results_and_load_without_torch() -> None:
    code = """
import sys
sys.modules["torch"] = None
import initsuite
for name in ("SweepResult", "TrainingResult", "ProbeResult", "TutorialResult"):
    cls = getattr(initsuite, name)
    assert cls.__module__ == "initsuite.results." + name[:-6].lower(), cls.__module__
    assert callable(cls.load) and callable(cls.save)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
