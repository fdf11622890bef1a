"""Bias laws by name: what a study's layer biases start from, one vocabulary everywhere.

* ``None``: no bias (the layers are ``bias=False``).
* ``"torch_default"``: nn.Linear's own ``reset_parameters``, U(±1/√fan_in), drawn from the
  study's generator after each weight.
* ``"zeros"``: biases start at 0.

Each study accepts the laws it can draw (:func:`bias_law` with ``allowed``). Results written
before laws had names stored ``"bias": true`` or ``false``; :func:`stored_bias_law` reads
them with the law that study meant.

    >>> bias_law("torch_default")
    'torch_default'
    >>> stored_bias_law(True, legacy="zeros")
    'zeros'
"""

from __future__ import annotations

from typing import Literal, get_args

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean

__all__ = ["BIAS_LAWS", "BiasLaw", "bias_law", "stored_bias_law"]

BiasLaw = Literal["torch_default", "zeros"]
BIAS_LAWS: tuple[str, ...] = get_args(BiasLaw)


def _choices(allowed: tuple[str, ...]) -> str:
    return ", ".join([*(repr(a) for a in allowed), "None"])


def bias_law(
    value: object, allowed: tuple[str, ...] = BIAS_LAWS, study: str = "this study"
) -> str | None:
    """``value`` as a bias law among ``allowed`` (the laws ``study`` draws), or None.

    Raises:
        InitsuiteTypeError: ``value`` is neither a string nor None (``True`` names no law).
        InitsuiteError: an unknown law, or one this study does not draw; the message names
            the nearest valid choice.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        guess = f"; did you mean bias={allowed[0]!r}?" if value is True else ""
        raise InitsuiteTypeError(
            f"bias must name its law ({_choices(allowed)}), got {value!r}{guess}"
        )
    if value in allowed:
        return value
    if value in BIAS_LAWS:
        raise InitsuiteError(
            f"{study} does not draw bias {value!r} (choose from {_choices(allowed)})"
        )
    hint = did_you_mean(value, allowed)
    raise InitsuiteError(
        f"unknown bias law {value!r}" + (f"; did you mean {hint!r}?" if hint else "")
        + f" (choose from {_choices(allowed)})"
    )  # fmt: skip


def stored_bias_law(value: object, legacy: str) -> str | None:
    """A bias law as stored in meta.json: a law's name, None, or the bool written before laws
    had names (``True`` meaning ``legacy``, the law that study drew; ``False`` no bias)."""
    if isinstance(value, bool):
        return legacy if value else None
    return bias_law(value)
