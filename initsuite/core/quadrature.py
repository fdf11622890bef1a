"""Gaussian expectations in float64 by quadrature: one rule for E[f(√q·z)], z ~ N(0, 1), and
one for a pair of correlated normals.

It sits in ``core`` because the activations' computed gains need it, below the mean-field
theory that uses it everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

__all__ = ["gaussian_expectation", "hermite_rule", "normal_rule", "split_normal_rule"]

# Beyond |z| = 12 the Gaussian weight is below 1e-31: nothing there can matter in float64.
_HALF_RANGE = 12.0
_PANELS = 48  # per side; the activations' kinks all sit at 0, which is a panel boundary


@cache
def normal_rule(order: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes z and weights w with Σ w·f(z) ≈ E[f(z)], z ~ N(0, 1).

    Gauss–Hermite converges slowly on kinked functions (ReLU, ELU, SELU); 96 panels of
    [-12, 12] split at 0 integrate piecewise-smooth functions to about 1e-14 with
    ``order=24`` nodes per panel, and resolve φ(√q·z) to about 1e-9 for q ≲ 20 with 8.

    Args:
        order: Gauss–Legendre nodes per panel; the rule has 96·order nodes.

    Returns:
        (nodes, weights), float64 arrays of shape (96·order,); weights include the density.
    """
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(-_HALF_RANGE, _HALF_RANGE, 2 * _PANELS + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    weights = (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    return nodes, weights


def split_normal_rule(split: float, order: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """``normal_rule(order)`` with the panel around ``split`` cut in two there: for an
    integrand whose kink moved off 0 (φ(α·z + β) kinks at z = -β/α). Not cached: the split
    point changes with every trial (α, β) of a solver.
    """
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(-_HALF_RANGE, _HALF_RANGE, 2 * _PANELS + 1)
    if -_HALF_RANGE < split < _HALF_RANGE and not np.any(edges == split):
        edges = np.sort(np.append(edges, split))
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    weights = (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    return nodes, weights


@cache
def hermite_rule(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights normalised to the N(0, 1) density.

    For smooth integrands (the product rule of a bivariate normal expectation); kinks
    converge slowly, to about 2e-3 relative at n = 64.

    Args:
        n: number of nodes.

    Returns:
        (nodes, weights), float64 arrays of shape (n,).
    """
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2 * math.pi)


def gaussian_expectation(
    f: Callable[[np.ndarray], np.ndarray], q: Any = 1.0, order: int = 24
) -> Any:
    """E[f(√q·z)] for z ~ N(0, 1), by ``normal_rule(order)``.

    Args:
        f: maps a float64 array elementwise to one of the same shape.
        q: variance (>= 0), a float or an array of any shape (vectorised over it).
        order: Gauss–Legendre nodes per panel of ``normal_rule``.

    Returns:
        A float for a scalar ``q``, else an array of q's shape.
    """
    q = np.asarray(q, dtype=float)
    if np.any(q < 0):
        raise ValueError(f"variance q must be >= 0, got {q}")
    nodes, weights = normal_rule(order)
    out = f(np.sqrt(q)[..., None] * nodes) @ weights
    return float(out) if out.ndim == 0 else out
