"""A sweep's report as Markdown: metadata, how to read it, figures with captions, tables.

:func:`render` takes a sweep's tables (and optionally a tutorial reproduction's, a training
study's, a comparison) and returns a string, one section function at a time; writing files is
:func:`initsuite.report.write_report`'s job. Reads stored columns only: never imports torch,
theory or the scheme registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.report.captions import CAPTIONS, figure_block
from initsuite.report.comparison import compare_section
from initsuite.report.figures import deepest, diverged, levels, ran
from initsuite.report.style import md_table
from initsuite.report.training import TRAINING_FIGURES, training_section
from initsuite.report.tutorial import TUTORIAL_FIGURE, tutorial_section
from initsuite.results.agreement import spread
from initsuite.results.columns import DIVERGENCE_KINDS
from initsuite.results.sweep import SweepResult

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison

__all__ = [
    "gradient_table",
    "jacobian_table",
    "label_archs",
    "render",
    "run_lines",
    "summary_table",
    "timing_table",
]


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


# --- metadata --------------------------------------------------------------------------------


def _join(values: Iterable[Any]) -> str:
    return ", ".join(f"`{v}`" for v in values) or "—"


def run_lines(meta: Mapping[str, Any]) -> list[str]:
    """The "Run" section's heading and list of a results directory's ``environment``: date,
    versions, machine, git commit."""
    env: Mapping[str, Any] = meta.get("environment", {}) or {}
    gpus = env.get("gpus") or []
    gpu = ", ".join(f"{g.get('name')} ({g.get('device')})" for g in gpus) or "none used"
    cuda = f" (CUDA {env['cuda']})" if env.get("cuda") else ""
    cpu = env.get("cpu", "unknown")
    if env.get("cpu_count"):
        cpu += f", {env['cpu_count']} logical cores"
    return [
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


def _meta_section(r: SweepResult) -> str:
    cfg: Mapping[str, Any] = r.meta.get("config", {}) or {}
    cells = r.cells
    lines = run_lines(r.meta)
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
    return "\n".join(lines) + "\n\n### Configuration\n\n" + md_table(table) + "\n"


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
    if "theory_final_std" not in result.cells.columns:
        return ""
    table = spread(result.cells, result.theory)
    lines = ["## Theory vs measurement\n"]
    if table.empty:
        return lines[0] + "\nNo cell without divergence to compare.\n"
    if result.theory.empty:  # a sweep stored before its theory tables were
        lines.append(_NO_THEORY_TABLES)
    deep = table[table["depth"] == table["depth"].max()]
    finite = deep[deep["predicted_log_std_sd"].notna() & (deep["seeds"] > 1)]
    if not finite.empty:
        show = finite[["scheme", "activation", "width", "seeds", "log_std_sd",
                       "predicted_log_std_sd"]].rename(columns={
            "log_std_sd": "measured sd of log final std",
            "predicted_log_std_sd": "predicted (Hanin & Rolnick)"})  # fmt: skip
        lines += [
            f"### Finite width: spread over seeds (depth {int(deep['depth'].max())})\n",
            md_table(show.reset_index(drop=True)) + "\n",
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
            md_table(bad[cols].head(40).reset_index(drop=True)) + "\n",
            f"{len(bad)} configuration(s) whose mean log final std (natural log, over seeds) "
            "is further than twice the spread (predicted where known, else measured) from the "
            "mean-field value less its log-normal bias (`expected_log_std`)"
            + (" (first 40 shown)" if len(bad) > 40 else "")
            + ". Typical causes: finite width (deep, narrow nets), finite precision "
            "(values near the dtype's limits), or an assumption that fails (e.g. GELU and SiLU "
            "at their variance gain sit on a repelling fixed point: see `initsuite gains`).\n",
        ]
    return "\n".join(lines)


_NO_THEORY_TABLES = (
    "This sweep was stored without its theory tables (by an initsuite before they were "
    "stored), so the finite-width predictions are missing below: rerun the sweep for them.\n"
)


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
        "## Gradients\n\n" + md_table(table) + "\n\n"
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
    table = md_table(jacobian_table(cells).rename(columns=names))
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
    cells, layers and theory tables, so that figures and tables never pool two architectures."""
    cells = result.cells
    if "arch" not in cells.columns or cells["arch"].nunique() <= 1:
        return result
    pairs = zip(cells["scheme"].astype(str), cells["arch"].astype(str), strict=True)
    if all(s.endswith(f" @ {a}") for s, a in pairs):  # labelled already
        return result

    def relabel(df: pd.DataFrame) -> pd.DataFrame:
        label = df["scheme"].astype(str) + " @ " + df["arch"].astype(str)
        return df.assign(scheme=label.astype("string"))

    return dataclasses.replace(result, cells=relabel(result.cells),
                               layers=relabel(result.layers),
                               theory=relabel(result.theory))  # fmt: skip


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
        title: the first heading.
        training: a :class:`~initsuite.TrainingResult`; adds its section (figures
            ``training_loss`` and ``training_steps`` when listed in ``figures``).
        comparison: this run against an earlier one (:func:`initsuite.compare`); adds a
            "Compared with" section after the timing.
    """
    known = [*CAPTIONS, TUTORIAL_FIGURE, *TRAINING_FIGURES]
    for name in figures:
        if name not in known:
            raise InitsuiteError(unknown("figure", name, known))
    result = label_archs(result)
    parts = [f"# {title}\n", _meta_section(result), _HOW_TO_READ, _draws_note(result)]
    parts += _figures_section(result, figures)
    parts += _summary_section(result)
    parts += [_theory_section(result), _gradient_section(result), _jacobian_section(result)]
    parts += _failed_section(result)
    parts += _timing_section(result)
    if comparison is not None:
        parts.append(compare_section(comparison))
    number = sum(name in CAPTIONS for name in figures)  # the figures numbered so far
    if tutorial is not None:
        drawn = TUTORIAL_FIGURE in figures and tutorial_layers is not None
        number += drawn
        parts.append(tutorial_section(tutorial, tutorial_layers, number if drawn else None))
    if training is not None:
        parts.append(training_section(training, figures, number))
    return "\n".join(parts)


def _figures_section(result: SweepResult, figures: Sequence[str]) -> list[str]:
    """The sweep's figures in ``figures`` order, numbered, each with its caption."""
    parts = ["## Figures\n"]
    for name in figures:
        if name in CAPTIONS:
            heading, caption = CAPTIONS[name]
            parts.append(figure_block(name, heading, caption(result), len(parts)))
    if len(parts) == 1:
        parts.append("No figures: no cell produced data to plot.\n")
    return parts


def _summary_section(result: SweepResult) -> list[str]:
    """The summary table at the deepest depth and what its columns mean."""
    names = {"frac_diverged": "fraction diverged", "median_div_layer": "median divergence layer",
             "div_kinds": "divergence kinds", "median_final_std": "median final std",
             "median_growth": "median growth / layer"}  # fmt: skip
    return [
        "## Summary at the deepest depth\n",
        md_table(summary_table(result.cells).rename(columns=names)) + "\n",
        f"One row per scheme and activation for the cells of depth "
        f"{int(result.cells['depth'].max())}, pooling widths, seeds, devices and dtypes. The "
        "fraction diverged counts cells that ran; the median divergence layer is over the "
        "cells that diverged (— if none did); the median final std counts an overflow as "
        "+inf; growth / layer is defined above.\n",
    ]


def _failed_section(result: SweepResult) -> list[str]:
    """The cells that failed with an error, counted by error (none: no section)."""
    failed = result.cells[result.cells["error"].notna()]
    if failed.empty:
        return []
    errors = (
        failed.astype({"error": str})
        .groupby(["scheme", "activation", "device", "dtype", "error"], observed=True)
        .size()
        .reset_index(name="cells (all depths)")
    )
    return ["## Failed cells\n", md_table(errors) + "\n"]


def _timing_section(result: SweepResult) -> list[str]:
    """The timing table, or a line saying the sweep ran without its timing pass."""
    if result.timing.empty:
        return ["## Timing\n", "The sweep ran without its timing pass.\n"]
    return [
        "## Timing\n",
        md_table(timing_table(result.timing)) + "\n",
        "Medians and interquartile ranges in milliseconds: `init` fills one width × width "
        f"weight in place, `forward` is one (batch, width) product with it followed by "
        f"the sweep's first activation (`{_first_activation(result)}`).\n",
    ]
