"""``initsuite reproduce tutorial``: the classic one-off experiments, over many seeds.

The tutorial (Dellinger, 2019, "Weight Initialization in Neural Networks: A Journey From the
Basics to Kaiming") pushes a batch through a 100-layer, 256-wide bias-free MLP once per
initialization and reports what it saw. Each claim here is re-measured over several seeds and
compared with the tutorial's number, or with the mean-field prediction where the tutorial
makes a qualitative claim. A tutorial number is one draw: it agrees when it lies within three
standard deviations of the seed-to-seed spread (plus half a unit of its last quoted digit).
Divergence layers are compared with a theory tolerance of one layer (std grows 16× per layer,
while the largest of the 4096 values is 3-5 std: less than half a layer of growth).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import torch

from initsuite import schemes
from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.tutorial import TutorialResult
from initsuite.studies.sweep import sweep
from initsuite.theory.meanfield import mlp_moments

__all__ = ["EXPERIMENTS", "Experiment", "tutorial_study"]

WIDTH, DEPTH, BATCH = 256, 100, 16
_XAVIER_TANH_BOUND = 5.0 / 3 * math.sqrt(6.0 / (WIDTH + WIDTH))

Quantity = Literal["divergence_layer", "final_std", "growth_per_layer", "tanh_gain"]


@dataclass(frozen=True)
class Experiment:
    """One claim of the tutorial: a cell, the quantity measured, and what was reported."""

    name: str
    scheme: str
    activation: str
    quantity: Quantity
    tutorial: str
    expected: float | None = None  # None: the mean-field prediction
    precision: float = 0.0  # half a unit of the tutorial's last quoted digit
    layer_tolerance: float | None = None  # fixed (theory) tolerance, for divergence layers
    dtype: str = "float32"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("N(0,1), linear", "normal", "linear", "divergence_layer",
               "nan at layer 31 (a 0-based loop index: the 32nd layer)", 32, layer_tolerance=1),
    Experiment("N(0,1), linear, float16", "normal", "linear", "divergence_layer",
               "float16 overflows around layer 4", 4, layer_tolerance=1, dtype="float16"),
    Experiment("N(0,1), linear, bfloat16", "normal", "linear", "divergence_layer",
               "bfloat16 has float32's range: same layer as float32", 32, layer_tolerance=1,
               dtype="bfloat16"),
    Experiment("N(0,1/n), linear", "normal:std=0.0625", "linear", "final_std",
               "std stays ≈ 1 through 100 layers", 1.0, precision=0.05),
    Experiment("N(0,1/n), tanh", "normal:std=0.0625", "tanh", "final_std",
               "std shrinks layer after layer (mean-field: ≈0.071 at layer 100)"),
    Experiment("manual Xavier uniform, tanh gain", f"uniform:a={-_XAVIER_TANH_BOUND!r},"
               f"b={_XAVIER_TANH_BOUND!r}", "tanh", "final_std", "std ≈ 0.65 at layer 100",
               0.65, precision=0.005),
    Experiment("xavier_uniform_, gain=calculate_gain('tanh')", "xavier_uniform:gain=auto",
               "tanh", "final_std", "std ≈ 0.65, as the manual version", 0.65, precision=0.005),
    Experiment("Xavier (gain 1), ReLU", "xavier_uniform", "relu", "growth_per_layer",
               "variance halves every layer: std × 1/√2 per layer"),
    Experiment("Kaiming (He), ReLU", "kaiming_normal", "relu", "growth_per_layer",
               "std neither explodes nor vanishes"),
    Experiment("empirical tanh gain", "-", "tanh", "tanh_gain",
               "std(z)/std(tanh(z)) ≈ 1.59, against calculate_gain('tanh') = 5/3", 1.59,
               precision=0.005),
)  # fmt: skip


def _expected(exp: Experiment) -> float:
    if exp.expected is not None:
        return float(exp.expected)
    scheme = schemes.get(exp.scheme)
    var = scheme.variance((WIDTH, WIDTH), exp.activation)
    if var is None:
        raise InitsuiteError(f"no mean-field prediction for deterministic scheme {exp.scheme!r}")
    moments = mlp_moments(exp.activation, var * WIDTH, DEPTH)
    if exp.quantity == "final_std":
        return moments[-1].std
    # growth_per_layer: the input has std 1
    return moments[-1].std ** (1.0 / DEPTH)


def _tanh_gains(seeds: list[int]) -> list[float]:
    out = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(1_000_000, generator=g, dtype=torch.float64)
        out.append(float(z.std() / torch.tanh(z).std()))
    return out


def _measure(
    exp: Experiment, seeds: list[int], progress: bool | None
) -> tuple[list[float], pd.DataFrame | None]:
    """The experiment's quantity per seed (NaN where a seed gave none) and its net's layers."""
    if exp.quantity == "tanh_gain":
        return _tanh_gains(seeds), None
    res = sweep(exp.scheme, exp.activation, DEPTH, WIDTH, batch=BATCH, seeds=seeds,
                dtypes=exp.dtype, timing=False, progress=progress)  # fmt: skip
    values = [float(v) if pd.notna(v) else math.nan for v in res.cells[exp.quantity]]
    layers = res.layers[["seed", "layer", "std", "mean", "theory_std"]].copy()
    layers.insert(0, "experiment", exp.name)
    return values, layers


def _claim(exp: Experiment, values: list[float]) -> dict[str, Any]:
    """The claim's row: what was expected, what was measured, and whether they agree."""
    expected = _expected(exp)
    finite = [v for v in values if math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else math.nan
    sd = statistics.stdev(finite) if len(finite) >= 2 else math.nan
    # a fixed (theory) tolerance for divergence layers, else the seed-to-seed spread
    tol = float(exp.layer_tolerance) if exp.layer_tolerance is not None else 3 * sd + exp.precision
    return {
        "experiment": exp.name, "scheme": exp.scheme, "activation": exp.activation,
        "dtype": exp.dtype, "quantity": exp.quantity, "tutorial": exp.tutorial,
        "expected": expected,
        "expected_source": "tutorial" if exp.expected is not None else "mean-field",
        "measured_mean": mean, "measured_sd": sd,
        "measured_min": min(finite) if finite else math.nan,
        "measured_max": max(finite) if finite else math.nan,
        "seeds": len(values), "tolerance": tol,
        "agree": bool(len(finite) == len(values) and abs(mean - expected) <= tol),
        "note": "" if len(finite) == len(values)
        else f"{len(values) - len(finite)} seeds gave no value",
    }  # fmt: skip


def tutorial_study(
    *, seeds: int | Iterable[int] = 10, progress: bool | None = None
) -> TutorialResult:
    """Re-measure every claim of :data:`EXPERIMENTS` over several seeds.

    Dellinger (2019), "Weight Initialization in Neural Networks: A Journey From the Basics
    to Kaiming": 100 bias-free Linear(256, 256) layers, a batch of 16.

    Args:
        seeds: a count (``10`` → 0..9) or explicit seeds; at least two (a spread needs two).
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        A :class:`~initsuite.results.tutorial.TutorialResult`.
    """
    seed_list = list(validate.seeds(seeds))
    if len(seed_list) < 2:
        raise InitsuiteError(f"seeds must be at least 2 seeds (a spread needs two), got {seeds!r}")
    claims, layer_frames = [], []
    for exp in EXPERIMENTS:
        values, layers = _measure(exp, seed_list, progress)
        if layers is not None:
            layer_frames.append(layers)
        claims.append(_claim(exp, values))
    layers = C.coerce(pd.concat(layer_frames, ignore_index=True), C.TUTORIAL_LAYERS)
    meta = {
        "kind": "tutorial",
        "config": {
            "width": WIDTH,
            "depth": DEPTH,
            "batch": BATCH,
            "bias": None,
            "seeds": seed_list,
        },
        "environment": environment(),
    }
    return TutorialResult(C.frame(C.TUTORIAL, claims), layers, meta)
