"""The tutorial reproduction in a sweep's report: its table of claims, its figure, its section.

A tutorial reproduction directory (``initsuite reproduce tutorial``) is read through
:mod:`initsuite.results.store` only; never imports torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.captions import figure_block
from initsuite.report.selection import levels, n_seeds, seed_band
from initsuite.report.style import (
    FLOAT_FORMAT,
    decade_ticks,
    md_table,
    need,
    new_figure,
    outside_legend,
    palette,
    style,
)
from initsuite.results import store

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TUTORIAL_FIGURE", "load_tutorial", "tutorial_section", "tutorial_std_vs_layer",
           "tutorial_table"]  # fmt: skip

TUTORIAL_FIGURE = "tutorial_std_vs_layer"

_COLUMNS = {
    "tutorial": (
        "experiment", "quantity", "tutorial", "expected", "measured_mean", "measured_sd",
        "measured_min", "measured_max", "seeds", "tolerance", "agree", "note",
    ),
    "layers": ("experiment", "seed", "layer", "std"),
}  # fmt: skip


def load_tutorial(tutorial_dir: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """The ``tutorial`` and ``layers`` tables of a tutorial reproduction directory."""
    tables, _ = store.read(tutorial_dir, tuple(_COLUMNS), kind="tutorial")
    for name, cols in _COLUMNS.items():
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise InitsuiteError(
                f"{name}.parquet in {str(tutorial_dir)!r} lacks columns {missing}: "
                "is it a tutorial reproduction directory?"
            )
    return tables


def tutorial_table(tutorial: pd.DataFrame) -> pd.DataFrame:
    """The tutorial comparison: what the tutorial says, what we measured, and whether they agree."""
    f = FLOAT_FORMAT
    measured = [
        f"{r.measured_mean:{f}} ± {r.measured_sd:{f}} "
        f"[{r.measured_min:{f}}, {r.measured_max:{f}}] over {int(r.seeds)} seeds"
        for r in tutorial.itertuples(index=False)
    ]
    return pd.DataFrame(
        {
            "experiment": tutorial["experiment"].astype(str).to_numpy(),
            "quantity": tutorial["quantity"].astype(str).to_numpy(),
            "tutorial": tutorial["tutorial"].astype(str).to_numpy(),
            "expected": [f"{x:{f}}" for x in tutorial["expected"].astype(float)],
            "measured: mean ± sd [min, max]": measured,
            "tolerance": [f"{x:{f}}" for x in tutorial["tolerance"].astype(float)],
            "agree": ["✓" if bool(a) else "✗" for a in tutorial["agree"]],
            "note": tutorial["note"].fillna("").astype(str).to_numpy(),
        }
    )


def tutorial_section(claims: pd.DataFrame, layers: pd.DataFrame | None,
                     number: int | None) -> str:  # fmt: skip
    """The "Tutorial reproduction" section.

    Args:
        claims: the reproduction's ``tutorial`` table.
        layers: its ``layers`` table (for the figure's caption).
        number: the number of its figure; None when the figure is not drawn.
    """
    agree = int(claims["agree"].astype(bool).sum())
    parts = [
        "## Tutorial reproduction\n",
        f"{agree} of {len(claims)} of the tutorial's numbers are reproduced within "
        "tolerance. *Expected* is the tutorial's number in initsuite's units (layers "
        "1-based); *measured* is the mean ± sd over seeds, with the range in brackets.\n",
        md_table(tutorial_table(claims)) + "\n",
    ]
    if number is not None and layers is not None:
        caption = (
            f"Std of each layer's output (log scale) in the tutorial's experiments: the line is "
            f"the geometric mean over {int(layers['seed'].nunique())} seeds, the band spans "
            "their minimum to maximum. Layers are 1-based; a line ends where the values stopped "
            "being finite. Dotted lines in the same colour are the mean-field prediction."
        )
        parts.append(figure_block(TUTORIAL_FIGURE, "Tutorial std by layer", caption, number))
    return "\n".join(parts)


def tutorial_std_vs_layer(tutorial_layers: pd.DataFrame) -> Figure:
    """Std (log y) vs layer for each tutorial experiment: geometric mean over seeds, min–max band,
    and the mean-field prediction dotted where the layers carry ``theory_std``.

    Args:
        tutorial_layers: the ``layers`` table of a tutorial reproduction (experiment, seed,
            layer, std, mean).
    """
    need(tutorial_layers, ("experiment", "seed", "layer", "std"), "tutorial layers")
    exps = levels(tutorial_layers["experiment"])
    band = seed_band(tutorial_layers, ["experiment", "layer"])
    with style() as sns:
        from matplotlib.lines import Line2D

        fig = new_figure(7.8, 4.2)
        ax = fig.subplots()
        colors = palette(sns, exps)
        bad = ~(np.isfinite(tutorial_layers["std"]) & (tutorial_layers["std"] > 0))
        stopped = set(tutorial_layers.loc[bad, "experiment"])
        for e, g in band.groupby("experiment", observed=True, sort=True):
            x, y = g["layer"].to_numpy(), g["geo_mean"].to_numpy()
            ax.fill_between(x, g["lo"], g["hi"], color=colors[e], alpha=0.18, lw=0)
            ax.plot(x, y, color=colors[e], lw=1.6)
            if e in stopped:
                ax.plot(x[-1], y[-1], color=colors[e], marker="x", ms=6, mew=1.6)
        if "theory_std" in tutorial_layers.columns:  # the mean-field prediction, dotted
            theory = tutorial_layers[tutorial_layers["theory_std"] > 0]
            for e, g in theory.groupby("experiment", observed=True, sort=True):
                t = g.groupby("layer")["theory_std"].first()
                ax.plot(t.index, t.to_numpy(), color=colors[e], ls=":", lw=1.0)
        ax.set_yscale("log")
        decade_ticks([ax])
        ax.set(xlabel="layer (1-based)", ylabel="std (geometric mean over seeds, log scale)")
        shown = set(band["experiment"])
        handles = [
            Line2D([], [], color=colors[e], lw=2, label=e if e in shown else f"{e} (no data)")
            for e in exps
        ]
        if stopped:
            handles.append(
                Line2D([], [], color="0.3", marker="x", ls="", label="next std not finite or 0")
            )
        outside_legend(fig, handles, "experiment")
        ax.set_title(
            f"Tutorial reproduction: std by layer; band = min–max over "
            f"{n_seeds(tutorial_layers)} seeds"
        )
    return fig
