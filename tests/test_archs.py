"""Conv and residual-MLP sweeps, and the residual / data-dependent schemes.

Each architecture is checked against a plain reference loop written here (one generator per
cell, the input first, then each weight filled by the scheme with its layer context and each
bias drawn as nn.Conv2d / nn.Linear draw it), and the structural claims of the schemes
against the nets they build.
"""

from __future__ import annotations

import ast
import math
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import initsuite
from initsuite import activations, schemes
from initsuite.core.errors import InitsuiteError
from initsuite.engine.archs import ARCH_NAMES, Arch, parse_arch, register, registered
from initsuite.engine.archs.base import unregister
from initsuite.engine.nets import Net, stacked_linear
from initsuite.schemes.registry import LayerContext
from initsuite.studies.sweep.budget import estimate
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory.meanfield import CellTheory, cell_theory, weight_prior


def _std(t: torch.Tensor) -> float:
    return float(t.double().std())


def reference_conv(scheme: str, act: str, depth: int, width: int, batch: int, seed: int,
                   kernel: int, image: int, bias: bool) -> list[float]:  # fmt: skip
    init, a = schemes.get(scheme), activations.get(act)
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn((batch, width, image, image), generator=gen, dtype=torch.float64)
    fan = width * kernel * kernel
    out = []
    for layer in range(1, depth + 1):
        w = torch.empty((width, width, kernel, kernel), dtype=torch.float64)
        init(w, activation=a, generator=gen, context=LayerContext(layer, depth, fan, fan))
        b = None
        if bias:
            b = torch.empty(width, dtype=torch.float64)
            b.uniform_(-1 / math.sqrt(fan), 1 / math.sqrt(fan), generator=gen)
        h = a(F.conv2d(h, w, b, padding=kernel // 2))
        out.append(_std(h))
    return out


def reference_resmlp(scheme: str, act: str, blocks: int, width: int, batch: int, seed: int,
                     branch: int, scale: str, bias: bool) -> list[float]:  # fmt: skip
    init, a = schemes.get(scheme), activations.get(act)
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn((batch, width), generator=gen, dtype=torch.float64)
    alpha0 = {"1": 1.0, "inv_sqrt_depth": blocks**-0.5, "zero": 0.0}[scale]
    out = []
    for block in range(1, blocks + 1):
        alpha = torch.full((1,), alpha0, dtype=torch.float64)
        if "context" in init.info.uses:
            init.info.fn(alpha, **init.resolve(a), generator=gen,
                         context=LayerContext(block, blocks, 1, 1, "residual_scale", block,
                                              blocks, branch, 0, blocks))  # fmt: skip
        u = a(h)
        for j in range(1, branch + 1):
            role = "branch_out" if j == branch else "branch"
            ctx = LayerContext((block - 1) * branch + j, blocks * branch, width, width, role,
                               block, blocks, branch, j, blocks)  # fmt: skip
            w = torch.empty((width, width), dtype=torch.float64)
            init(w, activation=a, generator=gen, context=ctx)
            b = None
            if bias:
                b = torch.empty(width, dtype=torch.float64)
                b.uniform_(-1 / math.sqrt(width), 1 / math.sqrt(width), generator=gen)
            u = F.linear(u, w, b)
            if j < branch:
                u = a(u)
        h = h + float(alpha[0]) * u
        out.append(_std(h))
    return out


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("kernel", [1, 3])
def test_conv_cells_match_a_plain_loop(kernel: int, bias: bool) -> None:
    arch = f"conv:kernel={kernel},image=5"
    res = initsuite.sweep(["kaiming_normal", "xavier_uniform", "orthogonal"], ["relu", "tanh"],
                          [2, 6], 8, batch=3, seeds=[4], archs=arch,
                          bias="torch_default" if bias else None,
                          dtypes="float64", timing=False)  # fmt: skip
    assert (res.cells["arch"] == parse_arch(arch).spec).all()
    for (scheme, act, depth), g in res.layers.groupby(["scheme", "activation", "depth"]):
        ref = reference_conv(scheme, act, depth, 8, 3, 4, kernel, 5, bias)
        np.testing.assert_allclose(g["std"], ref, rtol=1e-12)


@pytest.mark.parametrize(
    ("scheme", "branch", "scale"),
    [("kaiming_normal", 2, "1"), ("kaiming_normal", 3, "inv_sqrt_depth"), ("fixup", 2, "1"),
     ("fixup", 3, "1"), ("skipinit", 2, "1"), ("gpt2", 2, "1"), ("xavier_normal", 1, "zero")],
)  # fmt: skip
def test_resmlp_cells_match_a_plain_loop(scheme: str, branch: int, scale: str) -> None:
    arch = f"resmlp:branch={branch},scale={scale}"
    res = initsuite.sweep(scheme, ["relu", "tanh"], [3, 7], 16, batch=4, seeds=[2], archs=arch,
                          dtypes="float64", bias="torch_default", timing=False)  # fmt: skip
    for (act, depth), g in res.layers.groupby(["activation", "depth"]):
        ref = reference_resmlp(scheme, act, depth, 16, 4, 2, branch, scale, True)
        np.testing.assert_allclose(g["std"], ref, rtol=1e-12)


@pytest.mark.parametrize("spec", ["fixup", "skipinit", "rezero", "kaiming_normal"])
def test_identity_at_init(spec: str) -> None:
    """Fixup (zeroed residual projections), SkipInit/ReZero (α = 0) and any scheme under
    scale=zero: each block returns its input, so every layer's std is the input's, exactly."""
    arch = "resmlp:scale=zero" if spec == "kaiming_normal" else "resmlp:branch=3"
    res = initsuite.sweep(spec, ["relu", "tanh"], [1, 30], 64, seeds=2, archs=arch,
                          timing=False)  # fmt: skip
    merged = res.layers.merge(res.cells[["scheme", "activation", "depth", "seed", "input_std"]])
    np.testing.assert_array_equal(merged["std"], merged["input_std"])


def test_fixup_scales_branches_by_depth() -> None:
    """Fixup's non-final branch layers are the base draw × L^(-1/(2m-2)); the last is zero."""
    gen = torch.Generator().manual_seed(0)
    base = torch.empty(256, 256)
    schemes.get("kaiming_normal")(base, generator=gen)
    for blocks, m in [(16, 2), (16, 3), (100, 4)]:
        w = torch.empty(256, 256)
        ctx = LayerContext(1, blocks * m, 256, 256, "branch", 1, blocks, m, 1)
        schemes.get("fixup")(w, generator=torch.Generator().manual_seed(0), context=ctx)
        torch.testing.assert_close(w, base * blocks ** (-1 / (2 * m - 2)))
        ctx = LayerContext(m, blocks * m, 256, 256, "branch_out", 1, blocks, m, m)
        assert schemes.get("fixup")(w, context=ctx).abs().max() == 0
    plain = torch.empty(256, 256)  # outside residual nets: the base draw
    schemes.get("fixup")(plain, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, base)


def test_gpt2_residual_projections() -> None:
    """std 0.02 everywhere, 0.02/√N on residual projections (N = 24 projections, a 12-block
    transformer's: 0.00408)."""
    w = torch.empty(512, 512)
    gen = torch.Generator().manual_seed(1)
    ctx = LayerContext(2, 24, 512, 512, "branch_out", 1, 12, 2, 2, residual_projections=24)
    s = float(schemes.get("gpt2")(w, generator=gen, context=ctx).std())
    assert s == pytest.approx(0.02 / math.sqrt(24), rel=0.01)  # 262144 draws: se ≈ 0.14%
    s = float(schemes.get("gpt2")(w, generator=gen).std())
    assert s == pytest.approx(0.02, rel=0.01)


def test_residual_scaling_tames_depth() -> None:
    """Kaiming ReLU blocks with α = 1 add variance at every block (the std grows like
    (1 + c)^(L/2)); α = 1/√L keeps the net's std of order 1 at L = 50."""
    kw = dict(activations="relu", depths=50, widths=128, seeds=2, timing=False)
    plain = initsuite.sweep("kaiming_normal", archs="resmlp:scale=1", **kw).cells
    scaled = initsuite.sweep("kaiming_normal", archs="resmlp:scale=inv_sqrt_depth", **kw).cells
    assert (plain["final_std"] > 1e3).all()
    assert (scaled["final_std"] < 5).all() and (scaled["final_std"] > 1).all()


def test_lsuv_reaches_unit_std_and_removes_the_tutorials_divergence() -> None:
    """The tutorial's net (linear, width 256, 100 layers) overflows float32 at layer 32 from
    N(0, 1); LSUV from the same N(0, 1) start (``lsuv:start=normal``) rescales every layer to
    unit output variance on the batch, within its tolerance, and never diverges; so does its
    orthogonal default."""
    kw = dict(activations="linear", depths=100, widths=256, seeds=2, timing=False)
    normal = initsuite.sweep("normal", **kw).cells
    assert (normal["divergence_layer"] == 32).all()
    res = initsuite.sweep(["lsuv:start=normal", "lsuv", "lsuv:tol=0.01"], **kw)
    assert res.cells["divergence_layer"].isna().all()
    for spec, g in res.layers.groupby("scheme"):
        tol = 0.01 if "tol=0.01" in str(spec) else 0.1
        assert ((g["std"] ** 2 - 1).abs() < tol).all(), spec  # the paper's rule: on Var
    # with relu: its pre-activations have unit std, so its outputs sit at sqrt(1/2 - 1/(2π))
    relu = initsuite.sweep("lsuv", "relu", 50, 256, seeds=2, timing=False).layers
    np.testing.assert_allclose(relu["std"], math.sqrt(0.5 - 0.5 / math.pi), rtol=0.12)


def test_lsuv_in_conv_and_residual_nets() -> None:
    res = initsuite.sweep("lsuv", "relu", 12, 16, seeds=1, timing=False,
                          archs=["conv:kernel=3,image=6", "resmlp"])  # fmt: skip
    assert res.cells["error"].isna().all() and res.cells["divergence_layer"].isna().all()
    # a bad parameter is refused before any compute (issue 12), like every scheme's
    with pytest.raises(InitsuiteError, match=r"'lsuv:max_iter=0': max_iter must be >= 1"):
        initsuite.sweep("lsuv:max_iter=0", "relu", 3, 8, timing=False)


def test_all_expands_per_arch() -> None:
    def expanded(arch: str | list[str]) -> set[str]:
        cfg = initsuite.SweepConfig.build("all", "relu", 3, 8, archs=arch)
        return {s.split(":")[0] for s in cfg.schemes}

    mlp, conv, res = expanded("mlp"), expanded("conv"), expanded("resmlp")
    assert {"fixup", "skipinit", "rezero", "gpt2", "lsuv"}.isdisjoint(mlp)
    assert {"fixup", "skipinit", "rezero", "gpt2"} <= res and "lsuv" not in res
    assert "eye" in mlp and "eye" not in conv and "sparse" not in conv
    assert "kaiming_normal" in conv
    assert expanded(["mlp", "conv"]) == mlp & conv


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(schemes="eye", archs="conv"), "does not apply to conv layers"),
        (dict(schemes="kaiming_normal", archs="conv", backward=True), "arch 'mlp' only"),
        (dict(schemes="kaiming_normal", archs="resmlp", jacobian=True), "arch 'mlp' only"),
        (dict(schemes="kaiming_normal", archs="convv"), "did you mean 'conv'"),
        (dict(schemes="kaiming_normal", archs="conv:kernel=2"), "odd number"),
        (dict(schemes="kaiming_normal", archs="resmlp:scale=2"), "unknown scale '2'"),
        (
            dict(schemes="kaiming_normal", archs="conv:kernel=３"),
            "kernel must be a whole number in ASCII digits, got '３'",
        ),
        (
            dict(schemes="kaiming_normal", archs="conv:image=1_6"),
            "image must be a whole number in ASCII digits, got '1_6'",
        ),
    ],
)
def test_bad_arch_input_is_one_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InitsuiteError, match=message):
        initsuite.sweep(activations="relu", depths=3, widths=8, timing=False, **kwargs)


def test_mixed_arch_grid_counts_and_keys() -> None:
    archs = ["mlp", "conv:kernel=3,image=4", "resmlp"]
    res = initsuite.sweep(["kaiming_normal", "orthogonal"], ["relu", "tanh"], [2, 4], 8,
                          seeds=2, archs=archs, timing=False)  # fmt: skip
    assert len(res.cells) == 2 * 2 * 2 * 2 * 3
    assert set(res.cells["arch"]) == {"mlp", "conv:image=4,kernel=3", "resmlp:branch=2,scale=1"}
    assert res.cells.duplicated(list(initsuite.results.columns.CELL_KEYS)).sum() == 0
    others = res.cells[res.cells["arch"] != "mlp"]  # conv and resmlp cells carry theory too
    assert np.isfinite(others["theory_final_std"]).all()


def test_report_never_pools_architectures(tmp_path) -> None:
    from initsuite.report import sweep_plan
    from initsuite.report.markdown import label_archs, summary_table

    res = initsuite.sweep(["kaiming_normal", "fixup"], "relu", [3, 6], 16, seeds=2,
                          archs=["mlp", "resmlp"], timing=False)  # fmt: skip
    labelled = label_archs(res)
    assert label_archs(labelled) is labelled  # idempotent
    rows = summary_table(labelled.cells)
    assert set(rows["scheme"]) == {f"{s} @ {a}" for s in ("kaiming_normal", "fixup")
                                   for a in ("mlp", "resmlp:branch=2,scale=1")}  # fmt: skip
    text = sweep_plan(res.save(tmp_path / "r")).text  # report.md's text, figures not drawn
    assert "fixup @ resmlp:branch=2,scale=1" in text and "figures/phase_diagram.png" in text


def test_cli_sweeps_several_archs(tmp_path) -> None:
    from initsuite.cli import main

    out = tmp_path / "run"
    code = main(["sweep", "--schemes", "kaiming_normal,fixup", "--activations", "relu",
                 "--depths", "3", "--widths", "8", "--archs",
                 "mlp,conv:kernel=3,image=4,resmlp:scale=zero", "--no-timing", "--quiet",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    cells = initsuite.SweepResult.load(out).cells
    assert set(cells["arch"]) == {"mlp", "conv:image=4,kernel=3", "resmlp:branch=2,scale=zero"}
    assert initsuite.SweepResult.load(out).summary()["arch"].nunique() == 3


def test_delta_orthogonal_conv_sweep_keeps_the_signal() -> None:
    """A linear stack of same-padded delta-orthogonal convs mixes channels orthogonally at
    every pixel: the signal's norm is kept exactly at any depth, so its std stays the input's
    (to the mean's share, tiny here); Kaiming's conv stack at the same gain drifts."""
    kw = dict(activations="linear", depths=40, widths=16, seeds=2, dtypes="float64",
              timing=False, archs="conv:kernel=3,image=6")  # fmt: skip
    delta = initsuite.sweep("delta_orthogonal", **kw).cells
    np.testing.assert_allclose(delta["final_std"], delta["input_std"], rtol=0.02)
    kaiming = initsuite.sweep("kaiming_normal:nonlinearity=linear", **kw).cells
    assert (abs(kaiming["final_std"] / kaiming["input_std"] - 1) > 0.1).all()


@pytest.mark.parametrize(
    ("arch", "batch"),
    [("conv:kernel=3,image=6", 5), ("resmlp:branch=2,scale=1", 5),
     ("resmlp:branch=2,scale=1", 8)],
)  # fmt: skip
def test_stacked_activations_do_not_change_a_cell(arch: str, batch: int) -> None:
    """A conv or residual stream runs all its activations as one stacked convolution or
    product per layer (a residual one where the batch is a multiple of 4 rows; otherwise a
    product per activation); each cell must come out as when its activation runs alone
    (float32; the float64 moments of stacked rows are reduced in another order: a few ulps)."""
    kw = dict(depths=[3, 8], widths=8, batch=batch, seeds=[3], archs=arch, timing=False)
    spec = ["kaiming_normal", "xavier_uniform", "orthogonal", "lsuv"]
    acts = ["relu", "tanh", "linear"]
    together = initsuite.sweep(spec, acts, **kw)
    for act in acts:
        alone = initsuite.sweep(spec, act, **kw)
        mine = together.cells[together.cells.activation == act].reset_index(drop=True)
        np.testing.assert_allclose(mine["final_std"], alone.cells["final_std"], rtol=1e-12)
        rows = together.layers[together.layers.activation == act]
        np.testing.assert_allclose(rows["std"], alone.layers["std"], rtol=1e-12)
        np.testing.assert_allclose(rows["mean"], alone.layers["mean"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("arch", ["conv:kernel=3,image=5", "resmlp:branch=2,scale=1"])
def test_conv_and_residual_nets_share_a_family_s_draws(arch: str) -> None:
    """Common random numbers: the schemes that scale one N(0, 1) or U(-1, 1) base draw
    (kaiming_normal, xavier_normal; kaiming_uniform, xavier_uniform) run as one stream per
    base, with the values of each scheme drawn on its own (float64, to 1e-12); orthogonal,
    the residual schemes (their law depends on the block) and LSUV keep their own streams."""
    from initsuite.studies.sweep.cells import plans

    spec = ["kaiming_normal", "xavier_normal", "kaiming_uniform", "xavier_uniform", "orthogonal",
            "fixup", "lsuv"]  # fmt: skip
    kw = dict(depths=[2, 5], widths=8, batch=4, seeds=[1], archs=arch, dtypes="float64",
              timing=False)  # fmt: skip
    cfg = initsuite.SweepConfig.build(spec, ["relu", "tanh"], **kw)
    streams = {p.stream.base: {m.scheme.spec for m in p.stream.members} for p in plans(cfg)
               if p.stream.base is not None}  # fmt: skip
    assert streams == {"normal": {"kaiming_normal", "xavier_normal"},
                       "uniform": {"kaiming_uniform", "xavier_uniform"}}  # fmt: skip
    shared = initsuite.sweep(spec, ["relu", "tanh"], **kw)
    alone = initsuite.sweep(spec, ["relu", "tanh"], shared=False, **kw)
    keys = ["scheme", "activation", "depth", "layer"]
    a = shared.layers.sort_values(keys).reset_index(drop=True)
    b = alone.layers.sort_values(keys).reset_index(drop=True)
    np.testing.assert_allclose(a["std"], b["std"], rtol=1e-12)
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-12, atol=1e-15)


def test_the_cli_flag_is_archs_and_arch_stays_its_old_name() -> None:
    """``--archs`` feeds the ``archs`` axis (the flag was ``--arch``, still accepted)."""
    from initsuite.cli import _build_parser

    parser, _ = _build_parser()
    base = ["sweep", "--schemes", "normal", "--out", "x"]
    for flag in ("--archs", "--arch"):
        args = parser.parse_args([*base, flag, "mlp,conv"])
        assert args.archs == ["mlp", "conv"] and not hasattr(args, "arch")


def _arch_literal(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_arch_literal(e) for e in node.elts)
    return isinstance(node, ast.Constant) and node.value in ARCH_NAMES


def test_no_arch_name_dispatch_outside_the_arch_classes() -> None:
    """What an architecture does lives in its class (initsuite/engine/archs/): nothing else
    compares an arch's name (``arch.name == "conv"``, ``"mlp" in cfg.archs``): in the
    engine, the theory and the sweep no comparison with an arch name at all, elsewhere none
    with a ``.name``."""
    root = Path(initsuite.__file__).parent
    scoped = ("engine/", "theory/", "studies/sweep/")
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("engine/archs"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            named = any(isinstance(o, ast.Attribute) and o.attr == "name" for o in operands)
            if any(_arch_literal(o) for o in operands) and (named or rel.startswith(scoped)):
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "arch names compared outside the Arch classes:\n" + "\n".join(found)


@dataclass(frozen=True)
class _Plain(Arch):
    """A bias-free Linear net run by the nets' engine, declared in this one place: the MLP
    drawn layer by layer, so its cells must be the MLP's."""

    name = "plainlinear"

    def product(self, t: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        return stacked_linear(t, weight, bias)

    def step(self, net: Net, h: torch.Tensor, layer: int, depth: int) -> torch.Tensor:
        fan = self.fan(net.stream.width)
        net.draw(LayerContext(layer, depth, fan, fan), h[0])
        return net.activate(self.product(net.scaled(h), net.w, net.b))

    def priors(self, scheme: Any, params: dict[str, Any], width: int, depth: int,
               bias: str | None) -> Any:  # fmt: skip
        return weight_prior(scheme, params, width, bias)

    def variance_map(self, scheme: Any, act: Any, priors: Any, depth: int, batch: int,
                     width: int, limits: tuple[float, float],
                     pair_cosine: float | None) -> CellTheory:  # fmt: skip
        return cell_theory(act, *priors, depth, batch * width, *limits)


@pytest.fixture
def plain_arch() -> Iterator[str]:
    register(_Plain)
    try:
        yield _Plain.name
    finally:
        unregister(_Plain.name)


def test_an_arch_in_one_class_runs_through_engine_theory_and_budget(plain_arch: str) -> None:
    """A new architecture is one class: registered, it parses, pickles (the Dask executor
    ships it), is budgeted and swept, its cells and theory columns those of the MLP it
    re-implements (the same draws and products), bit for bit."""
    arch = parse_arch(plain_arch)
    assert plain_arch in registered()
    assert pickle.loads(pickle.dumps(arch)) == arch
    kw: dict[str, Any] = dict(schemes=["xavier_uniform", "kaiming_normal"],
                              activations=["tanh", "relu"], depths=[2, 3], widths=8, seeds=2,
                              pair_cosine=None, timing=False)  # fmt: skip
    assert estimate(SweepConfig.build(**kw, archs=plain_arch)).seconds > 0
    new = initsuite.sweep(**kw, archs=plain_arch)
    mlp = initsuite.sweep(**kw)
    assert (new.cells["arch"] == plain_arch).all() and len(new.cells) == len(mlp.cells) == 16
    for col in ("std", "mean", "theory_std"):
        np.testing.assert_array_equal(new.layers[col], mlp.layers[col])
    np.testing.assert_array_equal(new.theory["sigma_w2"], mlp.theory["sigma_w2"])
    # what it does not compute is refused, as for conv and resmlp
    with pytest.raises(InitsuiteError, match="computed for arch 'mlp' only"):
        SweepConfig.build(**kw, archs=plain_arch, backward=True)
