r"""Parametrizations for width and depth transfer: SP, NTK, μP, mean-field, depth-μP and
CompleteP, each a rule giving every parameter its init, forward and learning-rate multipliers.

    >>> from initsuite.schemes import parametrizations as P
    >>> P.list_parametrizations("*mup")
    ['depth_mup', 'mup']
    >>> rule = P.get_parametrization("mup")
    >>> rule.multipliers(P.Shape("hidden", (4.0, 4.0)), "adam")  # width 4× the base
    Multipliers(init=1.0, forward=1.0, lr=1.0, lr_div=4.0, wd=4.0, wd_div=1.0)

Every multiplier is relative to the base model (the same architecture at the base width and
depth), as the ``mup`` package's ``set_base_shapes`` reads it: at the base shape every
parametrization is the base scheme with one global learning rate. ``init`` multiplies the
std the base scheme draws at the parameter's own fan (``torch_default``: U(±1/√fan_in), a
bias U(±1/√fan_in of its layer)); ``forward`` multiplies the weight's term ``W·x`` in the
forward pass (the layer's bias is not scaled, as ``mup.MuReadout`` scales its input);
``lr`` / ``lr_div`` multiplies the learning rate and ``wd`` / ``wd_div`` the weight decay
(kept as a numerator and a divisor so that ``lr * lr / lr_div`` repeats the ``mup``
package's arithmetic to the bit).

Roles (:data:`ROLES`): ``input`` (fan_in fixed, fan_out grows: the first Linear, an
embedding), ``hidden`` (both grow), ``output`` (the readout: fan_in grows), ``bias``,
``norm`` (a LayerNorm/RMSNorm gain) and ``branch`` (the last weight of a residual branch: a
hidden weight that carries the depth multiplier). No torch here: the rules are arithmetic;
:func:`initsuite.parametrize` applies them to a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from initsuite.core.checked import checked
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.patterns import check_pattern, matches

__all__ = [
    "OPTIMIZERS", "ROLES", "Multipliers", "Parametrization", "Shape", "get_parametrization",
    "list_parametrizations", "optimizer_family", "register_parametrization", "table",
]  # fmt: skip

ROLES = ("input", "hidden", "output", "bias", "norm", "branch")
OPTIMIZERS = ("sgd", "adam", "adamw")
"""Optimizers a rule knows; ``adamw`` follows Adam's rules (its decay is decoupled)."""

_BLOCK = ("hidden", "branch", "bias", "norm")
"""The roles whose learning rate a depth rule scales inside a residual block."""


def optimizer_family(optimizer: str) -> str:
    """``"sgd"`` or ``"adam"`` (Adam and AdamW share their scaling rules).

    Raises:
        InitsuiteError: an optimizer outside :data:`OPTIMIZERS`.
    """
    if optimizer not in OPTIMIZERS:
        raise InitsuiteError(unknown("optimizer", optimizer, OPTIMIZERS))
    return "sgd" if optimizer == "sgd" else "adam"


@dataclass(frozen=True)
class Shape:
    """What a rule sees of one parameter.

    ``role``: one of :data:`ROLES`; ``mults``: each dim's size over the base model's, in
    torch's (out, in, kernel...) order (a Hugging Face ``Conv1D`` weight given as the
    (out, in) Linear it is), ``()`` for a scalar; ``owner_in``: the fan_in multiplier of the
    layer a bias belongs to (1 for a norm's bias); ``depth``: L / L_base;
    ``in_block``: the parameter sits inside a residual block (its depth rules apply)."""

    role: str
    mults: tuple[float, ...]
    owner_in: float = 1.0
    depth: float = 1.0
    in_block: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InitsuiteError(unknown("role", self.role, ROLES))

    @property
    def m_out(self) -> float:
        """fan_out's multiplier (a vector's only dim)."""
        return self.mults[0] if self.mults else 1.0

    @property
    def m_in(self) -> float:
        """fan_in's multiplier (a vector's: its layer's, :attr:`owner_in`)."""
        return self.mults[1] if len(self.mults) > 1 else self.owner_in

    @property
    def infinite(self) -> tuple[int, ...]:
        """The dims that differ from the base (``mup``'s "infinite" dims)."""
        return tuple(i for i, m in enumerate(self.mults) if m != 1.0)


@dataclass(frozen=True)
class Multipliers:
    """One parameter's multipliers (see the module docstring for what each scales)."""

    init: float = 1.0
    forward: float = 1.0
    lr: float = 1.0
    lr_div: float = 1.0
    wd: float = 1.0
    wd_div: float = 1.0

    def scale_lr(self, lr: float) -> float:
        """The parameter's learning rate for a global ``lr``."""
        return lr * self.lr / self.lr_div

    def scale_wd(self, weight_decay: float) -> float:
        """The parameter's weight decay for a global ``weight_decay``."""
        return weight_decay * self.wd / self.wd_div

    @property
    def lr_mult(self) -> float:
        """The learning rate's multiplier as one number."""
        return self.lr / self.lr_div


Rule = Callable[[Shape, str], Multipliers]


@dataclass(frozen=True)
class Parametrization:
    """A registered parametrization: its rule and its metadata (as a scheme's SchemeInfo).

    ``rule(shape, family)`` gives a :class:`Multipliers` for ``family`` "sgd" or "adam";
    ``rules``: the formula per role, as text, each naming the table or equation it comes
    from; ``optimizers``: the families it defines rules for; ``depth``: whether its rules
    depend on L."""

    name: str
    title: str
    papers: tuple[str, ...]
    rules: dict[str, str]
    rule: Rule = field(repr=False)
    optimizers: tuple[str, ...] = ("sgd", "adam")
    depth: bool = False
    notes: str = ""

    def multipliers(self, shape: Shape, optimizer: str) -> Multipliers:
        """The multipliers of one parameter under ``optimizer`` (sgd, adam, adamw).

        Raises:
            InitsuiteError: an unknown optimizer, or one this parametrization has no rules for.
        """
        family = optimizer_family(optimizer)
        if family not in self.optimizers:
            raise InitsuiteError(
                f"parametrization {self.name!r} defines learning rates for "
                f"{' and '.join(self.optimizers)} only, not {optimizer!r} (initsuite "
                f"parametrizations {self.name} says why)"
            )
        return self.rule(shape, family)


_REGISTRY: dict[str, Parametrization] = {}


def register_parametrization(p: Parametrization) -> Parametrization:
    """Add ``p`` to the registry; a name registered twice raises."""
    if p.name in _REGISTRY:
        raise ValueError(f"parametrization {p.name!r} is already registered")
    _REGISTRY[p.name] = p
    return p


def list_parametrizations(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard, sorted."""
    check_pattern(pattern)
    return [n for n in sorted(_REGISTRY) if matches(n, pattern)]


def get_parametrization(name: str | Parametrization) -> Parametrization:
    """The parametrization ``name`` (a :class:`Parametrization` passes through).

    Raises:
        InitsuiteError: an unknown name; the message names the nearest and lists all.
    """
    if isinstance(name, Parametrization):
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InitsuiteError(unknown("parametrization", name, sorted(_REGISTRY))) from None
    return _REGISTRY[name]


def table() -> list[dict[str, str]]:
    """One row per parametrization: name, title, optimizers, papers, its rule per role
    (``rule_<role>``) and notes."""
    return [{"parametrization": p.name, "title": p.title, "optimizers": ", ".join(p.optimizers),
             "papers": "; ".join(p.papers), **{f"rule_{r}": p.rules.get(r, "") for r in ROLES},
             "notes": p.notes}
            for p in (_REGISTRY[n] for n in sorted(_REGISTRY))]  # fmt: skip


# --- the rules -------------------------------------------------------------------------------

_TP4 = "Yang & Hu 2021, Tensor Programs IV (ICML): abc-parametrizations"
_TP5 = "Yang et al. 2022, Tensor Programs V (arXiv:2203.03466): μP for SGD and Adam"
# the mup version its live tests last agreed with (initsuite.core.checked)
_MUP = f"{checked('mup')}: MuReadout, set_base_shapes(rescale_params=True), MuAdam, MuSGD"
_TP6 = "Yang, Yu, Zhu & Hayou 2023, Tensor Programs VI (arXiv:2310.02244): Depth-μP"
_BORDELON = "Bordelon et al. 2023, Depthwise hyperparameter transfer in residual networks"
_EVERETT = "Everett et al. 2024, Scaling Exponents Across Parameterizations and Optimizers, Table 1"
_JACOT = "Jacot, Gabriel & Hongler 2018, Neural Tangent Kernel: the NTK parametrization"
_DEY = "Dey et al. 2025, Don't be lazy: CompleteP (arXiv:2505.01618), Table 1, α = 1"


def _sp(s: Shape, family: str) -> Multipliers:
    return Multipliers()


def _mup(s: Shape, family: str) -> Multipliers:
    # init: set_base_shapes(rescale_params=True) multiplies MuReadout's weight and bias, and
    # every other Linear/Conv bias, by √(fan_in multiplier); MuReadout divides its input by it.
    init = math.sqrt(s.m_in) if s.role in ("output", "bias") else 1.0
    forward = 1.0 / s.m_in if s.role == "output" else 1.0
    inf = s.infinite
    if len(inf) > 2:
        raise InitsuiteError(f"mup defines no rule for a parameter with {len(inf)} width dims")
    if family == "adam":  # MuAdam: a matrix-like weight's lr / width_mult (fan_in's)
        if len(inf) == 2:
            return Multipliers(init, forward, lr_div=s.mults[inf[-1]], wd=s.mults[inf[-1]])
        return Multipliers(init, forward)
    if len(inf) == 1:  # MuSGD: a vector-like one's lr × width_mult, a matrix-like one's /
        w = s.mults[inf[0]]  # (fan_in / fan_out multipliers)
        return Multipliers(init, forward, lr=w, wd_div=w)
    if len(inf) == 2:
        ratio = s.mults[1] / s.mults[0]
        return Multipliers(init, forward, lr_div=ratio, wd=ratio)
    return Multipliers(init, forward)


def _ntk(s: Shape, family: str) -> Multipliers:
    # NTK: hidden and readout weights N(0, 1) times 1/√fan_in in the forward pass, input
    # weights and biases Θ(1) (a = 0, b = 0). SGD's lr is width-free (TP4's NTP, c = 0);
    # Adam's is 1/√fan_in (c = ½): by the abc-symmetry (a + θ, b − θ, c − θ) with θ = ½ it
    # is SP with Everett et al.'s full-alignment lr 1/fan_in, as SGD's c = 0 is (c − 2θ).
    if s.role in ("hidden", "branch", "output"):
        root = math.sqrt(s.m_in)
        step = root if family == "adam" else 1.0  # the lr's divisor, the decay's numerator
        return Multipliers(init=root, forward=1.0 / root, lr_div=step, wd=step)
    return Multipliers(init=math.sqrt(s.m_in) if s.role == "bias" else 1.0)


def _mean_field(s: Shape, family: str) -> Multipliers:
    # μP moved by the abc-symmetry (a, b, c) → (a + θ, b − θ, c − 2θ) for SGD, c − θ for
    # Adam (TP4; Everett et al.) with θ = 1/2 on hidden weights: N(0, 1) entries times
    # 1/√fan_in in the forward pass. Input, output and bias rules are the mup package's
    # (already a = 0 or 1 and b = 0 there), so both train the same function identically.
    base = _mup(s, family)
    if s.role not in ("hidden", "branch"):
        return base
    root = math.sqrt(s.m_in)
    step = s.m_in if family == "sgd" else root
    return replace(base, init=base.init * root, forward=base.forward / root,
                   lr=base.lr * step, wd_div=base.wd_div * step)  # fmt: skip


def _depth(alpha: float) -> Rule:
    """μP (the mup package's) with residual branches × (L/L_base)^-α and, under Adam, every
    parameter inside a residual block at lr × (L/L_base)^(α − 1), weight decay ÷ the same."""

    def rule(s: Shape, family: str) -> Multipliers:
        base = _mup(s, family)
        if s.role == "branch":
            base = replace(base, forward=base.forward * s.depth**-alpha)
        if family == "adam" and s.in_block and s.role in _BLOCK and alpha != 1.0:
            step = s.depth ** (1.0 - alpha)  # the lr's divisor, the decay's numerator
            base = replace(base, lr_div=base.lr_div * step, wd=base.wd * step)
        return base

    return rule


_MUP_RULES = {
    "input": "init ×1, forward ×1; SGD lr × m_out, Adam lr ×1",
    "hidden": "init ×1 (σ ∝ 1/√fan_in), forward ×1; SGD lr × m_out/m_in, Adam lr / m_in",
    "output": "init × √m_in, forward × 1/m_in (MuReadout); SGD lr × m_in, Adam lr ×1",
    "bias": "init × √m_in of its layer (Θ(1)), forward ×1; SGD lr × m_out, Adam lr ×1",
    "norm": "init ×1 (ones), forward ×1; SGD lr × m_out, Adam lr ×1",
    "branch": "as hidden",
}


def _with(rules: dict[str, str], **extra: str) -> dict[str, str]:
    return {r: (f"{rules[r]}; {extra[r]}" if r in extra else rules[r]) for r in ROLES}


register_parametrization(Parametrization(
    "sp", "standard parametrization: the base scheme at every width, one global lr",
    ("Yang et al. 2022, Tensor Programs V: SP, PyTorch's default", _EVERETT + " (its a, b)"),
    dict.fromkeys(ROLES, "init ×1, forward ×1, lr ×1 (SGD and Adam)"), _sp,
    notes="Everett et al.'s per-layer learning-rate exponents for SP are not applied: sp is "
          "the baseline whose best learning rate moves with width.",
))  # fmt: skip
register_parametrization(Parametrization(
    "mup", "maximal update parametrization, as the mup package implements it",
    (_TP4, _TP5, _MUP),
    _MUP_RULES, _mup,
    notes="Learning rates by the number of dims that differ from the base (MuAdam: lr / "
          "fan_in's multiplier for 2; MuSGD: × the multiplier for 1, × m_out/m_in for 2), as "
          "the package does, whatever the role; weight decay inversely.",
))  # fmt: skip
register_parametrization(Parametrization(
    "ntk", "neural tangent parametrization: N(0, 1) weights, 1/√fan_in multipliers",
    (_JACOT, _TP4 + " (NTP: c = 0)", _EVERETT + " (NTK's a, b; c by its symmetry)"),
    {"input": "init ×1, forward ×1, lr ×1 (SGD and Adam)",
     "hidden": "init × √m_in, forward × 1/√m_in; SGD lr ×1, Adam lr / √m_in",
     "output": "as hidden", "branch": "as hidden",
     "bias": "init × √m_in of its layer (Θ(1)), forward ×1, lr ×1 (SGD and Adam)",
     "norm": "init ×1, forward ×1, lr ×1 (SGD and Adam)"}, _ntk,
    notes="SP's equivalence class: under the abc-symmetry (a + θ, b − θ, c − 2θ for SGD, "
          "c − θ for Adam with ε → 0; TP4, Everett et al.) it trains the same function as SP "
          "with Everett et al.'s full-alignment learning rates, 1/fan_in on hidden and "
          "readout weights and width-free on the rest.",
))  # fmt: skip
register_parametrization(Parametrization(
    "mean_field", "mean-field parametrization: μP with N(0, 1) hidden weights",
    (_TP4 + " (mean-field: a = (0, 1), b = 0, c = −1 for one hidden layer)", _EVERETT),
    _with({**_MUP_RULES,
           "hidden": "init × √m_in, forward × 1/√m_in; SGD lr × m_out, Adam lr / √m_in",
           "branch": "as hidden"}), _mean_field,
    notes="Equivalent to mup under the abc-symmetry: the same function and updates.",
))  # fmt: skip
register_parametrization(Parametrization(
    "depth_mup", "depth-μP: μP with residual branches × 1/√L",
    (_TP6, _BORDELON, _MUP),
    _with(_MUP_RULES, branch="forward × (L/L_base)^(-1/2)",
          hidden="inside a block, Adam lr × (L/L_base)^(-1/2)",
          bias="inside a block, Adam lr × (L/L_base)^(-1/2)",
          norm="inside a block, Adam lr × (L/L_base)^(-1/2)"), _depth(0.5), depth=True,
    notes="SGD's lr is depth-free (TP6). Adam's ε is not scaled.",
))  # fmt: skip
register_parametrization(Parametrization(
    "completep", "CompleteP: μP with residual branches × 1/L (α = 1)",
    (_MUP, _DEY),
    _with(_MUP_RULES, branch="forward × (L/L_base)^(-1)",
          hidden="Adam lr × (L/L_base)^(α-1) = ×1"), _depth(1.0),
    optimizers=("adam",), depth=True,
    notes="Dey et al. give Adam(W) rules only. Adam's ε (× m^-1 L^-1 there) is not scaled.",
))  # fmt: skip
