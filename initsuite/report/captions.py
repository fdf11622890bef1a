"""The captions of a sweep report's figures: what each shows, with the sweep's own numbers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from initsuite.report.selection import deepest, diverged, ran
from initsuite.report.style import md_text
from initsuite.results.columns import label
from initsuite.results.layout import FIGURE_DIR
from initsuite.results.sweep import SweepResult

__all__ = ["CAPTIONED", "CAPTIONS", "figure_block"]


def _n(df: pd.DataFrame, col: str) -> int:
    return int(df[col].nunique())


def _upper(text: str) -> str:
    """``text`` with its first letter upper case (a label opening a sentence)."""
    return text[:1].upper() + text[1:]


def _cap_std(r: SweepResult) -> str:
    top = deepest(r.layers)
    return (
        f"{_upper(label('std'))} of each layer (log scale) for the deepest cells (depth "
        f"{int(top['depth'].max())}) at the largest width ({int(top['width'].max())}). "
        f"{_LAYOUT} Lines are the geometric mean over the "
        f"{_n(top, 'seed')} seeds of the std at each layer, taken over the seeds still running "
        "there; the band spans the seeds' minimum to maximum. A line stops where its cells "
        "diverged (× marks the last layer when every seed stopped before the last layer); "
        "zero stds (e.g. the zeros scheme) cannot be shown on a log axis. Thin dotted lines in "
        "the same colour are the mean-field prediction (`theory_std`), where it applies "
        "(centred random schemes)."
    )


_LAYOUT = (
    "One row of panels per scheme family (normal, uniform, orthogonal, structured, residual, "
    "data-dependent; a family with many schemes takes several rows), one column per "
    "activation, one line per scheme, in the scheme's colour throughout the report; with "
    "several architectures, each has its line style (key under the panels)."
)


def _cap_div(r: SweepResult) -> str:
    return (
        f"Left: for each scheme and activation, the median layer at which cells of depth "
        f"{int(r.cells['depth'].max())} diverged, over the cells that did (widths and seeds "
        "pooled); `k/n` says that only k of n cells diverged, and a grey cell with `—` that none "
        "did. Dark means early. Right: for each depth and width, the fraction of cells that "
        "diverged within their depth, pooling schemes, activations and seeds."
        + _failed_note(r.cells)
    )


def _cap_final(r: SweepResult) -> str:
    top = deepest(ran(r.cells))
    n_div = int(diverged(top).sum())
    return (
        f"log10 of the std after the last layer of each cell of depth {int(top['depth'].max())} "
        f"that did not diverge, one point per cell (seeds and widths pooled), coloured by "
        f"activation; {n_div} of {len(top)} cells diverged and are left out (the count per "
        "scheme is under its name). The dotted line marks the input's std (≈ 1, log10 = 0): "
        "points left of it lost signal, points right of it grew." + _failed_note(r.cells)
    )


def _cap_timing(r: SweepResult) -> str:
    reps = sorted(set(r.timing["repeats"].astype(int)))
    return (
        "Median time to initialise one width × width weight tensor in place, against width, on "
        "log-log axes, one row of panels per scheme family, one column per device and dtype. "
        f"Each point is the median of "
        f"{', '.join(map(str, reps))} timed repeats after warm-up; the bars span the "
        "interquartile range, centred on the median (the table stores the IQR's length). "
        "Points are nudged sideways so that bars do not overlap."
    )


def _failed_note(cells: pd.DataFrame) -> str:
    failed = int(cells["error"].notna().sum())
    return f" {failed} cells failed with an error and are left out." if failed else ""


def _cap_cosine(r: SweepResult) -> str:
    c = md_text(r.meta.get("config", {}).get("pair_cosine"))
    return (
        f"Two inputs whose cosine is {c} go through every cell beside the batch; the lines "
        f"are the {label('cosine')} at each layer (mean over seeds, band min to "
        "max) for the deepest cells at the largest width, dotted lines the mean-field c-map. "
        f"{_LAYOUT} "
        "In the ordered phase (χ₁ < 1) the cosine rises towards 1: the net forgets how its "
        "inputs differed. In the chaotic phase (χ₁ > 1) it falls to a fixed point below 1: "
        "similar inputs are pulled apart. A net can keep its variance and still be chaotic "
        "(tanh with gain 5/3)."
    )


def _cap_phase(r: SweepResult) -> str:
    width = int(r.cells["width"].max())
    stored = "xi_c" in r.phase_grid and r.phase_grid["xi_c"].notna().any()
    colour = (
        "colour is the correlation depth scale ξ_c = −1/ln χ_c in layers, χ_c = "
        "σ_w²·E[φ'(u₁)φ'(u₂)] at the correlation map's stable fixed point c* (c* = 1 in the "
        "ordered phase, where ξ_c = 1/|ln χ₁|; c* < 1 in the chaotic phase, where it is not: "
        "tanh at gain 5/3 has ξ_c = 12.1 against 1/|ln χ₁| = 5.25)"
        if stored else
        "colour is ξ₁ = 1/|ln χ₁| in layers (this directory was stored before ξ_c was: in "
        "the chaotic phase ξ₁ is not the depth at which correlations settle; rerun the sweep "
        "for ξ_c)"
    )  # fmt: skip
    return (
        "The mean-field phase diagram of each activation (Poole et al. 2016, Schoenholz et "
        f"al. 2017): {colour}; χ₁ = σ_w²·E[φ'(√q* z)²] at the fixed point q* of the variance "
        "map, and the black line is the critical line χ₁ = 1. "
        "Left of it (χ₁ < 1) distinct inputs become alike with depth and gradients vanish; "
        "right of it they decorrelate and gradients explode. Numbered points are this sweep's "
        f"schemes at width {width} (σ_w² = width · Var W, σ_b² from the bias), keyed on the "
        "right and coloured by what the sweep measured for that scheme and activation at its "
        "deepest depth (white: no divergence; red: overflow; blue: underflow; gold: mixed over "
        'seeds); above a point, "measured | predicted": the depth scale measured in the '
        "sweep (layers for the input pair's mean cosine to close 1 - 1/e of its gap to the "
        "fixed point c*) beside the ξ_c it measures. Schemes outside the plotted range (e.g. "
        "N(0, 1), σ_w² = width) are not drawn. "
        "`initsuite phase --activation NAME` prints the same numbers."
    )


def _cap_grad(r: SweepResult) -> str:
    top = deepest(r.layers)
    return (
        f"The backward pass of the deepest cells (depth {int(top['depth'].max())}, width "
        f"{int(top['width'].max())}): {label('grad_std')}, the gradient dLoss/dh_l reaching "
        "each layer's output, for Loss = Σ R ⊙ h_depth with R a fixed N(0, 1) tensor (so the "
        "output's gradient has std ≈ 1 at the right edge, and the signal runs right to left). "
        f"{_LAYOUT} Lines "
        "are geometric means over seeds, bands min to max; dotted lines the mean-field "
        "backward map, sqrt of the product of χ₁ over the layers above (Schoenholz et al. "
        "2017). A scheme whose forward pass diverged at this depth has no gradient (hidden); "
        "× marks the lowest layer reached where every seed's gradient left the range first."
    )


def _cap_wgrad(r: SweepResult) -> str:
    return (
        f"{label('weight_grad_norm')} per layer (W = W_l) for the same cells: what an "
        "optimiser step would move each layer by. A flat line means every layer learns at "
        "the same rate; a slope means the layers near one end get almost no update "
        "(vanishing) or dominate it (exploding), the chain-rule argument behind Glorot & "
        "Bengio (2010) and He et al. (2015). Dotted: mean field, batch · width² · E[g_l²] · "
        "E[φ'²] · E[h_{l-1}²]."
    )


CAPTIONS: dict[str, tuple[str, Callable[[SweepResult], str]]] = {
    "std_vs_layer": ("Std by layer", _cap_std),
    "grad_std_vs_layer": ("Gradient std by layer", _cap_grad),
    "weight_grad_vs_layer": ("Weight-gradient norm by layer", _cap_wgrad),
    "divergence_heatmap": ("Where and how often signals diverge", _cap_div),
    "final_std_distribution": ("Final std", _cap_final),
    "init_time_vs_width": ("Initialisation time", _cap_timing),
    "cosine_vs_layer": ("How two inputs' representations converge or separate", _cap_cosine),
    "phase_diagram": ("Order and chaos", _cap_phase),
}
"""Each figure of a sweep's report, in report order: its title and its caption's writer."""
CAPTIONED: tuple[str, ...] = tuple(CAPTIONS)
"""The sweep's figures, in report order."""


def figure_block(name: str, title: str, caption: str, number: int) -> str:
    """The Markdown of figure ``number``: the image ``figures/<name>.png`` and its caption
    (``title`` and ``caption`` are the report's own Markdown)."""
    return (
        f"![{title}]({FIGURE_DIR}/{name}.png)\n\n"
        f"*Figure {number}: {title}.* {caption}\n"
    )  # fmt: skip
