r"""Input–output Jacobian spectra of the tutorial's MLP (dynamical isometry).

For the net h_l = W_l · φ(h_{l-1}) (h_0 = x), the Jacobian of the last pre-activation with
respect to the input is J = W_L D_{L-1} W_{L-1} ⋯ D_1 W_1, D_l = diag(φ'(h_l)). A net is
*dynamically isometric* when every singular value of J is near 1: signals and gradients then
pass through every layer undistorted. Known results (Saxe et al. 2013, Pennington et al.
2017): with orthogonal weights a deep linear net has all singular values exactly 1; with
Gaussian weights of variance 1/n the squared singular values have mean 1 and a variance that
grows linearly with depth (L for L layers, in the wide limit); ReLU zeroes half the directions
at every layer, so it can never be isometric.

The weights are those of the sweep's cell with the same seed (:mod:`initsuite.engine.draws`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.engine.draws import CellDraws

__all__ = ["jacobian_singular_values", "jacobian_summaries", "spectrum_summary"]


def _spectra(
    scheme: str | _schemes.Scheme,
    activation: str | _activations.Activation,
    depths: list[int],
    width: int,
    seed: int,
    batch: int,
    dtype: str,
    device: str,
    bias: str | None = None,
    inputs: str = "gaussian",
) -> dict[int, torch.Tensor]:
    """Singular values at each of ``depths``, from one pass up to the deepest (a depth-d net
    is the first d layers of the deepest, as in sweeps). A depth whose Jacobian is not finite
    (the forward overflowed) gets NaNs, as do all deeper ones."""
    dev = torch.device(check_device(device))
    dt = DTYPES[parse_dtype(dtype)]
    init = _schemes.get(scheme)
    act = _activations.get(activation)
    draws = CellDraws(seed, dev, bias, inputs)
    x = draws.input((batch, width), dt)[:1]
    w = torch.empty((width, width), device=dev, dtype=dt)
    b = torch.empty((width,), device=dev, dtype=dt) if bias is not None else None
    jac = torch.eye(width, device=dev, dtype=torch.float64)
    h = x
    wanted = set(depths)
    out: dict[int, torch.Tensor] = {}
    nan = torch.full((width,), math.nan, dtype=torch.float64)
    for layer in range(1, max(depths) + 1):
        if layer > 1:  # D = diag(φ'(h)) of the previous layer's pre-activation
            z = h.detach().clone().requires_grad_(True)
            (slope,) = torch.autograd.grad(act(z).sum(), z)
            jac = slope[0].to(torch.float64)[:, None] * jac
            h = act(h)
        with torch.no_grad():  # the bias does not enter J, but it moves the pre-activations
            draws.layer(w, b, lambda weight, gen: init(weight, activation=act, generator=gen))
            jac = w.to(torch.float64) @ jac
            h = torch.nn.functional.linear(h, w, b)
        if layer in wanted:
            finite = bool(torch.isfinite(jac).all())
            out[layer] = torch.linalg.svdvals(jac.cpu()) if finite else nan
            if not finite:
                out.update({d: nan for d in depths if d > layer})
                break
    return out


def jacobian_singular_values(
    scheme: str | _schemes.Scheme,
    activation: str | _activations.Activation,
    depth: int,
    width: int,
    seed: int = 0,
    batch: int = 16,
    dtype: str = "float64",
    device: str = "cpu",
    bias: str | None = None,
) -> torch.Tensor:
    """Singular values (descending, float64, on the CPU) of the input–output Jacobian of a
    ``depth``-layer, ``width``-wide MLP at the first input row of the sweep's cell with this
    seed and batch (the batch sets how many numbers the input takes from the generator, hence
    which weights follow), with a bias drawn by the law ``bias`` (:mod:`initsuite.core.bias`)
    after each weight.

    The Jacobian is accumulated layer by layer (one width × width product per layer), so
    memory does not grow with depth; the SVD of the final width × width matrix is taken in
    float64.
    """
    return _spectra(scheme, activation, [depth], width, seed, batch, dtype, device, bias)[depth]


def jacobian_summaries(
    scheme: str | _schemes.Scheme,
    activation: str | _activations.Activation,
    depths: list[int],
    width: int,
    seed: int = 0,
    batch: int = 16,
    dtype: str = "float64",
    device: str = "cpu",
    bias: str | None = None,
    inputs: str = "gaussian",
) -> dict[int, dict[str, Any]]:
    """:func:`spectrum_summary` at each depth, from one pass (see :func:`_spectra`), at the
    input the sweep's cell draws by the input law ``inputs`` (:mod:`initsuite.core.inputs`)."""
    spectra = _spectra(scheme, activation, sorted(set(depths)), width, seed, batch, dtype,
                       device, bias, inputs)  # fmt: skip
    return {d: spectrum_summary(sv) for d, sv in spectra.items()}


def spectrum_summary(singular_values: torch.Tensor) -> dict[str, Any]:
    """Mean and variance of the squared singular values, max and min, condition number."""
    sv = singular_values.to(torch.float64)
    if not bool(torch.isfinite(sv).all()):
        keys = ("sv2_mean", "sv2_var", "sv_max", "sv_min", "condition")
        return dict.fromkeys(keys, math.nan)
    sq = sv.square()
    smax, smin = float(sv.max()), float(sv.min())
    return {
        "sv2_mean": float(sq.mean()),
        "sv2_var": float(sq.var(correction=0)),
        "sv_max": smax,
        "sv_min": smin,
        "condition": smax / smin if smin > 0 else math.inf,
    }
