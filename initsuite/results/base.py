"""``Result``: the base of every Result class. A kind, its tables with their schemas, and the
one save and load of a directory written whole (``<table>.parquet`` beside ``meta.json``).

A Result class declares what it stores (:class:`Table`: file name, attribute, columns, key
columns) and inherits :meth:`Result.save` and :meth:`Result.load`; what one kind reads
differently (a legacy field, a check across its tables) goes in :meth:`Result.from_tables`.
The sweep, also written in chunks as it runs (:mod:`initsuite.results.chunks`), keeps its own
``load`` around the same pieces. Never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results import store
from initsuite.results.loading import conform_tables
from initsuite.results.reading import KINDS

__all__ = ["Result", "Table"]

R = TypeVar("R", bound="Result")


@dataclass(frozen=True)
class Table:
    """One table a kind of results directory stores.

    Attributes:
        name: its file is ``<name>.parquet``.
        columns: its columns, in order (:mod:`initsuite.results.columns`).
        keys: the columns that identify a row, checked never null on load.
        attr: the Result's attribute holding it; default ``name``.
        optional: added after the kind's first file format: a directory written before it
            lacks it and loads it empty (no rows).
        omit_empty: not written when it has no rows.
    """

    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    attr: str = ""
    optional: bool = False
    omit_empty: bool = False

    @property
    def field(self) -> str:
        """The Result's attribute holding the table."""
        return self.attr or self.name

    def empty(self) -> pd.DataFrame:
        """The table with no rows, in its columns' dtypes."""
        return C.frame(self.columns, [])


class Result:
    """What a study returns and stores: its tables (:attr:`tables`) and ``meta``.

    Subclasses are dataclasses with one field per table and ``meta``; they set :attr:`kind`
    and :attr:`tables` (the names of :data:`initsuite.results.layout.LAYOUTS` ``[kind]``).
    """

    kind: ClassVar[str]
    """What ``meta.json`` names (a key of :data:`initsuite.results.reading.KINDS`)."""
    tables: ClassVar[tuple[Table, ...]]
    """The tables stored, the first naming the kind of directory (what a directory without a
    kind in its meta.json must hold to be read as one)."""
    kind_required: ClassVar[bool] = False
    """Refuse a meta.json that does not name :attr:`kind` (kinds that always recorded it)."""
    meta: dict[str, Any]

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write each table as ``<name>.parquet`` and meta.json into ``out_dir``, all or
        nothing (:func:`initsuite.results.store.write`)."""
        return store.write(out_dir, self.stored(), self.meta, overwrite=overwrite)

    def stored(self) -> dict[str, pd.DataFrame]:
        """The tables :meth:`save` writes, by file name."""
        frames = {t.name: getattr(self, t.field) for t in self.tables}
        return {t.name: frames[t.name] for t in self.tables
                if not (t.omit_empty and frames[t.name].empty)}  # fmt: skip

    @classmethod
    def load(cls: type[R], in_dir: str | os.PathLike[str]) -> R:
        """Read a directory written by :meth:`save`, each table checked against its columns
        (:func:`initsuite.results.conform.conform`); an optional table absent loads empty.

        Raises:
            InitsuiteTypeError: ``in_dir`` is not a path.
            InitsuiteError: it is not a readable results directory of this kind.
        """
        path = store.as_path(in_dir)
        tables, meta = cls.read_whole(path)
        return cls.from_tables(cls.conform(tables, path), meta, path)

    @classmethod
    def read_whole(cls, path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        """The tables (as stored, optional ones only where present) and meta.json of the
        directory ``path`` written whole, refused when it holds another kind."""
        required = tuple(t.name for t in cls.tables if not t.optional)
        optional = tuple(t.name for t in cls.tables if t.optional)
        tables, meta = store.read(path, required, optional=optional, kind=cls.kind)
        if cls.kind_required and meta.get("kind") != cls.kind:
            raise InitsuiteError(
                f"{str(path / store.META)!r} describes {meta.get('kind')!r:.30} results, not "
                f"{KINDS[cls.kind]}"
            )
        return tables, meta

    @classmethod
    def conform(cls, tables: dict[str, pd.DataFrame], path: Path) -> dict[str, pd.DataFrame]:
        """Every table of the kind in its declared columns and dtypes, by file name (one
        absent, optional, empty); a missing or mistyped column or a null key raises naming
        the file."""
        full = {t.name: t.empty() for t in cls.tables if t.name not in tables}
        schema = {t.name: (t.columns, t.keys) for t in cls.tables}
        return conform_tables({**tables, **full}, schema, path)

    @classmethod
    def from_tables(cls: type[R], tables: dict[str, pd.DataFrame], meta: dict[str, Any],
                    path: Path) -> R:  # fmt: skip
        """The Result of the conformed ``tables`` (by file name) and ``meta`` read from
        ``path``; a kind that reads more (a legacy field, a check across tables) overrides
        this."""
        # a dataclass with one field per table and meta (the base declares no __init__)
        return cls(meta=meta, **{t.field: tables[t.name] for t in cls.tables})  # type: ignore[call-arg]
