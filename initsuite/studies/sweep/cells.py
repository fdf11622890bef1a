"""The cells of a sweep: its streams (one per shared base draw, or per scheme drawing on its
own), their runs through the engine, and each group's rows with their theory columns.

A group is every stream of one (arch, device, dtype, width, seed): the unit of work that keeps
the engine's sharing (common random numbers, depth prefixes), and of storage (one chunk).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from initsuite.activations import Activation
from initsuite.core.devices import DTYPES
from initsuite.engine.archs import Arch
from initsuite.engine.mlp import derive_cells
from initsuite.engine.stack import Member, Stream
from initsuite.engine.stats import LayerStats
from initsuite.results import columns as C
from initsuite.results.chunks import cell_key
from initsuite.results.sweep import sort_tables
from initsuite.schemes import Scheme
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory.meanfield import CellTheory, grad_theory

__all__ = ["GroupKey", "Plan", "Predictions", "Rows", "compute", "fingerprint", "frames",
           "group_cell_keys", "groups", "highest_precision", "plans", "widest_stream"]  # fmt: skip


@contextlib.contextmanager
def highest_precision() -> Iterator[None]:
    """float32 products at full precision while the block runs (then as before)."""
    # TF32 products change measured stds on GPUs; statistics runs want full float32.
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@dataclass
class Plan:
    """A stream of an architecture and, for each of its cells, the member whose run the cell
    reads."""

    stream: Stream
    arch: Arch
    cells: list[tuple[Scheme, Activation, int]] = field(default_factory=list)
    error: str | None = None
    # a depth-dependent activation whose spec left the depth out (dks:, tat:) is bound to
    # each cell's depth: its stream serves that depth alone, not shallower ones by prefix
    depths: tuple[int, ...] = ()  # the depths it serves; () for all of the sweep's
    labels: dict[str, str] = field(default_factory=dict)  # bound spec -> the sweep's spec


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def plans(cfg: SweepConfig) -> Iterator[Plan]:
    """Every stream of the grid, one (arch, device, dtype, width, seed) at a time."""
    acts = list(cfg.activation_objects)
    for arch in cfg.arch_objects:
        for device in cfg.devices:
            for dtype in cfg.dtypes:
                for width in cfg.widths:
                    for seed in cfg.seeds:
                        yield from _group_plans(cfg, acts, (arch, device, dtype, width, seed))


def _group_plans(
    cfg: SweepConfig, acts: list[Activation], key: tuple[Arch, str, str, int, int]
) -> Iterator[Plan]:
    """The streams of one group (no tensor is drawn until a stream runs)."""
    arch, device, dtype, width, seed = key
    # Half precision rounds a scaled base draw visibly differently (engine docstring): there
    # every scheme draws on its own.
    share = cfg.shared and dtype in ("float32", "float64")
    common = dict(width=width, depth=max(cfg.depths), batch=cfg.batch, seed=seed, device=device,
                  dtype=dtype, bias=cfg.bias, inputs=cfg.inputs,
                  pair_cosine=cfg.pair_cosine if arch.supports("cosine") else None)  # fmt: skip
    free = [a for a in acts if not a.needs_depth]
    if free:
        yield from _streams(cfg.scheme_objects, free, arch, share, common)
    for depth in sorted(cfg.depths):
        bound = {a.at_depth(depth): a.spec for a in acts if a.needs_depth}
        for plan in _streams(cfg.scheme_objects, list(bound), arch, share,
                             {**common, "depth": depth}):  # fmt: skip
            plan.depths, plan.labels = (depth,), {b.spec: spec for b, spec in bound.items()}
            yield plan


def widest_stream(cfg: SweepConfig, arch: Arch, device: str, dtype: str, width: int) -> int:
    """The members of the largest stream of a group: the cells one stacked product holds at
    once (the streams of a group run one after another)."""
    key = (arch, device, dtype, width, cfg.seeds[0])
    plans = _group_plans(cfg, list(cfg.activation_objects), key)
    return max(len(plan.stream.members) for plan in plans)


# The engine's transform of each shared base (engine.Member), in stacking order.
_TRANSFORMS = {
    "normal": "plain",
    "uniform": "plain",
    "orthogonal": "qr",
    "householder": "householder",
}
_TRANSFORM_ORDER = {"plain": 0, "qr": 1, "householder": 2}


def _streams(
    scheme_objs: Iterable[Scheme],
    acts: list[Activation],
    arch: Arch,
    share: bool,
    common: dict[str, Any],
) -> Iterator[Plan]:
    """The streams of one (device, dtype, width, seed): one per shared base draw, one per
    scheme (and resolved parameters) that draws on its own. Identical members (e.g.
    xavier_normal and lecun_normal on a square layer) run once; members are ordered by
    transform and activation so that each is one contiguous block of the stack."""
    order = {a.spec: i for i, a in enumerate(acts)}
    width = common["width"]
    shape = arch.weight_shape(width)
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
            if draw is not None and not arch.serves(scheme, draw):
                draw = None
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
        yield Plan(stream, arch, [(s, a, index[k]) for s, a, k in base_cells[base]])
    for (_, params, _), pairs in own.items():
        members_own = tuple(Member(pairs[0][0], params, a) for _, a in pairs)
        stream = Stream(None, members_own, **common)
        yield Plan(stream, arch, [(s, a, i) for i, (s, a) in enumerate(pairs)])
    for scheme, act, err in failed:
        stream = Stream(None, (Member(scheme, (), act),), **common)
        yield Plan(stream, arch, [(scheme, act, 0)], error=err)


class Predictions:
    """Mean-field predictions per (scheme, activation, width, dtype, arch), each computed
    once: at the deepest depth for MLPs and conv nets (shallower cells are prefixes), per
    depth for residual nets (α, Fixup and GPT-2 depend on the number of blocks)."""

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg = cfg
        self.depth = max(cfg.depths)
        self.cache: dict[tuple[str, str, int, str, str, int], CellTheory | None] = {}

    def __call__(
        self,
        scheme: Scheme,
        act: Activation,
        width: int,
        dtype: str,
        arch: Arch,
        depth: int | None = None,
    ) -> CellTheory | None:
        depth = self.depth if depth is None else arch.theory_depth(depth, self.depth)
        key = (scheme.spec, act.spec, width, dtype, arch.spec, depth)
        if key not in self.cache:
            try:
                priors = arch.priors(scheme, scheme.resolve(act), width, depth,
                                     self.cfg.bias)  # fmt: skip
            except Exception:  # a scheme whose metadata fails has error rows already
                priors = None
            finfo = torch.finfo(DTYPES[dtype])
            self.cache[key] = None if priors is None else arch.variance_map(
                scheme, act, priors, depth, self.cfg.batch, width, (finfo.max, finfo.tiny),
                self.cfg.pair_cosine)  # fmt: skip
        return self.cache[key]


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
    cfg: SweepConfig, scheme: Scheme, act: Activation, stream: Stream, depths: list[int]
) -> dict[int, dict[str, Any]]:
    """The ``jac_*`` columns of a cell at each of its depths (one pass, the cell's own draws)."""
    from initsuite.engine.jacobian import jacobian_summaries

    try:
        sums = jacobian_summaries(scheme, act, depths, stream.width,
                                  stream.seed, stream.batch, stream.dtype, stream.device,
                                  bias=cfg.bias, inputs=cfg.inputs)  # fmt: skip
    except Exception:  # a failed spectrum leaves NaN, like a failed cell
        return {}
    return {d: {f"jac_{k}": v for k, v in s.items()} for d, s in sums.items()}


@dataclass
class Rows:
    """The table rows of a group of streams."""

    cells: list[dict[str, Any]] = field(default_factory=list)
    layers: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in C.LAYERS})
    n_layers: int = 0


GroupKey = tuple[str, str, str, int, int]  # (arch, device, dtype, width, seed)


def _group_of(plan: Plan) -> GroupKey:
    stream = plan.stream
    return (plan.arch.spec, stream.device, stream.dtype, stream.width, stream.seed)


def groups(cfg: SweepConfig) -> Iterator[tuple[GroupKey, list[Plan]]]:
    """The streams of the grid by (arch, device, dtype, width, seed): the unit of work that
    keeps the engine's sharing (common random numbers, depth prefixes), and of storage."""
    for key, group in itertools.groupby(plans(cfg), key=_group_of):
        yield key, list(group)


def fingerprint(cfg: SweepConfig) -> str:
    """The settings and versions every cell's numbers depend on, beside its key columns."""
    from initsuite.core.version import __version__

    return json.dumps({
        "initsuite": __version__, "torch": torch.__version__, "bias": cfg.torch_bias,
        "explode_at": cfg.explode_at, "vanish_at": cfg.vanish_at, "shared": cfg.shared,
        "pair_cosine": cfg.pair_cosine, "jacobian": cfg.jacobian, "backward": cfg.backward,
        # only where set: the fingerprints of sweeps stored before the input law stay theirs
        **({"inputs": cfg.inputs} if cfg.inputs != "gaussian" else {}),
    }, sort_keys=True)  # fmt: skip


def group_cell_keys(cfg: SweepConfig, key: GroupKey, fp: str) -> list[str]:
    """The ``cell_key`` of every cell of one group, without computing it."""
    arch, device, dtype, width, seed = key
    return [
        cell_key({"arch": arch, "scheme": s, "activation": a, "depth": d, "width": width,
                  "batch": cfg.batch, "seed": seed, "device": device, "dtype": dtype}, fp)
        for s in cfg.schemes for a in cfg.activations for d in cfg.depths
    ]  # fmt: skip


def compute(cfg: SweepConfig, group: list[Plan], predict: Predictions, fp: str) -> Rows:
    """Run a group's streams (its :class:`Plan` s); its rows (each cell with its
    ``cell_key``)."""
    out = Rows()
    cells, layers = out.cells, out.layers
    for plan in group:
        stream = plan.stream
        depths = list(plan.depths) or sorted(cfg.depths)
        by_depth: dict[int, list[LayerStats]] = {}
        if plan.error is None:
            try:
                by_depth = plan.arch.run(stream, depths, cfg.explode_at, cfg.vanish_at,
                                         depths if cfg.backward else ())  # fmt: skip
            except Exception as exc:  # a failed stream becomes rows with its error
                plan.error = _error(exc)
        if plan.error is not None:
            failed = [LayerStats(math.nan, [], [], error=plan.error) for _ in stream.members]
            by_depth = dict.fromkeys(depths, failed)
        for scheme, act, i in plan.cells:
            key = {
                "arch": plan.arch.spec, "scheme": scheme.spec,
                "activation": plan.labels.get(act.spec, act.spec),
                "width": stream.width, "batch": stream.batch, "seed": stream.seed,
                "device": stream.device, "dtype": stream.dtype,
            }  # fmt: skip
            st = by_depth[depths[-1]][i]
            jac = (_jacobian(cfg, scheme, act, stream, depths)
                   if cfg.jacobian and not st.error else {})  # fmt: skip
            for depth in depths:
                st = by_depth[depth][i]
                theory = predict(scheme, act, stream.width, stream.dtype, plan.arch, depth)
                (cell,) = derive_cells(st, [depth])
                n = min(cell["depth"], len(st.std))
                # no spectrum past a divergence: the cell stopped there
                spectrum = {} if cell["divergence_layer"] is not None else jac
                grads = _grad_columns(st, theory, cell["depth"], n, stream)
                ck = cell_key({**key, "depth": depth}, fp)
                cells.append({**key, "bias": cfg.torch_bias, **cell,
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


def frames(rows: list[Rows]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells and layers tables of some groups' rows, sorted by the cell's key."""
    cells = C.frame(C.CELLS, [c for r in rows for c in r.cells])
    layers = C.coerce(pd.DataFrame({c: [v for r in rows for v in r.layers[c]]
                                    for c in C.LAYERS}), C.LAYERS)  # fmt: skip
    return sort_tables(cells, layers)
