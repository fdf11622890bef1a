r"""The width exponents a parametrization predicts for a coordinate check: how the rms of a
layer's output scales with width at init, and how the rms of its change after the first
optimizer step does (Yang & Hu 2021, Tensor Programs IV; Everett et al. 2024, under full
alignment).

    >>> coord_exponents("sp", "sgd")["output"].delta  # SP's logits move ∝ n after one step
    1.0
    >>> [e.delta for e in coord_exponents("mup", "adam").values()]
    [0.0, 0.0, 0.0]

The exponents come from the parametrization's own rules, not from a table: each role's
init, forward and learning-rate multipliers are read at a large width multiplier M
(exponents = log multiplier / log M) and pushed through one step of an MLP, input layer →
hidden layers → readout, each of whose weights has effective entries of size n^s:

- forward: a layer's output coordinates are n^(s + ½·[fan_in grows] + p), p its input's;
- backward: the gradient at a layer's output has coordinates n^γ, γ = 0 at the logits (a
  loss with Θ(1) gradient, a batch of Θ(1) samples), γ_l = s_(l+1) + ½·[fan_out grows] +
  γ_(l+1) below;
- a layer's own update moves its output by n^(η + 2f + γ + [fan_in grows] + 2p) under SGD
  (ΔW = −lr·f²·g xᵀ) and n^(η + f + [fan_in grows] + p) under Adam (its first step is
  lr·sign(g xᵀ)), with η, f the learning-rate and forward exponents;
- the change of its input reaches it through the initial weights, aligned with them (the
  update follows the backpropagated gradient): n^(δ_prev + 1 + s − ½·[fan_out grows]);
- its change is the larger of the two.

``branch`` scales as ``hidden`` in width; biases and norms are not predicted here. SP's
output exponent under SGD (1) and NTK's hidden one (−½) are TP4's; μP's are 0 for every
layer under both optimizers (TP4; TP5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initsuite.schemes.parametrizations import Shape, get_parametrization, optimizer_family

__all__ = ["PREDICTED_ROLES", "CoordExponents", "coord_exponent_table", "coord_exponents"]

PREDICTED_ROLES = ("input", "hidden", "output")
_M = 2.0**20  # the width multiplier the rules are read at: exact powers of two


@dataclass(frozen=True)
class CoordExponents:
    """Exponents of width n: ``rms_init`` of a layer's output at init, ``delta`` of the rms
    of its change after the first step; ``rms_after`` of its rms after that step."""

    role: str
    rms_init: float
    delta: float

    @property
    def rms_after(self) -> float:
        return max(self.rms_init, self.delta)


def _read(name: str, role: str, family: str) -> tuple[float, float, float]:
    """(effective weight entry, forward, lr) exponents of a role's weight: the torch_default
    std n^(-½) over a growing fan_in, times the init and forward multipliers."""
    mults = {"input": (_M, 1.0), "hidden": (_M, _M), "output": (1.0, _M)}[role]
    m = get_parametrization(name).rule(Shape(role, mults), family)
    fan_in = 0.0 if role == "input" else 1.0
    return _log(m.init) + _log(m.forward) - fan_in / 2, _log(m.forward), _log(m.lr_mult)


def _read_bias(name: str, role: str, family: str) -> tuple[float, float]:
    """(entry, lr) exponents of the bias of a role's layer: torch's U(±1/√fan_in) times its
    init multiplier (the bias's forward multiplier is 1)."""
    fan_in, fan_out = (0.0, 1.0) if role == "input" else (1.0, 1.0 if role == "hidden" else 0.0)
    shape = Shape("bias", (_M if fan_out else 1.0,), owner_in=_M if fan_in else 1.0)
    m = get_parametrization(name).rule(shape, family)
    return _log(m.init) - fan_in / 2, _log(m.lr_mult)


def _log(x: float) -> float:
    return math.log(x) / math.log(_M)


def coord_exponents(
    parametrization: str, optimizer: str, *, bias: bool = False
) -> dict[str, CoordExponents]:
    """The predicted exponents of ``input``, ``hidden`` and ``output`` layers; ``bias``:
    the layers have biases (a layer's output is then W·x + b, and b moves too).

    Raises:
        InitsuiteError: an unknown parametrization or optimizer, or one it has no rules for.
    """
    p = get_parametrization(parametrization)
    p.multipliers(Shape("hidden", ()), optimizer)  # refuses an optimizer p has no rules for
    family = optimizer_family(optimizer)
    roles = ("input", "hidden", "hidden", "output")  # two hidden layers: a check of stationarity
    fan_in = [0.0, 1.0, 1.0, 1.0]
    fan_out = [1.0, 1.0, 1.0, 0.0]
    read = [_read(p.name, r, family) for r in roles]
    biases = [_read_bias(p.name, r, family) if bias else (-math.inf, -math.inf) for r in roles]
    s = [r[0] for r in read]
    p_in, coords = 0.0, []
    for s_l, fi, (b, _) in zip(s, fan_in, biases, strict=True):
        p_in = max(s_l + fi / 2 + p_in, b)
        coords.append(p_in)
    grad = [0.0] * len(roles)
    for i in range(len(roles) - 2, -1, -1):
        grad[i] = s[i + 1] + fan_out[i + 1] / 2 + grad[i + 1]
    delta: list[float] = []
    for i, (_, fwd, lr) in enumerate(read):
        prev = coords[i - 1] if i else 0.0
        if family == "sgd":  # ΔW = −lr·f²·g xᵀ, Δb = −lr_b·g
            own = max(lr + 2 * fwd + grad[i] + fan_in[i] + 2 * prev, biases[i][1] + grad[i])
        else:  # Adam's first step: lr·sign(g xᵀ), lr_b·sign(g)
            own = max(lr + fwd + fan_in[i] + prev, biases[i][1])
        moved = delta[i - 1] + 1 + s[i] - fan_out[i] / 2 if i else -math.inf
        delta.append(max(own, moved))
    out = {r: CoordExponents(r, coords[i], delta[i]) for i, r in enumerate(roles)}
    if (coords[1], delta[1]) != (coords[2], delta[2]):  # the exponents depend on the layer
        out["hidden"] = CoordExponents("hidden", math.nan, math.nan)
    return out


def coord_exponent_table() -> list[dict[str, object]]:
    """One row per parametrization × optimizer × role (``branch`` as ``hidden``)."""
    from initsuite.schemes.parametrizations import list_parametrizations

    rows: list[dict[str, object]] = []
    for name in list_parametrizations():
        for optimizer in get_parametrization(name).optimizers:
            for role, e in coord_exponents(name, optimizer).items():
                for r in (role, "branch") if role == "hidden" else (role,):
                    rows.append({"parametrization": name, "optimizer": optimizer, "role": r,
                                 "rms_init": e.rms_init, "delta": e.delta,
                                 "rms_after": e.rms_after})  # fmt: skip
    return rows
