"""A stored table read back as its declared columns and dtypes, refusing what would not
convert exactly (:func:`conform`): what every loader of a results directory runs on each table
it reads. Never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results.column_specs import SPECS
from initsuite.results.columns import NONNEGATIVE, OPTIONAL, empty

__all__ = ["conform"]


def conform(
    df: pd.DataFrame,
    columns: tuple[str, ...],
    where: str,
    keys: tuple[str, ...] = (),
    strict: bool = False,
    lacking: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """A stored table as ``columns``, each in its declared dtype, refusing what would not
    convert exactly: a missing column (an :data:`~initsuite.results.columns.OPTIONAL` one
    loads null), a value of another type (never coerced to null or truncated), a null in a
    ``keys`` column, a negative value in a :data:`~initsuite.results.columns.NONNEGATIVE` one;
    with ``strict`` (a format whose writer always writes exactly ``columns``), an optional
    column missing (but those in ``lacking``: a writer from before them, as its chunk's
    manifest records) or a column beyond them. ``where`` names the table (its file) in the
    one-line :class:`InitsuiteError`."""
    missing = [c for c in columns if c not in df.columns
               and (c not in OPTIONAL or (strict and c not in lacking))]  # fmt: skip
    foreign = [str(c) for c in df.columns if c not in columns]
    if missing:
        hint = f" (it holds {foreign}, which initsuite never writes there)" if foreign else ""
        raise InitsuiteError(
            f"{where} lacks column {missing[0]!r}{hint}: damaged, or not written by initsuite"
        )
    if strict and foreign:
        raise InitsuiteError(
            f"{where} holds column {foreign[0]!r}, which initsuite never writes there: "
            "damaged, or not written by initsuite"
        )
    frame = df.reset_index(drop=True)
    changed = {c: empty(c, len(frame)) if c not in frame.columns else _exact(frame[c], c, where)
               for c in columns
               if c not in frame.columns or str(frame[c].dtype) != SPECS[c][0]}  # fmt: skip
    frame = frame.assign(**changed)[list(columns)] if changed else frame[list(columns)]
    for c in keys:
        nulls = np.flatnonzero(frame[c].isna().to_numpy())
        if len(nulls):
            raise InitsuiteError(
                f"column {c!r} of {where} is null in row {int(nulls[0])}: every row needs its "
                "key; damaged, or not written by initsuite"
            )
    for c in NONNEGATIVE.intersection(columns):
        below = np.flatnonzero(frame[c].to_numpy(dtype=float, na_value=np.nan) < 0)
        if len(below):
            raise InitsuiteError(
                f"column {c!r} of {where} holds {frame[c].iat[int(below[0])]!r} in row "
                f"{int(below[0])}: a {c} is never below 0; damaged, or not written by initsuite"
            )
    return frame


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, (float, np.floating))


# what each declared dtype accepts of a stored value (non-null); anything else is refused
_ACCEPTS = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "int64": ("an integer", _is_int),
    "Int64": ("an integer", lambda v: _is_int(v) or (_is_number(v) and float(v).is_integer())),
    "float64": ("a number", _is_number),
    "bool": ("a boolean", lambda v: isinstance(v, (bool, np.bool_))),
}


def _exact(s: pd.Series, column: str, where: str) -> pd.Series:
    """``s`` in ``column``'s declared dtype; an error naming the column for any value that
    would not convert exactly (a string in a number column, a number in a string column)."""
    want = SPECS[column][0]
    if str(s.dtype) == want:
        return s
    if want not in _ACCEPTS:
        raise InitsuiteError(f"column {column!r} has no loader for dtype {want!r}")
    what, ok = _ACCEPTS[want]
    if want in ("int64", "bool") and s.isna().any():
        bad: Any = None
    else:
        bad = next((v for v in s.dropna() if not ok(v)), _NONE)
    if bad is _NONE:
        try:
            out = s.astype(want)
        except (TypeError, ValueError, OverflowError):
            bad = s.dropna().iloc[0]
        else:
            if int(out.isna().sum()) == int(s.isna().sum()):
                return out
            bad = s[out.isna() & s.notna()].iloc[0]
    raise InitsuiteError(
        f"column {column!r} of {where} holds {_show(bad)} ({s.dtype}), not {what}: damaged, "
        "or not written by initsuite"
    )


_NONE = object()


def _show(v: Any) -> str:
    text = "a null" if v is None or (isinstance(v, float) and v != v) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
