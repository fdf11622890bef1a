"""The report's text: metadata, how to read it, figure captions and tables, as Markdown.

Takes the tables of a sweep (and optionally of a tutorial reproduction) and returns a string;
writing files is :func:`initsuite.report.write_report`'s job. Never imports torch or seaborn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.report.figures import deepest, diverged, levels, ran
from initsuite.results.columns import DIVERGENCE_KINDS
from initsuite.results.outputs import FIGURE_DIR
from initsuite.results.sweep import SweepResult

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison

__all__ = [
    "CAPTIONED",
    "FIGURE_DIR",
    "TUTORIAL_FIGURE",
    "render",
    "summary_table",
    "timing_table",
    "tutorial_table",
]

_FLOAT = ".3g"


# --- tables ----------------------------------------------------------------------------------


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (scheme, activation) at the deepest depth, pooling all other cell keys.

    Columns: ``cells`` (count), ``failed`` (cells with an error), ``frac_diverged`` (diverged
    within depth / cells that ran), ``median_div_layer`` (over diverged cells; NaN if none),
    ``div_kinds`` (distinct kinds, comma-separated), ``median_final_std`` (over cells that ran,
    an overflow counting as +inf) and ``median_growth`` (median of ``growth_per_layer``).
    """
    top = deepest(cells)
    rows = []
    for (scheme, act), g in top.groupby(["scheme", "activation"], observed=True, sort=True):
        ok = ran(g)
        div = diverged(ok)
        overflow = (ok["divergence_kind"] == "overflow").fillna(False).astype(bool)
        final = ok["final_std"].astype(float).where(~overflow, np.inf)
        kinds = [k for k in DIVERGENCE_KINDS if k in set(ok["divergence_kind"].dropna())]
        rows.append(
            {
                "scheme": scheme,
                "activation": act,
                "cells": len(g),
                "failed": len(g) - len(ok),
                "frac_diverged": float(div.mean()) if len(ok) else np.nan,
                "median_div_layer": ok["divergence_layer"].dropna().astype(float).median(),
                "div_kinds": ",".join(kinds),
                "median_final_std": final.median() if len(ok) else np.nan,
                "median_growth": ok["growth_per_layer"].astype(float).median(),
            }
        )
    cols = [
        "scheme", "activation", "cells", "failed", "frac_diverged", "median_div_layer",
        "div_kinds", "median_final_std", "median_growth",
    ]  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=cols)


def timing_table(timing: pd.DataFrame) -> pd.DataFrame:
    """The timing rows sorted by device, dtype, scheme and width, with readable headers."""
    out = timing.sort_values(["device", "dtype", "scheme", "width"], kind="stable")
    return out.rename(
        columns={
            "init_ms": "init ms (median)",
            "init_ms_iqr": "init IQR ms",
            "forward_ms": "forward ms (median)",
            "forward_ms_iqr": "forward IQR ms",
        }
    ).reset_index(drop=True)


def tutorial_table(tutorial: pd.DataFrame) -> pd.DataFrame:
    """The tutorial comparison: what the tutorial says, what we measured, and whether they agree."""
    measured = [
        f"{r.measured_mean:{_FLOAT}} ± {r.measured_sd:{_FLOAT}} "
        f"[{r.measured_min:{_FLOAT}}, {r.measured_max:{_FLOAT}}] over {int(r.seeds)} seeds"
        for r in tutorial.itertuples(index=False)
    ]
    return pd.DataFrame(
        {
            "experiment": tutorial["experiment"].astype(str).to_numpy(),
            "quantity": tutorial["quantity"].astype(str).to_numpy(),
            "tutorial": tutorial["tutorial"].astype(str).to_numpy(),
            "expected": [f"{x:{_FLOAT}}" for x in tutorial["expected"].astype(float)],
            "measured: mean ± sd [min, max]": measured,
            "tolerance": [f"{x:{_FLOAT}}" for x in tutorial["tolerance"].astype(float)],
            "agree": ["✓" if bool(a) else "✗" for a in tutorial["agree"]],
            "note": tutorial["note"].fillna("").astype(str).to_numpy(),
        }
    )


def _md(df: pd.DataFrame) -> str:
    """``df`` as a pipe table: floats to 3 significant digits, pipes and newlines escaped."""
    clean = df.copy()
    for c in clean.columns:
        if clean[c].dtype == object or pd.api.types.is_string_dtype(clean[c]):
            clean[c] = [
                "" if v is None or v is pd.NA else str(v).replace("|", r"\|").replace("\n", " ")
                for v in clean[c]
            ]
        elif pd.api.types.is_float_dtype(clean[c]) or pd.api.types.is_extension_array_dtype(
            clean[c]
        ):
            values = clean[c].astype(float)
            if values.isna().any():  # tabulate prints NaN as "nan"; None gets missingval
                clean[c] = pd.Series([None if np.isnan(v) else v for v in values], dtype=object)
    return clean.to_markdown(index=False, floatfmt=_FLOAT, missingval="—")


# --- captions --------------------------------------------------------------------------------


def _n(df: pd.DataFrame, col: str) -> int:
    return int(df[col].nunique())


def _cap_std(r: SweepResult) -> str:
    top = deepest(r.layers)
    return (
        f"Post-activation std of each layer (log scale) for the deepest cells (depth "
        f"{int(top['depth'].max())}) at the largest width ({int(top['width'].max())}); one panel "
        f"per activation, one line per scheme. Lines are the geometric mean over the "
        f"{_n(top, 'seed')} seeds of the std at each layer, taken over the seeds still running "
        "there; the band spans the seeds' minimum to maximum. A line stops where its cells "
        "diverged (× marks the last layer when every seed stopped before the last layer); "
        "zero stds (e.g. the zeros scheme) cannot be shown on a log axis. Thin dotted lines in "
        "the same colour are the mean-field prediction (`theory_std`), where it applies "
        "(centred random schemes)."
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
        f"log-log axes, one panel per device and dtype. Each point is the median of "
        f"{', '.join(map(str, reps))} timed repeats after warm-up; the bars span the "
        "interquartile range, centred on the median (the table stores the IQR's length). "
        "Points are nudged sideways so that bars do not overlap."
    )


def _cap_tutorial(tl: pd.DataFrame) -> str:
    return (
        f"Std of each layer's output (log scale) in the tutorial's experiments: the line is the "
        f"geometric mean over {_n(tl, 'seed')} seeds, the band spans their minimum to maximum. "
        "Layers are 1-based; a line ends where the values stopped being finite. Dotted lines "
        "in the same colour are the mean-field prediction."
    )


def _failed_note(cells: pd.DataFrame) -> str:
    failed = int(cells["error"].notna().sum())
    return f" {failed} cells failed with an error and are left out." if failed else ""


def _cap_cosine(r: SweepResult) -> str:
    c = r.meta.get("config", {}).get("pair_cosine")
    return (
        f"Two inputs whose cosine is {c} go through every cell beside the batch; the lines "
        "are the cosine of their pre-activations at each layer (mean over seeds, band min to "
        "max) for the deepest cells at the largest width, dotted lines the mean-field c-map. "
        "In the ordered phase (χ₁ < 1) the cosine rises towards 1: the net forgets how its "
        "inputs differed. In the chaotic phase (χ₁ > 1) it falls to a fixed point below 1: "
        "similar inputs are pulled apart. A net can keep its variance and still be chaotic "
        "(tanh with gain 5/3)."
    )


def _cap_jacobian(r: SweepResult) -> str:
    return (
        "Singular values of the input–output Jacobian J = W_L D_{L-1} ⋯ D_1 W_1 of the "
        "tutorial's MLP at width 256 (2 seeds, float64), for orthogonal and Gaussian weights "
        "at each activation's gain, at depths 4 and 32 (`initsuite.jacobian.isometry_study`). "
        "A net is dynamically isometric when the spectrum is a spike at 0 (all singular "
        "values 1): exactly so for orthogonal linear nets at any depth; Gaussian weights "
        "spread it, more with depth (variance of the squared singular values ≈ depth); ReLU "
        "zeroes about half the directions at every layer (exact zeros are not drawn; values "
        "below 1e-4 pile up at the left edge), "
        "so it is never isometric (Saxe et al. 2013, Pennington et al. 2017). The sweep's "
        "own spectra are summarised in its `jac_*` columns (`--jacobian`)."
    )


def _cap_phase(r: SweepResult) -> str:
    width = int(r.cells["width"].max())
    return (
        "The mean-field phase diagram of each activation (Poole et al. 2016, Schoenholz et "
        "al. 2017): colour is the depth scale ξ = 1/|ln χ₁| in layers, χ₁ = σ_w²·E[φ'(√q* z)²] "
        "at the fixed point q* reached from q = 1; the black line is the critical line χ₁ = 1. "
        "Left of it (χ₁ < 1) distinct inputs become alike with depth and gradients vanish; "
        "right of it they decorrelate and gradients explode. Numbered points are this sweep's "
        f"schemes at width {width} (σ_w² = width · Var W, σ_b² from the bias), keyed on the "
        "right and coloured by what the sweep measured for that scheme and activation at its "
        "deepest depth (white: no divergence; red: overflow; blue: underflow; gold: mixed over "
        "seeds); the number above a point is the depth scale measured in the sweep (layers for "
        "the input pair's mean cosine to close 1 - 1/e of its gap to the fixed point c*), to "
        "set beside the colour's ξ. Schemes outside the plotted range (e.g. N(0, 1), "
        "σ_w² = width) are not drawn. "
        "`initsuite phase --activation NAME` prints the same numbers."
    )


def _cap_grad(r: SweepResult) -> str:
    top = deepest(r.layers)
    return (
        f"The backward pass of the deepest cells (depth {int(top['depth'].max())}, width "
        f"{int(top['width'].max())}): std of dLoss/dh_l, the gradient reaching each layer's "
        "output, for Loss = Σ R ⊙ h_depth with R a fixed N(0, 1) tensor (so the output's "
        "gradient has std ≈ 1 at the right edge, and the signal runs right to left). Lines "
        "are geometric means over seeds, bands min to max; dotted lines the mean-field "
        "backward map, sqrt of the product of χ₁ over the layers above (Schoenholz et al. "
        "2017). A scheme whose forward pass diverged at this depth has no gradient (hidden); "
        "× marks the lowest layer reached where every seed's gradient left the range first."
    )


def _cap_wgrad(r: SweepResult) -> str:
    return (
        "Frobenius norm of dLoss/dW_l per layer for the same cells: what an optimiser step "
        "would move each layer by. A flat line means every layer learns at the same rate; "
        "a slope means the layers near one end get almost no update (vanishing) or dominate "
        "it (exploding), the chain-rule argument behind Glorot & Bengio (2010) and He et al. "
        "(2015). Dotted: mean field, batch · width² · E[g_l²] · E[φ'²] · E[h_{l-1}²]."
    )


_CAPTIONS: dict[str, tuple[str, Callable[[SweepResult], str]]] = {
    "std_vs_layer": ("Std by layer", _cap_std),
    "grad_std_vs_layer": ("Gradient std by layer", _cap_grad),
    "weight_grad_vs_layer": ("Weight-gradient norm by layer", _cap_wgrad),
    "divergence_heatmap": ("Where and how often signals diverge", _cap_div),
    "final_std_distribution": ("Final std", _cap_final),
    "init_time_vs_width": ("Initialisation time", _cap_timing),
    "cosine_vs_layer": ("How two inputs' representations converge or separate", _cap_cosine),
    "phase_diagram": ("Order and chaos", _cap_phase),
    "jacobian_spectra": ("Dynamical isometry", _cap_jacobian),
}
CAPTIONED: tuple[str, ...] = tuple(_CAPTIONS)
"""The sweep's figures, in report order."""
TUTORIAL_FIGURE = "tutorial_std_vs_layer"
TRAINING_FIGURES: tuple[str, str] = ("training_loss", "training_steps")


def _figure(name: str, title: str, caption: str, number: int) -> str:
    return (
        f"![{title}]({FIGURE_DIR}/{name}.png)\n\n"
        f"*Figure {number}: {title}.* {caption}\n"
    )  # fmt: skip


# --- metadata --------------------------------------------------------------------------------


def _join(values: Iterable[Any]) -> str:
    return ", ".join(f"`{v}`" for v in values) or "—"


def _meta_section(r: SweepResult) -> str:
    env: Mapping[str, Any] = r.meta.get("environment", {}) or {}
    cfg: Mapping[str, Any] = r.meta.get("config", {}) or {}
    cells = r.cells
    gpus = env.get("gpus") or []
    gpu = ", ".join(f"{g.get('name')} ({g.get('device')})" for g in gpus) or "none used"
    cuda = f" (CUDA {env['cuda']})" if env.get("cuda") else ""
    cpu = env.get("cpu", "unknown")
    if env.get("cpu_count"):
        cpu += f", {env['cpu_count']} logical cores"
    lines = [
        "## Run",
        "",
        f"- **Date (UTC):** {env.get('utc_time', 'unknown')}",
        f"- **Versions:** initsuite {env.get('initsuite', '?')}, torch {env.get('torch', '?')}"
        f"{cuda}, Python {env.get('python', '?')}",
        f"- **CPU:** {cpu}; torch threads: {env.get('torch_threads', 'unknown')}",
        f"- **GPU:** {gpu}",
        f"- **Platform:** {env.get('platform', 'unknown')}",
        f"- **Git commit:** {env.get('git_commit') or 'unknown (no git commit found)'}",
    ]
    if "sweep_seconds" in r.meta:
        lines.append(
            f"- **Run time:** {r.meta['sweep_seconds']} s sweep, "
            f"{r.meta.get('timing_seconds', '?')} s timing, {len(cells)} cells"
        )

    def pick(key: str, col: str | None = None) -> Any:
        if key in cfg:
            return cfg[key]
        return levels(cells[col]) if col and col in cells.columns else "unknown"

    def listed(key: str, col: str) -> str:
        v = pick(key, col)
        return _join(v) if isinstance(v, list) else str(v)

    config = [
        ("architectures", listed("archs", "arch") if "arch" not in cfg else str(cfg["arch"])),
        ("schemes", listed("schemes", "scheme")),
        ("activations", listed("activations", "activation")),
        ("depths", listed("depths", "depth")),
        ("widths", listed("widths", "width")),
        ("batch", listed("batch", "batch")),
        ("seeds", listed("seeds", "seed")),
        ("devices", listed("devices", "device")),
        ("dtypes", listed("dtypes", "dtype")),
        ("bias", str(pick("bias"))),
        ("explode_at (× input std)", str(cfg.get("explode_at") or "not set")),
        ("vanish_at (× input std)", str(cfg.get("vanish_at") or "not set")),
        (
            "timing repeats",
            str(cfg.get("timing_repeats", "—")) if cfg.get("timing", True) else "off",
        ),
    ]
    table = pd.DataFrame(config, columns=["setting", "value"])
    return "\n".join(lines) + "\n\n### Configuration\n\n" + _md(table) + "\n"


_HOW_TO_READ = """\
## How to read this

Each cell is an MLP of `depth` Linear(width, width) layers, each followed by the activation,
fed an input x ~ N(0, 1) of shape (batch, width), with every weight drawn by the scheme from
the cell's seed. **std** is the standard deviation of a layer's post-activation output over all
its batch × width values; the input's std is about 1, so a well-initialised network keeps std
near a constant. A cell *diverges* at the first layer where
**overflow** (the output holds inf or NaN; its std is recorded as NaN),
**underflow** (std below the dtype's smallest normal number, `torch.finfo(dtype).tiny`,
including exactly 0), **explode** (std above `explode_at` × input std, if set) or
**vanish** (std below `vanish_at` × input std, if set) happens; the cell stops there, so
deeper layers have no rows. **growth_per_layer** is (std_k / input std)^(1/k) at the last
finite layer k, the geometric mean of the per-layer std ratio: 1 preserves the signal, above
1 it grows and below 1 it shrinks by that factor per layer. A cell of smaller depth is the
exact prefix of the deepest one with the same other settings, so per-layer figures use the
deepest cells only.
"""


def _theory_section(result: SweepResult) -> str:
    """Theory vs measurement at the deepest depth: the across-seed spread of log final std
    beside the finite-width prediction, and the cells where theory and measurement disagree
    by more than that spread."""
    from initsuite.theory.tables import spread

    if "theory_final_std" not in result.cells.columns:
        return ""
    table = spread(result.cells)
    lines = ["## Theory vs measurement\n"]
    if table.empty:
        return lines[0] + "\nNo cell without divergence to compare.\n"
    deep = table[table["depth"] == table["depth"].max()]
    finite = deep[deep["predicted_log_std_sd"].notna() & (deep["seeds"] > 1)]
    if not finite.empty:
        show = finite[["scheme", "activation", "width", "seeds", "log_std_sd",
                       "predicted_log_std_sd"]].rename(columns={
            "log_std_sd": "measured sd of log final std",
            "predicted_log_std_sd": "predicted (Hanin & Rolnick)"})  # fmt: skip
        lines += [
            f"### Finite width: spread over seeds (depth {int(deep['depth'].max())})\n",
            _md(show.reset_index(drop=True)) + "\n",
            "Mean-field theory is the infinite-width limit. At finite width the log of the "
            "output's std spreads across seeds with a variance that grows like depth / width: "
            "about 5·L/(4n) for ReLU nets and 2·L/(4n) for linear ones, for one input (Hanin & "
            "Rolnick 2018; the log of a std is half the log of a squared norm). A batch pools "
            "inputs, which narrows the spread of linear nets below that. One seed's final std "
            "is one draw from this spread: compare schemes over several seeds.\n",
        ]
    bad = table[table["disagree"]]
    lines.append("### Where theory and measurement disagree\n")
    if bad.empty:
        lines.append(
            "Every cell that ran without diverging has a mean log final std within twice the "
            "finite-width spread of the mean-field value (less its log-normal bias).\n"
        )
    else:
        cols = ["scheme", "activation", "depth", "width", "dtype", "seeds", "log_std_mean",
                "expected_log_std", "log_std_sd", "predicted_log_std_sd"]  # fmt: skip
        lines += [
            _md(bad[cols].head(40).reset_index(drop=True)) + "\n",
            f"{len(bad)} configuration(s) whose mean log final std (natural log, over seeds) "
            "is further than twice the spread (predicted where known, else measured) from the "
            "mean-field value less its log-normal bias (`expected_log_std`)"
            + (" (first 40 shown)" if len(bad) > 40 else "")
            + ". Typical causes: finite width (deep, narrow nets), finite precision "
            "(values near the dtype's limits), or an assumption that fails (e.g. GELU and SiLU "
            "at their variance gain sit on a repelling fixed point: see `initsuite gains`).\n",
        ]
    return "\n".join(lines)


def _geo_mean(s: pd.Series) -> float:
    x = s.astype(float)
    x = x[(x > 0) & np.isfinite(x)]
    return float(np.exp(np.log(x).mean())) if len(x) else float("nan")


def gradient_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Backward statistics at the deepest depth per (scheme, activation): cells with a
    backward pass, geometric-mean input gradient std measured and predicted (over the same
    cells), median
    weight-gradient ratio (largest / smallest layer), and backward divergences."""
    top = deepest(ran(cells))
    rows = []
    for (scheme, act), g in top.groupby(["scheme", "activation"], observed=True, sort=True):
        has = g[g["input_grad_std"].notna() | g["grad_divergence_layer"].notna()]
        if has.empty:
            continue
        x = has["input_grad_std"].astype(float)
        x = x[(x > 0) & np.isfinite(x)]  # the cells whose measurement and theory pair up
        kinds = sorted(set(has["grad_divergence_kind"].dropna().astype(str)))
        div = has["grad_divergence_layer"].dropna()
        rows.append({
            "scheme": scheme, "activation": act, "cells": len(has),
            "input grad std": _geo_mean(x),
            "theory": _geo_mean(has.loc[x.index, "theory_input_grad_std"]),
            "weight-grad ratio": float(has["weight_grad_ratio"].astype(float).median()),
            "backward diverged": f"{len(div)}/{len(has)}" + (f" ({','.join(kinds)})"
                                                           if kinds else ""),
            "median layer": float(div.median()) if len(div) else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _gradient_section(result: SweepResult) -> str:
    cells = result.cells
    if "input_grad_std" not in cells.columns or not (
        cells["input_grad_std"].notna().any() or cells["grad_divergence_layer"].notna().any()
    ):
        return ""
    table = gradient_table(cells)
    depth = int(cells["depth"].max())
    return (
        "## Gradients\n\n" + _md(table) + "\n\n"
        f"The backward pass of the cells of depth {depth} whose forward pass stayed in range "
        "(`--backward`), pooling widths and seeds. *Input grad std* is the geometric mean "
        "over cells of the std of dLoss/dx for Loss = Σ R ⊙ h_depth (R ~ N(0, 1), so the "
        "output's gradient has std ≈ 1): the net's end-to-end backward gain, beside the "
        "mean-field value (*theory*, the square root of the product of every layer's χ₁). "
        "*Weight-grad ratio* is the median over cells of the largest over the smallest "
        "layer's ‖dLoss/dW‖ (1: every layer learns alike; inf: a gradient left the range). "
        "*Backward diverged* counts cells whose gradient overflowed or underflowed walking "
        "back from the output, at the median layer given.\n"
    )


def jacobian_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Jacobian spectra (``--jacobian``) at the largest width per (scheme, activation,
    depth): cells with a spectrum, mean over them of the mean and variance of the squared
    singular values, median smallest singular value and condition number."""
    c = cells[cells["jac_sv2_mean"].notna()]
    c = c[c["width"] == c["width"].max()]
    g = c.groupby(["scheme", "activation", "depth"], observed=True, sort=True)
    return g.agg(
        cells=("seed", "size"),
        sv2_mean=("jac_sv2_mean", "mean"),
        sv2_var=("jac_sv2_var", "mean"),
        sv_min=("jac_sv_min", "median"),
        condition=("jac_condition", "median"),
    ).reset_index()


def _jacobian_section(result: SweepResult) -> str:
    cells = result.cells
    if "jac_sv2_mean" not in cells.columns or not cells["jac_sv2_mean"].notna().any():
        return ""
    names = {"sv2_mean": "mean σ²", "sv2_var": "var σ²", "sv_min": "median σ_min",
             "condition": "median condition"}  # fmt: skip
    table = _md(jacobian_table(cells).rename(columns=names))
    width = int(cells.loc[cells["jac_sv2_mean"].notna(), "width"].max())
    text = (
        f"Singular values σ of each cell's input–output Jacobian (`--jacobian`) at width "
        f"{width}, one row per scheme, activation and depth: the mean and variance of σ² "
        "(averaged over the cells), the median smallest σ and condition number σ_max/σ_min. "
        "Dynamical isometry is var σ² ≈ 0 with mean σ² ≈ 1: exact for orthogonal linear "
        "nets; Gaussian weights give var σ² ≈ depth in linear nets; ReLU nets are never "
        "isometric (σ_min ≈ 0, infinite condition).\n"
    )
    return f"## Jacobian spectra\n\n{table}\n\n{text}"


def _first_activation(result: SweepResult) -> str:
    acts = result.meta.get("config", {}).get("activations") or ["?"]
    return str(acts[0])


def _draws_note(result: SweepResult) -> str:
    """How the weights were drawn: shared (paired comparisons) or one draw per scheme."""
    config = result.meta.get("config", {})
    if not config.get("shared", False):
        return (
            "Every scheme drew its own weights from the seed (`shared=False`), so two "
            "schemes' cells with the same seed are independent samples.\n"
        )
    half = [d for d in config.get("dtypes", []) if d in ("float16", "bfloat16")]
    note = (
        "Schemes that are a scaling of one base draw (the N(0, 1) family: normal, "
        "xavier_normal, kaiming_normal, lecun_normal, orthogonal; the U(-1, 1) family: "
        "uniform, xavier_uniform, kaiming_uniform, lecun_uniform, torch_default) were served "
        "from one draw per seed, width and layer (common random numbers). Each cell's weights "
        "are its scheme's own draw from the seed, to rounding; comparisons between schemes "
        "of one family are **paired**: with the same seed they differ only by the scheme, "
        "which removes the seed-to-seed noise from their differences."
    )
    if half:
        note += f" Cells in {', '.join(half)} drew every scheme on its own."
    return note + "\n"


# --- the report ------------------------------------------------------------------------------


def label_archs(result: SweepResult) -> SweepResult:
    """With several architectures in one sweep, ``scheme`` becomes ``scheme @ arch`` in the
    cells and layers, so that figures and tables never pool two architectures."""
    cells = result.cells
    if "arch" not in cells.columns or cells["arch"].nunique() <= 1:
        return result
    pairs = zip(cells["scheme"].astype(str), cells["arch"].astype(str), strict=True)
    if all(s.endswith(f" @ {a}") for s, a in pairs):  # labelled already
        return result

    def relabel(df: pd.DataFrame) -> pd.DataFrame:
        label = df["scheme"].astype(str) + " @ " + df["arch"].astype(str)
        return df.assign(scheme=label.astype("string"))

    return SweepResult(relabel(result.cells), relabel(result.layers), result.timing,
                       result.meta)  # fmt: skip


def render(
    result: SweepResult,
    figures: Sequence[str] = (),
    tutorial: pd.DataFrame | None = None,
    tutorial_layers: pd.DataFrame | None = None,
    title: str = "initsuite sweep report",
    training: Any = None,
    comparison: Comparison | None = None,
) -> str:
    """The report as Markdown.

    Args:
        result: the sweep's tables and metadata.
        figures: names of the figures written to ``figures/<name>.png``, embedded in this
            order with captions (``tutorial_std_vs_layer`` goes in the tutorial section).
        tutorial: the ``tutorial`` table of a tutorial reproduction; adds its section.
        tutorial_layers: its ``layers`` table (for the caption of its figure).
        training: a :class:`~initsuite.training.TrainingResult`; adds its section (figures
            ``training_loss`` and ``training_steps`` when listed in ``figures``).
        title: the first heading.
        comparison: this run against an earlier one (:func:`initsuite.compare.compare`);
            adds a "Compared with" section after the timing.
    """
    for name in figures:
        if name not in _CAPTIONS and name not in (TUTORIAL_FIGURE, *TRAINING_FIGURES):
            raise InitsuiteError(
                unknown("figure", name, [*_CAPTIONS, TUTORIAL_FIGURE, *TRAINING_FIGURES])
            )
    result = label_archs(result)
    parts = [f"# {title}\n", _meta_section(result), _HOW_TO_READ, _draws_note(result)]
    number = 0
    parts.append("## Figures\n")
    for name in figures:
        if name in _CAPTIONS:
            number += 1
            heading, caption = _CAPTIONS[name]
            parts.append(_figure(name, heading, caption(result), number))
    if number == 0:
        parts.append("No figures: no cell produced data to plot.\n")

    parts.append("## Summary at the deepest depth\n")
    summary = summary_table(result.cells)
    parts.append(
        _md(
            summary.rename(
                columns={
                    "frac_diverged": "fraction diverged",
                    "median_div_layer": "median divergence layer",
                    "div_kinds": "divergence kinds",
                    "median_final_std": "median final std",
                    "median_growth": "median growth / layer",
                }
            )
        )
        + "\n"
    )
    parts.append(
        f"One row per scheme and activation for the cells of depth "
        f"{int(result.cells['depth'].max())}, pooling widths, seeds, devices and dtypes. The "
        "fraction diverged counts cells that ran; the median divergence layer is over the "
        "cells that diverged (— if none did); the median final std counts an overflow as "
        "+inf; growth / layer is defined above.\n"
    )
    parts.append(_theory_section(result))
    parts.append(_gradient_section(result))
    parts.append(_jacobian_section(result))
    failed = result.cells[result.cells["error"].notna()]
    if not failed.empty:
        parts.append("## Failed cells\n")
        errors = (
            failed.astype({"error": str})
            .groupby(["scheme", "activation", "device", "dtype", "error"], observed=True)
            .size()
            .reset_index(name="cells (all depths)")
        )
        parts.append(_md(errors) + "\n")
    parts.append("## Timing\n")
    if result.timing.empty:
        parts.append("The sweep ran without its timing pass.\n")
    else:
        parts.append(_md(timing_table(result.timing)) + "\n")
        parts.append(
            "Medians and interquartile ranges in milliseconds: `init` fills one width × width "
            f"weight in place, `forward` is one (batch, width) product with it followed by "
            f"the sweep's first activation (`{_first_activation(result)}`).\n"
        )
    if comparison is not None:
        from initsuite.report.comparison import compare_section  # it uses _md from this module

        parts.append(compare_section(comparison))
    if tutorial is not None:
        parts.append("## Tutorial reproduction\n")
        agree = int(tutorial["agree"].astype(bool).sum())
        parts.append(
            f"{agree} of {len(tutorial)} of the tutorial's numbers are reproduced within "
            "tolerance. *Expected* is the tutorial's number in initsuite's units (layers "
            "1-based); *measured* is the mean ± sd over seeds, with the range in brackets.\n"
        )
        parts.append(_md(tutorial_table(tutorial)) + "\n")
        if TUTORIAL_FIGURE in figures and tutorial_layers is not None:
            number += 1
            cap = _cap_tutorial(tutorial_layers)
            parts.append(_figure(TUTORIAL_FIGURE, "Tutorial std by layer", cap, number))
    if training is not None:
        parts.append(_training_section(training, figures, number))
    return "\n".join(parts)


def _training_section(training: Any, figures: Sequence[str], number: int) -> str:
    cfg = training.meta.get("config", {})
    data = training.meta.get("dataset", {})
    summary = training.summary()
    summary["reached"] = [f"{r}/{n}" for r, n in zip(summary["reached"], summary["runs"],
                                                     strict=True)]  # fmt: skip
    summary = summary.drop(columns=["runs"]).rename(columns={
        "reached": "reached threshold", "median_steps_to_threshold": "median steps",
        "mean_final_train_loss": "final train loss", "mean_final_test_accuracy":
        "final test accuracy",
    })  # fmt: skip
    opt = str(cfg.get("optimizer", "?"))
    if opt == "sgd":
        opt = f"SGD with momentum {cfg.get('momentum')}"
    name, train, test = data.get("name", "?"), data.get("train", "?"), data.get("test", "?")
    layers = f"{cfg.get('depth')} {'' if cfg.get('bias') else 'bias-free '}Linear layers"
    intro = (
        f"Does the initialisation let the network learn? The MLP ({layers}, width "
        f"{cfg.get('width')}, the activation after all but the last) trained on {name} "
        f"({train} training and {test} test examples, {data.get('classes', '?')} classes, "
        f"shipped with scikit-learn) for {cfg.get('steps')} steps of {opt}, learning rate "
        f"{cfg.get('lr')}, batches of {cfg.get('batch_size')}, from each scheme with "
        f"{len(cfg.get('seeds', []))} seeds (the runs of one seed see the same batches). "
        f"*Reached threshold* counts runs whose full-train-set loss fell to "
        f"{cfg.get('threshold')} (chance: ln 10 ≈ 2.30), evaluated every "
        f"{cfg.get('eval_every')} steps; *median steps* is over those runs.\n"
    )  # fmt: skip
    parts = [
        "## Training\n",
        intro,
        _md(summary) + "\n",
        "He et al. (2015): in a deep ReLU net without normalisation, Kaiming's variance "
        "2/fan_in keeps the signal (χ₁ = 1) and the net trains, while Xavier's 1/fan_in (gain "
        "1) halves the signal's second moment at every layer and PyTorch's default "
        "(1/(3·fan_in)) shrinks it faster: after L layers the output and the gradients of "
        "the first layers are 2^(-L/2) and smaller (3e-5 at L = 30), and SGD stalls at "
        "chance. Glorot & Bengio (2010): tanh trains from Xavier's init (with the tanh gain "
        "5/3, the variance-preserving choice).\n",
    ]
    captions = {
        TRAINING_FIGURES[0]: ("Training curves", (
            "Loss on the whole training split (log scale) every "
            f"{cfg.get('eval_every')} steps, mean over seeds, band min to max; dotted: chance "
            "(ln 10), dashed: the threshold. A flat line at chance is a net that does not "
            "learn at all (its output and gradients vanished at init).")),
        TRAINING_FIGURES[1]: ("Steps to threshold", (
            "Steps each scheme needed to bring the training loss to the threshold: bar at the "
            "median over the seeds that reached it, a dot per seed; `never (stalled)` marks a "
            "scheme none of whose seeds reached it within the budget.")),
    }  # fmt: skip
    for name in TRAINING_FIGURES:
        if name in figures:
            number += 1
            title, cap = captions[name]
            parts.append(_figure(name, title, cap, number))
    return "\n".join(parts)
