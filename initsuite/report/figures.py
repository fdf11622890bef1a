"""Writing a report's figures: a matplotlib ``Figure`` as a PNG, atomically, marked as
initsuite's (:func:`write_figure`), behind the output check when a user names the path
(:func:`save_figure`). The figures themselves: :mod:`initsuite.report.layer_figures`,
:mod:`initsuite.report.cell_figures` and each section's module.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from initsuite.core.errors import InitsuiteError
from initsuite.core.version import __version__
from initsuite.results import store
from initsuite.results.layout import PNG_SOFTWARE
from initsuite.results.outputs import check_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["check_png_name", "save_figure", "write_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, then close it; ``path`` passes the
    output check first (:func:`~initsuite.results.outputs.check_output`: an existing file is
    replaced only if initsuite wrote it, nothing goes inside a results directory)."""
    return write_figure(fig, check_png_name(check_output(path, "file")), dpi)


def check_png_name(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """Return ``path``; raise unless it names a PNG (``.png``): a figure is written as PNG,
    and ``x.pdf`` holding PNG bytes would mislead every viewer."""
    if isinstance(path, (str, os.PathLike)) and not isinstance(os.fspath(path), bytes):
        suffix = Path(os.fspath(path)).suffix
        if suffix.lower() != ".png":
            raise InitsuiteError(
                f"figure path {os.fspath(path)!r} ends {suffix or 'with no suffix'!r}: a figure "
                "is written as PNG; name a file ending .png"
            )
    return path


def write_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (legends kept: tight bbox), then close it;
    no output check (a report's staging directory is checked whole). The PNG's ``Software``
    text marks it as initsuite's (:func:`~initsuite.results.ownership.written_by_initsuite`)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white",
                    metadata={"Software": f"{PNG_SOFTWARE} {__version__}"})  # fmt: skip
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)  # a no-op unless the caller made ``fig`` through pyplot
    return store.atomic_write_bytes(path, buf.getvalue())
