"""The frameworks study's report: which framework's defaults keep a deep net in range, and why.

Reads a frameworks study directory (``initsuite reproduce frameworks``) through
:class:`~initsuite.results.frameworks.FrameworksResult` only; never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.conventions import conventions_section
from initsuite.report.interactive import loss_lines
from initsuite.report.markdown import run_lines
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.selection import levels
from initsuite.report.style import (
    PANEL_H,
    PANEL_W,
    facets,
    md_table,
    md_text,
    need,
    new_figure,
    outside_legend,
    palette,
    style,
)
from initsuite.report.training import loss_curves
from initsuite.results.frameworks import FrameworksResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FRAMEWORKS_FIGURES", "final_std_heatmap", "frameworks_plan", "law_table",
    "sigma_w2_figure", "training_table",
]  # fmt: skip

FRAMEWORKS_FIGURES: tuple[str, ...] = (
    "frameworks_final_std", "frameworks_sigma_w2", "frameworks_training",
)  # fmt: skip
_NEAR = 0.05  # |σ_w²/critical − 1| within this: on the critical line (a 256-wide draw's spread)


def frameworks_plan(result: FrameworksResult, run_dir: str) -> ReportPlan:
    """The report of a frameworks study: its figures (when it holds runs) and text."""
    runs = result.runs
    figures = []
    if not runs.empty:
        figures.append(PlannedFigure(FRAMEWORKS_FIGURES[0], lambda: final_std_heatmap(runs)))
    theory = runs[runs["critical_sigma_w2"].notna()] if not runs.empty else runs
    if not theory.empty:
        figures.append(PlannedFigure(FRAMEWORKS_FIGURES[1], lambda: sigma_w2_figure(theory)))
    curves = result.training
    if curves["train_loss"].notna().any():
        threshold = _training_cfg(result.meta).get("threshold")
        plot = lambda: loss_curves(curves, threshold, hue="law")  # noqa: E731
        lines = lambda: loss_lines(curves, threshold, hue="law")  # noqa: E731
        figures.append(PlannedFigure(FRAMEWORKS_FIGURES[2], plot, lines))
    return ReportPlan(figures, _render(result, run_dir, [f.name for f in figures]))


def _divergence(g: pd.DataFrame) -> str:
    """The seeds' divergence: "none", or "kind @ layer" of the earliest, with how many seeds."""
    hit = g[g["divergence_kind"].notna()]
    if hit.empty:
        return "none"
    first = hit.sort_values("divergence_layer").iloc[0]
    return (f"{first['divergence_kind']} @ {int(first['divergence_layer'])} "
            f"({len(hit)}/{len(g)} seeds)")  # fmt: skip


def _phase(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "—"
    if abs(ratio - 1) <= _NEAR:
        return "critical"
    return "ordered" if ratio < 1 else "chaotic"


def law_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (model, law), over seeds: median final std / input std, median input-grad std,
    the divergence, σ_w², σ_b², the critical σ_w² and the phase σ_w² puts the net in."""
    rows = []
    for (model, law), g in runs.groupby(["model", "law"], observed=True, sort=False):
        sw2, crit = float(g["sigma_w2"].median()), float(g["critical_sigma_w2"].median())
        rows.append({
            "model": model, "law": law,
            "final std / input": float((g["final_std"] / g["input_std"]).median()),
            "input-grad std": float(g["input_grad_std"].median()),
            "divergence": _divergence(g), "σ_w²": sw2,
            "σ_b²": float(g["sigma_b2"].median()), "critical σ_w²": crit,
            "phase": _phase(sw2 / crit),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _answer(table: pd.DataFrame) -> list[str]:
    """The report's answer, law by law: the nets it kept in range and those it did not."""
    lines = []
    for law in levels(table["law"]):
        sub = table[table["law"] == law]
        kept = [md_text(m) for m, d in zip(sub["model"], sub["divergence"], strict=True)
                if d == "none"]  # fmt: skip
        lost = [md_text(f"{m} ({d})") for m, d in zip(sub["model"], sub["divergence"],
                                                      strict=True) if d != "none"]  # fmt: skip
        why = "; ".join(md_text(f"{m}: σ_w² {s:.3g} vs critical {c:.3g}, {p}") for m, s, c, p in
                        zip(sub["model"], sub["σ_w²"], sub["critical σ_w²"], sub["phase"],
                            strict=True) if math.isfinite(c))  # fmt: skip
        lines.append(f"- **{md_text(law)}** keeps in range: {', '.join(kept) or 'none'}; "
                     f"leaves it: {', '.join(lost) or 'none'}. {why}.")  # fmt: skip
    return lines


def _training_cfg(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    return (meta.get("config", {}) or {}).get("training") or {}


def training_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, law), over seeds: how many runs reached the loss threshold, the median
    steps they took, the median final test accuracy, how many diverged, and σ_w² of the
    trained net as drawn against the critical value."""
    rows = []
    for (act, law), g in runs.groupby(["activation", "law"], observed=True, sort=False):
        hit = g["steps_to_threshold"].dropna()
        sw2, crit = float(g["sigma_w2"].median()), float(g["critical_sigma_w2"].median())
        rows.append({
            "activation": act, "law": law, "reached": f"{int(g['reached'].sum())}/{len(g)}",
            "median steps": float(hit.median()) if len(hit) else math.nan,
            "final test accuracy": float(g["final_test_accuracy"].median()),
            "diverged": f"{int(g['diverged'].sum())}/{len(g)}", "σ_w²": sw2,
            "σ_b²": float(g["sigma_b2"].median()), "critical σ_w²": crit,
            "phase": _phase(sw2 / crit),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _training_answer(table: pd.DataFrame, cfg: Mapping[str, Any]) -> list[str]:
    """Which laws' defaults trained the deep MLP, per activation, and σ_w² beside each."""
    lines = []
    for act in levels(table["activation"]):
        sub = table[table["activation"] == act]
        done = sub["reached"].str.partition("/")
        full = done[0] == done[2]
        trained = [md_text(f"{law} (σ_w² {s:.3g}, {p})") for law, s, p, ok in
                   zip(sub["law"], sub["σ_w²"], sub["phase"], full, strict=True) if ok]  # fmt: skip
        failed = [md_text(f"{law} (σ_w² {s:.3g}, {p}; {r} reached)") for law, s, p, r, ok in
                  zip(sub["law"], sub["σ_w²"], sub["phase"], sub["reached"], full,
                      strict=True) if not ok]  # fmt: skip
        crit = float(sub["critical σ_w²"].median())
        lines.append(
            f"- **{md_text(act)}**, depth {md_text(cfg.get('depth', '?'))} (critical σ_w² ≈ "
            f"{crit:.3g}): trains from {', '.join(trained) or 'no law'}; does not (within "
            f"{md_text(cfg.get('steps', '?'))} steps) from {', '.join(failed) or 'none'}."
        )
    return lines


def _training_section(result: FrameworksResult) -> list[str]:
    cfg = _training_cfg(result.meta)
    runs = result.training_runs
    if runs.empty:
        return ["## Training on digits\n", "Not trained in this study (`--train-steps 0`, or "
                "a directory written before the study trained).\n"]  # fmt: skip
    table = training_table(runs)

    def get(key: str) -> str:  # batch: "batch_size" in a directory written before it was
        return md_text(cfg.get(key, cfg.get("batch_size", "?") if key == "batch" else "?"))

    opt = f"SGD with momentum {get('momentum')}" if cfg.get("optimizer") == "sgd" else (
        get("optimizer"))  # fmt: skip
    intro = (
        "Which framework's defaults train a deep unnormalised net? The training study's MLP "
        f"({get('depth')} Linear layers, width {get('width')}, with biases, "
        "each parameter drawn by the law) trained on scikit-learn's digits for "
        f"{get('steps')} steps of {opt}, learning rate {get('lr')}, batches "
        f"of {get('batch')}; *reached* counts the runs whose full-train-set loss "
        f"fell to {get('threshold')} nats (chance: ln 10 ≈ 2.30). σ_w² = "
        "fan_in·E[W²] of the net as drawn (averaged over its layers), against the critical "
        "σ_w² of the activation at the drawn biases' σ_b².\n"
    )
    return ["## Training on digits\n", intro, "\n".join(_training_answer(table, cfg)) + "\n",
            md_table(table) + "\n", _WHY_TRAIN]  # fmt: skip


_WHY_TRAIN = (
    "A net trains when its signal and its gradients reach both ends at init: on the critical "
    "line (χ₁ ≈ 1) at any depth, and off it only while the depth is small against the depth "
    "scale ξ₁ = 1/|ln χ₁|. A law with σ_w² well below the critical value starts ordered: the "
    "output forgets the input and the first layers' gradients vanish geometrically, so SGD "
    "sits at chance; far above it, the signal and the steps explode.\n"
)


def _render(result: FrameworksResult, run_dir: str, drawn: list[str]) -> str:
    cfg: Mapping[str, Any] = result.meta.get("config", {}) or {}
    parts = [
        f"# initsuite frameworks report: {md_text(Path(run_dir).resolve().name)}\n",
        "\n".join(run_lines(result.meta)) + "\n",
        "## Figures\n",
    ]
    captions = {FRAMEWORKS_FIGURES[0]: ("Final std by law and net", _caption_heatmap(cfg)),
                FRAMEWORKS_FIGURES[1]: ("σ_w² against the critical value", _CAPTION_SIGMA),
                FRAMEWORKS_FIGURES[2]: ("Training curves by law", _CAPTION_TRAIN)}  # fmt: skip
    for k, name in enumerate(drawn, start=1):
        parts.append(figure_block(name, *captions[name], k))
    if not drawn:
        parts.append("No figures: the study holds no runs.\n")
    table = law_table(result.runs) if not result.runs.empty else pd.DataFrame()
    parts += ["## Which defaults keep a deep unnormalised net in range\n"]
    parts += ["\n".join(_answer(table)) + "\n" if not table.empty else "No runs.\n", _WHY]
    parts += _training_section(result)
    parts += ["## Runs\n", (md_table(table) if not table.empty else "No runs.") + "\n",
              _table_note(cfg)]  # fmt: skip
    if not result.conventions.empty:
        rules = result.conventions.rename(columns={"layer_type": "layer", "rule": "law"})
        parts.append(conventions_section(rules, "The conventions applied"))
    left = result.meta.get("untouched") or {}
    if left:
        lines = ["- " + md_text(f"{law} in {model}: {'; '.join(map(str, why))}")
                 for law, models in left.items() for model, why in models.items()]  # fmt: skip
        parts.append("Parameters a convention has no law for were left as torch built them "
                     "(`initsuite.apply` lists them in `.untouched`):\n\n" + "\n".join(lines)
                     + "\n")  # fmt: skip
    return "\n".join(parts)


_WHY = (
    "Why: a plain stack's signal is multiplied by about σ_w²·E[φ'²] per layer (χ₁). Below "
    "the critical σ_w² (χ₁ < 1, ordered) the input's part of the signal shrinks geometrically "
    "and the output is the biases' fixed point, the same for every input (it vanishes where "
    "the biases are zero); above it (χ₁ > 1) a ReLU net's signal grows geometrically and a "
    "tanh net saturates and forgets how its inputs were related; on the line it keeps its "
    "scale at any depth. ReLU's critical σ_w² is 2 at every σ_b²; tanh's is 1 at σ_b² = 0 and "
    "rises with σ_b². A residual net adds its branches, so its std grows with depth unless "
    "they are small; the pre-LN transformer's LayerNorms rescale each block's input, so only "
    "the residual stream's growth shows.\n"
)


def _caption_heatmap(cfg: Mapping[str, Any]) -> str:
    return (
        "log10 of the median (over "
        f"{len(cfg.get('seeds', []))} seeds) final std / input std of each net under each law, "
        "annotated with the earliest divergence over the seeds (kind @ layer: the engine's "
        f"rule, with the std leaving [{md_text(cfg.get('vanish_at', '?'))}, "
        f"{md_text(cfg.get('explode_at', '?'))}]"
        " × the input's std). Each law is applied by `initsuite.apply(model, law)`: a "
        "convention re-draws every parameter as that framework would; a scheme spec re-draws "
        "the Linear/Conv/attention weights only, the biases staying torch's U(±1/√fan_in)."
    )


_CAPTION_TRAIN = (
    "Loss on the whole digits training split (log scale) of each law's deep MLP, mean over "
    "seeds, band min to max, one panel per activation; dotted: chance (ln 10), dashed: the "
    "threshold. A flat line at chance is a net whose signal or gradients vanished at init."
)

_CAPTION_SIGMA = (
    "Final std / input std against σ_w² = fan_in·E[W²] measured from the drawn weights, for "
    "the plain stacks (MLP and conv, where mean-field theory gives a critical σ_w²), one "
    "panel per activation; the dashed line is the critical σ_w² (χ₁ = 1) at the drawn "
    "biases' σ_b². Left of it the net is ordered (the signal shrinks), right of it chaotic."
)


def _table_note(cfg: Mapping[str, Any]) -> str:
    models = ", ".join(md_text(f"{m['name']} ({m['arch']}, {m['activation']}, depth "
                               f"{m['depth']}, width {m['width']})")
                       for m in cfg.get("models", []))  # fmt: skip
    return (
        f"One row per net and law, medians over the seeds. Nets: {models or '?'}; "
        f"{md_text(cfg.get('dtype', '?'))}, batch {md_text(cfg.get('batch', '?'))}; backward "
        f"loss {md_text(cfg.get('loss', '?'))}. σ_w² and σ_b² are averaged over the net's "
        "Linear and Conv "
        "layers; the phase is σ_w² against the critical value (within "
        f"{_NEAR:.0%}: critical), for the plain stacks only.\n"
    )


def final_std_heatmap(runs: pd.DataFrame) -> Figure:
    """log10(final std / input std), median over seeds, law × model, annotated with the
    median final std ratio and the earliest divergence."""
    need(runs, ("law", "model", "final_std", "input_std", "divergence_kind",
                "divergence_layer"), "runs")  # fmt: skip
    laws, models = levels(runs["law"]), levels(runs["model"])
    ratio = np.full((len(laws), len(models)), np.nan)
    notes = [["" for _ in models] for _ in laws]
    for (law, model), g in runs.groupby(["law", "model"], observed=True):
        i, j = laws.index(law), models.index(model)
        r = float((g["final_std"] / g["input_std"]).median())
        ratio[i, j] = math.log10(r) if r > 0 and math.isfinite(r) else np.nan
        d = _divergence(g).split(" (")[0]
        notes[i][j] = f"{r:.2g}\n{d}"
    with style():
        fig = new_figure(1.25 * len(models) + 3.0, 0.55 * len(laws) + 1.8)
        ax = fig.subplots()
        im = ax.imshow(np.clip(ratio, -3, 3), cmap="RdBu_r", vmin=-3, vmax=3, aspect="auto")
        for i in range(len(laws)):
            for j in range(len(models)):
                dark = abs(ratio[i, j]) > 2  # white on the colour map's deep ends
                ax.text(j, i, notes[i][j], ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(models)), [str(m) for m in models], rotation=30, ha="right")
        ax.set_yticks(range(len(laws)), [_short(str(law)) for law in laws])
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="log10 final std / input std (clipped to ±3)")
        fig.suptitle("Same model, different framework: the final layer's std")
    return fig


def _short(law: str) -> str:
    return law if len(law) <= 28 else law[:26] + "…"


def sigma_w2_figure(runs: pd.DataFrame) -> Figure:
    """Final std / input std against measured σ_w², one panel per activation, the critical
    σ_w² dashed; colour: law, marker: model."""
    need(runs, ("law", "model", "activation", "sigma_w2", "critical_sigma_w2", "final_std",
                "input_std"), "runs")  # fmt: skip
    acts, laws, models = levels(runs["activation"]), levels(runs["law"]), levels(runs["model"])
    markers = dict(zip(models, "osD^v<>ph*" * len(models), strict=False))
    with style() as sns:
        from matplotlib.lines import Line2D

        fig = new_figure(PANEL_W * len(acts) + 3.2, PANEL_H + 0.6)
        axes = facets(fig, len(acts), len(acts))
        colors = palette(sns, laws)
        for ax, act in zip(axes, acts, strict=True):
            sub = runs[runs["activation"] == act]
            for (law, model), g in sub.groupby(["law", "model"], observed=True):
                y = (g["final_std"] / g["input_std"]).clip(lower=1e-30)
                ax.scatter(g["sigma_w2"], y, color=colors[law], marker=markers[model], s=22)
            ax.axvline(float(sub["critical_sigma_w2"].median()), color="0.3", ls="--", lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(str(act))
        handles = [Line2D([], [], color=colors[law], marker="o", ls="", label=_short(str(law)))
                   for law in laws]  # fmt: skip
        handles += [Line2D([], [], color="0.3", marker=markers[m], ls="", label=str(m))
                    for m in models]  # fmt: skip
        outside_legend(fig, handles, None)
        fig.supxlabel("σ_w² = fan_in · E[W²] of the drawn weights (dashed: critical)")
        fig.supylabel("final std / input std")
        fig.suptitle("Why: σ_w² against the critical value")
    return fig
