"""The sections of a sweep's report that set measurement beside theory: the spread of the final
std over seeds, the backward pass, the Jacobian spectra. Each reads stored columns only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from initsuite.report.selection import deepest, phase_rows, ran
from initsuite.report.style import md_table
from initsuite.results.agreement import correlation_depth, spread
from initsuite.results.sweep import SweepResult

__all__ = ["correlation_depth_table", "gradient_section", "gradient_table", "jacobian_section",
           "jacobian_table", "theory_section"]  # fmt: skip


def theory_section(result: SweepResult) -> str:
    """The "Theory vs measurement" section at the deepest depth: the across-seed spread of log
    final std beside its finite-width prediction, and the cells where theory and measurement
    disagree by more than that spread."""
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
            "predicted_log_std_sd": "predicted"})  # fmt: skip
        lines += [
            f"### Finite width: spread over seeds (depth {int(deep['depth'].max())})\n",
            md_table(show.reset_index(drop=True)) + "\n",
            "Mean-field theory is the infinite-width limit. At finite width the log of the "
            "output's std spreads across seeds with a variance that grows like depth / width "
            "(Hanin & Rolnick 2018), by a constant that depends on the weights' law: for one "
            "input about 5·L/(4n) for ReLU nets with Gaussian weights and 2·L/(4n) for linear "
            "ones, 3·L/(4n) for ReLU and 0 for linear nets with orthogonal weights (which keep "
            "norms), more for sparse weights; a batch pools inputs, which narrows it while they "
            "stay uncorrelated (`initsuite.theory.spread`). Predicted for bias-free ReLU, leaky "
            "ReLU and linear nets; for other activations none is known. One seed's final std "
            "is one draw from this spread: compare schemes over several seeds.\n",
        ]
    lines.append(_correlation_depth_lines(result))
    bad = table[table["disagree"]]
    lines.append("### Where theory and measurement disagree\n")
    if bad.empty:
        lines.append(
            "Every cell that ran without diverging has a mean log final std within twice the "
            "finite-width spread of the mean-field value (less its log-normal bias), or within "
            "2/width of it.\n"
        )
    else:
        cols = ["scheme", "activation", "depth", "width", "dtype", "seeds", "log_std_mean",
                "expected_log_std", "log_std_sd", "predicted_log_std_sd"]  # fmt: skip
        lines += [
            md_table(bad[cols].head(40).reset_index(drop=True)) + "\n",
            f"{len(bad)} configuration(s) whose mean log final std (natural log, over seeds) "
            "is further than twice the spread (predicted where known, else measured) and "
            "further than 2/width (mean field's own finite-width error is of order 1/width) "
            "from the mean-field value less its log-normal bias (`expected_log_std`)"
            + (" (first 40 shown)" if len(bad) > 40 else "")
            + ". Typical causes: finite width (deep, narrow nets), finite precision "
            "(values near the dtype's limits), or an assumption that fails (e.g. GELU and SiLU "
            "at their variance gain sit on a repelling fixed point: see `initsuite gains`).\n",
        ]
    return "\n".join(lines)


def correlation_depth_table(result: SweepResult) -> pd.DataFrame:
    """Per (scheme, activation) of the MLP at the deepest depth and largest width: the
    c-map's depth scale measured from the input pair's cosines (median over device and
    dtype) beside the stored predictions, ξ_c (the one it measures) and ξ₁; empty without
    cosines or a stored ``xi_c``."""
    points = result.phase_points
    cols = ["scheme", "activation", "c_star", "xi_c", "depth_scale", "measured_depth"]
    layers = result.layers
    if points.empty or points["xi_c"].isna().all() or "cosine" not in layers:
        return pd.DataFrame(columns=cols)
    layers = phase_rows(layers)
    deep = layers[(layers["depth"] == layers["depth"].max())
                  & (layers["width"] == layers["width"].max())]  # fmt: skip
    measured = correlation_depth(deep)
    if measured.empty or measured["measured_depth"].isna().all():
        return pd.DataFrame(columns=cols)
    med = measured.groupby(["scheme", "activation"], observed=True)["measured_depth"].median()
    out = points.merge(med.reset_index(), on=["scheme", "activation"], how="inner")
    return out[out["measured_depth"].notna()][cols].reset_index(drop=True)


def _correlation_depth_lines(result: SweepResult) -> str:
    table = correlation_depth_table(result)
    if table.empty:
        return ""
    names = {"c_star": "c*", "xi_c": "predicted ξ_c", "depth_scale": "ξ₁ = 1/|ln χ₁|",
             "measured_depth": "measured"}  # fmt: skip
    return (
        "### Correlation depth: measured beside predicted\n\n"
        + md_table(table.rename(columns=names))
        + "\n\n"
        "Layers the input pair's mean cosine takes to close 1 − 1/e of its gap to the "
        "mean-field fixed point c* (deepest cells, largest width), beside the depth scale that "
        "predicts it, ξ_c = −1/ln χ_c with χ_c = σ_w²·E[φ'(u₁)φ'(u₂)] at c* (Schoenholz et al. "
        "2017). In the ordered phase c* = 1 and ξ_c = ξ₁; in the chaotic phase c* < 1 and "
        "ξ₁ (the gradients' depth scale) is not the one the cosines follow. The measurement "
        "starts from the pair's cosine, not from near c*, so it matches ξ_c only roughly "
        "where the early layers are far from linear.\n"
    )


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


def gradient_section(result: SweepResult) -> str:
    """The "Gradients" section (a sweep with ``backward``; empty without)."""
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


def jacobian_section(result: SweepResult) -> str:
    """The "Jacobian spectra" section (a sweep with ``jacobian``; empty without)."""
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
