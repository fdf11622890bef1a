"""``initsuite.sweep``: run a grid of cells and return tidy tables."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from initsuite import activations as _activations
from initsuite.activations import Activation
from initsuite.core.devices import DTYPES
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.engine.archs import parse_arch
from initsuite.engine.mlp import derive_cells, run_stream
from initsuite.engine.nets import run_arch_stream
from initsuite.engine.stack import Member, Stream
from initsuite.engine.stats import LayerStats
from initsuite.engine.timing import time_layer
from initsuite.results import chunks, store
from initsuite.results import columns as C
from initsuite.results.chunks import cell_key, chunk_name
from initsuite.results.sweep import SweepResult, sort_tables
from initsuite.schemes import Scheme
from initsuite.studies.sweep import budget
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory.meanfield import CellTheory, cell_theory, grad_theory, weight_prior

__all__ = ["fingerprint", "groups", "run", "run_group", "sweep"]

log = logging.getLogger("initsuite")


def sweep(
    schemes: str | Iterable[str],
    activations: str | Iterable[str],
    depths: int | Iterable[int],
    widths: int | Iterable[int],
    batch: int = 16,
    seeds: int | Iterable[int] = 1,
    devices: str | Iterable[str] = ("cpu",),
    dtypes: str | Iterable[str] = ("float32",),
    arch: str | Iterable[str] = "mlp",
    bias: bool = False,
    *,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    timing: bool = True,
    timing_repeats: int = 7,
    shared: bool = True,
    pair_cosine: float | None = 0.5,
    jacobian: bool = False,
    backward: bool = False,
    progress: bool | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    executor: Any = None,
    allow_large: bool = False,
) -> SweepResult:
    """Sweep scheme × activation × depth × width × seed × device × dtype.

    Each cell is the tutorial's MLP: ``depth`` Linear(width, width) layers, each followed by
    the activation, fed x ~ N(0, 1) of shape (batch, width). Every draw comes from a
    ``torch.Generator`` seeded with the cell's seed: same seed, same numbers.

    Args:
        schemes: scheme specs (``"kaiming_normal"``, ``"xavier_uniform:gain=auto"``);
            ``"all"`` and wildcards (``"kaiming*"``) expand to every matching Linear scheme.
        activations: activation specs (``"tanh"``, ``"leaky_relu:negative_slope=0.2"``).
        depths: numbers of layers.
        widths: units per layer.
        batch: rows of the input.
        seeds: a count (``3`` → seeds 0, 1, 2) or explicit seeds.
        devices: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        dtypes: ``"float64"``, ``"float32"``, ``"bfloat16"``, ``"float16"``.
        arch: one or more architecture specs (:mod:`initsuite.archs`): ``"mlp"``,
            ``"conv:kernel=3,image=8"`` (width = channels), ``"resmlp:branch=2,scale=1"``
            (``scale``: ``1``, ``inv_sqrt_depth`` or ``zero``). Conv and residual cells draw
            each scheme on its own and carry no mean-field, gradient or Jacobian columns.
        bias: Linear layers with bias, drawn as nn.Linear does: U(±1/√fan_in).
        explode_at: also count a layer whose std exceeds this multiple of the input's std as
            divergence (kind ``"explode"``).
        vanish_at: likewise below this multiple (kind ``"vanish"``).
        timing: run the timing pass (one layer's init, and its forward through the first
            activation, per scheme, width, device and dtype).
        timing_repeats: timed repeats behind each median.
        shared: draw once per layer for every scheme that is a scaling of the same base
            draw (normal, xavier_normal, kaiming_normal, lecun_normal, orthogonal share
            N(0, 1); the uniform family shares U(-1, 1)). Each cell's weights are still its
            scheme's own draw from the seed, to rounding; comparisons between schemes become
            paired (less noise). False: every scheme draws on its own.
        pair_cosine: cosine of a pair of inputs (squared norm = width) pushed through every
            cell beside the batch; layers record the cosine of their pre-activations
            (``cosine``, the c-map) beside the mean-field ``theory_cosine``. None: no pair.
        jacobian: also record the singular-value spectrum of each cell's input-output
            Jacobian (``jac_*`` columns; :mod:`initsuite.jacobian`): a width × width product
            per layer and an SVD per depth, so opt in for widths up to about 1024.
        backward: also back-propagate Loss = Σ R ⊙ h_depth from every cell's output (R a
            fixed N(0, 1) tensor of the output's shape, from its own generator, so
            dLoss/dh_depth has unit variance): per layer ``grad_std`` (of dLoss/dh_l) and
            ``weight_grad_norm`` (‖dLoss/dW_l‖_F) beside their mean-field values; per cell
            ``input_grad_std``, ``weight_grad_ratio`` and the backward divergence. Weights are
            regenerated from the seed's stream, never stored (:func:`engine._backward`);
            about 2-3× the forward's time. Cells whose forward pass diverged get none.
        progress: show a progress bar on stderr (default: when stderr is a terminal).
        out: a results directory to write as the sweep goes, one chunk per group of cells
            (:mod:`initsuite.chunks`); the result is read back from it.
        resume: continue the sweep stored in ``out``: skip its stored cells.
        executor: None (in process) or a :class:`~initsuite.executors.DaskExecutor`.
        allow_large: run a sweep estimated to take over an hour (:mod:`initsuite.budget`),
            logging the estimate first; without it such a sweep is refused. A sweep that
            cannot fit in this machine's memory is refused either way.

    Returns:
        A :class:`SweepResult` with ``cells``, ``layers`` and ``timing`` DataFrames and ``meta``.

    Raises:
        InitsuiteError: for bad input (a scheme's out-of-range parameter, a non-integral
            seed, a size that cannot fit in memory), before any compute is spent.

    Example:
        >>> res = initsuite.sweep(["xavier_uniform", "kaiming_normal"], "relu", [10, 50], 256)
        >>> res.cells[["scheme", "depth", "final_std", "growth_per_layer"]]
    """
    cfg = SweepConfig.build(
        schemes, activations, depths, widths, batch=batch, seeds=seeds, devices=devices,
        dtypes=dtypes, arch=arch, bias=bias, explode_at=explode_at, vanish_at=vanish_at,
        timing=timing, timing_repeats=timing_repeats, shared=shared, pair_cosine=pair_cosine,
        jacobian=jacobian, backward=backward,
    )  # fmt: skip
    return run(cfg, progress=progress, out=out, resume=resume, executor=executor,
               allow_large=allow_large)  # fmt: skip


@contextlib.contextmanager
def _highest_precision() -> Iterator[None]:
    # TF32 products change measured stds on GPUs; statistics runs want full float32.
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@dataclass
class _Plan:
    """A stream and, for each of its cells, the member whose run the cell reads."""

    stream: Stream
    cells: list[tuple[Scheme, Activation, int]] = field(default_factory=list)
    error: str | None = None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _plans(cfg: SweepConfig) -> Iterator[_Plan]:
    """Every stream of the grid, one (arch, device, dtype, width, seed) at a time."""
    acts = [_activations.get(a) for a in cfg.activations]
    for arch in cfg.archs:
        mlp = arch == "mlp"
        for device in cfg.devices:
            for dtype in cfg.dtypes:
                # Half precision rounds a scaled base draw visibly differently (engine
                # docstring); conv and residual nets draw every scheme on its own.
                share = cfg.shared and dtype in ("float32", "float64") and mlp
                for width in cfg.widths:
                    for seed in cfg.seeds:
                        common = dict(width=width, depth=max(cfg.depths), batch=cfg.batch,
                                      seed=seed, device=device, dtype=dtype, bias=cfg.bias,
                                      pair_cosine=cfg.pair_cosine if mlp else None,
                                      arch=arch)  # fmt: skip
                        yield from _streams(cfg._scheme_objs, acts, share, common)


# The engine's transform of each shared base (engine.Member), in stacking order.
_TRANSFORMS = {
    "normal": "plain",
    "uniform": "plain",
    "orthogonal": "qr",
    "householder": "householder",
}
_TRANSFORM_ORDER = {"plain": 0, "qr": 1, "householder": 2}


def _streams(
    scheme_objs: Iterable[Scheme], acts: list[Activation], share: bool, common: dict[str, Any]
) -> Iterator[_Plan]:
    """The streams of one (device, dtype, width, seed): one per shared base draw, one per
    scheme (and resolved parameters) that draws on its own. Identical members (e.g.
    xavier_normal and lecun_normal on a square layer) run once; members are ordered by
    transform and activation so that each is one contiguous block of the stack."""
    order = {a.spec: i for i, a in enumerate(acts)}
    shape = (common["width"], common["width"])
    bases: dict[str, dict[tuple[Any, ...], Member]] = {}
    base_cells: dict[str, list[tuple[Scheme, Activation, tuple[Any, ...]]]] = {}
    own: dict[tuple[Any, ...], list[tuple[Scheme, Activation]]] = {}  # (spec, params, split)
    failed: list[tuple[Scheme, Activation, str]] = []
    for scheme in scheme_objs:
        for act in acts:
            params = tuple(sorted(scheme.resolve(act).items()))
            try:
                draw = scheme.shared_draw(shape, dict(params)) if share else None
            except Exception as exc:  # a plugin's shared() that fails
                failed.append((scheme, act, _error(exc)))
                continue
            if draw is None:
                # a data-dependent scheme's weights depend on the activations below it
                split = act.spec if "data" in scheme.info.uses else None
                own.setdefault((scheme.spec, params, split), []).append((scheme, act))
                continue
            base = "uniform" if draw.base == "uniform" else "normal"
            transform = _TRANSFORMS[draw.base]
            key = (transform, draw.scale, draw.shift, act.spec)
            member = Member(scheme, params, act, draw.scale, draw.shift, transform)
            bases.setdefault(base, {}).setdefault(key, member)
            base_cells.setdefault(base, []).append((scheme, act, key))
    for base, members in bases.items():
        first = {k: i for i, k in enumerate(members)}
        keys = sorted(members, key=lambda k: (_TRANSFORM_ORDER[k[0]], order[k[3]], first[k]))
        index = {k: i for i, k in enumerate(keys)}
        stream = Stream(base, tuple(members[k] for k in keys), **common)
        yield _Plan(stream, [(s, a, index[k]) for s, a, k in base_cells[base]])
    for (_, params, _), pairs in own.items():
        members_own = tuple(Member(pairs[0][0], params, a) for _, a in pairs)
        stream = Stream(None, members_own, **common)
        yield _Plan(stream, [(s, a, i) for i, (s, a) in enumerate(pairs)])
    for scheme, act, err in failed:
        stream = Stream(None, (Member(scheme, (), act),), **common)
        yield _Plan(stream, [(scheme, act, 0)], error=err)


class _Theory:
    """Mean-field predictions per (scheme, activation, width, dtype), each computed once."""

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg = cfg
        self.depth = max(cfg.depths)
        self.cache: dict[tuple[str, str, int, str], CellTheory | None] = {}

    def __call__(
        self, scheme: Scheme, act: Activation, width: int, dtype: str
    ) -> CellTheory | None:
        key = (scheme.spec, act.spec, width, dtype)
        if key not in self.cache:
            self.cache[key] = self._predict(scheme, act, width, dtype)
        return self.cache[key]

    def _predict(
        self, scheme: Scheme, act: Activation, width: int, dtype: str
    ) -> CellTheory | None:
        try:
            prior = weight_prior(scheme, scheme.resolve(act), width, self.cfg.bias)
        except Exception:  # a scheme whose metadata fails has error rows already
            return None
        if prior is None:
            return None
        finfo = torch.finfo(DTYPES[dtype])
        return cell_theory(act, *prior, self.depth, self.cfg.batch * width, finfo.max,
                           finfo.tiny, pair_cosine=self.cfg.pair_cosine)  # fmt: skip


def _theory_cell(theory: CellTheory | None, depth: int, n: int) -> dict[str, Any]:
    """The theory columns of a cell of ``depth`` whose run computed ``n`` layers."""
    div = theory.divergence_layer if theory else None
    within = div is not None and div <= depth
    final = theory.std[n - 1] if theory and n > 0 else math.nan
    growth = final ** (1.0 / n) if n > 0 and math.isfinite(final) and final >= 0 else math.nan
    return {
        "theory_final_std": final,
        "theory_divergence_layer": div if within else None,
        "theory_divergence_kind": theory.divergence_kind if theory and within else None,
        "theory_growth_per_layer": growth,
        "theory_chi1": theory.chi1[n - 1] if theory and theory.chi1 and n > 0 else math.nan,
    }


@dataclass
class _Grads:
    cell: dict[str, Any]
    layers: dict[str, list[float]]


_GRAD_LAYERS = ("grad_std", "weight_grad_norm", "theory_grad_std", "theory_weight_grad_norm")


def _grad_columns(
    st: LayerStats, theory: CellTheory | None, depth: int, n: int, stream: Stream
) -> _Grads:
    """The backward columns of a cell of ``depth`` (n layers computed); NaN/null where the
    cell had no backward pass (not asked for, or the forward pass diverged)."""
    gs = st.grads.get(depth)
    if gs is None:
        return _Grads({}, {c: [math.nan] * n for c in _GRAD_LAYERS})
    gt = grad_theory(theory, depth, stream.batch, stream.width) if theory else None
    norms = [v for v in gs.weight_grad_norm if math.isfinite(v)]
    ratio = max(norms) / min(norms) if norms and min(norms) > 0 else math.nan
    if gs.divergence_layer is not None:
        ratio = math.inf  # the layers below it get no usable gradient at all
    nan = [math.nan] * depth
    return _Grads(
        {
            "input_grad_std": gs.input_grad_std,
            "theory_input_grad_std": gt.input_grad_std if gt else math.nan,
            "weight_grad_ratio": ratio,
            "grad_divergence_layer": gs.divergence_layer,
            "grad_divergence_kind": gs.divergence_kind,
        },
        {
            "grad_std": gs.grad_std,
            "weight_grad_norm": gs.weight_grad_norm,
            "theory_grad_std": gt.grad_std if gt else nan,
            "theory_weight_grad_norm": gt.weight_grad_norm if gt else nan,
        },
    )


def _jacobian(
    cfg: SweepConfig, scheme: Scheme, act: Activation, stream: Stream
) -> dict[int, dict[str, Any]]:
    """The ``jac_*`` columns of a cell at each of its depths (one pass, the cell's own draws)."""
    from initsuite.engine.jacobian import jacobian_summaries

    try:
        sums = jacobian_summaries(scheme.spec, act.spec, sorted(cfg.depths), stream.width,
                                  stream.seed, stream.batch, stream.dtype, stream.device,
                                  bias=cfg.bias)  # fmt: skip
    except Exception:  # a failed spectrum leaves NaN, like a failed cell
        return {}
    return {d: {f"jac_{k}": v for k, v in s.items()} for d, s in sums.items()}


@dataclass
class _Rows:
    """The table rows of a group of streams."""

    cells: list[dict[str, Any]] = field(default_factory=list)
    layers: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in C.LAYERS})
    n_layers: int = 0


GroupKey = tuple[str, str, str, int, int]  # (arch, device, dtype, width, seed)


def _group_of(stream: Stream) -> GroupKey:
    return (stream.arch, stream.device, stream.dtype, stream.width, stream.seed)


def groups(cfg: SweepConfig) -> Iterator[tuple[GroupKey, list[_Plan]]]:
    """The streams of the grid by (arch, device, dtype, width, seed): the unit of work that
    keeps the engine's sharing (common random numbers, depth prefixes), and of storage."""
    for key, plans in itertools.groupby(_plans(cfg), key=lambda p: _group_of(p.stream)):
        yield key, list(plans)


def fingerprint(cfg: SweepConfig) -> str:
    """The settings and versions every cell's numbers depend on, beside its key columns."""
    from initsuite.core.version import __version__

    return json.dumps({
        "initsuite": __version__, "torch": torch.__version__, "bias": cfg.bias,
        "explode_at": cfg.explode_at, "vanish_at": cfg.vanish_at, "shared": cfg.shared,
        "pair_cosine": cfg.pair_cosine, "jacobian": cfg.jacobian, "backward": cfg.backward,
    }, sort_keys=True)  # fmt: skip


def group_cell_keys(cfg: SweepConfig, key: GroupKey, fp: str) -> list[str]:
    """The ``cell_key`` of every cell of one group, without computing it."""
    arch, device, dtype, width, seed = key
    return [
        cell_key({"arch": arch, "scheme": s, "activation": a, "depth": d, "width": width,
                  "batch": cfg.batch, "seed": seed, "device": device, "dtype": dtype}, fp)
        for s in cfg.schemes for a in cfg.activations for d in cfg.depths
    ]  # fmt: skip


def _compute(cfg: SweepConfig, plans: list[_Plan], predict: _Theory, fp: str) -> _Rows:
    """Run a group's streams; its rows (each cell with its ``cell_key``)."""
    out = _Rows()
    cells, layers = out.cells, out.layers
    depths = sorted(cfg.depths)
    for plan in plans:
        stream = plan.stream
        mlp = stream.arch == "mlp"
        by_depth: dict[int, list[LayerStats]] = {}
        if plan.error is None:
            try:
                if mlp:
                    stats = run_stream(stream, cfg.explode_at, cfg.vanish_at,
                                       backward=depths if cfg.backward else ())  # fmt: skip
                    by_depth = dict.fromkeys(depths, stats)
                else:
                    by_depth = run_arch_stream(stream, parse_arch(stream.arch), depths,
                                               cfg.explode_at, cfg.vanish_at)  # fmt: skip
            except Exception as exc:  # a failed stream becomes rows with its error
                plan.error = _error(exc)
        if plan.error is not None:
            failed = [LayerStats(math.nan, [], [], error=plan.error) for _ in stream.members]
            by_depth = dict.fromkeys(depths, failed)
        for scheme, act, i in plan.cells:
            key = {
                "arch": stream.arch, "scheme": scheme.spec, "activation": act.spec,
                "width": stream.width, "batch": stream.batch, "seed": stream.seed,
                "device": stream.device, "dtype": stream.dtype,
            }  # fmt: skip
            # mean field is the MLP's (conv and residual nets: not predicted)
            theory = predict(scheme, act, stream.width, stream.dtype) if mlp else None
            st = by_depth[depths[-1]][i]
            jac = _jacobian(cfg, scheme, act, stream) if cfg.jacobian and not st.error else {}
            for depth in depths:
                st = by_depth[depth][i]
                (cell,) = derive_cells(st, [depth])
                n = min(cell["depth"], len(st.std))
                # no spectrum past a divergence: the cell stopped there
                spectrum = {} if cell["divergence_layer"] is not None else jac
                grads = _grad_columns(st, theory, cell["depth"], n, stream)
                ck = cell_key({**key, "depth": depth}, fp)
                cells.append({**key, "bias": cfg.bias, **cell,
                              **_theory_cell(theory, cell["depth"], n),
                              **spectrum.get(cell["depth"], {}), **grads.cell,
                              "cell_key": ck})  # fmt: skip
                for col in C.CELL_KEYS:
                    layers[col].extend([cell["depth"] if col == "depth" else key[col]] * n)
                layers["layer"].extend(range(1, n + 1))
                layers["std"].extend(st.std[:n])
                layers["mean"].extend(st.mean[:n])
                layers["theory_std"].extend(theory.std[:n] if theory else [math.nan] * n)
                layers["cosine"].extend(st.cosine[:n] if st.cosine else [math.nan] * n)
                layers["theory_cosine"].extend(
                    theory.cosine[:n] if theory and theory.cosine else [math.nan] * n
                )
                for col, values in grads.layers.items():
                    layers[col].extend(values[:n])
                out.n_layers += n
    return out


def _frames(rows: list[_Rows]) -> tuple[Any, Any]:
    """Cells and layers tables of some groups' rows, sorted by the cell's key."""
    import pandas as pd

    cells = C.frame(C.CELLS, [c for r in rows for c in r.cells])
    layers = C.coerce(pd.DataFrame({c: [v for r in rows for v in r.layers[c]]
                                    for c in C.LAYERS}), C.LAYERS)  # fmt: skip
    return sort_tables(cells, layers)


def run_group(cfg: SweepConfig, key: GroupKey, out: str | None = None) -> int:
    """Compute one group of ``cfg`` and, with ``out``, store it as a chunk there; the number
    of cells it holds. What distributed workers run (they rebuild ``cfg`` from its dict)."""
    fp = fingerprint(cfg)
    plans = next((p for k, p in groups(cfg) if k == key), None)
    if plans is None:
        raise ValueError(f"group {key!r} is not part of this sweep")
    with _highest_precision():
        rows = _compute(cfg, plans, _Theory(cfg), fp)
    if out is not None:
        _store(out, rows)
    return len(rows.cells)


def _store(out: str | os.PathLike[str], rows: _Rows, have: set[str] | None = None) -> None:
    """Store a group's cells as a chunk, leaving out the cells in ``have`` (default: read
    from ``out``): a resumed sweep whose grid grew recomputes whole groups, and the cells
    stored before keep their first rows."""
    cells, layers = _frames([rows])
    if have is None:
        have = chunks.stored_keys(out)
    if have:
        old = cells["cell_key"].astype(str).isin(have).to_numpy()
        if old.all():
            return
        if old.any():
            gone = cells.loc[old, list(C.CELL_KEYS)]
            mask = layers[list(C.CELL_KEYS)].merge(gone, how="left", indicator=True)["_merge"]
            layers = layers[(mask == "left_only").to_numpy()].reset_index(drop=True)
            cells = cells[~old].reset_index(drop=True)
    name = chunk_name(cells["cell_key"].astype(str))
    written = chunks.write_chunk(out, name, {"cells": cells, "layers": layers,
                                             "timing": C.frame(C.TIMING, [])})  # fmt: skip
    log.info("%s chunk %s (%d cells)", "wrote" if written else "already had", name, len(cells))


def run(
    cfg: SweepConfig,
    progress: bool | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    executor: Any = None,
    allow_large: bool = False,
) -> SweepResult:
    """Run a validated :class:`SweepConfig`.

    Without ``out``, in memory. With ``out``, each group of cells is stored in ``out`` as a
    chunk as soon as it is computed (:mod:`initsuite.chunks`), so an interrupted sweep
    loses at most the groups in flight; ``resume`` skips the groups already stored there
    (same settings and versions required). ``executor``: None (in process) or a
    :class:`initsuite.executors.DaskExecutor` (needs ``out``, reachable by every worker).
    A sweep too large for this machine, or estimated to take over an hour without
    ``allow_large``, is refused before anything is computed or written
    (:func:`initsuite.budget.check`).
    """
    from tqdm.auto import tqdm

    budget.check(cfg, allow_large=allow_large, stored=out is not None)

    show = sys.stderr.isatty() if progress is None else progress
    fp = fingerprint(cfg)
    started = time.perf_counter()
    stored: set[str] = set()
    if out is not None:
        stored = _prepare(out, cfg, fp, resume)
    elif executor is not None:
        raise InitsuiteError("a distributed sweep needs an output directory (out=...)")
    elif resume:
        raise InitsuiteError("resume continues the sweep stored in a directory: give out=...")
    rows: list[_Rows] = []
    skipped = 0
    n_layers = 0
    with (
        _highest_precision(),
        tqdm(
            total=cfg.n_cells, disable=not show, unit="cell", file=sys.stderr, desc="sweep"
        ) as bar,  # fmt: skip
    ):
        todo: list[GroupKey] = []
        for key in _group_keys(cfg):
            if stored and set(group_cell_keys(cfg, key, fp)) <= stored:
                n = len(cfg.schemes) * len(cfg.activations) * len(cfg.depths)
                skipped += n
                bar.update(n)
                continue
            todo.append(key)
        if skipped:
            log.info("resume: %d cells already stored in %s", skipped, out)
        if executor is not None:
            assert out is not None
            for n in executor.map_groups(cfg, todo, str(out)):
                bar.update(n)
        else:
            predict = _Theory(cfg)
            wanted = set(todo)
            for key, plans in groups(cfg):
                if key not in wanted:
                    continue
                group = _compute(cfg, plans, predict, fp)
                n_layers += group.n_layers
                if out is not None:
                    _store(out, group, stored)
                else:
                    rows.append(group)
                bar.update(len(group.cells))
        sweep_s = time.perf_counter() - started
        # timing is per Linear layer: it runs when the grid has the mlp arch
        timing_rows: list[dict[str, Any]] = []
        if cfg.timing and "mlp" in cfg.archs and not (out is not None and chunks.has_timing(out)):
            timing_rows = _timing(cfg)
            if out is not None and timing_rows:
                timing = C.frame(C.TIMING, timing_rows)
                empty = C.frame(C.CELLS, [])
                chunks.write_chunk(out, chunk_name(["timing", fp, *cfg.schemes]),
                                   {"cells": empty, "layers": C.frame(C.LAYERS, []),
                                    "timing": timing})  # fmt: skip
    meta = {
        "kind": "sweep",
        "config": cfg.to_dict(),
        "fingerprint": json.loads(fp),
        "environment": environment(cfg.devices),
        "cells": cfg.n_cells,
        "resumed_cells": skipped,
        "sweep_seconds": round(sweep_s, 3),
        "cells_per_second": round((cfg.n_cells - skipped) / sweep_s, 1) if sweep_s > 0 else None,
        "layers_per_second": round(n_layers / sweep_s, 1) if sweep_s > 0 and n_layers else None,
        "timing_seconds": round(time.perf_counter() - started - sweep_s, 3),
        "complete": True,
    }
    if out is not None:
        # complete only when every cell of this grid is stored (a concurrent writer, or a
        # worker, may have stored some; none may be missing)
        meta["complete"] = _grid_keys(cfg, fp) <= chunks.stored_keys(out)
        store.atomic_write_text(Path(out) / store.META, json.dumps(meta, indent=2, default=str)
                                + "\n")  # fmt: skip
        return SweepResult.load(out)
    cells_df, layers_df = _frames(rows)
    return SweepResult(cells_df, layers_df, C.frame(C.TIMING, timing_rows), meta)


def _grid_keys(cfg: SweepConfig, fp: str) -> set[str]:
    """The ``cell_key`` of every cell of the grid."""
    return {k for key in _group_keys(cfg) for k in group_cell_keys(cfg, key, fp)}


def _group_keys(cfg: SweepConfig) -> list[GroupKey]:
    """Every group of the grid, in run order, without building its streams."""
    return [(a, d, t, w, s) for a in cfg.archs for d in cfg.devices for t in cfg.dtypes
            for w in cfg.widths for s in cfg.seeds]  # fmt: skip


def _prepare(out: str | os.PathLike[str], cfg: SweepConfig, fp: str, resume: bool) -> set[str]:
    """Make ``out`` ready for chunks; the cell keys stored there (resume).

    Every state a killed sweep leaves is resumable: no directory, an empty one (or one with
    only the temporary of its first meta.json), meta.json and no chunk yet, some chunks (and
    temporary ones), all of them before meta.json says complete. Two writers that start
    together write the same meta.json, atomically.
    """
    path = Path(out)
    state = chunks.layout(path)
    if state in ("absent", "empty"):
        return _start(path, cfg, fp)
    if state == "chunked":
        if resume:
            return _resume(path, cfg, fp)
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep: pass resume=True (--resume) to continue it, or "
            "choose a new out"
        )
    if not resume:
        store.check_target(path)  # raises: the directory holds something else
        raise InitsuiteError(f"{str(path)!r} already holds something: choose a new out")
    if state == "whole":
        raise InitsuiteError(
            f"{str(path)!r} holds results written whole, by save() or --overwrite, not in "
            "chunks: it cannot be resumed (choose a new --out)"
        )
    elif state == "foreign":
        raise InitsuiteError(
            f"{str(path)!r} holds no initsuite sweep (no {store.META}): nothing to resume; "
            "choose a new --out"
        )
    elif state == "file":
        raise InitsuiteError(f"output path {str(path)!r} exists and is not a directory")
    else:
        raise InitsuiteError(f"unknown layout {state!r} of {str(path)!r}")


def _sweep_meta(cfg: SweepConfig, fp: str) -> dict[str, Any]:
    """meta.json while a sweep runs: its grid, settings, size, and not complete yet."""
    return {"kind": "sweep", "config": cfg.to_dict(), "fingerprint": json.loads(fp),
            "cells": cfg.n_cells, "complete": False}  # fmt: skip


def _start(path: Path, cfg: SweepConfig, fp: str) -> set[str]:
    """A new sweep in ``path``: meta.json first (atomic: a second writer that started
    together writes the same file), then chunks."""
    path.mkdir(parents=True, exist_ok=True)
    store.atomic_write_text(path / store.META, json.dumps(_sweep_meta(cfg, fp), indent=2) + "\n")
    return set()


def _resume(path: Path, cfg: SweepConfig, fp: str) -> set[str]:
    """The cells stored in ``path``, after checking that ``cfg`` may continue its sweep: the
    same settings and versions, and a grid that contains the stored one. meta.json then
    describes ``cfg``'s grid (not complete) before any cell of it is computed."""
    meta = store.read(path, ())[1]
    chunks.check_meta(path, meta)
    _check_fingerprint(path, meta.get("fingerprint"), json.loads(fp))
    _check_grid(path, meta.get("config"), cfg)
    # every stored chunk checked; a missing one is recomputed, and a concurrent writer may
    # have stored cells of this grid already: bounded by this grid, not the stored meta's
    keys = set(chunks.read(path)["cells"]["cell_key"])
    now = _sweep_meta(cfg, fp)
    chunks.check_total(path, now, len(keys))
    if meta.get("config") != now["config"] or meta.get("cells") != now["cells"]:
        store.atomic_write_text(path / store.META, json.dumps(now, indent=2) + "\n")
    return keys


def _check_fingerprint(path: Path, old: Any, new: dict[str, Any]) -> None:
    """Raise unless the stored fingerprint is present, well formed and ``new``'s."""
    meta_path = repr(str(path / store.META))
    if not isinstance(old, dict):
        what = "has no fingerprint" if old is None else "has a malformed fingerprint"
        raise InitsuiteError(
            f"{meta_path} {what}: the settings its cells were computed with are unknown, so it "
            "cannot be resumed (choose a new --out)"
        )
    if set(old) != set(new):
        odd = sorted(set(old) ^ set(new))
        raise InitsuiteError(
            f"{meta_path} has a fingerprint with other keys ({odd}): written by another "
            "initsuite version, or damaged; it cannot be resumed (choose a new --out)"
        )
    diff = next((k for k in sorted(new) if old[k] != new[k]), None)
    if diff is not None:
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep with {diff}={old[diff]!r}, this one has "
            f"{diff}={new[diff]!r}: resume only the same settings and versions "
            "(choose a new --out)"
        )


# the axes of the grid a resumed sweep may grow
_AXES = ("schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes", "archs")


def _check_grid(path: Path, old: Any, cfg: SweepConfig) -> None:
    """Raise unless ``cfg``'s grid contains the stored one on every axis (same batch)."""
    meta_path = repr(str(path / store.META))
    if not (isinstance(old, dict) and all(isinstance(old.get(a), list) for a in _AXES)):
        raise InitsuiteError(
            f"{meta_path} has no well-formed config (lists of {', '.join(_AXES)}): damaged, "
            "or not written by initsuite; it cannot be resumed (choose a new --out)"
        )
    for axis in _AXES:
        values = list(getattr(cfg, axis))
        gone = [v for v in old[axis] if v not in values]
        if gone:
            raise InitsuiteError(
                f"{str(path)!r} holds a sweep with {axis} {gone} not in this one: resume only "
                f"a grid that contains the stored one (add them to the {axis}, or choose a "
                "new --out)"
            )
    if old.get("batch") != cfg.batch:
        raise InitsuiteError(
            f"{str(path)!r} holds a sweep with batch={old.get('batch')!r}, this one has "
            f"batch={cfg.batch!r}: resume only the same batch (choose a new --out)"
        )


def _timing(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Timing rows; a scheme that raises gets none (its cells already carry the error)."""
    first = _activations.get(cfg.activations[0])
    rows = []
    for device in cfg.devices:
        for dtype in cfg.dtypes:
            for scheme in cfg._scheme_objs:
                params = scheme.resolve(first)
                for width in cfg.widths:
                    try:
                        row = time_layer(scheme, params, width, cfg.batch, device, dtype,
                                         cfg.timing_repeats, activation=first)  # fmt: skip
                    except Exception:
                        break
                    rows.append(row)
    return rows
