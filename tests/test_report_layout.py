"""The per-layer figures stay readable with many schemes: at most eight scheme lines a panel,
one colour per scheme across figures, architecture as line style (never in a label), and no
title, legend or panel drawn over another (checked on the rendered Agg canvas)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("seaborn")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from initsuite.report.layer_figures import std_vs_layer
from initsuite.report.phase import cosine_vs_layer

# 24 schemes of six families, as a default study names them (spec strings included)
SCHEMES = [
    "normal", "lecun_normal", "xavier_normal", "kaiming_normal", "trunc_normal",
    "variance_scaling", "uniform", "xavier_uniform", "kaiming_uniform", "torch_default",
    "lecun_uniform", "orthogonal", "orthogonal_householder", "delta_orthogonal", "eye",
    "zero", "zeros", "ones", "constant:val=0.01", "sparse", "fixup", "skipinit", "rezero",
    "lsuv",
]  # fmt: skip
ACTS = ["relu", "tanh"]
ARCHS = ["mlp", "resmlp:branch=2,scale=1"]
DEPTH = 6
MAX_LINES = 8


def _layers() -> pd.DataFrame:
    """A sweep-like ``layers`` table: every scheme × activation × arch × 2 seeds, depth 6,
    width 16, with forward, backward and cosine columns and their theory."""
    rng = np.random.default_rng(0)
    rows = []
    keys = itertools.product(SCHEMES, ACTS, ARCHS, (0, 1), range(1, DEPTH + 1))
    for k, (scheme, act, arch, seed, layer) in enumerate(keys):
        slope = 0.3 * ((k // (2 * DEPTH)) % 7 - 3)  # lines that differ by scheme and arch
        std = float(np.exp(slope * layer + 0.05 * rng.standard_normal()))
        rows.append(dict(
            arch=arch, scheme=scheme, activation=act, depth=DEPTH, width=16, batch=16,
            seed=seed, device="cpu", dtype="float32", layer=layer, std=std,
            theory_std=np.exp(slope * layer), cosine=float(np.tanh(0.2 * layer)),
            theory_cosine=float(np.tanh(0.2 * layer)), grad_std=1 / std,
            weight_grad_norm=2 / std, theory_grad_std=np.nan,
            theory_weight_grad_norm=np.nan,
        ))  # fmt: skip
    df = pd.DataFrame(rows)
    for c in ("arch", "scheme", "activation", "device", "dtype"):
        df[c] = df[c].astype("string")
    return df


FIGURES: dict[str, Callable[[pd.DataFrame], Any]] = {
    "std": std_vs_layer,
    "grad_std": lambda df: std_vs_layer(df, quantity="grad_std"),
    "weight_grad_norm": lambda df: std_vs_layer(df, quantity="weight_grad_norm"),
    "cosine": cosine_vs_layer,
}


@pytest.fixture(scope="module")
def drawn() -> dict[str, Any]:
    """Each figure of the synthetic table, drawn on the Agg canvas."""
    layers = _layers()
    out = {}
    for name, draw in FIGURES.items():
        fig = draw(layers)
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        out[name] = fig
    return out


def _scheme_lines(ax: Any) -> list[Any]:
    """The lines of ``ax`` that are schemes' data: solid or dashed, not dotted theory lines,
    not the × markers of a stopped line."""
    return [
        ln for ln in ax.get_lines()
        if ln.get_linestyle() not in (":", "None", "") and len(ln.get_xdata()) > 1
    ]  # fmt: skip


def _legends(fig: Any) -> list[Any]:
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def _overlap(a: Any, b: Any) -> bool:
    """Whether two display boxes overlap by more than a pixel each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1


@pytest.mark.parametrize("name", FIGURES)
def test_at_most_eight_scheme_lines_per_panel(drawn: dict[str, Any], name: str) -> None:
    counts = [len(_scheme_lines(ax)) for ax in drawn[name].axes]
    assert max(counts) <= MAX_LINES, counts
    assert sum(counts) == len(SCHEMES) * len(ACTS) * len(ARCHS)  # every line drawn once


@pytest.mark.parametrize("name", FIGURES)
def test_title_legends_and_panels_do_not_overlap(drawn: dict[str, Any], name: str) -> None:
    fig = drawn[name]
    r = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(r)
    legends = [leg.get_window_extent(r) for leg in _legends(fig)]
    panels = [ax.get_window_extent(r) for ax in fig.axes]
    assert legends
    for box in legends + panels:
        assert not _overlap(title, box), (title, box)
    for leg, ax in itertools.product(legends, panels):
        assert not _overlap(leg, ax), (leg, ax)
    for a, b in itertools.combinations(legends, 2):
        assert not _overlap(a, b), (a, b)
    texts = [t for t in (fig._supxlabel, fig._supylabel) if t is not None]
    texts += [ax.xaxis.label for ax in fig.axes if ax.get_xlabel()]
    for text, leg in itertools.product(texts, legends):  # axis labels too
        assert not _overlap(text.get_window_extent(r), leg), (text.get_text(), leg)


@pytest.mark.parametrize("name", FIGURES)
def test_no_legend_label_folds_in_the_architecture(drawn: dict[str, Any], name: str) -> None:
    labels = [t.get_text() for leg in _legends(drawn[name]) for t in leg.get_texts()]
    assert not [t for t in labels if " @ " in t]
    assert all(a in labels for a in ARCHS)  # the architectures' own legend
    assert {s for s in SCHEMES if s in labels} == set(SCHEMES)


def _scheme_colors(fig: Any) -> dict[str, str]:
    """Scheme → colour as the figure's legends show it; one colour a scheme in a figure."""
    colors: dict[str, str] = {}
    for leg in _legends(fig):
        for handle, text in zip(leg.legend_handles, leg.get_texts(), strict=True):
            if text.get_text() in SCHEMES:
                c = to_hex(handle.get_color())
                assert colors.setdefault(text.get_text(), c) == c
    return colors


def test_each_scheme_keeps_one_colour_in_every_figure(drawn: dict[str, Any]) -> None:
    maps = {name: _scheme_colors(fig) for name, fig in drawn.items()}
    first = maps["std"]
    assert set(first) == set(SCHEMES)
    for name, colors in maps.items():
        assert colors == first, name


def test_colours_are_distinct_within_each_panel(drawn: dict[str, Any]) -> None:
    for fig in drawn.values():
        for ax in fig.axes:
            lines = _scheme_lines(ax)
            colours = {to_hex(ln.get_color()) for ln in lines}
            assert len(colours) == len(lines) / len(ARCHS)  # each scheme once per arch


def test_report_of_a_multi_arch_sweep_draws_arch_as_line_style(tmp_path: Any) -> None:
    """Through the report's own plan: a sweep over two archs labels no figure's legend
    ``scheme @ arch`` (the tables may)."""
    import initsuite
    from initsuite.report import sweep_plan

    res = initsuite.sweep(["kaiming_normal", "fixup"], "relu", 3, 8, archs=["mlp", "resmlp"],
                          timing=False)  # fmt: skip
    plan = sweep_plan(res.save(tmp_path / "r"))
    drawn = {f.name: f.draw() for f in plan.figures if f.name.endswith("_vs_layer")}
    assert {"std_vs_layer", "cosine_vs_layer"} <= set(drawn)
    for name, fig in drawn.items():
        FigureCanvasAgg(fig)
        fig.canvas.draw()
        labels = [t.get_text() for leg in _legends(fig) for t in leg.get_texts()]
        assert "kaiming_normal" in labels and "fixup" in labels, (name, labels)
        assert not [t for t in labels if " @ " in t], (name, labels)


def test_timing_figure_uses_the_same_colours(drawn: dict[str, Any]) -> None:
    from initsuite.report.cell_figures import init_time_vs_width

    timing = pd.DataFrame([
        dict(scheme=s, width=w, device="cpu", dtype="float32", init_ms=0.01 * w,
             init_ms_iqr=0.001, forward_ms=0.1, forward_ms_iqr=0.01, repeats=7)
        for s in SCHEMES for w in (16, 64)
    ])  # fmt: skip
    fig = init_time_vs_width(timing)
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    assert _scheme_colors(fig) == _scheme_colors(drawn["std"])
    assert max(len(_scheme_lines(ax)) for ax in fig.axes) <= MAX_LINES
