"""``initsuite probe``: probe a model factory under several schemes and keep the result.

:func:`probe_factory` builds a fresh model per scheme from a ``package.module:callable``
factory (plus the model's own init, ``default``), feeds each the same inputs and returns one
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean, unknown
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult
from initsuite.studies.probe import (
    DEFAULT,
    INPUT_SEED_OFFSET,
    LOSS,
    MODES,
    probe,
    seeded_global_rng,
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
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
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


@dataclass(frozen=True)
class ProbeConfig:
    """A validated probe of a model factory: one fresh model per scheme, the same inputs.

    ``schemes`` always starts with ``"default"``, the model as the factory initialised it
    (the baseline); ``factory`` is stored as ``"module:name"`` (the callable itself in
    ``_factory``). ``input_shape`` is the shape of the one input tensor passed positionally;
    with ``tokens`` it holds integer ids in ``[0, tokens)``. ``mode`` is set on each model
    (``train``: BatchNorm uses the batch's statistics and dropout is active, as in the first
    training step; ``eval``: running statistics, no dropout).
    """

    factory: str
    input_shape: tuple[int, ...]
    schemes: tuple[str, ...] = (DEFAULT,)
    tokens: int | None = None
    activation: str | None = None
    backward: bool = False
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    mode: str = "train"
    include_embeddings: bool = False
    _factory: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        shape = tuple(self.input_shape)
        if not shape:
            raise InitsuiteError("input_shape must not be empty, e.g. (16, 3, 32, 32)")
        set_("input_shape", tuple(validate.count("input_shape", n) for n in shape))
        if isinstance(self.schemes, str):
            set_("schemes", (self.schemes,))
        act = None if self.activation is None else _activations.get(self.activation)
        set_("activation", None if act is None else act.spec)
        specs = [s for s in _schemes.expand(list(self.schemes), rank=None) if s != DEFAULT]
        objs = [_schemes.get(s) for s in specs]
        for obj in objs:
            obj.resolve(act)  # gain=auto without an activation fails here, before any compute
        set_("schemes", tuple(dict.fromkeys([DEFAULT, *(o.spec for o in objs)])))
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
        # last: importing the user's module may be slow (transformers), so cheap checks go first
        factory: Any = self.factory
        if isinstance(factory, str):
            set_("_factory", load_factory(factory))
            set_("factory", factory.strip())
        elif callable(factory):
            set_("_factory", factory)
            set_("factory", _factory_name(factory))
        else:
            raise InitsuiteError(f"factory must be 'module:callable' or a callable, got "
                                 f"{type(factory).__name__}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
                if not k.startswith("_")}  # fmt: skip


def probe_factory(
    factory: str | Callable[[], nn.Module],
    input_shape: Sequence[int],
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
    progress: bool | None = None,
    timeout: float | None = None,
) -> ProbeResult:
    """Probe a fresh model from ``factory`` with its own init and with each scheme.

    Each model is built by calling ``factory()`` with torch's global RNG seeded with
    ``seed`` (forked: the caller's state is untouched), so every scheme starts from the same
    factory draw and what a scheme leaves alone (biases, norms, embeddings) is identical
    across schemes; then moved to ``device`` and ``dtype``, set to ``mode`` and probed
    (:func:`probe`) on the same inputs (:func:`make_inputs`).

    Args:
        factory: ``"package.module:callable"`` or a callable returning an ``nn.Module``.
        input_shape: shape of the model's one positional input.
        schemes: scheme specs or wildcards (any tensor rank); ``"default"``, the model's own
            init, is always probed first.
        tokens: draw integer ids in ``[0, tokens)`` instead of N(0, 1) values.
        activation, backward, seed, include_embeddings: as in :func:`probe`.
        device, dtype: where the model runs and its floating-point dtype.
        mode: ``"train"`` (default) or ``"eval"``.
        progress: show a progress bar (default: when stderr is a terminal).
        timeout: seconds allowed to importing the factory's module, and to each model
            (building it and probing it, per scheme); None (default): no limit. Needs the
            main thread (see :func:`deadline`).

    Raises:
        InitsuiteError: bad arguments; a factory that fails, calls ``sys.exit`` or returns no
            ``nn.Module``; a forward pass that fails on these inputs (chained to the model's
            exception) or calls ``sys.exit``; a timeout.
    """
    limit = check_timeout(timeout)
    with deadline(limit, f"importing the module of factory {str(factory)!r}",
                  "raise timeout"):  # fmt: skip
        cfg = _config(factory, input_shape, schemes, tokens, activation, backward, seed, device,
                      dtype, mode, include_embeddings)  # fmt: skip
    return run_probe(cfg, progress=progress, timeout=limit)


def _config(
    factory: str | Callable[[], nn.Module], input_shape: Sequence[int],
    schemes: str | Iterable[str], tokens: int | None, activation: str | None, backward: bool,
    seed: int, device: str, dtype: str, mode: str, include_embeddings: bool,
) -> ProbeConfig:  # fmt: skip
    return ProbeConfig(
        factory=factory,  # type: ignore[arg-type]  # a callable is named in __post_init__
        input_shape=tuple(input_shape),
        schemes=(schemes,) if isinstance(schemes, str) else tuple(schemes), tokens=tokens,
        activation=activation, backward=backward, seed=seed, device=device, dtype=dtype,
        mode=mode, include_embeddings=include_embeddings,
    )  # fmt: skip


def _build(cfg: ProbeConfig) -> nn.Module:
    assert cfg._factory is not None  # set by __post_init__
    device = torch.device(cfg.device)
    try:
        with seeded_global_rng(cfg.seed, [device]):
            model = cfg._factory()
    except Exception as exc:
        raise InitsuiteError(f"factory {cfg.factory!r} raised {_one_line(exc)}") from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(f"factory {cfg.factory!r} called {_exit_text(exc)}") from None
    if not isinstance(model, nn.Module):
        raise InitsuiteError(
            f"factory {cfg.factory!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    model.to(device=device, dtype=DTYPES[cfg.dtype])
    return model.train(cfg.mode == "train")


def _probe_one(cfg: ProbeConfig, model: nn.Module, x: Tensor, label: str,
               what: str) -> ProbeResult:  # fmt: skip
    """:func:`probe` one model, naming the factory when its forward or backward fails."""
    shape = ",".join(map(str, cfg.input_shape))
    try:
        return probe(model, x, scheme=None if label == DEFAULT else label,
                     activation=cfg.activation, backward=cfg.backward, seed=cfg.seed,
                     include_embeddings=cfg.include_embeddings)  # fmt: skip
    except InitsuiteError:
        raise
    except Exception as exc:  # the model's own forward or backward failed
        raise InitsuiteError(
            f"the model from {cfg.factory!r} failed on an input of shape {shape} "
            f"({what}): {_one_line(exc)}"
        ) from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(
            f"the model from {cfg.factory!r} called {_exit_text(exc)} on an input of shape "
            f"{shape} ({what})"
        ) from None


def run_probe(
    cfg: ProbeConfig, progress: bool | None = None, timeout: float | None = None
) -> ProbeResult:
    """Run a validated :class:`ProbeConfig`; ``timeout``: seconds per model (building it
    and probing it), None for no limit."""
    from tqdm.auto import tqdm

    limit = check_timeout(timeout)

    x = make_inputs(cfg.input_shape, tokens=cfg.tokens, seed=cfg.seed, device=cfg.device,
                    dtype=cfg.dtype)  # fmt: skip
    what = f"token ids in [0, {cfg.tokens})" if cfg.tokens is not None else "N(0, 1) values"
    show = sys.stderr.isatty() if progress is None else progress
    results: list[ProbeResult] = []
    started = time.perf_counter()
    with tqdm(cfg.schemes, disable=not show, unit="scheme", file=sys.stderr,
              desc="probe") as bar:  # fmt: skip
        for label in bar:
            hint = f"building and probing it for scheme {label!r}; raise timeout"
            with deadline(limit, f"the model from {cfg.factory!r}", hint):
                model = _build(cfg)
                results.append(_probe_one(cfg, model, x, label, what))
    meta = {
        "kind": "probe",
        "config": cfg.to_dict(),
        "model": results[0].meta["model"],  # every scheme's model is the factory's, redrawn
        "input": {"shape": list(cfg.input_shape), "values": what},
        "loss": LOSS,
        "environment": environment([cfg.device]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    calls = pd.concat([r.calls for r in results], ignore_index=True)
    return ProbeResult(C.coerce(calls, C.PROBE), meta)
