r"""Mean-field predictions for the MLP: the variance map of Poole et al. (2016).

For a net whose weights have variance σ_w²/fan_in and biases variance σ_b², the
pre-activation second moment of layer l+1 is

    q_{l+1} = σ_w² · E_z[φ(√q_l · z)²] + σ_b²,   z ~ N(0, 1),

with q_1 = σ_w² · E[x²] + σ_b² for the input x. The post-activation values of layer l have
mean E[φ(√q_l z)] and std sqrt(E[φ²] - E[φ]²). Exact in the infinite-width limit; at finite
width the log of the std wanders around it (the spread grows like depth / width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import activations as _activations
from .quadrature import gaussian_expectation

__all__ = ["LayerMoments", "mlp_moments"]


@dataclass(frozen=True)
class LayerMoments:
    """Predicted moments of one layer (1-based ``layer``)."""

    layer: int
    q: float  # pre-activation second moment
    mean: float  # post-activation mean
    std: float  # post-activation std (mean subtracted)


def mlp_moments(
    activation: str | _activations.Activation,
    sigma_w2: float,
    depth: int,
    input_q: float = 1.0,
    sigma_b2: float = 0.0,
) -> list[LayerMoments]:
    """Predicted moments of layers 1..depth; ``inf`` once q leaves float64's range."""
    act = _activations.get(activation)
    f = act._numpy
    out = []
    q = sigma_w2 * input_q + sigma_b2
    for layer in range(1, depth + 1):
        if not math.isfinite(q) or q > 1e300:
            out.append(LayerMoments(layer, math.inf, math.nan, math.inf))
            continue
        m1 = gaussian_expectation(f, q)
        m2 = gaussian_expectation(lambda z: f(z) ** 2, q)
        out.append(LayerMoments(layer, q, m1, math.sqrt(max(m2 - m1 * m1, 0.0))))
        q = sigma_w2 * m2 + sigma_b2
    return out
