"""The draw-order contract: where every random number of a cell comes from.

One ``torch.Generator`` per cell, seeded with the cell's seed, gives in this order: the input
x ~ N(0, 1), then for each layer its weight W (drawn by the scheme) and, with a bias, the
bias ~ U(±1/√fan_in) as nn.Linear and nn.Conv* draw it. The MLP, conv and residual engines
and the Jacobian spectra all draw through :class:`CellDraws`, so a cell's weights are the
same wherever they are computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.schemes import default_bias_, fans

__all__ = ["CellDraws", "Fill"]

Fill = Callable[[Tensor, torch.Generator], object]
"""``fill(weight, generator)``: fills ``weight`` in place from ``generator``."""


class CellDraws:
    """One cell's random numbers, drawn in the contract's order from one generator.

    Args:
        seed: the cell's seed.
        device: where the generator and the tensors it fills live.
    """

    def __init__(self, seed: int, device: torch.device) -> None:
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def input(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """The input x ~ N(0, 1) of ``shape`` (e.g. (batch, width)): the first draw."""
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=dtype)

    def layer(self, weight: Tensor, bias: Tensor | None, fill: Fill) -> None:
        """Draw one layer in place: ``fill`` the weight, then the bias (if any) as torch's
        layers do, U(±1/√fan_in), fan_in from the weight's shape."""
        fill(weight, self.generator)
        if bias is not None:
            default_bias_(bias, fans(weight.shape)[0], generator=self.generator)
