"""Input laws by name: what a sweep's input batch is, one vocabulary everywhere.

* ``"gaussian"``: x ~ N(0, 1), every entry independent (each example's q = ‖x‖²/n near 1).
* ``"normalized"``: the same draw with each example scaled to q = 1 exactly (each pixel over
  its channels, for a conv): the per-example normalisation Deep Kernel Shaping and TAT
  assume (:func:`initsuite.engine.draws.normalize_q`). It draws no extra number, so the
  weights are those of the ``"gaussian"`` cell.

    >>> input_law("normalized")
    'normalized'
"""

from __future__ import annotations

from typing import Literal, get_args

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown

__all__ = ["INPUT_LAWS", "InputLaw", "input_law"]

InputLaw = Literal["gaussian", "normalized"]
INPUT_LAWS: tuple[str, ...] = get_args(InputLaw)


def input_law(value: object) -> str:
    """``value`` as an input law (:data:`INPUT_LAWS`).

    Raises:
        InitsuiteTypeError: ``value`` is not a string.
        InitsuiteError: an unknown law; the message names the nearest valid choice.
    """
    if not isinstance(value, str):
        raise InitsuiteTypeError(f"inputs must name an input law {INPUT_LAWS}, got {value!r}")
    if value not in INPUT_LAWS:
        raise InitsuiteError(unknown("input law", value, INPUT_LAWS))
    return value
