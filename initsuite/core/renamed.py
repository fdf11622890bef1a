"""Keywords renamed by the API rule (docs/api-shape.md), kept for one release under their old
names: a call that uses one warns (``DeprecationWarning``) and runs as if it used the new name.

    >>> @renamed(out="out_dir")
    ... def save(*, out_dir=None):
    ...     return out_dir
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     save(out="runs/a")
    'runs/a'
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from initsuite.core.errors import InitsuiteTypeError

__all__ = ["renamed"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept each old keyword name (``out=``) as its new one (``out_dir=``), with a
    ``DeprecationWarning`` naming the new one; giving both is refused in one line.

    The wrapped function's signature (``inspect.signature``) shows the new names only.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise InitsuiteTypeError(
                        f"{fn.__name__}() got {old}= and {new}=: {old} is {new}'s old name, "
                        f"give {new} alone"
                    )
                warnings.warn(
                    f"{fn.__name__}({old}=...) is deprecated; use {new}=... (the old name goes "
                    "in the next release)",
                    DeprecationWarning, stacklevel=2,
                )  # fmt: skip
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco
