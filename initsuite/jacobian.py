r"""Input–output Jacobian spectra of the tutorial's MLP (dynamical isometry).

For the net h_l = W_l · φ(h_{l-1}) (h_0 = x), the Jacobian of the last pre-activation with
respect to the input is J = W_L D_{L-1} W_{L-1} ⋯ D_1 W_1, D_l = diag(φ'(h_l)). A net is
*dynamically isometric* when every singular value of J is near 1: signals and gradients then
pass through every layer undistorted. Known results (Saxe et al. 2013, Pennington et al.
2017): with orthogonal weights a deep linear net has all singular values exactly 1; with
Gaussian weights of variance 1/n the squared singular values have mean 1 and a variance that
grows linearly with depth (L for L layers, in the wide limit); ReLU zeroes half the directions
at every layer, so it can never be isometric.

The weights are those of the sweep's cell with the same seed: x is drawn first from the seed's
generator, then each layer's weight in order, by the scheme itself.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import activations as _activations
from . import schemes as _schemes
from .config import DTYPES, check_device, parse_dtype

__all__ = ["jacobian_singular_values", "spectrum_summary"]


def jacobian_singular_values(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    seed: int = 0,
    batch: int = 16,
    dtype: str = "float64",
    device: str = "cpu",
) -> torch.Tensor:
    """Singular values (descending, float64, on the CPU) of the input–output Jacobian of a
    ``depth``-layer, ``width``-wide MLP at the first input row of the sweep's cell with this
    seed and batch (the batch sets how many numbers the input takes from the generator, hence
    which weights follow).

    The Jacobian is accumulated layer by layer (one width × width product per layer), so
    memory does not grow with depth; the SVD of the final width × width matrix is taken in
    float64.
    """
    dev = torch.device(check_device(device))
    dt = DTYPES[parse_dtype(dtype)]
    init = _schemes.get(scheme)
    act = _activations.get(activation)
    gen = torch.Generator(device=dev).manual_seed(seed)
    x = torch.randn((batch, width), generator=gen, device=dev, dtype=dt)[:1]
    w = torch.empty((width, width), device=dev, dtype=dt)
    jac = torch.eye(width, device=dev, dtype=torch.float64)
    h = x
    for layer in range(depth):
        if layer > 0:  # D_l = diag(φ'(h_l)) of the previous pre-activation
            z = h.detach().clone().requires_grad_(True)
            (slope,) = torch.autograd.grad(act(z).sum(), z)
            jac = slope[0].to(torch.float64)[:, None] * jac
            h = act(h)
        with torch.no_grad():
            init(w, activation=act, generator=gen)
            jac = w.to(torch.float64) @ jac
            h = h @ w.T
    return torch.linalg.svdvals(jac.cpu())


def spectrum_summary(singular_values: torch.Tensor) -> dict[str, Any]:
    """Mean and variance of the squared singular values, max and min, condition number."""
    sv = singular_values.to(torch.float64)
    sq = sv.square()
    smax, smin = float(sv.max()), float(sv.min())
    return {
        "sv2_mean": float(sq.mean()),
        "sv2_var": float(sq.var(correction=0)),
        "sv_max": smax,
        "sv_min": smin,
        "condition": smax / smin if smin > 0 else math.inf,
    }
