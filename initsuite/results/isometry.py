"""``IsometryResult``: the Jacobian spectra of the isometry study and their metadata.

Written by ``initsuite reproduce isometry`` (:func:`initsuite.studies.isometry.isometry_study`)
as ``spectra.parquet`` beside ``meta.json`` (kind ``"isometry"``). Never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results import store

__all__ = ["KIND", "IsometryResult"]

KIND = "isometry"


@dataclass
class IsometryResult:
    """What the isometry study returns.

    Attributes:
        spectra: one row per singular value of each Jacobian
            (:data:`~initsuite.results.columns.SPECTRA`).
        meta: the study's configuration and environment (``kind`` is ``"isometry"``).
    """

    spectra: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write ``spectra.parquet`` and meta.json into ``out_dir``, all or nothing."""
        return store.write(out_dir, {"spectra": self.spectra}, self.meta, overwrite=overwrite)

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> IsometryResult:
        """Read a directory written by :meth:`save`, each column checked against its schema.

        Raises:
            InitsuiteError: it is not a readable isometry study directory.
        """
        path = store.as_path(in_dir)
        tables, meta = store.read(path, ("spectra",), kind=KIND)
        if meta.get("kind") != KIND:
            raise InitsuiteError(
                f"{str(path / store.META)!r} describes {meta.get('kind')!r:.30} results, not "
                "an isometry study (initsuite reproduce isometry)"
            )
        where = repr(str(path / "spectra.parquet"))
        spectra = C.conform(tables["spectra"], C.SPECTRA, where, C.SPECTRA_KEYS)
        return cls(spectra, meta)
