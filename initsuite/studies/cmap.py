"""The c-map study: a deep MLP's c-map, output cosine against input cosine, measured and
predicted (Martens et al. 2021, Deep Kernel Shaping; Zhang, Martens & Grosse 2022, TAT).

A net of ``depth`` nonlinear layers maps two inputs of cosine c₀ (each at q = 1) to two
vectors whose cosine is the network's c-map C_net(c₀). Measured: the cosine of the pair's
pre-activations at layer depth + 1 (the read-out's inputs, W·φ(h_depth)). Predicted: the
activation's c-map composed over the ``depth`` layers at the scheme's σ_w²
(:func:`initsuite.theory.meanfield.c_maps`); for a DKS or TAT activation with scaled
orthogonal weights q stays 1 and this is C_φ̂ composed ``depth`` times. Plain ReLU with He's
init sends every c₀ towards 1 with depth (every input looks alike); DKS and TAT keep the
whole map away from that.

    >>> from initsuite.studies.cmap import cmap_study
    >>> result = cmap_study(depths=(50, 100, 200), seeds=3)  # doctest: +SKIP
    >>> result.save("runs/cmap")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.engine.draws import CellDraws
from initsuite.engine.mlp import input_pair
from initsuite.results import columns as C
from initsuite.results.cmap import KIND, CMapResult
from initsuite.theory.meanfield import c_maps, mlp_moments, weight_prior

__all__ = ["COSINES", "DEPTHS", "NETS", "cmap_study", "measure_cmap", "predict_cmap"]

NETS: tuple[tuple[str, str], ...] = (
    ("dks:tanh:zeta=1.5", "scaled_orthogonal"),
    ("tat:leaky_relu:eta=0.9", "scaled_orthogonal"),
    ("relu", "kaiming_normal"),
    ("tanh", "xavier_normal:gain=auto"),
    ("selu", "lecun_normal"),
)
"""(activation, scheme): DKS tanh and TAT leaky ReLU with scaled orthogonal weights, against
ReLU with He's init, tanh with Xavier's at gain 5/3 and SELU with LeCun's."""
DEPTHS: tuple[int, ...] = (50, 100, 200, 1000)
COSINES: tuple[float, ...] = (-0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 0.99)
_BATCH = 16  # the batch drawn first: the weights are those of a sweep cell with this batch


def _bound(activation: str, depth: int) -> _activations.Activation:
    """The activation at a net of ``depth`` nonlinear layers (a dks:/tat: spec without its
    depth is solved for that depth)."""
    act = _activations.get(activation)
    return act.at_depth(depth) if act.needs_depth else act


def measure_cmap(
    activation: _activations.Activation,
    scheme: _schemes.Scheme,
    depth: int,
    width: int,
    seed: int,
    cosines: Sequence[float],
    dtype: str = "float64",
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """(output cosine, output q) of each input cosine through one bias-free net.

    The weights are the sweep cell's with this seed (batch 16, normalised inputs: the batch
    is drawn first, then each layer's weight by ``scheme``); every pair is the sweep's
    :func:`~initsuite.engine.mlp.input_pair` of that cosine, which all share their first
    input, so one forward pass of len(cosines) + 1 rows serves them all.
    """
    dev, dt = torch.device(check_device(device)), DTYPES[parse_dtype(dtype)]
    draws = CellDraws(seed, dev, None, inputs="normalized")
    draws.input((_BATCH, width), dt)
    pairs = [input_pair(width, float(c), seed, dev, dt) for c in cosines]
    h = torch.cat([pairs[0][:1], *(p[1:] for p in pairs)])
    w = torch.empty((width, width), device=dev, dtype=dt)

    def fill(weight: torch.Tensor, gen: torch.Generator) -> None:
        scheme(weight, activation=activation, generator=gen)

    for layer in range(depth + 1):
        draws.layer(w, None, fill)
        h = torch.nn.functional.linear(activation(h) if layer else h, w)
    z = h.to(torch.float64)
    z = z / z.norm(dim=1, keepdim=True)
    cos = (z[1:] @ z[0]).cpu().numpy()
    q = h.to(torch.float64).square().mean(dim=1)
    return cos, (0.5 * (q[0] + q[1:])).cpu().numpy()


def predict_cmap(
    activation: _activations.Activation,
    scheme: _schemes.Scheme,
    depth: int,
    width: int,
    cosines: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """(output cosine, output q) by mean-field theory: the c-map and length map composed
    over ``depth`` nonlinear layers from q = 1, at the scheme's σ_w² (bias-free); NaN where
    the theory does not apply (a deterministic or non-centred scheme)."""
    prior = weight_prior(scheme, scheme.resolve(activation), width, None)
    if prior is None:
        nan = np.full(len(cosines), np.nan)
        return nan, nan
    sigma_w2, _ = prior
    cos = c_maps(activation, sigma_w2, 0.0, depth + 1, cosines)[depth]
    q = mlp_moments(activation, sigma_w2, depth + 1)[depth].q
    return cos, np.full(len(cosines), q)


def cmap_study(
    nets: Sequence[tuple[str, str]] = NETS,
    *,
    depths: Sequence[int] = DEPTHS,
    widths: Sequence[int] = (256,),
    seeds: int = 3,
    cosines: Sequence[float] = COSINES,
    dtype: str = "float64",
    device: str = "cpu",
) -> CMapResult:
    """Each net's c-map at each depth and width: output cosine against input cosine,
    measured over seeds and predicted by the composed maps.

    Args:
        nets: (activation spec, scheme spec) pairs; a ``dks:``/``tat:`` activation without
            ``depth`` is solved for each depth of the grid.
        depths: nonlinear layers per net.
        widths: units per layer.
        seeds: a count: seeds 0 .. seeds-1.
        cosines: the input pairs' cosines, each in [-1, 1].
        dtype, device: where the nets run.

    Returns:
        A :class:`~initsuite.results.cmap.CMapResult`: one row of ``cmap`` per net, depth,
        width, seed and input cosine; ``meta["shaping"]`` the solved constants.
    """
    pairs = [_net(n) for n in nets]
    if not pairs:
        raise InitsuiteError("no nets given: pass (activation, scheme) pairs")
    depth_list = sorted(set(validate.counts("depths", depths)))
    width_list = sorted(set(validate.counts("widths", widths)))
    seed_list = list(range(validate.count("seeds", seeds)))
    cos = [validate.number("cosines", c, -1.0, 1.0) for c in cosines]
    if not cos:
        raise InitsuiteError("no cosines given: pass input cosines in [-1, 1]")
    dtype, device = parse_dtype(dtype), check_device(device)
    # every net bound and checked first: an unreachable target fails before any compute
    grid = [(a, _schemes.get(s), d, _bound(a, d)) for a, s in pairs for d in depth_list]
    for _, scheme, _, act in grid:
        scheme.resolve(act)  # a scheme that cannot take this activation fails here
    shaping = [{"activation": a, **s.as_dict()} for a, _, _, act in grid
               if (s := getattr(act, "shaping", None)) is not None]  # fmt: skip
    frames = []
    for act_spec, scheme, depth, act in grid:
        for width in width_list:
            theory = predict_cmap(act, scheme, depth, width, cos)
            for seed in seed_list:
                measured = measure_cmap(act, scheme, depth, width, seed, cos, dtype, device)
                frames.append(_rows(act_spec, scheme.spec, depth, width, seed, cos, measured,
                                    theory))  # fmt: skip
    config = {"nets": [list(p) for p in pairs], "depths": depth_list, "widths": width_list,
              "seeds": seed_list, "cosines": cos, "batch": _BATCH, "dtype": dtype,
              "device": device, "inputs": "normalized", "bias": None}  # fmt: skip
    meta = {"kind": KIND, "config": config, "environment": environment([device]),
            "shaping": shaping}  # fmt: skip
    return CMapResult(C.coerce(pd.concat(frames, ignore_index=True), C.CMAP), meta)


def _net(net: object) -> tuple[str, str]:
    """One (activation spec, scheme spec) pair of ``nets``, checked."""
    if (isinstance(net, str) or not isinstance(net, Sequence) or len(net) != 2
            or not all(isinstance(x, str) for x in net)):  # fmt: skip
        raise InitsuiteTypeError(
            f"each net is an (activation, scheme) pair of specs, e.g. ('relu', "
            f"'kaiming_normal'), got {net!r}"
        )
    return net[0], net[1]


def _rows(act: str, scheme: str, depth: int, width: int, seed: int, cos: list[float],
          measured: tuple[np.ndarray, np.ndarray],
          theory: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:  # fmt: skip
    data: dict[str, Any] = {
        "activation": act, "scheme": scheme, "depth": depth, "width": width, "seed": seed,
        "input_cosine": cos, "output_cosine": measured[0], "theory_output_cosine": theory[0],
        "output_q": measured[1], "theory_output_q": theory[1],
    }  # fmt: skip
    return pd.DataFrame(data)
