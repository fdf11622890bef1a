"""Reading a Result's directory: its tables, each checked against the column schema.

What every Result class's ``load`` shares (:class:`~initsuite.results.sweep.SweepResult`,
:class:`~initsuite.results.training.TrainingResult`, :class:`~initsuite.results.probe.ProbeResult`,
:class:`~initsuite.results.tutorial.TutorialResult`). Never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from initsuite.core.bias import stored_bias_law
from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results import store

__all__ = ["Schema", "conform_tables", "read_tables", "with_bias_law"]

Schema = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
"""Table name (its file is ``<name>.parquet``) -> (its columns, its key columns: never null)."""


def conform_tables(
    tables: Mapping[str, pd.DataFrame], schema: Schema, path: os.PathLike[str]
) -> dict[str, pd.DataFrame]:
    """Each table of ``schema`` in its declared columns and dtypes (:func:`columns.conform`):
    a missing or mistyped column, or a null key, raises naming the file."""
    out = {}
    for name, (cols, keys) in schema.items():
        where = repr(os.path.join(path, f"{name}.parquet"))
        out[name] = C.conform(tables[name], cols, where, keys)
    return out


def read_tables(
    in_dir: str | os.PathLike[str],
    schema: Schema,
    kind: str,
    optional: Schema | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The tables of ``schema`` and meta.json of a directory written whole by a Result's
    ``save``, each table conformed to its columns.

    Args:
        in_dir: the directory.
        schema: the tables to read; the first names the kind of directory.
        kind: what the directory holds (a key of :data:`~initsuite.results.store.KINDS`,
            ``"training"``): a directory of another kind is refused as such.
        optional: tables added after the first file format: read and conformed where
            present, empty (no rows) where a directory written before them lacks them.

    Raises:
        InitsuiteTypeError: ``in_dir`` is not a path.
        InitsuiteError: the directory holds another kind of results, or a table or
            meta.json is missing or damaged.
    """
    path = store.as_path(in_dir)
    extra = dict(optional or {})
    tables, meta = store.read(path, tuple(schema), optional=tuple(extra), kind=kind)
    empty = {name: C.frame(cols, []) for name, (cols, _) in extra.items() if name not in tables}
    return conform_tables({**tables, **empty}, {**schema, **extra}, path), meta


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
