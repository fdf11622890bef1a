"""The scheme registry: a decorator, a lookup, and bound schemes with their parameters.

    >>> from initsuite import schemes
    >>> schemes.list("kaiming*")
    ['kaiming_normal', 'kaiming_uniform']
    >>> w = torch.empty(256, 128)
    >>> gen = torch.Generator().manual_seed(0)
    >>> w = schemes.get("kaiming_uniform:a=0.5,mode=fan_out")(w, generator=gen)
    >>> round(w.var().item() * 256, 1)  # Var(W) · fan_out = gain² = 2 / (1 + a²)
    1.6

A scheme is a function and a :class:`~initsuite.schemes.metadata.SchemeInfo` declared beside it,
``@register(SchemeInfo(...))``. Third-party packages add schemes through the entry-point
group ``initsuite.schemes``: each entry point names a module or a function; loading it must
register the scheme(s) with :func:`register`. Entry points are loaded once, on the first
lookup.
"""

from __future__ import annotations

import builtins
import difflib
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

from torch import Tensor

from initsuite.core.catalog import ENTRY_POINT_GROUP
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.patterns import check_pattern, matches
from initsuite.core.spec import parse_spec
from initsuite.schemes.bound import Scheme
from initsuite.schemes.metadata import (
    ROLES,
    SHARED_BASES,
    TAPS,
    TORCH_LINEAR_NAMES,
    LayerContext,
    SchemeInfo,
    SharedDraw,
    from_keywords,
)

__all__ = [
    "ENTRY_POINT_GROUP", "ROLES", "SHARED_BASES", "TAPS", "TORCH_LINEAR_NAMES", "LayerContext",
    "Scheme", "SchemeInfo", "SharedDraw", "framework_names", "get", "info", "list", "matches",
    "names", "register", "unregister",
]  # fmt: skip

_REGISTRY: dict[str, SchemeInfo] = {}
_entry_points_loaded = False
_loaded_plugins: set[str] = set()


def register(
    info: SchemeInfo | str | None = None, /, **keywords: Any
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register ``fn(tensor, <params>, *, generator=None) -> tensor`` as the scheme
    that ``info`` (a :class:`~initsuite.schemes.metadata.SchemeInfo`) declares.

    The function fills ``tensor`` in place and returns it; its keyword parameters (with type
    hints and defaults) become the parameters a spec may set. It may also take keyword-only
    ``context`` (a :class:`~initsuite.schemes.metadata.LayerContext`) and ``data`` (``weight ->
    the layer's output on a batch``); :meth:`Scheme.fill` passes them. The scheme is named
    ``info.name``, or the function's name. Registering a name twice raises.

    The older form, ``register(name, family=..., variance=..., variance_fn=..., ...)``, is
    deprecated (it warns, and goes in the release after next): each keyword is the
    :class:`~initsuite.schemes.metadata.SchemeInfo` field of that name, but ``variance`` (now
    ``variance_formula``), ``variance_fn`` (``variance``), ``mean_fn`` (``mean``) and
    ``role_variance_fn`` (``role_variance``).
    """
    if isinstance(info, SchemeInfo):
        if keywords:
            raise TypeError(f"register(SchemeInfo) takes no keywords, got {sorted(keywords)}")
        declared = info
    else:
        warnings.warn(
            "register(name, family=..., variance=..., ...) is deprecated; declare the scheme "
            "with register(SchemeInfo(family=..., variance_formula=..., variance=..., ...))",
            DeprecationWarning, stacklevel=2,
        )  # fmt: skip
        declared = from_keywords(info, keywords)

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        bound = declared.bind(fn)
        if bound.name in _REGISTRY:
            raise ValueError(f"scheme {bound.name!r} is already registered")
        _REGISTRY[bound.name] = bound
        return fn

    return deco


def unregister(name: str) -> None:
    """Remove scheme ``name`` from the registry (a plugin's rollback, a test's cleanup).

    Raises:
        InitsuiteError: no scheme of that name is registered.
    """
    if name not in _REGISTRY:
        choices = sorted(_REGISTRY)
        raise InitsuiteError(unknown("scheme", name, choices, listing="initsuite schemes"))
    del _REGISTRY[name]


def _load_entry_points() -> None:
    # The flag is set only once every plugin has loaded: a broken plugin keeps raising (with
    # its name) on every lookup instead of failing once and then vanishing silently.
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.value in _loaded_plugins:
            continue
        _load_plugin(ep)
        _loaded_plugins.add(ep.value)
    _entry_points_loaded = True


def _load_plugin(ep: metadata.EntryPoint) -> None:
    """Load one entry point. If it raises (or calls ``sys.exit``), the schemes it registered
    before failing are removed again, so the next lookup names the same error instead of
    "already registered" (a retried import registers them anew)."""
    before = set(_REGISTRY)
    try:
        ep.load()
    except BaseException as exc:
        for name in set(_REGISTRY) - before:
            unregister(name)
        if isinstance(exc, SystemExit):
            why = "called sys.exit()" if exc.code is None else f"called sys.exit({exc.code!r})"
        elif isinstance(exc, Exception):  # a broken plugin must be named, not skipped
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        else:
            raise  # KeyboardInterrupt: rolled back, still an interrupt
        raise InitsuiteError(f"could not load scheme plugin {ep.name!r} ({ep.value}): {why}"
                             ) from None  # fmt: skip


def names() -> builtins.list[str]:
    """Registered scheme names, sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def list(pattern: str | None = None) -> builtins.list[str]:
    """Registered names matching a shell-style wildcard (``"kaiming*"``), sorted; ``[]``
    when a valid pattern matches nothing; every name when ``pattern`` is None.

    ``:`` separates a framework from its scheme, and wildcards do not cross it (as ``/`` in
    a path): ``"*_normal"`` and ``"*"`` match torch's vocabulary only, ``"keras:*"`` Keras'
    schemes, ``"*:he_normal"`` every framework's ``he_normal``, ``"*:*"`` every framework's.

    Raises:
        InitsuiteError: an empty pattern, or a ``[`` set left open (fnmatch would read it as
            a literal ``[`` and match nothing, silently).
    """
    if pattern is None:
        return names()
    check_pattern(pattern)
    return [n for n in names() if matches(n, pattern)]


def framework_names() -> builtins.list[str]:
    """The frameworks whose schemes are registered (``"flax"``, ``"jax"``, ``"keras"``...)."""
    return sorted({n.partition(":")[0] for n in names() if ":" in n})


def info(name: str) -> SchemeInfo:
    """The metadata of scheme ``name``."""
    _load_entry_points()
    if name not in _REGISTRY:
        raise InitsuiteError(_unknown_scheme(name)) from None
    return _REGISTRY[name]


def _unknown_scheme(name: str) -> str:
    """One line for an unknown name; a framework's names suggest from that framework's."""
    prefix, sep, _ = name.partition(":")
    if sep and prefix in framework_names():
        own = [n for n in names() if n.startswith(prefix + ":")]
        msg = unknown(f"{prefix} scheme", name, own, listing=f"initsuite schemes '{prefix}:*'")
        twin = _twin(name, own)  # torch's word for it, "keras:kaiming_normal": keras:he_normal
        if twin is not None:
            msg = (f"unknown {prefix} scheme {name!r}; did you mean {twin!r}? ({prefix}'s name "
                   f"for it; initsuite schemes '{prefix}:*' lists all)")  # fmt: skip
        return msg
    if sep:
        return f"{name!r}: " + unknown("framework", prefix, framework_names())
    return unknown("scheme", name, names(), listing="initsuite schemes")


def get(spec: str | Scheme) -> Scheme:
    """The scheme named by ``spec``: a name with optional parameters.

    >>> get("xavier_uniform:gain=auto")
    Scheme('xavier_uniform:gain=auto')
    """
    if isinstance(spec, Scheme):
        return spec
    known = framework_names()
    if isinstance(spec, str):
        _check_framework(spec, known)
    name, raw = parse_spec(spec, kind="scheme", namespaces=known)
    return Scheme(info(name), raw)


_TWINS = (
    ("kaiming", "he"),
    ("xavier", "glorot"),
    ("he", "kaiming"),
    ("glorot", "xavier"),
    ("trunc_normal", "truncated_normal"),
    ("truncated_normal", "trunc_normal"),
    ("eye", "identity"),
    ("uniform", "random_uniform"),
    ("normal", "random_normal"),
)


def _twin(name: str, own: builtins.list[str]) -> str | None:
    """The framework's name for what torch (or another framework) calls ``name``'s scheme."""
    prefix, _, local = name.partition(":")
    for theirs, ours in _TWINS:
        if local.startswith(theirs) and f"{prefix}:{ours}{local[len(theirs) :]}" in own:
            return f"{prefix}:{ours}{local[len(theirs) :]}"
    return None


def _check_framework(spec: str, known: builtins.list[str]) -> None:
    """Name a misspelt framework (``"kers:he_normal"``), which would otherwise read as a
    scheme ``kers`` with a malformed parameter ``he_normal``."""
    prefix, sep, rest = (part.strip() for part in spec.strip().partition(":"))
    local = rest.partition(":")[0]
    if not sep or prefix in known or prefix in _REGISTRY or "=" in local or "," in local:
        return
    if difflib.get_close_matches(prefix, known, n=1, cutoff=0.6) or local in _local_names():
        raise InitsuiteError(f"scheme spec {spec!r}: " + unknown("framework", prefix, known))


def _local_names() -> set[str]:
    return {n.partition(":")[2] for n in _REGISTRY if ":" in n}
