"""The draw-order contract: where every random number of a cell comes from.

One ``torch.Generator`` per cell, seeded with the cell's seed, gives in this order: the input
x ~ N(0, 1) (with the input law ``"normalized"`` each example then scaled to q = 1 by
:func:`normalize_q`, which draws nothing), then for each layer its weight W (drawn by the
scheme) and, with a bias, the bias by its law (:mod:`initsuite.core.bias`):
``"torch_default"`` U(±1/√fan_in) as nn.Linear and nn.Conv* draw it, ``"zeros"`` no number
at all. The MLP, conv and residual engines and the Jacobian spectra all draw through
:class:`CellDraws`, so a cell's weights are the same wherever they are computed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.core.bias import bias_law
from initsuite.core.inputs import input_law
from initsuite.schemes import default_bias_, fans

__all__ = ["CellDraws", "Fill", "normalize_q"]

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


def normalize_q(x: Tensor, dim: int = 1) -> Tensor:
    r"""``x`` with each example scaled so that its mean square along ``dim`` is 1 (q = 1).

    x / √(mean(x², dim)): DKS's per-location normalization (Martens et al. 2021, "Uniform q
    values via Per-Location Normalization"; ``dks``' ``per_location_normalization`` with
    ``homog_mode="off"``), which DKS and TAT assume of a network's input. ``dim`` is the
    feature dimension: 1 for an MLP's (batch, features) and for a conv's (batch, channels,
    ...), where every pixel is normalised over its channels (``dks`` normalises the last
    dimension, JAX's channels-last layout). An all-zero example stays zero (it has no
    direction to keep). Returns a new tensor.

    Example:
        >>> x = normalize_q(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
        >>> torch.allclose(x.square().mean(dim=1), torch.ones(2))
        True
    """
    q = x.square().mean(dim=dim, keepdim=True)
    return x / torch.where(q > 0, q, torch.ones_like(q)).sqrt()


class CellDraws:
    """One cell's random numbers, drawn in the contract's order from one generator.

    Args:
        seed: the cell's seed.
        device: where the generator and the tensors it fills live.
        bias: the law of the biases :meth:`layer` fills (:mod:`initsuite.core.bias`).
        inputs: the input law (:data:`~initsuite.core.inputs.INPUT_LAWS`): ``"gaussian"``
            x ~ N(0, 1), or ``"normalized"`` the same draw with each example scaled to q = 1.
    """

    def __init__(self, seed: int, device: torch.device, bias: str | None = "torch_default",
                 inputs: str = "gaussian") -> None:  # fmt: skip
        self.device = device
        self.normalized = input_law(inputs) == "normalized"
        self.generator = torch.Generator(device=device).manual_seed(seed)
        law = bias_law(bias)
        self.bias_fill = None if law is None else _BIAS_FILLS[law]

    def input(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """The input x ~ N(0, 1) of ``shape`` (e.g. (batch, width)): the first draw; with the
        input law ``"normalized"``, each example (each pixel of an image) at q = 1."""
        x = torch.randn(shape, generator=self.generator, device=self.device, dtype=dtype)
        return normalize_q(x) if self.normalized else x

    def layer(self, weight: Tensor, bias: Tensor | None, fill: Fill) -> None:
        """Draw one layer in place: ``fill`` the weight, then the bias (if any) by the
        cell's bias law, fan_in from the weight's shape."""
        fill(weight, self.generator)
        if bias is not None:
            if self.bias_fill is None:
                raise ValueError("a bias to fill, but the cell's bias law is None (no bias)")
            self.bias_fill(bias, fans(weight.shape)[0], self.generator)
