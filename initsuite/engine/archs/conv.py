"""``conv:kernel=k,image=P``: ``depth`` × Conv2d(width, width, k, padding=k // 2) + activation
on a (batch, width, P, P) input, with its mean-field theory
(:func:`~initsuite.theory.nets.conv_theory`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from initsuite.activations import Activation
from initsuite.engine.archs.base import Arch, Prior, register, whole
from initsuite.engine.nets import Net
from initsuite.schemes import LayerContext, Scheme
from initsuite.theory.meanfield import CellTheory
from initsuite.theory.nets import conv_prior, conv_theory

__all__ = ["Conv"]


@register
@dataclass(frozen=True)
class Conv(Arch):
    """Same-padded convolutions; depths are prefixes of the deepest run."""

    name = "conv"
    defaults: ClassVar[Mapping[str, Any]] = {"kernel": 3, "image": 8}
    layer_kind = "Conv2d"

    @classmethod
    def convert(cls, key: str, value: Any) -> Any:
        return whole(cls.name, key, value, odd=key == "kernel")

    def weight_shape(self, width: int) -> tuple[int, ...]:
        k = self.get("kernel")
        return (width, width, k, k)

    def input_shape(self, batch: int, width: int) -> tuple[int, ...]:
        image = self.get("image")
        return (batch, width, image, image)

    def product(self, t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """One convolution for all k members of the stacked t (k, batch, width, P, P)."""
        flat = t.reshape(-1, *t.shape[2:])
        return F.conv2d(flat, weight, bias, padding=self.get("kernel") // 2).view(t.shape)

    def step(self, net: Net, h: Tensor, layer: int, depth: int) -> Tensor:
        fan = self.fan(net.stream.width)
        net.draw(LayerContext(layer, depth, fan, fan), h[0])
        return net.activate(self.product(net.scaled(h), net.w, net.b))

    def priors(
        self, scheme: Scheme, params: dict[str, Any], width: int, depth: int, bias: str | None
    ) -> Prior | None:
        return conv_prior(scheme, params, width, self.get("kernel"), bias)

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
        image = self.get("image")
        return conv_theory(act, priors, depth, self.get("kernel"), image, scheme.info.taps,
                           batch * width * image * image, *limits)  # fmt: skip

    def budget_rows(self, batch: int) -> float:
        image = self.get("image")
        return batch * image * image
