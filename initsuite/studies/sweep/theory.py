"""The theory tables a sweep stores beside its cells, computed once from its configuration.

They hold what the sweep's report draws from theory
(:data:`initsuite.results.columns.THEORY`, :data:`~initsuite.results.columns.PHASE_POINTS`,
:data:`~initsuite.results.columns.PHASE_GRID`), so that a report reads a directory alone: no
scheme registry (a plugin scheme may be gone), no theory.
"""

from __future__ import annotations

import math
from functools import cache

import pandas as pd

from initsuite.activations import Activation
from initsuite.engine.archs import MLP, Arch
from initsuite.results import columns as C
from initsuite.schemes import Scheme
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory import phase
from initsuite.theory.spread import WeightLaw, predicted_log_std_sd, weight_law

__all__ = ["theory_tables"]

_MLP = MLP()  # the phase diagram's


def theory_tables(cfg: SweepConfig) -> dict[str, pd.DataFrame]:
    """The ``theory``, ``phase_points`` and ``phase_grid`` tables of the sweep ``cfg``; the
    theory table carries each ``dks:``/``tat:`` activation's constants at each cell's depth.

    The phase tables cover the MLP only (the phase diagram is the MLP's) and are empty
    without it; the phase grid of an activation is computed once per process.
    """
    acts = sorted(cfg.activation_objects, key=lambda a: a.spec)
    tables = {"theory": C.frame(C.THEORY, _theory_rows(cfg, acts)),
              "phase_points": C.frame(C.PHASE_POINTS, []),
              "phase_grid": C.frame(C.PHASE_GRID, [])}  # fmt: skip
    # an activation bound to each cell's depth (dks:, tat: without depth) has no one diagram
    fixed = [a for a in acts if not a.needs_depth]
    if fixed and any(a.supports("phase") for a in cfg.arch_objects):
        tables["phase_points"] = _phase_points(cfg, fixed)
        grids = [_phase_grid(a) for a in fixed]
        tables["phase_grid"] = pd.concat(grids, ignore_index=True)
    return tables


def _prior(
    scheme: Scheme,
    act: Activation,
    width: int,
    bias: str | None,
    arch: Arch = _MLP,
    depth: int = 1,
) -> tuple[float, float] | None:
    """(σ_w², σ_b²) of the scheme at this activation and width (conv: of its k × k kernel;
    resmlp: of a branch's first layer in a net of ``depth`` blocks); None where mean-field
    theory does not apply, or where the scheme's metadata fails (its cells carry the error)."""
    try:
        priors = arch.priors(scheme, scheme.resolve(act), width, depth, bias)
        return None if priors is None else arch.first_prior(priors)
    except Exception:
        return None


def _theory_rows(cfg: SweepConfig, acts: list[Activation]) -> list[dict[str, object]]:
    """One row per (arch, scheme, activation, depth, width) of the grid. The finite-width
    spread (``predicted_log_std_sd``, :mod:`initsuite.theory.spread`) is the MLP's: NaN for
    conv and residual nets."""
    rows = []
    for arch in cfg.arch_objects:
        for scheme in cfg.scheme_objects:
            for act in acts:
                for width in cfg.widths:
                    # σ_w² depends on the depth in residual nets only (Fixup, GPT-2), and
                    # so does an activation bound to each cell's depth (dks:, tat:)
                    each = not arch.prefixes or act.needs_depth
                    fixed = None if each else _prior(scheme, act, width, cfg.bias, arch)
                    # the finite-width spread is derived for the MLP (initsuite.theory.spread)
                    spread = arch.supports("spread")
                    law = _law(scheme, act, width) if spread and not each else None
                    for depth in cfg.depths:
                        bound = act.at_depth(depth)
                        prior = (_prior(scheme, bound, width, cfg.bias, arch, depth)
                                 if each else fixed)  # fmt: skip
                        if each and spread:
                            law = _law(scheme, bound, width)
                        sw2, sb2 = prior if prior is not None else (math.nan, math.nan)
                        sd = (predicted_log_std_sd(bound, depth, width, law, cfg.batch, sb2)
                              if prior is not None and law is not None else math.nan)  # fmt: skip
                        rows.append({"arch": arch.spec, "scheme": scheme.spec,
                                     "activation": act.spec, "depth": depth, "width": width,
                                     "sigma_w2": sw2,
                                     "sigma_b2": sb2, "mean_field": prior is not None,
                                     "predicted_log_std_sd": sd,
                                     **_constants(bound)})  # fmt: skip
    return rows


def _constants(act: Activation) -> dict[str, float]:
    """The solved constants (:data:`~initsuite.results.columns.SHAPING`) of a kernel-shaped
    activation bound to its depth; NaN for any other activation, and for a transform's
    constant it has none of (DKS's negative slope)."""
    shaping = getattr(act, "shaping", None)
    values = shaping.as_dict() if shaping is not None else {}
    return {c: math.nan if values.get(c) is None else float(values[c]) for c in C.SHAPING}


def _law(scheme: Scheme, act: Activation, width: int) -> WeightLaw | None:
    """The law of the scheme's width × width weights (None: its spread is not modelled)."""
    try:
        return weight_law(scheme.info.family, scheme.resolve(act), (width, width))
    except Exception:  # a scheme whose metadata fails has error rows already
        return None


def _phase_points(cfg: SweepConfig, acts: list[Activation]) -> pd.DataFrame:
    """Each scheme's point in each activation's phase diagram at the largest width, for the
    schemes mean-field theory applies to with a finite σ_w² (others have no phase), in name
    order."""
    width = max(cfg.widths)
    frames = []
    for act in acts:
        priors = {s: p for s in cfg.scheme_objects
                  if (p := _prior(s, act, width, cfg.bias)) is not None
                  and math.isfinite(p[0])}  # fmt: skip
        key = tuple((s, priors[s]) for s in sorted(priors, key=lambda s: s.spec))
        points = _scheme_points(act, key, width, cfg.bias)
        frames.append(points.assign(width=width))
    return C.coerce(pd.concat(frames, ignore_index=True), C.PHASE_POINTS)


@cache
def _scheme_points(
    activation: Activation,
    key: tuple[tuple[Scheme, tuple[float, float]], ...],
    width: int,
    bias: str | None,
) -> pd.DataFrame:
    """:func:`phase.scheme_points` of the schemes in ``key`` ((scheme, (σ_w², σ_b²)) pairs: a
    scheme re-registered with another law misses the cache), once per process: a fixed
    point per scheme costs milliseconds that repeated small sweeps would pay every time."""
    return phase.scheme_points(activation, [scheme for scheme, _ in key], width, bias)


@cache
def _phase_grid(activation: Activation) -> pd.DataFrame:
    """The phase diagram of one activation over the default (σ_w², σ_b²) grid, once per
    process: it depends on nothing else, and takes 0.1-0.2 s (callers copy, never change,
    it: ``pd.concat``)."""
    return C.coerce(phase.phase_diagram(activation), C.PHASE_GRID)
