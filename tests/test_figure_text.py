"""A ``$`` in a stored name is drawn as written: no mathtext in a legend, a title or a tick
label (``a$b$c`` is no formula, and ``$^$`` or ``$\\foo$`` would make drawing raise), while the
log axes keep matplotlib's own mathtext tick labels."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from initsuite.report.cell_figures import divergence_heatmap, init_time_vs_width
from initsuite.report.training import steps_to_threshold

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NAMES = ["a$b$c", "$\\foo$", "$^$", "x$\\frac{1$"]


@pytest.fixture(scope="module")
def figures() -> dict[str, Figure]:
    """Figures drawn with these names as schemes and activations: a legend, titles and log
    axes; tick labels set by initsuite; a seaborn heatmap, which measures its tick labels while
    it draws them."""
    timing = pd.DataFrame([{"scheme": s, "width": w, "device": "cpu", "dtype": "float32",
                            "init_ms": 0.01 * w, "init_ms_iqr": 0.001 * w}
                           for s in NAMES for w in (8, 64)])  # fmt: skip
    runs = pd.DataFrame([{"scheme": s, "activation": "$act$", "seed": seed, "steps": 10,
                          "steps_to_threshold": 5.0 if seed else None, "reached": bool(seed),
                          "diverged": False} for s in NAMES for seed in (0, 1)])  # fmt: skip
    cells = pd.DataFrame([{"scheme": s, "activation": a, "depth": 4, "width": 8, "seed": 0,
                           "device": "cpu", "dtype": "float32", "final_std": 1.0,
                           "divergence_layer": 2 if a == "$act$" else None, "error": None}
                          for s in NAMES for a in ("$act$", "x$y")])  # fmt: skip
    # the heatmap raised while it was drawn, before any figure was saved
    return {"timing": init_time_vs_width(timing), "steps": steps_to_threshold(runs),
            "heatmap": divergence_heatmap(cells)}  # fmt: skip


def test_names_with_dollars_draw_as_written(figures: dict[str, Figure]) -> None:
    from matplotlib.text import Text

    timing, steps, heatmap = figures["timing"], figures["steps"], figures["heatmap"]
    for fig in (timing, steps, heatmap):  # raised ValueError from matplotlib's mathtext parser
        fig.savefig(io.BytesIO(), format="png", dpi=20)
    legend = timing.axes[0].get_legend()
    texts = legend.get_texts()
    assert sorted(t.get_text() for t in texts) == sorted(NAMES)
    assert not any(t.get_parse_math() for t in texts)
    ax = steps.axes[0]
    ticks = ax.get_yticklabels()
    assert sorted(t.get_text() for t in ticks) == sorted(NAMES)
    assert not any(t.get_parse_math() for t in ticks)
    title = [t for t in steps.findobj(Text) if t.get_text() == "$act$"]
    assert ax.get_title(loc="left") == "$act$" and not title[0].get_parse_math()
    ax = heatmap.axes[0]
    for ticks, names in ((ax.get_yticklabels(), NAMES), (ax.get_xticklabels(), ["$act$", "x$y"])):
        assert sorted(t.get_text() for t in ticks) == sorted(names)
        assert not any(t.get_parse_math() for t in ticks)


def test_log_axes_keep_their_mathtext_tick_labels(figures: dict[str, Figure]) -> None:
    figures["timing"].savefig(io.BytesIO(), format="png", dpi=20)
    ax = figures["timing"].axes[0]
    labels = [t for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(t.get_text().startswith("$") and t.get_parse_math() for t in labels)
