"""Every figure of a report names its quantity as the column schema does (the engine's ``std``
is post-activation, so is every label of it), and no panel, static or interactive, draws two
schemes in one colour: on the README's own example (whose kaiming_normal and xavier_uniform
once shared a blue) and on many schemes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")

from matplotlib.colors import to_hex, to_rgb

import initsuite
from initsuite.core import catalog
from initsuite.report import sweep_plan
from initsuite.report.families import MAX_LINES, family_rows, scheme_colors
from initsuite.report.interactive import lines_vs_layer, loss_lines
from initsuite.report.training import loss_curves, steps_to_threshold
from initsuite.results.columns import CELLS, LAYERS, PROBE, PROBE_BLOCKS, TIMING, TRAINING, label
from tests.test_report_layout import SCHEMES as MANY
from tests.test_report_layout import _layers

README = ["xavier_uniform", "xavier_uniform:gain=auto", "kaiming_normal"]

# each figure of a sweep's report that draws one measured column: (column, its table)
QUANTITY = {
    "std_vs_layer": ("std", LAYERS),
    "grad_std_vs_layer": ("grad_std", LAYERS),
    "weight_grad_vs_layer": ("weight_grad_norm", LAYERS),
    "cosine_vs_layer": ("cosine", LAYERS),
    "final_std_distribution": ("final_std", CELLS),
    "init_time_vs_width": ("init_ms", TIMING),
    "training_loss": ("train_loss", TRAINING),
}
# the figures that colour by scheme (the others colour by activation or by outcome)
BY_SCHEME = {"std_vs_layer", "grad_std_vs_layer", "weight_grad_vs_layer", "cosine_vs_layer",
             "init_time_vs_width", "training_loss", "training_steps"}  # fmt: skip


def _training(schemes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training study's ``training`` and ``runs`` tables, in memory: every scheme reaches
    the threshold (so each has its bar) after a few evaluated steps."""
    curves = pd.DataFrame([dict(scheme=s, activation="relu", depth=3, width=8, seed=0, step=t,
                                train_loss=2.3 / (1 + t * (k + 1)))
                           for k, s in enumerate(schemes) for t in (0, 2, 4)])  # fmt: skip
    runs = pd.DataFrame([dict(scheme=s, activation="relu", seed=0, steps=4,
                              steps_to_threshold=1 + k % 4, reached=True, diverged=False)
                         for k, s in enumerate(schemes)])  # fmt: skip
    return curves, runs


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    """The README example, small (gradients and timing added), and a training study of its
    schemes: each figure of its report as (static figure, interactive figure or None)."""
    root = tmp_path_factory.mktemp("quantities")
    initsuite.sweep(README, ["tanh", "relu"], 4, 8, seeds=1, backward=True, timing_repeats=1,
                    progress=False).save(root / "run")  # fmt: skip
    plan = sweep_plan(root / "run")
    out = {f.name: (f.draw(), f.interactive() if f.interactive else None) for f in plan.figures}
    out["text"] = (plan.text, None)
    curves, runs = _training(README)
    colors = scheme_colors(README)
    out["training_loss"] = (loss_curves(curves, 0.5, colors=colors),
                            loss_lines(curves, 0.5, colors=colors))  # fmt: skip
    out["training_steps"] = (steps_to_threshold(runs, colors), None)
    return out


def _texts(fig: Any) -> list[str]:
    """The axis labels and titles of a matplotlib figure."""
    texts = [t.get_text() for t in (fig._supylabel, fig._supxlabel, fig._suptitle) if t]
    for ax in fig.axes:
        texts += [ax.get_ylabel(), ax.get_xlabel(), ax.get_title()]
    return [t for t in texts if t]


def test_the_schema_labels_std_as_what_the_engine_measures() -> None:
    # the engine takes std of h after the activation (engine/mlp.py); the probe, of a
    # module's output, whatever the module
    assert "post-activation" in label("std") and "pre-activation" not in label("std")
    assert label("std", PROBE) == "std of the module's output"
    assert label("stream_std", PROBE_BLOCKS)
    with pytest.raises(initsuite.InitsuiteError, match="unknown column 'train_loss'"):
        label("train_loss")  # not a layers column
    with pytest.raises(initsuite.InitsuiteError, match="has no label"):
        label("seed")


def test_every_figure_names_its_quantity_as_the_schema_does(drawn: dict) -> None:
    assert set(QUANTITY) <= set(drawn)
    for name, (column, table) in QUANTITY.items():
        static, interactive = drawn[name]
        want = label(column, table)
        assert any(want in t for t in _texts(static)), (name, want, _texts(static))
        if interactive is not None:
            y = interactive.layout.yaxis.title.text
            assert y.startswith(want), (name, want, y)
            title = interactive.layout.title.text or ""
            assert "pre-activations by" not in title and "gradients w.r.t." not in title
    std = drawn["std_vs_layer"][1]
    assert std.layout.title.text.startswith(label("std"))
    text = drawn["text"][0]  # the captions say what the figures say
    for column in ("std", "grad_std", "weight_grad_norm", "cosine"):
        assert label(column).lower() in text.lower(), column


def _static_colours(fig: Any) -> list[list[str]]:
    """Per panel, the colours of its scheme lines (solid or dashed lines of several points,
    or dots; not grey, as the keys' and thresholds' lines are) and, apart, of its bars: one
    of each a scheme."""
    panels = []
    for ax in fig.axes:
        lines = [to_hex(ln.get_color()) for ln in ax.get_lines()
                 if ((ln.get_linestyle() not in (":", "None", "") and len(ln.get_xdata()) > 1)
                     or ln.get_marker() == "o")
                 and len(set(to_rgb(ln.get_color()))) > 1]  # fmt: skip
        bars = [to_hex(p.get_facecolor()) for p in ax.patches if p.get_width() > 0]
        panels += [colours for colours in (lines, bars) if colours]
    return panels


def _interactive_colours(fig: Any) -> dict[tuple[str, str], dict[str, str]]:
    """Per panel (its axes): legend group (a scheme) → colour of its measured lines."""
    panels: dict[tuple[str, str], dict[str, str]] = {}
    for t in fig.data:
        if t.legendgroup == "arch" or t.name.endswith("(theory)"):
            continue
        groups = panels.setdefault((t.xaxis, t.yaxis), {})
        assert groups.setdefault(t.legendgroup, t.line.color) == t.line.color
    return panels


def test_no_two_schemes_share_a_colour_in_a_panel_of_the_readme_example(drawn: dict) -> None:
    checked = 0
    for name, (static, interactive) in drawn.items():
        if name not in BY_SCHEME:
            continue
        for colours in _static_colours(static):
            assert len(set(colours)) == len(colours), (name, colours)
            checked += 1
        for groups in (_interactive_colours(interactive) if interactive else {}).values():
            assert len(set(groups.values())) == len(groups) == len(README), (name, groups)
            checked += 1
    assert checked >= 10


def test_no_two_schemes_share_a_colour_in_a_panel_of_many_schemes() -> None:
    names = [*catalog.families(), *MANY, "kaiming_uniform:a=0.5", "my_plugin_scheme"]
    colors = scheme_colors(names)
    assert len(set(colors.values())) == len(colors) == len(set(names))
    for row in family_rows(names):  # a static panel draws a row: distinct hues there too
        assert len(row.schemes) <= MAX_LINES
        assert len({colors[s] for s in row.schemes}) == len(row.schemes)
    assert scheme_colors(list(reversed(names))) == colors  # the same in every figure
    fig = lines_vs_layer(_layers(), colors=scheme_colors(MANY))  # every scheme in one panel
    for groups in _interactive_colours(fig).values():
        assert len(set(groups.values())) == len(groups) == len(MANY)
    _, runs = _training(MANY)
    bars = [p for p in steps_to_threshold(runs).axes[0].patches if np.isfinite(p.get_width())]
    assert len({to_hex(p.get_facecolor()) for p in bars}) == len(bars) == len(MANY)


def test_a_colour_map_missing_a_drawn_scheme_is_refused() -> None:
    with pytest.raises(initsuite.InitsuiteError, match="no colour for schemes"):
        lines_vs_layer(_layers(), colors=scheme_colors(MANY[:3]))
