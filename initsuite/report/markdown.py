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

import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.report.captions import CAPTIONS, figure_block
from initsuite.report.comparison import compare_section
from initsuite.report.selection import deepest, levels
from initsuite.report.style import md_code, md_table, md_text
from initsuite.report.theory_sections import gradient_section, jacobian_section, theory_section
from initsuite.report.training import TRAINING_FIGURES, training_section
from initsuite.report.tutorial import TUTORIAL_FIGURE, tutorial_section
from initsuite.report.verdict import VERDICT_FIGURE, verdict_section
from initsuite.results import columns as C
from initsuite.results.summary import summarize
from initsuite.results.sweep import SweepResult

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison

__all__ = [
    "label_archs",
    "render",
    "run_lines",
    "shaping_section",
    "summary_table",
    "timing_table",
]


# --- tables ----------------------------------------------------------------------------------


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (scheme, activation) at the deepest depth, pooling all other cell keys
    (:func:`~initsuite.results.summary.summarize`)."""
    return summarize(deepest(cells), ("scheme", "activation"))


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
    return ", ".join(md_code(v) for v in values) or "—"


def run_lines(meta: Mapping[str, Any]) -> list[str]:
    """The "Run" section's heading and list of a results directory's ``environment``: date,
    versions, machine, git commit (each stored value as plain text, :func:`md_text`)."""
    env: Mapping[str, Any] = meta.get("environment", {}) or {}

    def get(key: str, default: str) -> str:
        return md_text(env.get(key, default))

    gpus = env.get("gpus") or []
    gpu = ", ".join(md_text(f"{g.get('name')} ({g.get('device')})") for g in gpus) or "none used"
    cuda = f" (CUDA {get('cuda', '')})" if env.get("cuda") else ""
    cpu = get("cpu", "unknown")
    if env.get("cpu_count"):
        cpu += f", {get('cpu_count', '')} logical cores"
    return [
        "## Run",
        "",
        f"- **Date (UTC):** {get('utc_time', 'unknown')}",
        f"- **Versions:** initsuite {get('initsuite', '?')}, torch {get('torch', '?')}"
        f"{cuda}, Python {get('python', '?')}",
        f"- **CPU:** {cpu}; torch threads: {get('torch_threads', 'unknown')}",
        f"- **GPU:** {gpu}",
        f"- **Platform:** {get('platform', 'unknown')}",
        f"- **Git commit:** {md_text(env.get('git_commit') or 'unknown (no git commit found)')}",
    ]


def _meta_section(r: SweepResult) -> str:
    cfg: Mapping[str, Any] = r.meta.get("config", {}) or {}
    cells = r.cells
    lines = run_lines(r.meta)
    if "sweep_seconds" in r.meta:
        lines.append(
            f"- **Run time:** {md_text(r.meta['sweep_seconds'])} s sweep, "
            f"{md_text(r.meta.get('timing_seconds', '?'))} s timing, {len(cells)} cells"
        )

    def pick(key: str, col: str | None = None) -> Any:
        if key in cfg:
            return cfg[key]
        return levels(cells[col]) if col and col in cells.columns else "unknown"

    def listed(key: str, col: str) -> str:
        v = pick(key, col)
        return _join(v) if isinstance(v, list) else md_text(v)

    config = [
        ("architectures", listed("archs", "arch") if "arch" not in cfg else md_text(cfg["arch"])),
        ("schemes", listed("schemes", "scheme")),
        ("activations", listed("activations", "activation")),
        ("depths", listed("depths", "depth")),
        ("widths", listed("widths", "width")),
        ("batch", listed("batch", "batch")),
        ("seeds", listed("seeds", "seed")),
        ("devices", listed("devices", "device")),
        ("dtypes", listed("dtypes", "dtype")),
        ("bias", md_text(pick("bias"))),
        ("inputs", md_text(cfg.get("inputs", "gaussian"))),  # before the input law: gaussian
        ("explode_at (× input std)", md_text(cfg.get("explode_at") or "not set")),
        ("vanish_at (× input std)", md_text(cfg.get("vanish_at") or "not set")),
        (
            "timing repeats",
            md_text(cfg.get("timing_repeats", "—")) if cfg.get("timing", True) else "off",
        ),
    ]
    table = pd.DataFrame(config, columns=["setting", "value"])
    configuration = md_table(table, markdown=["value"])
    solved = _sweep_constants(r)
    return ("\n".join(lines) + "\n\n### Configuration\n\n" + configuration + "\n"
            + ("\n" + "\n".join(solved) if solved else ""))  # fmt: skip


def _sweep_constants(r: SweepResult) -> list[str]:
    """The "Solved constants" parts of a sweep's report: from its theory table, a row per
    kernel-shaped activation and constants with the cell depths that ran them (a sweep stored
    before the table carried them: meta.json's ``shaping``)."""
    rows = r.theory[r.theory["alpha"].notna().to_numpy(bool)]
    if rows.empty:
        return shaping_section(r.meta.get("shaping") or [], level=3)
    keys = ["activation", *C.SHAPING]
    depths = rows.groupby(keys, dropna=False, sort=False)["depth"]
    table = depths.agg(lambda d: ", ".join(str(v) for v in sorted(set(d)))).reset_index()
    table["first"] = depths.min().to_numpy()
    table = table.sort_values(["activation", "first"]).rename(columns={"depth": "cell depths"})
    return [
        "### Solved constants\n",
        md_table(table[["activation", "cell depths", *C.SHAPING]]) + "\n",
        "The constants each kernel-shaped activation ran with (the theory table's): "
        "φ̂(x) = γ·(φ(α·x + β) + δ), TAT's leaky ReLU γ·leaky_relu(x, negative_slope), solved "
        "for the depth its spec names (`depth=D`), else for each cell's own depth.\n",
    ]


def shaping_section(shaping: list[Any], *, level: int) -> list[str]:
    """The solved constants of a run's kernel-shaped activations (meta.json's ``shaping``:
    one record per ``dks:``/``tat:`` activation and depth), as Markdown parts under a heading
    of ``level``; nothing when the run has none."""
    if not shaping:
        return []
    cols = ["activation", "depth", "alpha", "beta", "gamma", "delta", "negative_slope"]
    return [f"{'#' * level} Solved constants\n",
            md_table(pd.DataFrame(shaping).reindex(columns=cols)) + "\n",
            "φ̂(x) = γ·(φ(α·x + β) + δ), TAT's leaky ReLU γ·leaky_relu(x, negative_slope), "
            "solved for a net of `depth` nonlinear layers.\n"]  # fmt: skip


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
    benchmarks: str | None = None,
) -> str:
    """The report as Markdown.

    Args:
        result: the sweep's tables and metadata.
        figures: names of the figures written to ``figures/<name>.png``, embedded in this
            order with captions (``tutorial_std_vs_layer`` goes in the tutorial section).
        tutorial: the ``tutorial`` table of a tutorial reproduction; adds its section.
        tutorial_layers: its ``layers`` table (for the caption of its figure).
        title: the first heading (plain text: shown as written).
        training: a :class:`~initsuite.TrainingResult`; adds its section (figures
            ``training_loss`` and ``training_steps`` when listed in ``figures``).
        comparison: this run against an earlier one (:func:`initsuite.compare`); adds a
            "Compared with" section after the timing.
        benchmarks: the "Benchmarks" section's Markdown
            (:func:`~initsuite.report.benchmarks.benchmarks_section`), placed after the
            comparison.
    """
    known = [VERDICT_FIGURE, *CAPTIONS, TUTORIAL_FIGURE, *TRAINING_FIGURES]
    for name in figures:
        if name not in known:
            raise InitsuiteError(unknown("figure", name, known))
    glance = VERDICT_FIGURE in figures  # figure 1, when drawn
    # by arch: before the labels fold it in
    verdict = verdict_section(result, comparison, figure=glance)
    result = label_archs(result)
    heading = f"# {md_text(title)}\n"
    parts = [heading, verdict, _meta_section(result), _HOW_TO_READ, _draws_note(result)]
    parts += _figures_section(result, figures, first=1 + glance)
    parts += _summary_section(result)
    parts += [theory_section(result), gradient_section(result), jacobian_section(result)]
    parts += _failed_section(result)
    parts += _timing_section(result)
    if comparison is not None:
        parts.append(compare_section(comparison))
    if benchmarks is not None:
        parts.append(benchmarks)
    number = glance + sum(name in CAPTIONS for name in figures)  # the figures numbered so far
    if tutorial is not None:
        drawn = TUTORIAL_FIGURE in figures and tutorial_layers is not None
        number += drawn
        parts.append(tutorial_section(tutorial, tutorial_layers, number if drawn else None))
    if training is not None:
        parts.append(training_section(training, figures, number))
    return "\n".join(parts)


def _figures_section(result: SweepResult, figures: Sequence[str], first: int = 1) -> list[str]:
    """The sweep's figures in ``figures`` order, numbered from ``first``, each with its
    caption."""
    parts = ["## Figures\n"]
    for name in figures:
        if name in CAPTIONS:
            heading, caption = CAPTIONS[name]
            parts.append(figure_block(name, heading, caption(result), first + len(parts) - 1))
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
        f"the sweep's first activation ({md_code(_first_activation(result))}).\n",
    ]
