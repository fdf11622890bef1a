"""Activation functions: ``names()``, ``list("s*")``, ``get(spec)``, ``register(...)``, ``table()``.

Modules: :mod:`~initsuite.activations.registry` (the registry, :class:`Activation` with its
gain and closed forms, the built-in activations), :mod:`~initsuite.activations.shaping`
(kernel-shaped activations as specs, ``"dks:tanh:zeta=1.5,depth=50"``,
``"tat:leaky_relu:eta=0.9,depth=50"``) and :mod:`~initsuite.activations.shaping_solver`
(their constants, solved by quadrature and root finding).

    >>> from initsuite import activations
    >>> act = activations.get("leaky_relu:negative_slope=0.2")
    >>> round(act.gain, 4), act.gain_source
    (1.3868, 'torch')
"""

from __future__ import annotations

from initsuite.activations import shaping as _shaping  # noqa: F401 - registers "dks:", "tat:"
from initsuite.activations.registry import (
    Activation,
    ActivationInfo,
    ClosedForms,
    get,
    list,
    names,
    register,
    table,
)
from initsuite.activations.shaping import ShapedActivation, Shaping

__all__ = [
    "Activation", "ActivationInfo", "ClosedForms", "ShapedActivation", "Shaping", "get", "list",
    "names", "register", "table",
]  # fmt: skip
