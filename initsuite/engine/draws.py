"""The draw-order contract: where every random number of a cell comes from.

One ``torch.Generator`` per cell, seeded with the cell's seed, gives in this order: the input
x ~ N(0, 1), then for each layer its weight W (drawn by the scheme) and, with a bias, the
bias by its law (:mod:`initsuite.core.bias`): ``"torch_default"`` U(±1/√fan_in) as nn.Linear
and nn.Conv* draw it, ``"zeros"`` no number at all. The MLP, conv and residual engines
and the Jacobian spectra all draw through :class:`CellDraws`, so a cell's weights are the
same wherever they are computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.core.bias import bias_law
from initsuite.schemes import default_bias_, fans

__all__ = ["CellDraws", "Fill"]

Fill = Callable[[Tensor, torch.Generator], object]
"""``fill(weight, generator)``: fills ``weight`` in place from ``generator``."""


def _torch_default(bias: Tensor, fan_in: int, generator: torch.Generator) -> None:
    default_bias_(bias, fan_in, generator=generator)


def _zeros(bias: Tensor, fan_in: int, generator: torch.Generator) -> None:
    bias.zero_()  # draws nothing: the weights that follow are those of a bias-free cell


# How each bias law (initsuite.core.bias) fills a layer's bias.
_BIAS_FILLS: dict[str, Callable[[Tensor, int, torch.Generator], None]] = {
    "torch_default": _torch_default, "zeros": _zeros,
}  # fmt: skip


class CellDraws:
    """One cell's random numbers, drawn in the contract's order from one generator.

    Args:
        seed: the cell's seed.
        device: where the generator and the tensors it fills live.
        bias: the law of the biases :meth:`layer` fills (:mod:`initsuite.core.bias`).
    """

    def __init__(self, seed: int, device: torch.device, bias: str | None = "torch_default") -> None:
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        law = bias_law(bias)
        self.bias_fill = None if law is None else _BIAS_FILLS[law]

    def input(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """The input x ~ N(0, 1) of ``shape`` (e.g. (batch, width)): the first draw."""
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=dtype)

    def layer(self, weight: Tensor, bias: Tensor | None, fill: Fill) -> None:
        """Draw one layer in place: ``fill`` the weight, then the bias (if any) by the
        cell's bias law, fan_in from the weight's shape."""
        fill(weight, self.generator)
        if bias is not None:
            if self.bias_fill is None:
                raise ValueError("a bias to fill, but the cell's bias law is None (no bias)")
            self.bias_fill(bias, fans(weight.shape)[0], self.generator)
