"""The isometry study: Jacobian spectra of orthogonal against Gaussian weights.

Singular values of the input–output Jacobian of the tutorial's MLP for orthogonal and
Gaussian weights, each at the activation's gain, linear against tanh against ReLU, at two
depths (Saxe et al. 2013, Pennington et al. 2017). ``initsuite reproduce isometry --out DIR``
runs it; ``initsuite report DIR`` draws it.

    >>> from initsuite.studies.isometry import isometry_study
    >>> spectra = isometry_study(seeds=1).spectra  # doctest: +SKIP
    >>> spectra.groupby(["scheme", "activation", "depth"]).size()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.engine.jacobian import jacobian_singular_values
from initsuite.results import columns as C
from initsuite.results.isometry import KIND, IsometryResult

__all__ = ["ACTIVATIONS", "DEPTHS", "SCHEMES", "isometry_study"]

SCHEMES: tuple[str, ...] = ("orthogonal:gain=auto", "xavier_normal:gain=auto")
ACTIVATIONS: tuple[str, ...] = ("linear", "tanh", "relu")
DEPTHS: tuple[int, ...] = (4, 32)
_BATCH, _DTYPE, _DEVICE = 16, "float64", "cpu"


def isometry_study(
    schemes: Sequence[str] = SCHEMES,
    activations: Sequence[str] = ACTIVATIONS,
    *,
    depths: Sequence[int] = DEPTHS,
    width: int = 256,
    seeds: int = 2,
) -> IsometryResult:
    """Singular values of the input–output Jacobian at each scheme, activation, depth and seed.

    The weights are those of a sweep's cell with the same seed (batch 16, float64, CPU): x is
    drawn first from the seed's generator, then each layer's weight in order.

    Args:
        schemes: scheme specs.
        activations: activation specs.
        depths: numbers of layers.
        width: units per layer.
        seeds: a count: seeds 0 .. seeds-1.

    Returns:
        An :class:`~initsuite.results.isometry.IsometryResult`: one row of ``spectra`` per
        singular value (scheme, activation, depth, seed, sv).
    """
    depth_list = sorted(set(validate.counts("depths", depths)))
    width = validate.count("width", width)
    seed_list = list(range(validate.count("seeds", seeds)))
    frames = []
    for scheme in schemes:
        for act in activations:
            for seed in seed_list:
                for depth in depth_list:
                    sv = jacobian_singular_values(scheme, act, depth, width, seed=seed,
                                                  batch=_BATCH, dtype=_DTYPE,
                                                  device=_DEVICE)  # fmt: skip
                    frames.append(pd.DataFrame({"scheme": scheme, "activation": act,
                                                "depth": depth, "seed": seed,
                                                "sv": sv.numpy()}))  # fmt: skip
    config = {"schemes": list(schemes), "activations": list(activations), "depths": depth_list,
              "width": width, "seeds": seed_list, "batch": _BATCH, "dtype": _DTYPE,
              "device": _DEVICE}  # fmt: skip
    meta = {"kind": KIND, "config": config, "environment": environment([_DEVICE])}
    return IsometryResult(C.coerce(pd.concat(frames, ignore_index=True), C.SPECTRA), meta)
