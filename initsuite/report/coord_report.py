"""The coordinate check's report: its verdict first (which roles stay the same size as the
model grows, under each parametrization), then mup's figure of every module, and the slopes
with the exponents the parametrizations predict beside them.

Reads a coordinate check directory (``initsuite coordcheck``) through
:class:`~initsuite.results.coordcheck.CoordCheckResult` only; never imports torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.captions import figure_block
from initsuite.report.coord_figures import coord_panels
from initsuite.report.coord_tables import AXES, BAND, coord_slopes, coord_verdict
from initsuite.report.markdown import run_lines
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.style import md_table, md_text
from initsuite.results.coordcheck import CoordCheckResult

__all__ = ["COORD_FIGURES", "coordcheck_plan", "predicted_exponents", "slopes_table"]

_FIGURES = (("coords_l1", "l1", "width"), ("coords_delta", "delta_rms", "width"),
            ("coords_depth", "rms", "depth"))  # fmt: skip
COORD_FIGURES: tuple[str, ...] = tuple(name for name, _, _ in _FIGURES)
"""The figures a coordinate check's report may draw."""


def predicted_exponents(meta: Mapping[str, Any], axis: str = "width"
                        ) -> dict[tuple[str, str, str, str, str], float]:  # fmt: skip
    """The exponents of ``axis`` (width or depth) the run stored (``meta["predicted"]``:
    ``rms_init``, ... for width, ``depth_rms_init``, ... for depth) as :func:`coord_slopes`
    takes them: the rms at step 0 (``init``), and after a step the rms and its change
    (``trained``)."""
    if axis not in AXES:
        raise InitsuiteError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
    prefix = "" if axis == "width" else f"{axis}_"
    out: dict[tuple[str, str, str, str, str], float] = {}
    for row in meta.get("predicted") or []:
        key = (str(row["parametrization"]), str(row["optimizer"]), str(row["role"]))
        for quantity, phase, field in (("rms", "init", "rms_init"),
                                       ("rms", "trained", "rms_after"),
                                       ("delta_rms", "trained", "delta")):  # fmt: skip
            value = row.get(prefix + field)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[(*key, quantity, phase)] = float(value)
    return out


def slopes_table(slopes: pd.DataFrame) -> pd.DataFrame:
    """The slopes at the last step, one row per parametrization × role × quantity (× the
    other axis's value where there are several), for the report."""
    last = slopes[slopes["step"] == slopes["step"].max()]
    out = pd.DataFrame({
        "parametrization": last["parametrization"], "at": last["at"], "role": last["role"],
        "quantity": last["quantity"], "slope": last["slope"].map(lambda v: f"{v:+.2f}"),
        "interval": [f"[{a:+.2f}, {b:+.2f}]" for a, b in zip(last["slope_low"],
                                                             last["slope_high"], strict=True)],
        "predicted": last["predicted"].map(lambda v: "" if math.isnan(v) else f"{v:+.2f}"),
        "stable": last["stable"].map({True: "yes", False: "no"}),
    })  # fmt: skip
    if out["at"].nunique() < 2:
        out = out.drop(columns="at")
    return out.reset_index(drop=True)


def coordcheck_plan(result: CoordCheckResult, run_dir: str) -> ReportPlan:
    """The report of a coordinate check: verdict, figures, slopes."""
    coords, cfg = result.coords, result.meta.get("config", {}) or {}
    axes = [a for a in AXES if coords[a].nunique() >= 2]
    slopes = {a: coord_slopes(coords, a, predicted_exponents(result.meta, a)) for a in axes}
    parts = [f"# initsuite coordinate check: {md_text(Path(run_dir).resolve().name)}\n",
             "## Verdict\n"]  # fmt: skip
    for a in axes:
        parts += [f"- {line}" for line in coord_verdict(slopes[a])]
    if not axes:
        parts.append("One width and one depth: there is no slope to measure.")
    against = "/".join(axes) or "width"
    parts.append(f"\nA role is *stable* when the slope of log(coordinate) against log({against}) "
                 f"lies within ±{BAND} (under 7% per doubling) over the seeds' interval (mean ± 2 "
                 "standard errors) at every step; its coordinate is the geometric mean over the "
                 "role's modules. Predicted exponents are the parametrization's own rules "
                 "pushed through one step of an MLP in width, of a stack of bias-free residual "
                 "blocks in depth (`initsuite.theory.coord_exponents`): asymptotic, so a "
                 "small width or depth may lag them.\n")  # fmt: skip
    figures, n = [], 0
    parts.append("## Figures\n")
    for name, quantity, axis in _FIGURES:
        if axis not in axes or (quantity == "delta_rms" and coords["step"].max() < 1):
            continue
        n += 1
        draw = functools.partial(coord_panels, coords, quantity, axis)
        figures.append(PlannedFigure(name, draw))
        title = f"{quantity} against {axis}"
        parts.append(figure_block(name, title, _caption(cfg, quantity, axis), n))
    for a in axes:
        parts += [f"## Slopes against {a}, at the last step\n",
                  md_table(slopes_table(slopes[a])) + "\n"]  # fmt: skip
    parts.append("\n".join(run_lines(result.meta)) + "\n")
    return ReportPlan(figures, "\n".join(parts))


def _caption(cfg: Mapping[str, Any], quantity: str, axis: str) -> str:
    what = {"l1": "The mean |output| (mup's statistic)", "rms": "The rms of the output",
            "delta_rms": "The rms of the output's change since step 0"}[quantity]  # fmt: skip
    return (f"{what} of every module of {md_text(cfg.get('model', '?'))} against {axis} "
            f"(log-log), a panel per parametrization and step, trained with "
            f"{md_text(cfg.get('optimizer', '?'))} at lr {md_text(cfg.get('lr', '?'))} on one "
            "fixed batch; lines coloured by the module's role, each the geometric mean over "
            "seeds. Flat lines: the parametrization keeps that module's coordinates the same "
            "size as the model grows.")  # fmt: skip
