"""``resmlp:branch=m,scale=α``: ``depth`` residual blocks h ← h + α·f(h) with a pre-activation
branch f(h) = W_m φ(⋯ φ(W_1 φ(h))), with its mean-field theory
(:func:`~initsuite.theory.nets.resmlp_theory`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from initsuite.activations import Activation
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.engine.archs.base import Arch, Prior, register, whole
from initsuite.engine.nets import Net, stacked_linear
from initsuite.schemes import LayerContext, Scheme
from initsuite.theory.meanfield import CellTheory
from initsuite.theory.nets import residual_scale, resmlp_priors, resmlp_theory

__all__ = ["RESIDUAL_SCALES", "ResMLP"]

RESIDUAL_SCALES: tuple[str, ...] = ("1", "inv_sqrt_depth", "zero")


@register
@dataclass(frozen=True)
class ResMLP(Arch):
    """Residual MLP blocks; run once per depth (α = 1/√L, Fixup and GPT-2 depend on the
    number of blocks L, so a shallower net is not a prefix of a deeper one)."""

    name = "resmlp"
    defaults: ClassVar[Mapping[str, Any]] = {"branch": 2, "scale": "1"}
    prefixes = False

    @classmethod
    def convert(cls, key: str, value: Any) -> Any:
        if key != "scale":
            return whole(cls.name, key, value)
        text = str(value).strip().lower().replace("1/sqrt(l)", "inv_sqrt_depth")
        if text in ("1.0", "one"):
            text = "1"
        if text not in RESIDUAL_SCALES:
            raise InitsuiteError(f"arch {cls.name!r}: " + unknown("scale", value, RESIDUAL_SCALES))
        return text

    def alpha(self, blocks: int) -> float:
        """The residual multiplier α for a net of ``blocks`` blocks."""
        scale = self.get("scale")
        return {"1": 1.0, "inv_sqrt_depth": 1.0 / math.sqrt(blocks), "zero": 0.0}[scale]

    def product(self, t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return stacked_linear(t, weight, bias)

    def step(self, net: Net, h: Tensor, layer: int, depth: int) -> Tensor:
        """Block ``layer`` of ``depth``, h + α·f(h), for the running members' stacked h
        (k, batch, width); the stream's first member draws (every member shares its draws)."""
        m, width, first = self.get("branch"), net.stream.width, net.members[0]
        alpha = torch.full((1,), self.alpha(depth), dtype=torch.float64)
        if "context" in first.scheme.info.uses:  # SkipInit/ReZero set α; other schemes leave it
            first.fill(alpha, net.draws.generator, LayerContext.resmlp(layer, depth, m, 0, width))
        a = float(alpha[0])
        u = net.activate(h)
        for j in range(1, m + 1):
            net.draw(LayerContext.resmlp(layer, depth, m, j, width), u[0])
            u = self.product(net.scaled(u), net.w, net.b)
            if j < m:
                u = net.activate(u)
        return h + a * u if a != 0.0 else h.clone()

    def priors(
        self, scheme: Scheme, params: dict[str, Any], width: int, depth: int, bias: str | None
    ) -> list[list[Prior]] | None:
        return resmlp_priors(scheme, params, width, depth, self.get("branch"), bias)

    def first_prior(self, priors: Any) -> Prior:
        return priors[0][0]

    def variance_map(
        self,
        scheme: Scheme,
        act: Activation,
        priors: list[list[Prior]],
        depth: int,
        batch: int,
        width: int,
        limits: tuple[float, float],
        pair_cosine: float | None,
    ) -> CellTheory:
        alpha = residual_scale(scheme, self.alpha(depth))
        return resmlp_theory(act, priors, alpha, batch * width, *limits)

    def budget_held(self, itemsize: int) -> float:
        return 3.0 * itemsize  # a block's input, its scaled branch and their sum

    def budget_layers(self, depths: Sequence[int]) -> float:
        return float(sum(depths)) * self.get("branch")  # one run per depth
