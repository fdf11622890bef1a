"""``mlp``: ``depth`` × Linear(width, width) + activation, run by the MLP engine
(:mod:`initsuite.engine.mlp`: shared base draws with their QR and Householder forms, the
input pair's cosine, the backward pass), with the MLP's mean-field theory
(:func:`~initsuite.theory.meanfield.cell_theory`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from initsuite.activations import Activation
from initsuite.engine import mlp as engine
from initsuite.engine.archs.base import Arch, Prior, register
from initsuite.engine.stack import Stream
from initsuite.engine.stats import LayerStats
from initsuite.schemes import Scheme, SharedDraw
from initsuite.theory.meanfield import CellTheory, cell_theory, weight_prior

__all__ = ["MLP"]


@register
@dataclass(frozen=True)
class MLP(Arch):
    """The tutorial's net; every feature of the sweep is computed for it."""

    name = "mlp"
    features = frozenset({"backward", "jacobian", "cosine", "timing", "spread", "phase"})

    def serves(self, scheme: Scheme, draw: SharedDraw) -> bool:
        return True  # the MLP engine applies every transform and shift of a base draw

    def run(
        self,
        stream: Stream,
        depths: Sequence[int],
        explode_at: float | None = None,
        vanish_at: float | None = None,
        backward: Sequence[int] = (),
    ) -> dict[int, list[LayerStats]]:
        stats = engine.run_stream(stream, explode_at, vanish_at, backward=backward)
        return dict.fromkeys(depths, stats)

    def priors(
        self, scheme: Scheme, params: dict[str, Any], width: int, depth: int, bias: str | None
    ) -> Prior | None:
        return weight_prior(scheme, params, width, bias)

    def variance_map(
        self,
        scheme: Scheme,
        act: Activation,
        priors: Prior,
        depth: int,
        batch: int,
        width: int,
        limits: tuple[float, float],
        pair_cosine: float | None,
    ) -> CellTheory:
        return cell_theory(act, *priors, depth, batch * width, *limits, pair_cosine=pair_cosine)
