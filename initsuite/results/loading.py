"""Reading a Result's directory: its tables, each checked against the column schema, and a
stored bias read as a law's name.

What the Result classes' ``load`` share (:class:`initsuite.results.base.Result`,
:class:`~initsuite.results.sweep.SweepResult`'s chunked path). Never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from initsuite.core.bias import stored_bias_law
from initsuite.core.errors import InitsuiteError
from initsuite.results import store
from initsuite.results.conform import conform

__all__ = ["Schema", "conform_tables", "with_bias_law"]

Schema = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""Table name (its file is ``<name>.parquet``) -> (its columns, its key columns: never null)."""


def conform_tables(
    tables: Mapping[str, pd.DataFrame], schema: Schema, path: os.PathLike[str]
) -> dict[str, pd.DataFrame]:
    """Each table of ``schema`` in its declared columns and dtypes
    (:func:`~initsuite.results.conform.conform`): a missing or mistyped column, or a null key,
    raises naming the file."""
    out = {}
    for name, (cols, keys) in schema.items():
        where = repr(os.path.join(path, f"{name}.parquet"))
        out[name] = conform(tables[name], cols, where, keys)
    return out


def with_bias_law(meta: dict[str, Any], legacy: str, path: os.PathLike[str]) -> dict[str, Any]:
    """``meta`` (read from the directory ``path``) whose ``config.bias`` names its law
    (:mod:`initsuite.core.bias`); a stored bool, written before laws had names, becomes
    ``legacy`` (True) or None (False)."""
    config = meta.get("config")
    if not isinstance(config, dict) or "bias" not in config:
        return meta
    try:
        law = stored_bias_law(config["bias"], legacy)
    except InitsuiteError as exc:
        where = os.path.join(path, store.META)
        raise InitsuiteError(f"{where!r}: {exc}: damaged, or not written by initsuite") from None
    return {**meta, "config": {**config, "bias": law}}
