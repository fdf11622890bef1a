"""``initsuite probe``: probe a model factory under several schemes and keep the result.

:func:`probe_factory` builds a fresh model per scheme from a model source (``timm:resnet50``,
``hf:gpt2,n_layer=24``: :mod:`initsuite.studies.sources`) or a ``package.module:callable``
factory (plus the model's own init, ``as_built``), feeds each the same inputs and returns one
:class:`~initsuite.results.probe.ProbeResult`; :func:`initsuite.studies.probe.probe` does
the probing itself.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean, unknown
from initsuite.engine.reinit import seeded_global_rng
from initsuite.results.probe import ProbeResult
from initsuite.schemes import conventions as _conventions
from initsuite.studies import sources as _sources
from initsuite.studies.probe import (
    AUTOCAST,
    DEFAULT,
    INPUT_SEED_OFFSET,
    LOSS,
    MODES,
    ROOT,
    check_autocast,
    probe,
)

__all__ = [
    "ProbeConfig", "check_timeout", "deadline", "load_factory", "make_inputs", "probe_factory",
    "run_probe", "timeout_available",
]  # fmt: skip


# --- user code: exits and hangs --------------------------------------------------------------


class _TimedOut(BaseException):
    """Raised by the alarm inside user code. A BaseException, like KeyboardInterrupt, so that
    the user's own ``except Exception`` cannot swallow it."""


def check_timeout(timeout: float | None) -> float | None:
    """``timeout`` as a positive finite number of seconds, or None (no limit)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InitsuiteTypeError(
            f"timeout must be a number of seconds > 0 or None, got {type(timeout).__name__}"
        )
    if not (math.isfinite(timeout) and timeout > 0):
        raise InitsuiteError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    return float(timeout)


def timeout_available() -> bool:
    """Whether :func:`deadline` works here: SIGALRM exists and this is the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deadline(seconds: float | None, what: str, hint: str = "") -> Iterator[None]:
    """Raise ``InitsuiteError("WHAT did not finish within N s (HINT)")`` if the block runs
    longer than ``seconds`` (None: no limit).

    SIGALRM through ``signal.setitimer``, so only in the main thread of a platform that has
    it (else an error saying the timeout is unavailable). The handler and any timer already
    set are restored after, the timer with what was left of it. The alarm interrupts Python
    code and sleeps; a single long call into C (one huge matmul) ends before it is seen.
    """
    if seconds is None:
        yield
        return
    if not timeout_available():
        raise InitsuiteError(
            "timeout is unavailable here (SIGALRM, in the main thread): pass timeout=None"
        )

    def on_alarm(signum: int, frame: object) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    old_delay, old_interval = signal.getitimer(signal.ITIMER_REAL)
    try:
        try:
            # armed inside the try: an alarm due at once (timeout=1e-9) is caught here too
            signal.setitimer(signal.ITIMER_REAL, seconds)
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)  # disarmed first: no alarm after this
    except _TimedOut:
        hint = f" ({hint})" if hint else ""
        raise InitsuiteError(f"{what} did not finish within {seconds:g} s{hint}") from None
    finally:
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:  # the caller's timer goes on, with what was left (at least 1 µs)
            left = max(old_delay - (time.monotonic() - started), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def _exit_text(exc: SystemExit) -> str:
    """``sys.exit(3)``, ``sys.exit()``, ``sys.exit('message')``, as the user wrote it."""
    return "sys.exit()" if exc.code is None else f"sys.exit({exc.code!r})"


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """The callable named by ``"package.module:attribute"`` (dots after the colon reach
    nested attributes, e.g. ``"models:Zoo.resnet"``)."""
    text = str(spec).strip()
    mod_name, sep, attr = text.partition(":")
    if not sep or not mod_name or not attr:
        raise InitsuiteError(
            f"factory {text!r} must be 'package.module:callable', e.g. 'mymodels:resnet'"
        )
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (mod_name + ".").startswith(exc.name + "."):
            raise InitsuiteError(
                f"cannot import module {mod_name!r} of factory {text!r}: no module named "
                f"{exc.name!r} (is its folder on PYTHONPATH?)"
            ) from None
        raise InitsuiteError(f"importing {mod_name!r} for factory {text!r} failed: "
                             f"{_one_line(exc)}") from exc  # fmt: skip
    except Exception as exc:  # the user's module raised while importing
        raise InitsuiteError(f"importing {mod_name!r} for factory {text!r} failed: "
                             f"{_one_line(exc)}") from exc  # fmt: skip
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(f"importing {mod_name!r} for factory {text!r} called "
                             f"{_exit_text(exc)}") from None  # fmt: skip
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            owner = ".".join([mod_name, *attr.split(".")[:i]])
            msg = f"factory {text!r}: {owner} has no attribute {part!r}"
            hint = did_you_mean(part, [n for n in dir(obj) if not n.startswith("_")])
            raise InitsuiteError(msg + (f"; did you mean {hint!r}?" if hint else ""))
        obj = getattr(obj, part)
    if not callable(obj):
        raise InitsuiteError(
            f"factory {text!r} is a {type(obj).__name__}, not a callable that returns an nn.Module"
        )
    return obj


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def make_inputs(
    shape: Sequence[int],
    *,
    tokens: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
) -> Tensor:
    """N(0, 1) inputs of ``shape`` (drawn in float32 and cast to ``dtype``, so every dtype
    sees the same numbers to rounding), or with ``tokens`` integer ids uniform in
    ``[0, tokens)``; from a generator seeded with ``seed + INPUT_SEED_OFFSET``."""
    gen = torch.Generator(device=device).manual_seed(seed + INPUT_SEED_OFFSET)
    size = tuple(int(n) for n in shape)
    if tokens is not None:
        return torch.randint(0, tokens, size, generator=gen, device=device)
    x = torch.randn(size, generator=gen, device=device, dtype=torch.float32)
    return x.to(DTYPES[parse_dtype(dtype)])


def _factory_name(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", None) or "?"
    return f"{module}:{getattr(factory, '__qualname__', type(factory).__name__)}"


_BASELINE = (DEFAULT, "default")  # "default": its name before 0.2


def _check_schemes(schemes: str | Iterable[str], activation: str | None) -> tuple[str, ...]:
    """``as_built`` first, then each scheme (canonical spec, wildcards expanded) or
    convention, once; every scheme resolved for ``activation`` before any compute."""
    items = [schemes] if isinstance(schemes, str) else list(schemes)
    act = None if activation is None else _activations.get(activation)
    out: list[str] = [DEFAULT]
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name in _BASELINE:
            continue
        if isinstance(name, str) and name in _conventions.CONVENTIONS:
            out.append(name)
            continue
        for spec in _schemes.expand([name], rank=None):
            obj = _schemes.get(spec)
            obj.resolve(act)  # gain=auto without an activation fails here, before any compute
            out.append(obj.spec)
    return tuple(dict.fromkeys(out))


def _check_autocast(autocast: str | Iterable[str | None]) -> tuple[str, ...]:
    """Each precision once, in the order given (None: float32)."""
    items = [autocast] if isinstance(autocast, str) or autocast is None else list(autocast)
    if not items:
        raise InitsuiteError(f"autocast needs at least one precision of {', '.join(AUTOCAST)}")
    return tuple(dict.fromkeys(check_autocast(a) for a in items))


@dataclass(frozen=True)
class _Variant:
    """One model of a probe: a factory or source (with its grid's values) and its input."""

    name: str
    build: Callable[[], nn.Module] | None
    input_shape: tuple[int, ...]
    tokens: int | None
    values: dict[str, Any]
    source: dict[str, Any] | None


@dataclass(frozen=True)
class ProbeConfig:
    """A validated probe of a model factory: one fresh model per scheme, the same inputs.

    ``factory`` is a model source (``hf:gpt2,n_layer=24``, ``timm:resnet50``: see
    :mod:`initsuite.studies.sources`) or a ``package.module:callable``; stored as the
    source's canonical spec or ``"module:name"`` (the callable itself in ``_factory``).
    ``schemes`` always starts with ``"as_built"`` (alias ``"default"``), the model as its
    library or factory initialised it (the baseline); the others are scheme specs, wildcards
    or framework conventions (``"flax"``). ``input_shape`` is the shape of the one input
    tensor passed positionally; None: inferred from a source (``batch`` examples of its image
    size, or of 128 tokens). With ``tokens`` (inferred for text models) it holds integer ids
    in ``[0, tokens)``. ``mode`` is set on each model (``train``: BatchNorm uses the batch's
    statistics and dropout is active, as in the first training step; ``eval``: running
    statistics, no dropout). ``max_parameters`` refuses a source larger than that (None: no
    limit). ``autocast`` lists the precisions each model is probed at (``float32``: no
    autocast; ``bfloat16``, ``float16``: the forward under ``torch.autocast``). ``vary``
    sweeps a source's overrides: ``(("n_layer", (6, 12, 24)),)`` probes one model per point
    of the grid (:func:`~initsuite.studies.sources.parse_vary` takes the CLI's
    ``n_layer=6,12,24`` or a mapping); ``models`` then lists them, each as its spec and the
    values it took.
    """

    factory: str
    input_shape: tuple[int, ...] | None = None
    schemes: tuple[str, ...] = (DEFAULT,)
    tokens: int | None = None
    activation: str | None = None
    backward: bool = False
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    mode: str = "train"
    include_embeddings: bool = False
    batch: int = 2
    max_parameters: int | None = _sources.MAX_PARAMETERS
    source: dict[str, Any] | None = None
    autocast: tuple[str, ...] = ("float32",)
    vary: _sources.Axes = ()
    models: tuple[dict[str, Any], ...] = ()
    _factory: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    _variants: tuple[_Variant, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            if not shape:
                raise InitsuiteError("input_shape must not be empty, e.g. (16, 3, 32, 32)")
            set_("input_shape", tuple(validate.count("input_shape", n) for n in shape))
        set_("batch", validate.count("batch", self.batch))
        if self.max_parameters is not None:
            set_("max_parameters", validate.count("max_parameters", self.max_parameters))
        set_("schemes", _check_schemes(self.schemes, self.activation))
        act = None if self.activation is None else _activations.get(self.activation)
        set_("activation", None if act is None else act.spec)
        if self.tokens is not None:  # the vocabulary size
            set_("tokens", validate.count("tokens", self.tokens))
        set_("seed", validate.seed(self.seed))
        if self.mode not in MODES:
            raise InitsuiteError(unknown("mode", self.mode, MODES))
        for name in ("backward", "include_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise InitsuiteError(f"{name} must be True or False, got {getattr(self, name)!r}")
        set_("dtype", parse_dtype(self.dtype))
        set_("device", check_device(self.device))
        set_("autocast", _check_autocast(self.autocast))
        set_("vary", _sources.parse_vary(self.vary) if self.vary else ())
        if self.vary and not _sources.is_source(self.factory):
            raise InitsuiteError(
                f"vary needs a model by name (hf:gpt2, timm:resnet50, torchvision:resnet18), "
                f"whose overrides it sets; factory {str(self.factory)!r} has none"
            )
        # last: importing the user's module may be slow (transformers), so cheap checks go first
        factory: Any = self.factory
        if _sources.is_source(factory):
            # the base model is not built when it is varied: only its grid is (each checked)
            src = _sources.parse(factory, None if self.vary else self.max_parameters)
            set_("_factory", src.build)
            set_("factory", src.spec)
            set_("source", dict(_sources.describe(src)))
            grid = _sources.grid(src, self.vary, self.max_parameters) if self.vary else [(src, {})]
            set_("_variants", tuple(
                _Variant(v.spec, v.build, self.input_shape or v.input_shape(self.batch),
                         v.tokens if self.tokens is None else self.tokens, values,
                         dict(_sources.describe(v)))
                for v, values in grid))  # fmt: skip
            if self.input_shape is None:
                set_("input_shape", src.input_shape(self.batch))
            if self.tokens is None:
                set_("tokens", src.tokens)
        elif isinstance(factory, str):
            set_("_factory", load_factory(factory))
            set_("factory", factory.strip())
        elif callable(factory):
            set_("_factory", factory)
            set_("factory", _factory_name(factory))
        else:
            raise InitsuiteError(f"factory must be a model source ('hf:gpt2'), "
                                 f"'module:callable' or a callable, got "
                                 f"{type(factory).__name__}")  # fmt: skip
        if self.input_shape is None:
            raise InitsuiteError(f"input_shape is needed for factory {self.factory!r} (only a "
                                 "model source, e.g. timm:resnet50, has one to infer)")  # fmt: skip
        if not self._variants:
            set_("_variants", (_Variant(self.factory, self._factory, self.input_shape,
                                        self.tokens, {}, self.source),))  # fmt: skip
        set_("models", tuple({"model": v.name, "base": self.factory, "values": dict(v.values),
                              "input_shape": list(v.input_shape)}
                             for v in self._variants))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
               if not k.startswith("_")}  # fmt: skip
        out["vary"] = {k: list(v) for k, v in self.vary}
        return out


def probe_factory(
    factory: str | Callable[[], nn.Module],
    input_shape: Sequence[int] | None = None,
    *,
    schemes: str | Iterable[str] = (),
    tokens: int | None = None,
    activation: str | None = None,
    backward: bool = False,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    mode: str = "train",
    include_embeddings: bool = False,
    batch: int = 2,
    max_parameters: int | None = _sources.MAX_PARAMETERS,
    autocast: str | Iterable[str] = "float32",
    vary: Iterable[str] | Mapping[str, Iterable[Any]] = (),
    progress: bool | None = None,
    timeout: float | None = None,
) -> ProbeResult:
    """Probe a fresh model from ``factory`` with its own init and with each scheme.

    Each model is built by ``factory`` with torch's global RNG seeded with ``seed`` (forked:
    the caller's state is untouched), so every scheme starts from the same draw and what a
    scheme leaves alone (biases, norms, embeddings) is identical across schemes; then moved
    to ``device`` and ``dtype``, set to ``mode`` and probed (:func:`probe`) on the same
    inputs (:func:`make_inputs`).

    Args:
        factory: a model source (``"timm:resnet50"``, ``"hf:gpt2,n_layer=24"``: see
            :mod:`initsuite.studies.sources`), ``"package.module:callable"``, or a callable
            returning an ``nn.Module``.
        input_shape: shape of the model's one positional input; None: inferred from a
            source (``batch`` images of its size, or ``batch`` × 128 token ids).
        schemes: scheme specs, wildcards (any tensor rank) or conventions (``"flax"``);
            ``"as_built"``, the model's own init, is always probed first.
        tokens: draw integer ids in ``[0, tokens)`` instead of N(0, 1) values (a text
            source's vocabulary by default).
        activation, backward, seed, include_embeddings: as in :func:`probe`.
        device, dtype: where the model runs and its floating-point dtype.
        mode: ``"train"`` (default) or ``"eval"``.
        batch: examples in an inferred input.
        max_parameters: refuse a source with more parameters (None: no limit); each model of
            a ``vary`` grid is checked.
        autocast: a precision or several (``("float32", "bfloat16")``): each model is probed
            at each, the forward pass under ``torch.autocast`` (``float32``: none).
        vary: a sweep of a source's overrides, ``{"n_layer": [6, 12, 24]}`` or the CLI's
            ``["n_layer=6,12,24", "n_embd=128,256"]``: one model per point of the grid, in
            one table (its ``model`` column names each: ``hf:gpt2,n_layer=6``).
        progress: show a progress bar (default: when stderr is a terminal).
        timeout: seconds allowed to importing the factory's module, and to each model
            (building it and probing it, per scheme); None (default): no limit. Needs the
            main thread (see :func:`deadline`).

    Raises:
        InitsuiteError: bad arguments (an unknown model, override key or scheme); a factory
            that fails, calls ``sys.exit`` or returns no ``nn.Module``; a forward pass that
            fails on these inputs (chained to the model's exception) or calls ``sys.exit``;
            a timeout.
    """
    limit = check_timeout(timeout)
    what = (
        f"importing the library of {str(factory)!r} and counting its model"
        if _sources.is_source(factory)
        else f"importing the module of factory {str(factory)!r}"
    )
    with deadline(limit, what, "raise timeout"):
        cfg = ProbeConfig(
            factory=factory,  # type: ignore[arg-type]  # a callable is named in __post_init__
            input_shape=None if input_shape is None else tuple(input_shape),
            schemes=(schemes,) if isinstance(schemes, str) else tuple(schemes), tokens=tokens,
            activation=activation, backward=backward, seed=seed, device=device, dtype=dtype,
            mode=mode, include_embeddings=include_embeddings, batch=batch,
            max_parameters=max_parameters,
            autocast=(autocast,) if isinstance(autocast, str) else tuple(autocast),
            vary=vary if isinstance(vary, Mapping) else tuple(vary),  # type: ignore[arg-type]
        )  # fmt: skip
    return run_probe(cfg, progress=progress, timeout=limit)


def _build(cfg: ProbeConfig, variant: _Variant) -> nn.Module:
    assert variant.build is not None  # set by __post_init__
    device = torch.device(cfg.device)
    try:
        with seeded_global_rng(cfg.seed, [device]):
            model = variant.build()
    except InitsuiteError:
        raise
    except Exception as exc:
        raise InitsuiteError(f"factory {variant.name!r} raised {_one_line(exc)}") from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(f"factory {variant.name!r} called {_exit_text(exc)}") from None
    if not isinstance(model, nn.Module):
        raise InitsuiteError(
            f"factory {variant.name!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    model.to(device=device, dtype=DTYPES[cfg.dtype])
    return model.train(cfg.mode == "train")


def _what(variant: _Variant) -> str:
    """The values of a variant's input, in words."""
    if variant.tokens is not None:
        return f"token ids in [0, {variant.tokens})"
    return "N(0, 1) values"


def _failing_module(model: nn.Module, exc: BaseException) -> str | None:
    """``'name' (Type)`` of the innermost module of ``model`` whose code was running when
    ``exc`` was raised (read from the traceback, so probing costs nothing for it); None when
    no module's code is in it (autograd's backward, say)."""
    names = {id(m): (name or ROOT, type(m).__name__) for name, m in model.named_modules()}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            found = names[id(owner)]
    return None if found is None else f"{found[0]!r} ({found[1]})"


def _probe_one(cfg: ProbeConfig, variant: _Variant, model: nn.Module, x: Tensor, label: str,
               precision: str) -> ProbeResult:  # fmt: skip
    """:func:`probe` one model, naming the model, scheme and precision when its forward or
    backward fails."""
    shape = ",".join(map(str, variant.input_shape))
    where = f"scheme {label!r}" + ("" if precision == "float32" else f", autocast {precision}")
    try:
        return probe(model, x, scheme=None if label == DEFAULT else label,
                     activation=cfg.activation, backward=cfg.backward, seed=cfg.seed,
                     include_embeddings=cfg.include_embeddings, autocast=precision,
                     name=variant.name)  # fmt: skip
    except InitsuiteError:
        raise
    except Exception as exc:  # the model's own forward or backward failed
        module = _failing_module(model, exc)
        raise InitsuiteError(
            f"the model from {variant.name!r} failed on an input of shape {shape} "
            f"({_what(variant)}; {where})"
            + (f" in module {module}" if module else "")
            + f": {_one_line(exc)}"
        ) from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(
            f"the model from {variant.name!r} called {_exit_text(exc)} on an input of shape "
            f"{shape} ({where})"
        ) from None


def run_probe(
    cfg: ProbeConfig, progress: bool | None = None, timeout: float | None = None
) -> ProbeResult:
    """Run a validated :class:`ProbeConfig`: for each model (one, or each point of its
    ``vary`` grid), each autocast precision and each scheme, a fresh model probed on that
    model's inputs; ``timeout``: seconds per model (building it and probing it), None for no
    limit."""
    from tqdm.auto import tqdm

    limit = check_timeout(timeout)
    show = sys.stderr.isatty() if progress is None else progress
    results: list[ProbeResult] = []
    started = time.perf_counter()
    passes = [(v, p, s) for v in cfg._variants for p in cfg.autocast for s in cfg.schemes]
    inputs: dict[str, Tensor] = {}
    with tqdm(passes, disable=not show, unit="pass", file=sys.stderr, desc="probe") as bar:
        for variant, precision, label in bar:
            if variant.name not in inputs:  # one input per model, the same for every pass
                inputs = {variant.name: make_inputs(
                    variant.input_shape, tokens=variant.tokens, seed=cfg.seed,
                    device=cfg.device, dtype=cfg.dtype)}  # fmt: skip
            hint = f"building and probing it for scheme {label!r}; raise timeout"
            with deadline(limit, f"the model from {variant.name!r}", hint):
                model = _build(cfg, variant)
                results.append(_probe_one(cfg, variant, model, inputs[variant.name], label,
                                          precision))  # fmt: skip
    first = cfg._variants[0]
    per_model = len(cfg.autocast) * len(cfg.schemes)
    models = [{**m, "parameters": r.meta["model"]["parameters"], "input_values": _what(v)}
              for m, v, r in zip(cfg.models, cfg._variants, results[::per_model],
                                 strict=True)]  # fmt: skip
    source = {"source": first.source} if first.source else {}
    meta = {
        "kind": "probe",
        "config": cfg.to_dict(),
        # every scheme's model is the factory's, redrawn
        "model": {**results[0].meta["model"], **source},
        "models": models,
        "input": {"shape": list(first.input_shape), "values": _what(first)},
        "loss": LOSS,
        "environment": environment([cfg.device]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ProbeResult.concat(results, meta)
