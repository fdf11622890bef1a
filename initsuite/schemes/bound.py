"""A registered scheme with the parameters of its spec bound: :class:`Scheme`, what
:func:`initsuite.schemes.get` returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from initsuite import activations as _activations
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown
from initsuite.core.spec import AUTO, check_keys, format_spec
from initsuite.schemes.metadata import (
    SHARED_BASES,
    TORCH_LINEAR_NAMES,
    LayerContext,
    SchemeInfo,
    SharedDraw,
)

__all__ = ["Scheme"]


class Scheme:
    """A registered scheme with the parameters of its spec bound.

    ``scheme(tensor, *, activation=None, generator=None, **params)`` fills ``tensor`` in place
    and returns it. Call-time ``params`` override the spec's; ``gain=auto`` and
    ``nonlinearity=auto`` take the gain of ``activation``, the activation that follows the layer.
    """

    def __init__(self, info: SchemeInfo, params: Mapping[str, Any] | None = None) -> None:
        self.info = info
        self.params: dict[str, Any] = self._convert(params or {})

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def spec(self) -> str:
        """The canonical spec string, e.g. ``"kaiming_uniform:a=0.5,mode=fan_out"``."""
        return format_spec(self.name, self.params)

    def __repr__(self) -> str:
        return f"Scheme({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scheme) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    # -- parameters -------------------------------------------------------------------------
    def _convert(self, given: Mapping[str, Any]) -> dict[str, Any]:
        owner = f"scheme {self.name!r}"
        check_keys(owner, given, self.info.params)
        out: dict[str, Any] = {}
        for key, value in given.items():
            param = self.info.params[key]
            if isinstance(value, str) and value.lower() == AUTO and key in ("gain", "nonlinearity"):
                out[key] = AUTO
                continue
            value = param.convert(value, owner)
            if key == "nonlinearity":
                _check_nonlinearity(value, owner)
            out[key] = value
        return out

    def with_params(self, **params: Any) -> Scheme:
        """A copy with ``params`` added to (or overriding) the spec's."""
        return Scheme(self.info, {**self.params, **params})

    def resolve(
        self, activation: str | _activations.Activation | None = None, **params: Any
    ) -> dict[str, Any]:
        """The concrete parameters for one call: spec, overrides, ``auto`` replaced by gains.

        Two calls with equal resolved parameters draw identical tensors from identical
        generator states, which lets a sweep share draws across activations. Raises
        :class:`InitsuiteError` for parameters the scheme cannot take (its ``check``), so
        every caller validates before drawing.
        """
        return self._resolve(activation, params, None)

    def _resolve(
        self,
        activation: str | _activations.Activation | None,
        params: Mapping[str, Any],
        shape: tuple[int, ...] | None,
    ) -> dict[str, Any]:
        given = {**self.params, **self._convert(params)}
        for key, param in self.info.params.items():
            if param.required and key not in given:
                raise InitsuiteError(
                    f"scheme {self.name!r} needs parameter {key!r} (e.g. {self.info.example!r})"
                )
        merged = dict(given)
        if AUTO in merged.values():
            if activation is None:
                keys = ", ".join(k for k, v in merged.items() if v == AUTO)
                raise InitsuiteError(
                    f"scheme {self.spec!r}: {keys}=auto needs the activation that follows the layer"
                )
            act = _activations.get(activation)
            if merged.get("gain") == AUTO:
                merged["gain"] = act.gain
            if merged.get("nonlinearity") == AUTO:
                if act.name == "leaky_relu":
                    merged["nonlinearity"] = "leaky_relu"
                    merged["a"] = float(act.params.get("negative_slope", 0.01))
                else:
                    merged["nonlinearity"] = act.spec
        self._check(merged, shape, format_spec(self.name, given))
        return merged

    def _check(self, resolved: dict[str, Any], shape: tuple[int, ...] | None, spec: str) -> None:
        """Run the scheme's ``check`` on every parameter (defaults filled in)."""
        if self.info.check is None:
            return
        defaults = {k: p.default for k, p in self.info.params.items() if not p.required}
        try:
            self.info.check(shape, **{**defaults, **resolved})
        except ValueError as exc:  # InitsuiteError included: one line, naming the spec
            lines = str(exc).strip().splitlines()
            detail = lines[0] if lines else type(exc).__name__
            raise InitsuiteError(f"scheme {spec!r}: {detail}") from None

    # -- use --------------------------------------------------------------------------------
    def check_tensor(self, tensor: Tensor) -> None:
        """Raise :class:`InitsuiteTypeError` for an argument that is not a tensor, and
        :class:`InitsuiteError` (a ``ValueError``, as torch raises) for a tensor the scheme
        cannot fill: not floating point, or of a rank it does not take."""
        if not isinstance(tensor, Tensor):
            kind = type(tensor)
            name = kind.__qualname__ if kind.__module__ == "builtins" else (
                f"{kind.__module__}.{kind.__qualname__}")  # fmt: skip
            hint = "; convert it with torch.from_numpy(...)" if name == "numpy.ndarray" else ""
            raise InitsuiteTypeError(f"scheme {self.name!r} fills a torch.Tensor, got {name}{hint}")
        if not tensor.is_floating_point():
            raise InitsuiteError(
                f"scheme {self.name!r} needs a floating-point tensor, got {tensor.dtype}"
            )
        if not self.info.accepts_rank(tensor.dim()):
            raise InitsuiteError(
                f"scheme {self.name!r} needs a tensor of rank {self.info.ranks}, "
                f"got shape {tuple(tensor.shape)}"
            )

    def check_shape(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> None:
        """Raise :class:`InitsuiteError` if the scheme cannot fill a tensor of ``shape``: its
        rank, or its parameters for that shape (its ``check``); lets a caller that fills many
        tensors refuse before drawing the first."""
        shape = tuple(shape)
        if not self.info.accepts_rank(len(shape)):
            raise InitsuiteError(
                f"scheme {self.name!r} needs a tensor of rank {self.info.ranks}, got shape {shape}"
            )
        self._resolve(activation, params, shape)

    def __call__(
        self,
        tensor: Tensor,
        *,
        activation: str | _activations.Activation | None = None,
        generator: torch.Generator | None = None,
        context: LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
        **params: Any,
    ) -> Tensor:
        """Check ``tensor``, resolve the parameters against ``activation`` and :meth:`fill`."""
        self.check_tensor(tensor)
        resolved = self._resolve(activation, params, tuple(tensor.shape))
        return self.fill(tensor, resolved, generator=generator, context=context, data=data)

    def fill(
        self,
        tensor: Tensor,
        params: Mapping[str, Any],
        *,
        generator: torch.Generator | None = None,
        context: LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Fill ``tensor`` in place with resolved ``params`` (:meth:`resolve`'s), unchecked:
        the draw alone, as engines repeat it layer after layer.

        Args:
            tensor: the weight to fill.
            params: every parameter, ``auto`` resolved.
            generator: the source of every random number.
            context: where the weight sits (:class:`LayerContext`), for schemes that take it.
            data: ``weight -> the layer's output on a batch``, for data-dependent schemes.
                Schemes that take neither never see them.

        Raises:
            InitsuiteError: the scheme's function returned something other than ``tensor``
                (a new tensor, None): ``tensor`` was then not filled, and would be read as
                whatever its memory held.
        """
        extra: dict[str, Any] = {}
        if "context" in self.info.uses:
            extra["context"] = context
        if "data" in self.info.uses:
            extra["data"] = data
        out = self.info.fn(tensor, **params, generator=generator, **extra)
        if out is not tensor and not _same_storage(out, tensor):
            what = "None" if out is None else (
                "a new tensor" if isinstance(out, Tensor) else type(out).__name__)  # fmt: skip
            raise InitsuiteError(
                f"scheme {self.name!r} returned {what} instead of the tensor it was given: a "
                "scheme fills its tensor in place and returns it"
            )
        return tensor

    def variance(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> float | None:
        """Var(W) of one entry for a tensor of ``shape``; None for deterministic schemes."""
        shape = tuple(shape)
        return self.info.variance(shape, **self._resolve(activation, params, shape))

    def mean(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> float:
        """E[W] of one entry for a tensor of ``shape`` (0 for centred schemes)."""
        if self.info.mean is None:
            return 0.0
        shape = tuple(shape)
        return float(self.info.mean(shape, **self._resolve(activation, params, shape)))

    def shared_draw(self, shape: tuple[int, ...], params: Mapping[str, Any]) -> SharedDraw | None:
        """This scheme's draw for ``shape`` under resolved ``params`` as a scaling of a base
        draw, or None when it is not one (then a sweep draws it on its own)."""
        if self.info.shared is None or 0 in shape:
            return None
        out = self.info.shared(tuple(shape), **params)
        if out is not None and out.base not in SHARED_BASES:
            raise ValueError(f"scheme {self.name!r}: unknown shared base {out.base!r}")
        return out


def _check_nonlinearity(value: str, owner: str) -> None:
    if value in TORCH_LINEAR_NAMES:
        return
    try:
        _activations.get(value)
    except InitsuiteError:
        choices = sorted({*TORCH_LINEAR_NAMES, *_activations.names(), AUTO})
        raise InitsuiteError(f"{owner}: " + unknown("nonlinearity", value, choices)) from None


def _same_storage(out: object, tensor: Tensor) -> bool:
    """Whether ``out`` is ``tensor``'s memory under another name (``tensor.data``, a view of
    all of it): what a scheme filled in place may return instead of ``tensor`` itself."""
    return (
        isinstance(out, Tensor) and out.device == tensor.device
        and out.data_ptr() == tensor.data_ptr() and out.numel() == tensor.numel()
    )  # fmt: skip
