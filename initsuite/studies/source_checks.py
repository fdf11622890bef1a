"""Checks of a model source before it is built: its overrides' types and values, and its size.

An override has its default's type where the library gives one (transformers' configs:
:func:`check_type`) and names one of the library's choices where the default does (an
activation: :func:`check_choice`); a timm or torchvision key the model's class does not take
is named with the class's keys (:func:`check_keys`). Its value is checked by the kind of
quantity its key names, the same words in every library (transformers' ``n_layer``,
``attn_pdrop``, ``hidden_size``; timm's ``depth``, ``drop_rate``, ``embed_dim``; torchvision's
``num_classes``: :func:`check_value`), so that ``n_layer=-1`` or ``attn_pdrop=nan`` is refused
in one line instead of failing later inside the model's forward pass:

* every number finite;
* a size (``*_size``, ``*_dim``, ``n_embd``, ``*_heads``, ``*_positions``, ``*_channels``,
  ``n_inner``, ...): a whole number >= 1;
* a count (``n_*``, ``num_*``, ``*_layers``, ``depth``, ``*_classes``, ...): a whole number
  >= 0 (a ViT of 0 blocks or timm's ``num_classes=0``, no head, are models);
* a probability (``*dropout*``, ``*_pdrop``, ``*drop_rate``, ``drop_path*``, ``*_prob``): in
  [0, 1];
* a scale (``*_eps``, ``*_epsilon``, ``*_std``, ``initializer_range``): >= 0;
* where the library's default lies outside its kind's range, the key means something else
  there and the range widens to take it.

The size is counted on the ``meta`` device (no memory, no random draws) while the model is
built. Building takes time by the module (about 0.3 ms each here), so the build is stopped once
it registers more than :data:`MAX_MODULES` modules, or 100 times the parameter limit (a model
up to that is counted exactly, for the message). A model deeper than 64 layers, where the
source names its depth (transformers' ``num_hidden_layers``, timm's ``depth``), is first
counted at 1, 2 and 16 layers: where those counts grow by the same amount per layer, its count
is that arithmetic, and a model past a limit is refused before it is built.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module

from initsuite.core.errors import Arg, InitsuiteError, did_you_mean, unknown

__all__ = [
    "MAX_MODULES", "check_choice", "check_keys", "check_type", "check_value", "count", "one_line",
]  # fmt: skip

MAX_MODULES = 100_000
"""Models that register more modules than this are refused: building one on the meta device
alone takes about a minute and gigabytes here, and its probe would hold a row per call."""

# (pattern of the key, lowest value, highest value, whole numbers only): the first that matches
_KINDS: tuple[tuple[re.Pattern[str], float, float, bool], ...] = (
    (re.compile(r"dropout|pdrop|drop_?rate|drop_?path|layerdrop|(^|_)probs?$"), 0, 1, False),
    (re.compile(r"(size|sizes|dim|dims|embd|heads?|positions|embeddings|channels|chans|width|"
                r"widths|features|inner)$"), 1, math.inf, True),
    (re.compile(r"^(n|num)_|(layers?|depths?|classes|labels|experts|blocks)$"), 0, math.inf, True),
    (re.compile(r"(^|_)(eps|epsilon|std|range)$"), 0, math.inf, False),
)  # fmt: skip


def check_value(spec: str, key: str, value: Any, default: Any = None) -> None:
    """Refuse a number its key's kind does not allow (see the module's docstring); a list's
    items are checked as the key's. Where the library's default is outside a kind's range the
    key means something else there, and the range widens to take it (DeBERTa's
    ``max_relative_positions=-1``, a layer index of -2, a window size of 0): a default of 0
    allows 0, a negative default any value. Flags, text and None are the library's to check,
    and a non-finite number passes where the default is one.

    Raises:
        InitsuiteError: ``'SPEC': KEY must be RULE, got VALUE``.
    """
    if isinstance(value, list | tuple):
        items = default if isinstance(default, list | tuple) else []
        numbers = [v for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
        finite = [v for v in numbers if math.isfinite(v)]
        # the items' default: the lowest, or infinity where the default holds one
        low = math.inf if len(finite) < len(numbers) else min(finite, default=None)
        for item in value:
            check_value(spec, key, item, low)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not math.isfinite(value):
        if isinstance(default, float) and not math.isfinite(default):
            return
        raise InitsuiteError(f"{spec!r}: {key} must be a finite number, got {value!r}")
    kind = next((k for k in _KINDS if k[0].search(key.lower())), None)
    if kind is None:
        return
    _, low, high, whole = kind
    if whole and not isinstance(value, int):
        return  # a float where a count goes: the config's type check, or the constructor
    if _number(default) and default < low:
        low = 0 if default >= 0 else -math.inf
    if _number(default) and default > high:
        high = math.inf
    if not low <= value <= high:
        if (low, high) == (0, 1):
            rule = "a probability in [0, 1]"
        else:
            rule = f"{'a whole number' if whole else 'a number'} >= {low:g}"
        raise InitsuiteError(f"{spec!r}: {key} must be {rule}, got {value!r}")


_ARTICLE = {int: "an"}


def check_type(spec: str, key: str, value: Any, default: Any) -> Any:
    """An override must have its default's type (an int where a float is expected is fine; a
    list where a tuple is, each item of the type of the default's first): returned as that
    type."""
    if default is None or value is None:
        return value
    want = type(default)
    if isinstance(default, (list, tuple)) and isinstance(value, list):
        if default:
            for item in value:
                check_type(spec, f"{key}'s item", item, default[0])
        return want(value)
    ok = isinstance(value, want) and not (isinstance(value, bool) and want is not bool)
    ok = ok or (want is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise InitsuiteError(f"{spec!r}: {key} must be {_ARTICLE.get(want, 'a')} {want.__name__} "
                             f"(its default is "
                             f"{default!r}), got {value!r}")  # fmt: skip
    return value


def check_choice(spec: str, key: str, value: Any, default: Any, names: Sequence[str],
                 what: str) -> None:  # fmt: skip
    """Where the default is one of ``names`` (a library's activations), the value must be one
    too: ``'SPEC': KEY: unknown WHAT 'VALUE'; did you mean …? (choose from …)``."""
    if default in names and value not in names:
        raise InitsuiteError(f"{spec!r}: {key}: " + unknown(what, value, names))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line (a library's message over several lines joined), cut
    at ``limit`` characters."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- counting on the meta device -----------------------------------------------------------


class _Over(BaseException):
    """Raised inside the library's constructor when a cap is passed; a BaseException, so that
    a library's own ``except Exception`` does not swallow it."""

    def __init__(self, what: str, n: int) -> None:
        super().__init__(what, n)
        self.what, self.n = what, n


class _Tally:
    """The live objects registered during a build and their total size, refused past ``cap``
    (None: no cap). The running total counts each object once when registered; past the cap
    it is recounted over the objects still alive (one a module replaced and dropped no longer
    counts) before the build is stopped."""

    def __init__(self, what: str, cap: int | None, size: Callable[[Any], int]) -> None:
        self.what, self.cap, self.size = what, cap, size
        self.refs: dict[int, weakref.ref[Any]] = {}  # by id: a Tensor's == is elementwise
        self.total = 0

    def add(self, obj: Any) -> None:
        if obj is None:
            return
        ref = self.refs.get(id(obj))
        if ref is not None and ref() is obj:  # registered before (a tied weight)
            return
        self.refs[id(obj)] = weakref.ref(obj)
        self.total += self.size(obj)
        if self.cap is not None and self.total > self.cap:
            alive = {k: r for k, r in self.refs.items() if r() is not None}
            self.refs = alive
            self.total = sum(self.size(r()) for r in alive.values())
            if self.total > self.cap:
                raise _Over(self.what, self.total)


@contextlib.contextmanager
def _capped(max_parameters: int | None) -> Iterator[None]:
    """The meta device as the default device, with the parameters and modules registered
    counted and capped."""
    params = _Tally("parameters", max_parameters, lambda p: int(p.numel()))
    modules = _Tally("modules", MAX_MODULES, lambda m: 1)
    handles = [
        _module.register_module_parameter_registration_hook(lambda m, n, p: params.add(p)),
        _module.register_module_module_registration_hook(lambda m, n, s: modules.add(s)),
    ]
    try:
        with torch.device("meta"):
            yield
    finally:
        for handle in handles:
            handle.remove()


_STOP = 100  # the build stops at this many times the parameter limit


def _measure(make: Callable[[], nn.Module], max_parameters: int | None
             ) -> tuple[int, int, nn.Module]:  # fmt: skip
    """(parameters, modules, the model) of the model ``make`` builds on the meta device."""
    with _capped(None if max_parameters is None else _STOP * max_parameters):
        model = make()
    if not isinstance(model, nn.Module):
        raise TypeError(f"the constructor returned a {type(model).__name__}, not an nn.Module")
    return sum(p.numel() for p in model.parameters()), sum(1 for _ in model.modules()), model


_DEPTHS = (1, 2, 16)  # two depths for the growth per layer, a third to check the layers alike
_EXTRAPOLATE = 64  # deeper than this: counted by arithmetic first


def _by_depth(at: Callable[[int], Callable[[], nn.Module]], depth: int,
              max_parameters: int | None) -> tuple[int, int, str, str] | None:  # fmt: skip
    """(parameters, modules, how each was counted) at ``depth`` layers, from the models
    ``at(d)`` builds at :data:`_DEPTHS`; None where one of those fails or the counts do not
    grow by the same amount per layer."""
    counts = []
    for d in _DEPTHS:
        try:
            n, m, _ = _measure(at(d), max_parameters)
        except (Exception, _Over):  # the full build below says why, or passes the caps
            return None
        counts.append((n, m))
    (p1, m1), (p2, m2), (pk, mk) = counts
    k = _DEPTHS[-1]
    if pk != p1 + (k - 1) * (p2 - p1) or mk != m1 + (k - 1) * (m2 - m1):
        return None  # layers unlike each other (a mix of kinds): no arithmetic
    how = (
        f"{p1:,} at one layer and {p2 - p1:,} per further layer",
        f"{m1:,} at one layer and {m2 - m1:,} per further layer",
    )
    return p1 + (depth - 1) * (p2 - p1), m1 + (depth - 1) * (m2 - m1), *how


def count(
    make: Callable[[], nn.Module],
    spec: str,
    max_parameters: int | None,
    smaller: str,
    depth: tuple[int, Callable[[int], Callable[[], nn.Module]]] | None = None,
    keys: Callable[[], None] | None = None,
) -> tuple[int, nn.Module]:
    """The parameter count of the model ``make`` builds, and that model, built on the meta
    device under the caps (``max_parameters``, None: none; :data:`MAX_MODULES`).

    Args:
        make: builds the model.
        spec: the source, for messages.
        max_parameters: refuse a model with more parameters (None: no limit).
        smaller: an example of a smaller source, for the message.
        depth: (the model's depth, ``at(d)``: a builder of the same model at ``d`` layers),
            where the source names its depth: a model deeper than 64 layers is counted by
            arithmetic before it is built.
        keys: where the constructor refuses the overrides, raises the one line naming a key
            the model does not take (:func:`check_keys`).

    Raises:
        InitsuiteError: the model is over a limit, or its constructor raised.
    """
    if depth is not None and depth[0] > _EXTRAPOLATE:
        found = _by_depth(depth[1], depth[0], max_parameters)
        if found is not None:
            _check_size(spec, *found, max_parameters, smaller)
    try:
        n, modules, model = _measure(make, max_parameters)
    except _Over as over:  # past a cap: max_parameters is set where parameters stop it
        limit = MAX_MODULES if over.what == "modules" else max_parameters or 0
        raise _too_large(spec, over.what, over.n, limit, smaller, "", stopped=True) from None
    except Exception as exc:  # the library's own code refused these overrides
        if keys is not None:
            keys()
        raise InitsuiteError(f"{spec!r}: the constructor refused it: {one_line(exc)}") from None
    _check_size(spec, n, modules, "", "", max_parameters, smaller)
    if n <= 0:
        raise InitsuiteError(f"{spec!r} built a model without parameters")
    return n, model


def check_keys(spec: str, overrides: Iterable[str], make_default: Callable[[], nn.Module]
               ) -> None:  # fmt: skip
    """Refuse an override key the model's class does not take (its ``__init__``'s parameters,
    the class found by building the model without overrides on the meta device): ``'SPEC':
    CLASS takes no key KEY; did you mean …? (its keys: …)``. A class that takes ``**kwargs``
    or a default that does not build is left to the constructor's own message."""
    try:
        _, _, model = _measure(make_default, None)
    except (Exception, _Over):
        return
    cls = type(model)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = [k for k, p in params.items() if k != "self" and p.kind is not p.VAR_POSITIONAL]
    for key in overrides:
        if key not in takes:
            hint = did_you_mean(key, takes)
            near = f"; did you mean {hint!r}?" if hint else ""
            raise InitsuiteError(f"{spec!r}: {cls.__name__} takes no key {key!r}{near} (its "
                                 f"keys: {', '.join(takes)})")  # fmt: skip


def _check_size(spec: str, n: int, modules: int, how_n: str, how_modules: str,
                max_parameters: int | None, smaller: str) -> None:  # fmt: skip
    if max_parameters is not None and n > max_parameters:
        raise _too_large(spec, "parameters", n, max_parameters, smaller, how_n)
    if modules > MAX_MODULES:
        raise _too_large(spec, "modules", modules, MAX_MODULES, smaller, how_modules)


def _too_large(spec: str, what: str, n: int, limit: int, smaller: str, how: str,
               stopped: bool = False) -> InitsuiteError:  # fmt: skip
    """``SPEC has N parameters (…), more than the limit L: make it smaller …``; ``stopped``:
    N is where the count on the meta device was stopped."""
    has = "counted on the meta device until stopped at" if stopped else "has"
    how = f"; {how}" if how else ""
    if what == "modules":
        return InitsuiteError(
            f"{spec} {has} {n:,} modules{f' ({how[2:]})' if how else ''}, more than the "
            f"{limit:,} a probe takes: make it smaller with overrides (e.g. {smaller})"
        )
    return InitsuiteError(
        f"{spec} {has} {n:.3g} parameters ({4 * n / 1e9:.3g} GB in float32{how}), more than "
        f"the limit {limit:.3g}: make it smaller with overrides (e.g. {smaller}) or raise the "
        "limit (", Arg("max_parameters"), ")",
    )  # fmt: skip
