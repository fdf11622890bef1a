"""User code run by a probe: a factory's module imported and its callable called, under a
time limit (SIGALRM), with its ``sys.exit`` and exceptions turned into one-line errors."""

from __future__ import annotations

import contextlib
import importlib
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean
from initsuite.studies.probe import ROOT

__all__ = [
    "check_timeout", "deadline", "exit_text", "failing_module", "load_factory", "one_line",
    "timeout_available",
]  # fmt: skip


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


def exit_text(exc: SystemExit) -> str:
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
                             f"{one_line(exc)}") from exc  # fmt: skip
    except Exception as exc:  # the user's module raised while importing
        raise InitsuiteError(f"importing {mod_name!r} for factory {text!r} failed: "
                             f"{one_line(exc)}") from exc  # fmt: skip
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(f"importing {mod_name!r} for factory {text!r} called "
                             f"{exit_text(exc)}") from None  # fmt: skip
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


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def failing_module(model: nn.Module, exc: BaseException) -> str | None:
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
