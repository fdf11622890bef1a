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

:func:`depth_exponents` gives the exponents of depth L (the number of residual blocks) for a
stack of blocks x + a·f(x) (Yang et al. 2023, TP6; Bordelon et al. 2023; Dey et al. 2025):

    >>> depth_exponents("depth_mup", "adam")["branch"].delta  # a·f(x) moves ∝ a = L^-½
    -0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from initsuite.schemes.parametrizations import Shape, get_parametrization, optimizer_family

__all__ = ["DEPTH_ROLES", "PREDICTED_ROLES", "CoordExponents", "coord_exponent_table",
           "coord_exponents", "depth_exponents"]  # fmt: skip

PREDICTED_ROLES = ("input", "hidden", "output")
DEPTH_ROLES = ("input", "hidden", "branch", "norm", "output")
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
        if math.isnan(self.rms_init) or math.isnan(self.delta):  # max() keeps the first NaN
            return math.nan
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


def depth_exponents(parametrization: str, optimizer: str, *, bias: bool = False
                    ) -> dict[str, CoordExponents]:  # fmt: skip
    r"""The predicted exponents of depth L (the number of residual blocks, relative to a
    base) of each :data:`DEPTH_ROLES` module's output, for blocks h ← h + a·W₂ φ(W₁ ·) of the
    residual stream h with the parametrization's branch multiplier a = L^-α (``depth_mup``
    α = ½, ``completep`` α = 1, every other entry α = 0: a = 1). NaN where the analysis
    gives no power law.

    The residual stream itself (the blocks' outputs) has no role: its exponents are those of
    the roles that read it, ``hidden`` (W₁ of the stream), ``norm`` (a pre-norm of it) and
    ``output`` (the logits); ``branch`` is a block's own term a·f(h), ``input`` the layer
    before the blocks. α and the blocks' learning-rate exponent λ are read from the rules at
    a large depth multiplier (as the width exponents are), and one step goes:

    - at init, each block adds a·f(h) of rms ∝ a·|h|, independent across blocks:
      |h_L|² ∝ (1 + c·L^(-2α))^L, Θ(1) for α ≥ ½ (exponent 0; the branch's −α); for α < ½
      it grows as exp(L^(1−2α)), and for a = 1 as (1 + c)^L: not a power law, NaN (except
      ``input``, before every block: 0);
    - a block's update moves the stream by a·ΔW·x: L^(λ−2α) under SGD (a's factor in the
      gradient too), L^(λ−α) under Adam (its first step is lr·sign(g xᵀ)); the L blocks move
      it together (their updates follow one backpropagated signal), so the stream changes by
      L^d, d = 1 + λ − 2α (SGD) or 1 + λ − α (Adam), and by Θ(1) through the input layer's
      own update (its learning rate is depth-free, its gradient Θ(1) for α ≥ ½): max(d, 0).
      ``depth_mup`` (SGD: λ = 0; Adam: λ = −½) and ``completep`` (Adam: λ = 0) give d = 0.
    - ``branch``'s change: a times its input's change (the stream's, or W₁'s own update),
      or its own weight's, L^(d−1): −α for both depth rules.

    ``bias``: the blocks have biases. The branch multiplier scales the branch's whole term,
    its last bias included (:func:`initsuite.parametrize` scales the branch layer's output),
    and the biases' learning rates take the blocks' depth factor: they scale as the weights
    do, and the exponents are the same.

    Raises:
        InitsuiteError: an unknown parametrization or optimizer, or one it has no rules for.
    """
    p = get_parametrization(parametrization)
    p.multipliers(Shape("hidden", ()), optimizer)  # refuses an optimizer p has no rules for
    family = optimizer_family(optimizer)
    alpha = -_log(p.rule(Shape("branch", (1.0, 1.0), depth=_M, in_block=True), family).forward)
    lam = _log(p.rule(Shape("hidden", (1.0, 1.0), depth=_M, in_block=True), family).lr_mult)
    nan = CoordExponents("", math.nan, math.nan)
    out = {r: replace(nan, role=r) for r in DEPTH_ROLES}
    if alpha < 0.5:
        out["input"] = replace(nan, role="input", rms_init=0.0)
        return out
    sgd = family == "sgd"
    d = 1 + lam - (2 * alpha if sgd else alpha)
    stream = max(d, 0.0)
    inner = max(stream, lam - alpha if sgd else lam)  # W₁h moves with h, or as W₁ moves
    out["input"] = CoordExponents("input", 0.0, 0.0)
    out["hidden"] = CoordExponents("hidden", 0.0, inner)
    out["norm"] = CoordExponents("norm", 0.0, inner)
    out["branch"] = CoordExponents("branch", -alpha, max(inner - alpha, d - 1))
    out["output"] = CoordExponents("output", 0.0, stream)
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
