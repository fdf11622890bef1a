"""The :class:`Arch` base and the registry of architectures (:mod:`initsuite.engine.archs`).

An architecture is one subclass in one file: its name and parameters, its weights and input,
its forward step on stacked member streams (run by :func:`initsuite.engine.nets.run_net`),
which depths one run serves, its variance map (the mean-field theory), its cost for the
budget, and what it supports. :func:`register` adds it; :func:`parse_arch` finds it by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.spec import parse_spec, plain_int
from initsuite.engine.nets import run_net

if TYPE_CHECKING:
    from torch import Tensor

    from initsuite.activations import Activation
    from initsuite.engine.nets import Net
    from initsuite.engine.stack import Stream
    from initsuite.engine.stats import LayerStats
    from initsuite.schemes import Scheme, SharedDraw
    from initsuite.theory.meanfield import CellTheory

__all__ = ["Arch", "Prior", "parse_arch", "register", "registered"]

Prior = tuple[float, float]  # (σ_w², σ_b²)

# The base draws a stream scales as they are (no QR or Householder product of them).
_PLAIN_BASES = ("normal", "uniform")


@dataclass(frozen=True)
class Arch:
    """A parsed architecture spec with every parameter set (defaults filled in).

    Subclasses set the class attributes and the methods marked *per architecture*; the
    defaults suit a net run by :func:`~initsuite.engine.nets.run_net`.
    """

    name: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}
    layer_kind: ClassVar[str] = "Linear"  # the torch layer its weights are, for messages
    features: ClassVar[frozenset[str]] = frozenset()
    """What it computes beyond the forward statistics: ``backward``, ``jacobian``, ``cosine``
    (the input pair's), ``timing`` (per-layer times), ``spread`` (the finite-width spread of
    the theory) and ``phase`` (its schemes' points in the phase diagram)."""
    prefixes: ClassVar[bool] = True  # a shallower cell is a prefix of the deepest run

    params: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> str:
        """Canonical spec with every parameter, e.g. ``conv:image=8,kernel=3``."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    def get(self, key: str) -> Any:
        return dict(self.params)[key]

    def supports(self, feature: str) -> bool:
        """Whether the architecture computes ``feature`` (see :attr:`features`)."""
        return feature in self.features

    @classmethod
    def convert(cls, key: str, value: Any) -> Any:
        """A parameter's value from its spec text (per architecture; default: a whole number
        >= 1); an :class:`InitsuiteError` naming the problem otherwise."""
        return whole(cls.name, key, value)

    # -- weights and inputs ------------------------------------------------------------

    def weight_shape(self, width: int) -> tuple[int, ...]:
        """The shape of one weight of a width-wide layer (per architecture)."""
        return (width, width)

    def input_shape(self, batch: int, width: int) -> tuple[int, ...]:
        """The shape of the N(0, 1) input."""
        return (batch, width)

    @property
    def weight_rank(self) -> int:
        return len(self.weight_shape(1))

    def fan(self, width: int) -> int:
        """fan_in = fan_out of one weight of a width-wide layer."""
        return math.prod(self.weight_shape(width)[1:])

    def check_scheme(self, scheme: Scheme) -> None:
        """Raise where ``scheme`` does not apply to this architecture's weights."""
        if not scheme.info.accepts_rank(self.weight_rank):
            raise InitsuiteError(
                f"scheme {scheme.name!r} does not apply to {self.name} layers: it needs "
                f"tensors of rank {scheme.info.ranks}, {self.layer_kind} weights have rank "
                f"{self.weight_rank}"
            )

    def serves(self, scheme: Scheme, draw: SharedDraw) -> bool:
        """Whether a stream of the shared base draw can serve ``scheme``: by default a plain
        scaling of it (the Householder products and the shift's term are the MLP engine's)
        and the same law at every layer (no layer context: Fixup's and GPT-2's laws depend
        on the block and the role)."""
        return (draw.base in _PLAIN_BASES and draw.shift == 0
                and "context" not in scheme.info.uses)  # fmt: skip

    # -- the engine --------------------------------------------------------------------

    def run(
        self,
        stream: Stream,
        depths: Sequence[int],
        explode_at: float | None = None,
        vanish_at: float | None = None,
        backward: Sequence[int] = (),
    ) -> dict[int, list[LayerStats]]:
        """The statistics of every member's cell at each depth, ``{depth: [LayerStats per
        member]}``: one run at the deepest depth shared by all (:attr:`prefixes`), else one
        run per depth. ``backward`` only where :meth:`supports` it."""
        if self.prefixes:
            return dict.fromkeys(depths, run_net(stream, self, max(depths), explode_at, vanish_at))
        return {d: run_net(stream, self, d, explode_at, vanish_at) for d in depths}

    def product(self, t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """The layer's product on stacked inputs t (k, batch, ...) (per architecture)."""
        raise NotImplementedError

    def step(self, net: Net, h: Tensor, layer: int, depth: int) -> Tensor:
        """Layer (or block) ``layer`` of ``depth`` on the running members' stacked streams
        ``h``, drawing its weights through ``net`` (per architecture)."""
        raise NotImplementedError

    # -- the theory --------------------------------------------------------------------

    def theory_depth(self, depth: int, deepest: int) -> int:
        """The depth whose prediction serves a cell of ``depth``: the deepest where a cell is
        a prefix of the deepest run."""
        return deepest if self.prefixes else depth

    def priors(
        self, scheme: Scheme, params: dict[str, Any], width: int, depth: int, bias: str | None
    ) -> Any:
        """The (σ_w², σ_b²) the variance map needs (per architecture), None where mean-field
        theory does not apply (by default: an architecture without a variance map)."""
        return None

    def first_prior(self, priors: Any) -> Prior:
        """(σ_w², σ_b²) of the first weight, from :meth:`priors`."""
        return priors

    def variance_map(
        self,
        scheme: Scheme,
        act: Activation,
        priors: Any,
        depth: int,
        batch: int,
        width: int,
        limits: tuple[float, float],
        pair_cosine: float | None,
    ) -> CellTheory:
        """The mean-field prediction of a cell of ``depth`` (per architecture); ``limits``:
        the dtype's largest finite and smallest normal values."""
        raise NotImplementedError

    # -- the budget (:mod:`initsuite.studies.sweep.budget`) ----------------------------

    def budget_rows(self, batch: int) -> float:
        """Stacked rows of ``width`` values a member holds per layer (the batch and the
        input pair)."""
        return batch + 4.0

    def budget_held(self, itemsize: int) -> float:
        """Bytes per value held beyond the plain layer's."""
        return 0.0

    def budget_layers(self, depths: Sequence[int]) -> float:
        """Layers computed for a group (per seed)."""
        return float(max(depths))


_REGISTRY: dict[str, type[Arch]] = {}


def register(cls: type[Arch]) -> type[Arch]:
    """Add an architecture (a class decorator); its name must be new."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise InitsuiteError(f"arch {cls.name!r} is registered already")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a registered architecture (tests)."""
    _REGISTRY.pop(name, None)


def registered() -> tuple[str, ...]:
    """The registered architectures' names, in registration order."""
    return tuple(_REGISTRY)


def parse_arch(spec: str) -> Arch:
    """Parse and validate an architecture spec; one clear error for bad input."""
    if not isinstance(spec, str):
        raise InitsuiteError(f"arch must be a spec string, got {spec!r}")
    name, raw = parse_spec(spec, kind="arch")
    if name not in _REGISTRY:
        raise InitsuiteError(unknown("arch", name, registered()))
    cls = _REGISTRY[name]
    params = dict(cls.defaults)
    for key, value in raw.items():
        if key not in params:
            valid = ", ".join(params) or "none"
            raise InitsuiteError(f"arch {name!r} has no parameter {key!r} (parameters: {valid})")
        params[key] = cls.convert(key, value)
    return cls(tuple(sorted(params.items())))


def whole(name: str, key: str, value: Any, odd: bool = False) -> int:
    """A whole number >= 1 (``odd``: an odd one, same padding) from a spec's text."""
    number = plain_int(str(value))  # ASCII digits: "1_0" and "３" are refused, not misread
    if number is None:
        raise InitsuiteError(
            f"arch {name!r}: {key} must be a whole number in ASCII digits, got {value!r}"
        )
    if number < 1 or (odd and number % 2 == 0):
        what = "an odd number >= 1 (same padding)" if odd else "a number >= 1"
        raise InitsuiteError(f"arch {name!r}: {key} must be {what}, got {number}")
    return number
