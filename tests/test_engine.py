"""Tests of the MLP engine: every cell against a plain reference written here.

The reference below is the tutorial's loop, written as plainly as possible and independently
of ``initsuite.engine.mlp``: one ``torch.Generator`` per cell, ``x = randn`` first, then for each
layer the scheme fills a fresh weight (and ``uniform_`` a bias), ``F.linear``, the activation,
and the statistics in float64 with an exact power-of-two rescaling (NumPy, not torch's
reductions). The engine instead shares draws across activations, stacks their products and
computes only the deepest depth; each cell must still come out as the reference says.

Small statistics (``layer_stats``) are checked against exact rational arithmetic
(``fractions.Fraction``), and overflow/underflow layers against the growth law of each net.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import kernel_rtol, peak_growth_mb

import initsuite
from initsuite import activations, schemes
from initsuite.engine.mlp import input_pair
from initsuite.engine.stats import classify, frobenius_of_product, layer_stats, pair_cosine

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
SCHEMES = [
    "normal",
    "normal:std=4.0",  # grows ~28× per layer at width 48: overflows float16 by layer 4
    "xavier_uniform",
    "xavier_uniform:gain=auto",
    "kaiming_normal",
    "orthogonal",
    "orthogonal_householder",
    "torch_default",
    "sparse",
    "trunc_normal",
    "eye",
    "zeros",
]
ACTIVATIONS = ["linear", "tanh", "relu", "gelu"]

# Float64 moments of the same values summed in a different order (NumPy's pairwise sums vs
# torch's reductions, different power-of-two vs max-abs scaling) differ by a few ulps times
# log(n); for n <= 4096 values 1e-12 relative is far above that and far below any real change.
STAT_RTOL = 1e-12


# -- the plain reference ---------------------------------------------------------------------


def ref_moments(h: torch.Tensor) -> tuple[float, float]:
    """(std with correction=1, mean) of all values of ``h`` in float64; NaN if any is non-finite.

    The values are rescaled by an exact power of two (``ldexp``), so neither squares nor sums
    can overflow or lose subnormal digits, and scaled back after.
    """
    v = h.detach().to("cpu", torch.float64).numpy().ravel()
    if not np.all(np.isfinite(v)):
        return math.nan, math.nan
    amax = float(np.max(np.abs(v)))
    if amax == 0.0:
        return 0.0, 0.0
    e = math.frexp(amax)[1]
    z = np.ldexp(v, -e)
    return math.ldexp(float(np.std(z, ddof=1)), e), math.ldexp(float(np.mean(z)), e)


@dataclass
class Ref:
    input_std: float
    std: list[float]
    mean: list[float]
    divergence_layer: int | None
    divergence_kind: str | None
    last_finite: torch.Tensor | None = None  # the last layer's values that were all finite
    cosine: list[float] | None = None  # the input pair's cosine before each activation

    @property
    def final_std(self) -> float:
        return self.std[-1]

    @property
    def growth(self) -> float:
        for k in range(len(self.std), 0, -1):
            if math.isfinite(self.std[k - 1]):
                return (self.std[k - 1] / self.input_std) ** (1.0 / k)
        return math.nan


def reference_run(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    batch: int,
    seed: int,
    dtype: str = "float32",
    bias: bool = False,
    device: str = "cpu",
    forward_device: str | None = None,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    pair_cosine: float | None = None,
) -> Ref:
    """The tutorial's loop for one cell. ``forward_device``: where the products run (the draws
    always happen on ``device``, so a CUDA cell's weights can be pushed through on the CPU).
    ``pair_cosine``: also push the engine's input pair through the same layers (each row of
    the pair twice, the 4 rows the engine keeps) and record its cosine before each activation,
    as plain float64 arithmetic on the two rows."""
    dt = DTYPES[dtype]
    fwd = forward_device or device
    tiny = torch.finfo(dt).tiny
    act = activations.get(activation)
    init = schemes.get(scheme)
    g = torch.Generator(device).manual_seed(seed)
    x = torch.randn((batch, width), generator=g, device=device, dtype=dt)
    input_std, _ = ref_moments(x)
    h = x.to(fwd)
    pair = None
    if pair_cosine is not None:
        pair = input_pair(width, pair_cosine, seed, torch.device(device), dt).repeat(2, 1).to(fwd)
    last_finite = None
    stds: list[float] = []
    means: list[float] = []
    cosines: list[float] | None = None if pair is None else []
    with torch.no_grad():
        for layer in range(1, depth + 1):
            w = torch.empty((width, width), device=device, dtype=dt)
            init(w, activation=act, generator=g)
            b = None
            if bias:  # nn.Linear's default bias, drawn right after the weight
                bound = 1.0 / math.sqrt(width)
                b = torch.empty(width, device=device, dtype=dt).uniform_(-bound, bound, generator=g)
                b = b.to(fwd)
            h = act(F.linear(h, w.to(fwd), b))
            if pair is not None:
                pre = F.linear(pair, w.to(fwd), b).double()
                u, v = pre[0], pre[1]
                cosines.append(float(u @ v / (u.norm() * v.norm())))  # type: ignore[union-attr]
                pair = act(pre.to(dt))
            s, m = ref_moments(h)
            stds.append(s)
            means.append(m)
            if math.isfinite(s):
                last_finite = h
            if not math.isfinite(s):
                kind = "overflow"
            elif s < tiny:
                kind = "underflow"
            elif explode_at is not None and s > explode_at * input_std:
                kind = "explode"
            elif vanish_at is not None and s < vanish_at * input_std:
                kind = "vanish"
            else:
                continue
            return Ref(input_std, stds, means, layer, kind, last_finite, cosines)
    return Ref(input_std, stds, means, None, None, last_finite, cosines)


# -- comparison helpers ----------------------------------------------------------------------


def _na(v: object) -> object:
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v


def assert_close(actual: float, expected: float, rtol: float, what: str, atol: float = 0.0):
    if math.isnan(expected):
        assert math.isnan(actual), f"{what}: expected NaN, got {actual!r}"
        return
    assert abs(actual - expected) <= atol + rtol * abs(expected), (
        f"{what}: got {actual!r}, expected {expected!r}"
    )


def layer_groups(res: initsuite.SweepResult) -> dict[tuple, pd.DataFrame]:
    keys = list(initsuite.results.columns.CELL_KEYS)
    return {k: g.sort_values("layer") for k, g in res.layers.groupby(keys, sort=False)}


def cell_rows(res: initsuite.SweepResult) -> Iterator[dict]:
    yield from res.cells.to_dict("records")


def assert_cell_matches(
    cell: dict, rows: pd.DataFrame | None, ref: Ref, rtol: float = STAT_RTOL
) -> None:
    name = (
        f"{cell['scheme']}/{cell['activation']} depth={cell['depth']} width={cell['width']} "
        f"seed={cell['seed']} {cell['dtype']} bias={cell['bias']}"
    )
    assert _na(cell["error"]) is None, f"{name}: {cell['error']}"
    assert_close(cell["input_std"], ref.input_std, rtol, f"{name} input_std")
    assert _na(cell["divergence_layer"]) == ref.divergence_layer, name
    assert _na(cell["divergence_kind"]) == ref.divergence_kind, name
    assert_close(cell["final_std"], ref.final_std, rtol, f"{name} final_std")
    assert_close(cell["growth_per_layer"], ref.growth, rtol, f"{name} growth_per_layer")
    n = len(ref.std)
    assert rows is not None and len(rows) == n, f"{name}: layer rows"
    assert rows["layer"].tolist() == list(range(1, n + 1)), name
    for k, (s, m, rs, rm) in enumerate(
        zip(rows["std"], rows["mean"], ref.std, ref.mean, strict=True), start=1
    ):
        assert_close(s, rs, rtol, f"{name} layer {k} std")
        # A mean near zero has no relative precision; its rounding error scales with the
        # values' magnitude, i.e. with |mean| + std.
        scale = 0.0 if math.isnan(rs) else abs(rm) + rs
        assert_close(m, rm, 0.0, f"{name} layer {k} mean", atol=rtol * scale)
    if ref.cosine is not None:
        # A cosine has no scale of its own: its error is absolute. The half-precision CPU
        # GEMM rounds a row according to the product's shape (the pair's 4 rows alone or
        # stacked), so there the pair agrees to that precision's rounding.
        atol = max(rtol, 1e-12)
        if cell["dtype"] in ("float16", "bfloat16"):
            atol = torch.finfo(DTYPES[cell["dtype"]]).eps
        for k, (c, rc) in enumerate(zip(rows["cosine"], ref.cosine, strict=True), start=1):
            assert_close(c, rc, 0.0, f"{name} layer {k} cosine", atol=atol)


def assert_sweep_matches_reference(
    res: initsuite.SweepResult,
    rtol: float | None = None,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    forward_device: str | None = None,
) -> None:
    """Every cell against its reference run; ``rtol=None``: :func:`helpers.kernel_rtol` of the
    cell's dtype, width and depth (the engine stacks products that the reference runs one by
    one, and with shared draws scales a product instead of a weight: other kernel paths)."""
    groups = layer_groups(res)
    keys = initsuite.results.columns.CELL_KEYS
    assert len(res.cells) > 0
    for cell in cell_rows(res):
        ref = reference_run(
            cell["scheme"], cell["activation"], cell["depth"], cell["width"], cell["batch"],
            cell["seed"], cell["dtype"], bias=cell["bias"], device=cell["device"],
            forward_device=forward_device, explode_at=explode_at, vanish_at=vanish_at,
            pair_cosine=res.meta["config"]["pair_cosine"],
        )  # fmt: skip
        tol = rtol if rtol is not None else kernel_rtol(cell["dtype"], cell["width"], cell["depth"])
        assert_cell_matches(cell, groups.get(tuple(cell[k] for k in keys)), ref, tol)


# -- the draw-order contract -----------------------------------------------------------------


def test_cell_draws_follow_the_contract() -> None:
    """x first, then per layer the weight and the bias U(±1/√fan_in) (fan_in from the
    weight's shape, kernel included), all from one generator seeded with the cell's seed."""
    from initsuite.engine.draws import CellDraws

    f64 = torch.float64
    draws = CellDraws(7, torch.device("cpu"))
    x = draws.input((5, 6), f64)
    conv_w, conv_b = torch.empty((4, 6, 3, 3), dtype=f64), torch.empty(4, dtype=f64)
    draws.layer(conv_w, conv_b, lambda weight, gen: weight.normal_(generator=gen))
    w = torch.empty((4, 6), dtype=f64)
    draws.layer(w, None, lambda weight, gen: weight.uniform_(generator=gen))
    after = torch.rand(3, generator=draws.generator, dtype=f64)

    gen = torch.Generator().manual_seed(7)
    assert torch.equal(x, torch.randn((5, 6), generator=gen, dtype=f64))
    assert torch.equal(conv_w, torch.empty((4, 6, 3, 3), dtype=f64).normal_(generator=gen))
    bound = 1 / math.sqrt(6 * 3 * 3)
    assert torch.equal(conv_b, torch.empty(4, dtype=f64).uniform_(-bound, bound, generator=gen))
    assert torch.equal(w, torch.empty((4, 6), dtype=f64).uniform_(generator=gen))
    assert torch.equal(after, torch.rand(3, generator=gen, dtype=f64))  # no bias drawn


@pytest.mark.parametrize("arch", ["mlp", "conv:image=4,kernel=3"])
def test_the_bias_is_a_law_in_engine_and_theory(arch: str) -> None:
    """Engine and theory take the bias law, not a bool: ``"zeros"`` has σ_b² = 0 and a zero
    bias that draws no number (its cells are the bias-free ones), ``"torch_default"`` has
    1/(3·fan_in) and draws; a bool names no law."""
    from initsuite.core.errors import InitsuiteTypeError
    from initsuite.engine.archs import parse_arch
    from initsuite.engine.stack import Member, Stream

    parsed, scheme, act = parse_arch(arch), schemes.get("kaiming_normal"), activations.get("tanh")
    params = scheme.resolve(act)
    fan = parsed.fan(12)
    sigma_b2 = {law: parsed.priors(scheme, params, 12, 4, law)[1]
                for law in (None, "zeros", "torch_default")}  # fmt: skip
    assert sigma_b2 == {None: 0.0, "zeros": 0.0, "torch_default": 1 / (3 * fan)}
    with pytest.raises(InitsuiteTypeError, match="bias must name its law"):
        parsed.priors(scheme, params, 12, 4, True)
    member = Member(scheme, tuple(sorted(params.items())), act)
    std = {law: parsed.run(Stream(None, (member,), width=12, depth=4, batch=8, seed=3,
                                  device="cpu", dtype="float64", bias=law),
                           [4])[4][0].std
           for law in (None, "zeros", "torch_default")}  # fmt: skip
    assert std["zeros"] == std[None] != std["torch_default"]


# -- the sweep against the reference ----------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_sweep_matches_reference(dtype: str, bias: bool, shared: bool) -> None:
    """Every scheme × activation × depth × width × seed, cell by cell and layer by layer.

    Depth 2 is checked against its own reference run, so the engine's reading of a shallow
    cell off the deepest run (the prefix property) is checked too. ``normal:std=4.0``
    overflows float16 and ``zeros`` without bias underflows at layer 1, so the divergence
    paths are part of the comparison (and checked to be). Divergence layers must agree
    exactly in both modes; the statistics to the rounding of the kernels (:func:`kernel_rtol`):
    the engine's stacked products and the reference's single ones may take different paths on
    a CPU (a float16 cell agreed to 3.5e-11 on one CPU and to the bit on another)."""
    res = initsuite.sweep(
        SCHEMES, ACTIVATIONS, depths=[2, 5], widths=[17, 48], batch=16, seeds=[3],
        dtypes=dtype, bias="torch_default" if bias else None, timing=False, shared=shared,
    )  # fmt: skip
    assert len(res.cells) == len(SCHEMES) * len(ACTIVATIONS) * 2 * 2
    kinds = set(res.cells["divergence_kind"].dropna())
    assert ("overflow" in kinds) == (dtype == "float16")
    assert "underflow" in kinds or bias  # with a bias, zeros weights still pass the bias on
    assert_sweep_matches_reference(res)


@pytest.mark.parametrize("act", ["linear", "tanh", "relu"])
def test_gain_auto_is_torchs_gain_of_the_activation(act: str) -> None:
    """``gain=auto`` in a sweep draws exactly what an explicit ``gain=calculate_gain(act)``
    draws (the reference resolves ``auto`` the same way the engine does, so it cannot check
    this)."""
    gain = torch.nn.init.calculate_gain(act)  # type: ignore[arg-type]
    kw = dict(activations=act, depths=3, widths=32, seeds=[0, 1], timing=False)
    auto = initsuite.sweep("xavier_uniform:gain=auto", **kw)
    explicit = initsuite.sweep(f"xavier_uniform:gain={gain!r}", **kw)
    assert set(auto.cells["scheme"]) == {"xavier_uniform:gain=auto"}
    for table in ("cells", "layers"):
        # the scheme spec (and the cell key hashed from it) differ; every number is equal
        drop = [c for c in ("scheme", "cell_key") if c in getattr(auto, table).columns]
        pd.testing.assert_frame_equal(
            getattr(auto, table).drop(columns=drop),
            getattr(explicit, table).drop(columns=drop),
        )


def test_depths_are_prefixes_of_the_deepest_run() -> None:
    kw = dict(schemes=["kaiming_normal", "orthogonal"], activations=["tanh", "relu"],
              widths=24, seeds=[1, 2], timing=False)  # fmt: skip
    alone = initsuite.sweep(depths=3, **kw)
    both = initsuite.sweep(depths=[3, 9], **kw)
    cells3 = both.cells[both.cells.depth == 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(cells3, alone.cells)
    layers = both.layers
    shallow = layers[layers.depth == 3].drop(columns="depth").reset_index(drop=True)
    deep = layers[(layers.depth == 9) & (layers.layer <= 3)].drop(columns="depth")
    pd.testing.assert_frame_equal(shallow, deep.reset_index(drop=True))
    pd.testing.assert_frame_equal(
        alone.layers.drop(columns="depth").reset_index(drop=True), shallow
    )


def test_shared_activations_do_not_change_a_cell() -> None:
    """All activations of a scheme run stacked on the same draws; each cell must come out as
    when its activation runs alone. Batch 16 (the default)."""
    kw = dict(depths=[4, 12], widths=32, batch=16, seeds=[1], timing=False)
    spec = ["normal:std=0.5", "xavier_uniform:gain=auto", "kaiming_normal"]
    together = initsuite.sweep(spec, ACTIVATIONS, **kw)
    for act in ACTIVATIONS:
        alone = initsuite.sweep(spec, act, **kw)
        mine = together.cells[together.cells.activation == act].reset_index(drop=True)
        # A stacked (k·batch, n) product and a (batch, n) one may round differently on
        # another CPU's kernels (kernel_rtol); the divergence layers agree exactly.
        tol = kernel_rtol("float32", 32, 12)
        pd.testing.assert_frame_equal(mine, alone.cells, check_exact=False, rtol=tol)
        rows = together.layers[together.layers.activation == act].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            rows, alone.layers.reset_index(drop=True), check_exact=False, rtol=tol
        )


def test_shared_activations_at_odd_batch_agree_to_rounding() -> None:
    """The documented contract at a batch the GEMM does not tile evenly (5, 7): the stacked
    (k·batch, width) product may round a row differently from a stand-alone (batch, width)
    one (≤ a few ulps per layer), so a cell run beside other activations agrees with a
    stand-alone run to float rounding, amplified only as the net amplifies any perturbation.
    Kaiming + ReLU and Xavier(tanh gain) + tanh are not chaotic (χ₁ ≤ 1), so 30 float32
    layers stay within 1e-5 (≈ 30 layers × a few ulps of 6e-8, with margin); the same grid
    run twice is identical to the bit."""
    for batch in (5, 7):
        kw = dict(depths=30, widths=64, batch=batch, timing=False)
        for spec, act in (("kaiming_normal", "relu"), ("xavier_uniform:gain=auto", "tanh")):
            together = initsuite.sweep(spec, ["tanh", "relu", "gelu"], **kw)
            again = initsuite.sweep(spec, ["tanh", "relu", "gelu"], **kw)
            pd.testing.assert_frame_equal(together.layers, again.layers)
            alone = initsuite.sweep(spec, act, **kw)
            rows = together.layers[together.layers.activation == act]
            np.testing.assert_allclose(
                rows["std"].to_numpy(), alone.layers["std"].to_numpy(), rtol=1e-5
            )


def test_cell_matches_reference_at_odd_batch_when_alone() -> None:
    """A single activation (no stacking) with its own draws (``shared=False``) at an odd batch
    is the reference exactly, at any depth, even in a chaotic net (normal std 0.5 at width 64
    with tanh, σ_w² = 16), where any rounding difference would grow layer by layer."""
    res = initsuite.sweep(
        ["normal:std=0.5", "torch_default"], "tanh", [3, 30], 64, batch=7, seeds=[0, 5],
        timing=False, shared=False,
    )  # fmt: skip
    assert_sweep_matches_reference(res)


# -- overflow: the tutorial's net --------------------------------------------------------------


def _theory_overflow_layer(dtype: torch.dtype) -> set[int]:
    """Layers at which N(0, 1) weights at width 256 (no activation) first overflow.

    Each layer multiplies the std by sqrt(256) = 16, so layer L holds values of std ≈ 16^L
    whose largest magnitude is c·16^L with c ≈ 3.5-4 for 16·256 Gaussian values; the product's
    random factor over ~30 layers is within ±25% (≈1% per layer at 4096 values). Overflow is
    the first L where c·16^L·(0.8..1.25) > finfo.max, for c in [2, 6].
    """
    big = torch.finfo(dtype).max
    out = set()
    for c in (2 * 0.8, 6 * 1.25):
        out.add(math.floor(math.log(big / c) / math.log(16.0)) + 1)
    return out


@pytest.mark.parametrize(("dtype", "expected"), [("float32", 32), ("bfloat16", 32), ("float16", 4)])
def test_tutorial_net_overflow_layer(dtype: str, expected: int) -> None:
    """The first non-finite layer (1-based). The tutorial's "nan at layer 31" is the 0-based
    index of its loop, i.e. layer 32 here."""
    assert _theory_overflow_layer(DTYPES[dtype]) == {expected}
    res = initsuite.sweep("normal", "linear", 40, 256, seeds=[0, 1, 2], dtypes=dtype,
                          timing=False)  # fmt: skip
    assert res.cells["divergence_layer"].tolist() == [expected] * 3
    assert res.cells["divergence_kind"].tolist() == ["overflow"] * 3
    assert res.cells["final_std"].isna().all()
    # growth over the finite layers is the per-layer 16 (sd of each ratio ≈ 1.1%, of the
    # geometric mean over >= 3 layers well under 2%; 3% covers it).
    np.testing.assert_allclose(res.cells["growth_per_layer"], 16.0, rtol=0.03)
    assert_sweep_matches_reference(res)


def test_statistics_do_not_overflow_before_the_data_float64() -> None:
    """float64, N(0, 1), width 256, linear: values reach ~1e306 before they overflow (theory:
    16^L·c > 1.8e308 first at L = 256; over 255 layers the product's random factor drifts
    further than over 30, ≈0.45 for seed 0, but c·0.45 stays inside the bracket). Every std
    before that must be finite and exact, although a naive float64 std of those values
    overflows from ~1e154 on."""
    assert _theory_overflow_layer(torch.float64) == {256}
    res = initsuite.sweep("normal", "linear", 260, 256, dtypes="float64", timing=False)
    cell = res.cells.iloc[0]
    assert cell["divergence_layer"] == 256 and cell["divergence_kind"] == "overflow"
    std = res.layers["std"].to_numpy()
    assert len(std) == 256
    assert np.all(np.isfinite(std[:255])) and math.isnan(std[255])
    assert std[254] > 1e300
    ref = reference_run("normal", "linear", 260, 256, 16, 0, "float64")
    assert_cell_matches(res.cells.to_dict("records")[0], res.layers, ref)
    # The last finite layer's values, whose std a naive float64 computation overflows on:
    # the check above has teeth.
    h = ref.last_finite
    assert h is not None and torch.isfinite(h).all()
    assert not math.isfinite(h.std().item())


# -- underflow ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_relu_torch_default_underflows(dtype: str) -> None:
    """PyTorch's default init without bias, ReLU: Var(W) = 1/(3·w), so the pre-activation
    variance goes q → w·q/(3w)·(1/2) = q/6 and the std shrinks 1/sqrt(6) ≈ 0.41× per layer.
    Layer 1's post-ReLU std is sqrt(1/3)·sqrt(1/2 - 1/(2π)) ≈ 0.337, so the std first drops
    below finfo.tiny near L = 1 + log(0.337 / tiny) / log(sqrt 6)."""
    dt = DTYPES[dtype]
    tiny = torch.finfo(dt).tiny
    first = math.sqrt(1 / 3) * math.sqrt(0.5 - 1 / (2 * math.pi))
    theory = 1 + math.log(first / tiny) / math.log(math.sqrt(6.0))
    res = initsuite.sweep("torch_default", "relu", 130, 256, seeds=[0, 1], dtypes=dtype,
                          timing=False)  # fmt: skip
    assert res.cells["divergence_kind"].tolist() == ["underflow"] * 2
    for seed in (0, 1):
        cell = res.cells[res.cells.seed == seed].iloc[0]
        div = int(cell["divergence_layer"])
        # Per-layer ratios fluctuate ~1% (4096 values) and drift slightly below 1/sqrt(6)
        # (Jensen, ≈-1.5% measured), which over ~100 layers moves the crossing by a few
        # layers: ±6 (float32); float16 crosses after ~11 layers, within ±2.
        assert abs(div - theory) <= (6 if dtype == "float32" else 2), (div, theory)
        std = res.layers[res.layers.seed == seed].sort_values("layer")["std"].to_numpy()
        assert len(std) == div
        assert std[-1] < tiny <= std[-2]
        assert cell["final_std"] == std[-1]
        # The geometric mean ratio is 1/sqrt(6) to within the drift above (4%).
        assert cell["growth_per_layer"] == pytest.approx(1 / math.sqrt(6.0), rel=0.04)
    assert_sweep_matches_reference(res)


def test_zeros_underflow_at_layer_one() -> None:
    res = initsuite.sweep("zeros", ACTIVATIONS, [1, 3], 16, timing=False)
    assert len(res.cells) == len(ACTIVATIONS) * 2
    assert res.cells["divergence_layer"].tolist() == [1] * len(res.cells)
    assert set(res.cells["divergence_kind"]) == {"underflow"}
    assert (res.cells["final_std"] == 0.0).all()
    assert (res.cells["growth_per_layer"] == 0.0).all()
    assert (res.cells["input_std"] > 0).all()
    assert len(res.layers) == len(res.cells)
    assert (res.layers["layer"] == 1).all() and (res.layers["std"] == 0.0).all()


# -- thresholds --------------------------------------------------------------------------------


def test_explode_and_vanish_thresholds() -> None:
    """normal:std=0.2 at width 64 grows 0.2·8 = 1.6× per layer, normal:std=0.1 shrinks 0.8×:
    explode_at=50 is crossed near ln 50/ln 1.6 ≈ 8.3, vanish_at=0.05 near ln 0.05/ln 0.8 ≈ 13.4.
    The exact layer is read off the reference run by hand below."""
    explode_at, vanish_at = 50.0, 0.05
    res = initsuite.sweep(
        ["normal:std=0.2", "normal:std=0.1", "kaiming_normal"], "linear", [5, 30], 64,
        explode_at=explode_at, vanish_at=vanish_at, timing=False,
    )  # fmt: skip
    expected = {}
    for spec in ("normal:std=0.2", "normal:std=0.1"):
        ref = reference_run(spec, "linear", 30, 64, 16, 0)  # no thresholds: the full run
        ratio = [s / ref.input_std for s in ref.std]
        if spec == "normal:std=0.2":
            layer = next(k for k, r in enumerate(ratio, 1) if r > explode_at)
            # ±2 layers: ratios fluctuate ~2-3% per layer at 16·64 values.
            assert abs(layer - math.log(explode_at) / math.log(1.6)) <= 2
            expected[spec] = (layer, "explode")
        else:
            layer = next(k for k, r in enumerate(ratio, 1) if r < vanish_at)
            assert abs(layer - math.log(vanish_at) / math.log(0.8)) <= 2
            expected[spec] = (layer, "vanish")
    cells = res.cells.set_index(["scheme", "depth"])
    for spec, (layer, kind) in expected.items():
        assert cells.loc[(spec, 30), "divergence_layer"] == layer
        assert cells.loc[(spec, 30), "divergence_kind"] == kind
        n_rows = ((res.layers.scheme == spec) & (res.layers.depth == 30)).sum()
        assert n_rows == layer  # the cell stops at its divergence layer
        assert pd.isna(cells.loc[(spec, 5), "divergence_layer"])  # not reached by depth 5
    # kaiming_normal (gain √2 without a ReLU) grows √2× per layer and explodes near layer 12;
    # its cells, like the others', must be what the reference with thresholds says.
    assert_sweep_matches_reference(res, explode_at=explode_at, vanish_at=vanish_at)


# -- layer_stats and classify ----------------------------------------------------------------


def _exact_moments(values: list[float]) -> tuple[float, float]:
    """(std with correction=1, mean) by exact rational arithmetic, rounded once at the end."""
    fr = [Fraction(v) for v in values]
    n = len(fr)
    mean = sum(fr, Fraction(0)) / n
    var = sum(((v - mean) ** 2 for v in fr), Fraction(0)) / (n - 1)
    if var == 0:
        return 0.0, float(mean)
    # sqrt(var) = 2^e · sqrt(var / 4^e), with var / 4^e in float range.
    e = (var.numerator.bit_length() - var.denominator.bit_length()) // 2
    scaled = var / Fraction(4) ** e if e >= 0 else var * Fraction(4) ** -e
    return math.ldexp(math.sqrt(float(scaled)), e), float(mean)


def _float32(values: list[float]) -> list[float]:
    return torch.tensor(values, dtype=torch.float32).double().tolist()


F32_TINY = torch.finfo(torch.float32).tiny
ROWS = {
    "normal_scale": [0.5, -1.25, 3.0, 2.0, -0.75, 0.1],
    "near_float32_max": [3.0e38, -3.2e38, 1.0e38, 2.5e38, -1.5e38, 3.4e38],
    "float32_subnormals": [1e-45, 3e-44, -2e-42, 7e-40, 0.0, 5e-41],
    "just_below_tiny": [F32_TINY * 0.5, -F32_TINY * 0.25, F32_TINY * 0.75, 0.0],
    "large_offset": [1e30 + k * 1e24 for k in range(8)],
}


@pytest.mark.parametrize("name", list(ROWS))
def test_layer_stats_float32_rows_against_exact(name: str) -> None:
    values = _float32(ROWS[name])  # the values as float32 holds them
    y = torch.tensor([ROWS[name]], dtype=torch.float32)
    std, mean, finite = layer_stats(y)
    exp_std, exp_mean = _exact_moments(values)
    assert finite.tolist() == [True]
    # Exact truth rounded once. A float64 two-pass over <= 8 values is within ~10 ulps of the
    # values' magnitude, i.e. 1e-14·(1 + |mean|/std) relative to the std (the condition
    # number: "large_offset" has |mean|/std ≈ 4e5 and keeps only ~10 digits).
    rel = 1e-14 * (1 + abs(exp_mean) / exp_std)
    assert std.item() == pytest.approx(exp_std, rel=rel)
    assert mean.item() == pytest.approx(exp_mean, rel=1e-14, abs=1e-14 * exp_std)


def test_layer_stats_float64_extremes_against_exact() -> None:
    rows = [
        [1.5e307, -1.7e308, 9e307, 1.2e308],  # squares (and a naive sum of squares) overflow
        [3e-310, -1e-309, 2.5e-310, 7e-311],  # float64 subnormals: squares underflow to 0
    ]
    y = torch.tensor(rows, dtype=torch.float64)
    std, mean, finite = layer_stats(y)
    assert finite.tolist() == [True, True]
    for i, row in enumerate(rows):
        exp_std, exp_mean = _exact_moments(row)
        # float64 subnormals near 1e-310 keep ~44 significant bits (relative ulp ≈ 1e-13);
        # the first row is normal (1e-14 would do), one tolerance for both.
        assert std[i].item() == pytest.approx(exp_std, rel=1e-12)
        assert mean[i].item() == pytest.approx(exp_mean, rel=1e-12, abs=1e-12 * exp_std)
    # A naive float64 std of the first row overflows, of the second loses everything.
    with np.errstate(over="ignore"):
        assert not math.isfinite(float(np.std(np.array(rows[0]), ddof=1)))


def test_layer_stats_rows_are_independent_and_flag_non_finite() -> None:
    big, small = ROWS["near_float32_max"], ROWS["float32_subnormals"]
    y = torch.tensor(
        [
            big,
            small,
            [1.0, math.inf, 2.0, 3.0, 4.0, 5.0],
            [1.0, 2.0, math.nan, 3.0, 4.0, 5.0],
            [-math.inf, 1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0] * 6,
        ],
        dtype=torch.float32,
    )
    std, mean, finite = layer_stats(y)
    assert finite.tolist() == [True, True, False, False, False, True]
    for i, row in enumerate([big, small]):
        exp_std, exp_mean = _exact_moments(_float32(row))
        # Each row is scaled by its own max: a 1e38 row beside a 1e-45 row loses nothing.
        assert std[i].item() == pytest.approx(exp_std, rel=1e-14)
        assert mean[i].item() == pytest.approx(exp_mean, rel=1e-14, abs=1e-14 * exp_std)
    assert torch.isnan(std[2:5]).all() and torch.isnan(mean[2:5]).all()
    assert std[5].item() == 0.0 and mean[5].item() == 0.0
    assert std.dtype == mean.dtype == torch.float64


def test_layer_stats_random_rows_against_numpy() -> None:
    g = torch.Generator().manual_seed(7)
    y = torch.randn((3, 4096), generator=g) * torch.tensor([[1e-30], [1.0], [1e30]])
    std, mean, _ = layer_stats(y)
    v = y.double().numpy()
    for i, s in enumerate((1e-30, 1.0, 1e30)):
        # NumPy in float64 after an exact rescale; reduction order differs (STAT_RTOL).
        z = v[i] / s
        assert std[i].item() == pytest.approx(np.std(z, ddof=1) * s, rel=STAT_RTOL)
        assert mean[i].item() == pytest.approx(np.mean(z) * s, abs=STAT_RTOL * s)


def test_classify_precedence() -> None:
    tiny = F32_TINY
    # Non-finite values are overflow, whatever else the numbers say.
    assert classify(math.nan, False, tiny, 1.0, 10.0, 0.1) == "overflow"
    assert classify(0.0, False, tiny, 1.0, 10.0, 0.1) == "overflow"
    # Below tiny is underflow before it is vanish.
    assert classify(tiny / 2, True, tiny, 1.0, 10.0, 0.1) == "underflow"
    assert classify(0.0, True, tiny, 1.0, None, None) == "underflow"
    # Thresholds are multiples of the input's std, strict inequalities.
    assert classify(21.0, True, tiny, 2.0, 10.0, 0.1) == "explode"
    assert classify(20.0, True, tiny, 2.0, 10.0, 0.1) is None
    assert classify(0.19, True, tiny, 2.0, 10.0, 0.1) == "vanish"
    assert classify(0.2, True, tiny, 2.0, 10.0, 0.1) is None
    assert classify(tiny, True, tiny, 1.0, None, None) is None
    # Without thresholds only overflow/underflow count.
    assert classify(1e30, True, tiny, 1.0, None, None) is None
    assert classify(1e-30, True, tiny, 1.0, None, None) is None


def test_pair_cosine_is_the_cosine_of_the_first_two_rows() -> None:
    gen = torch.Generator().manual_seed(3)
    p = torch.randn((3, 4, 16), generator=gen, dtype=torch.float32)
    want = F.cosine_similarity(p[:, 0].double(), p[:, 1].double(), dim=1)
    torch.testing.assert_close(pair_cosine(p), want, rtol=1e-12, atol=1e-12)
    # scaled by the largest magnitude first: float32's largest values do not overflow
    torch.testing.assert_close(
        pair_cosine(p * (3e38 / float(p.abs().max()))), want, rtol=1e-6, atol=0
    )


def test_frobenius_of_product_against_the_formed_product() -> None:
    gen = torch.Generator().manual_seed(4)
    delta = torch.randn((3, 5, 7), generator=gen, dtype=torch.float64)
    h = torch.randn((3, 5, 7), generator=gen, dtype=torch.float64)
    want = torch.linalg.matrix_norm(delta.transpose(1, 2) @ h)  # ‖δᵀh‖_F, formed
    torch.testing.assert_close(frobenius_of_product(delta, h), want, rtol=1e-12, atol=0)
    # rows near float32's largest value: the formed float32 product would overflow, this not
    big = (delta * 1e38).float(), (h * 1e38).float()
    got = frobenius_of_product(*big)
    torch.testing.assert_close(got, want * 1e76, rtol=1e-6, atol=0)  # float32 inputs: 1e-7


# -- a scheme that raises ----------------------------------------------------------------------


@pytest.fixture
def raising_scheme() -> Iterator[str]:
    name = "_test_raises_at_runtime"

    @schemes.register(schemes.SchemeInfo(
        name=name, family="normal", variance_formula="1", variance=lambda shape: 1.0,
                      paper="-"))  # fmt: skip
    def _raises(tensor: torch.Tensor, *, generator: torch.Generator | None = None):
        raise RuntimeError("scheme exploded\nwith a second line")

    try:
        yield name
    finally:
        schemes.unregister(name)


def test_failing_scheme_becomes_error_rows(raising_scheme: str) -> None:
    kw = dict(activations=["relu", "tanh"], depths=[2, 4], widths=16, seeds=2, timing=False)
    res = initsuite.sweep([raising_scheme, "kaiming_normal"], **kw)
    bad = res.cells[res.cells.scheme == raising_scheme]
    assert len(bad) == 2 * 2 * 2
    assert set(bad["error"]) == {"RuntimeError: scheme exploded"}  # one line
    for col in ("input_std", "final_std", "growth_per_layer"):
        assert bad[col].isna().all(), col
    assert bad["divergence_layer"].isna().all() and bad["divergence_kind"].isna().all()
    assert (res.layers.scheme != raising_scheme).all()  # no layers were computed
    # The other scheme's cells are exactly those of a sweep without the failing one.
    good = initsuite.sweep("kaiming_normal", **kw)
    pd.testing.assert_frame_equal(
        res.cells[res.cells.scheme == "kaiming_normal"].reset_index(drop=True), good.cells
    )
    pd.testing.assert_frame_equal(res.layers.reset_index(drop=True), good.layers)


def test_failing_scheme_with_timing_on_still_returns(raising_scheme: str) -> None:
    res = initsuite.sweep([raising_scheme, "normal"], "relu", 2, 16, timing_repeats=1)
    assert set(res.cells[res.cells.scheme == raising_scheme]["error"]) == {
        "RuntimeError: scheme exploded"
    }
    assert set(res.timing["scheme"]) == {"normal"}


@pytest.fixture
def unfilling_schemes() -> Iterator[list[str]]:
    """Plugin schemes that leave their tensor unfilled: one returns a new tensor, one None;
    and one that fills in place and returns the same memory under another name."""
    made = {
        "_test_returns_new": lambda t, g: torch.randn(t.shape, generator=g) / t.shape[1] ** 0.5,
        "_test_returns_none": lambda t, g: None,
        "_test_returns_data": lambda t, g: t.normal_(0.0, t.shape[1] ** -0.5, generator=g).data,
    }
    for name, fn in made.items():
        schemes.register(
            schemes.SchemeInfo(
                name=name,
                family="normal",
                variance_formula="1/fan_in",
                paper="-",
                variance=lambda shape: 1.0 / shape[1],
            )
        )(lambda t, *, generator=None, fn=fn: fn(t, generator))
    try:
        yield list(made)
    finally:
        for name in made:
            schemes.unregister(name)


def test_a_scheme_that_does_not_fill_its_tensor_is_an_error_in_its_cells(
    unfilling_schemes: list[str],
) -> None:
    """The engine reads the tensor it handed the scheme: a scheme that returns another
    (or nothing) left it holding whatever its memory held, which would pass for a cell's
    numbers. Its cells carry the error, as a scheme that raises, and get no timing row."""
    new, none, data = unfilling_schemes
    res = initsuite.sweep([new, none, data, "kaiming_normal"], "tanh", 3, 8, timing_repeats=1)
    errors = dict(zip(res.cells["scheme"], res.cells["error"], strict=True))
    for name, what in ((new, "a new tensor"), (none, "None")):
        assert errors[name] == (f"InitsuiteError: scheme {name!r} returned {what} instead of "
                                "the tensor it was given: a scheme fills its tensor in place "
                                "and returns it")  # fmt: skip
        assert res.cells.loc[res.cells["scheme"] == name, "final_std"].isna().all()
    assert pd.isna(errors[data]) and pd.isna(errors["kaiming_normal"])
    assert set(res.timing["scheme"]) == {data, "kaiming_normal"}
    with pytest.raises(initsuite.InitsuiteError, match="returned a new tensor"):
        schemes.get(new)(torch.empty(4, 4))
    w = torch.empty(4, 4)
    assert schemes.get(data)(w) is w


# -- CUDA ---------------------------------------------------------------------------------------

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.cuda
@requires_cuda
def test_cuda_sweep_matches_cpu_forward_of_the_same_draws() -> None:
    """The draws come from a CUDA generator (different numbers from the CPU's), so the
    reference draws them on CUDA too and pushes them through on the CPU in float32."""
    res = initsuite.sweep(
        ["kaiming_normal", "xavier_uniform:gain=auto", "orthogonal", "sparse"],
        ["tanh", "relu"], [2, 5], 64, seeds=[0, 1], devices="cuda", timing=False,
    )  # fmt: skip
    assert set(res.cells["device"]) == {"cuda"}
    # float32 products summed in another order on another device: ~1e-7 per value, a few
    # layers of non-chaotic nets keep the std within ~1e-5; 1e-4 leaves margin.
    assert_sweep_matches_reference(res, rtol=1e-4, forward_device="cpu")


@pytest.mark.cuda
@requires_cuda
def test_cuda_statistics_do_not_overflow_before_the_data() -> None:
    """On CUDA a float32 std overflows near 1e19; the engine's must stay finite to the last
    finite layer of the tutorial net (its draws differ from the CPU's, the law does not)."""
    res = initsuite.sweep("normal", "linear", 40, 256, devices="cuda", timing=False)
    div = int(res.cells["divergence_layer"].iloc[0])
    assert div in _theory_overflow_layer(torch.float32)
    std = res.layers.sort_values("layer")["std"].to_numpy()
    assert np.all(np.isfinite(std[: div - 1])) and std[div - 2] > 1e35


# -- shared draws (common random numbers) ------------------------------------------------------

SHARED_SPECS = [
    "uniform", "uniform:a=-0.3,b=0.7", "normal", "normal:mean=0.2,std=0.3", "xavier_uniform",
    "xavier_normal:gain=2.0", "kaiming_uniform:a=0.3,mode=fan_out", "kaiming_normal",
    "torch_default", "lecun_normal", "lecun_uniform:gain=1.5", "orthogonal:gain=1.3",
    "orthogonal_householder:gain=0.7", "variance_scaling:scale=2.0,distribution=normal",
    "variance_scaling:scale=0.5,mode=fan_avg,distribution=uniform",
]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SHARED_SPECS)
def test_shared_draw_is_the_schemes_own_draw(spec: str, dtype: str) -> None:
    """``shift + scale·B`` from the same generator state is what ``schemes.get(spec)`` draws,
    to rounding: one multiply-add per value in the draw's dtype, 4 ulps with margin."""
    dt = DTYPES[dtype]
    scheme = schemes.get(spec)
    shape = (48, 48)
    draw = scheme.shared_draw(shape, scheme.resolve(None))
    assert draw is not None
    w = scheme(torch.empty(shape, dtype=dt), generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    b = torch.empty(shape, dtype=dt)
    if draw.base == "uniform":
        b.uniform_(-1, 1, generator=g)
    else:
        b.normal_(0, 1, generator=g)
    if draw.base == "orthogonal":  # the Haar Q of that normal draw, computed independently
        q, r = np.linalg.qr(b.double().numpy())
        b = torch.from_numpy(q * np.sign(np.diag(r)))
    if draw.base == "householder":  # the reflections written out one by one, in float64
        b = _householder_reference(b.double())
    got = draw.shift + draw.scale * b.double()
    # QR in float32 vs float64 differs by ~n·eps in Q; elementwise schemes by a few ulps.
    tol = (48 if draw.base in ("orthogonal", "householder") else 4) * torch.finfo(dt).eps
    assert torch.allclose(got, w.double(), rtol=0, atol=tol * w.double().abs().max().item())


def _householder_reference(z: torch.Tensor) -> torch.Tensor:
    """Stewart's construction, plainly: Q = H_0⋯H_{n-1}·D, H_k the reflection that maps
    z[k:, k] to -s_k‖z[k:, k]‖e_k (s_k its first entry's sign), D = diag(-s)."""
    n = z.shape[0]
    q = torch.eye(n, dtype=z.dtype)
    signs = []
    for k in range(n):
        v = z[k:, k].clone()
        s = 1.0 if v[0] >= 0 else -1.0
        v[0] += s * v.norm()
        h = torch.eye(n, dtype=z.dtype)
        h[k:, k:] -= 2 * torch.outer(v, v) / (v @ v)
        q = q @ h
        signs.append(-s)
    return q * torch.tensor(signs, dtype=z.dtype)


def test_schemes_that_are_not_scalings_draw_on_their_own() -> None:
    for spec in ("trunc_normal", "sparse", "eye", "constant:val=0.1", "zeros", "ones",
                 "variance_scaling", "zero"):  # fmt: skip
        scheme = schemes.get(spec)
        assert scheme.shared_draw((8, 8), scheme.resolve(None)) is None, spec
    assert schemes.get("orthogonal").shared_draw((8, 4), {"gain": 1.0}) is None  # not square


def test_shared_and_own_draws_agree_cell_by_cell() -> None:
    """The whole family on one grid, shared vs own draws: identical divergence layers and
    stds within kernel_rtol (non-chaotic nets only: relu/tanh with gain ≤ the critical one,
    and N(0, 1) which overflows identically since its scale is exactly 1)."""
    kw = dict(activations=["linear", "tanh", "relu"], depths=[3, 25], widths=[32, 64],
              seeds=[0, 1], timing=False)  # fmt: skip
    specs = ["normal", "xavier_uniform", "xavier_uniform:gain=auto", "xavier_normal",
             "kaiming_normal", "kaiming_uniform", "lecun_normal", "torch_default", "orthogonal",
             "orthogonal:gain=auto", "orthogonal_householder:gain=auto"]  # fmt: skip
    a = initsuite.sweep(specs, shared=True, **kw)
    b = initsuite.sweep(specs, shared=False, **kw)
    pd.testing.assert_series_equal(a.cells["divergence_layer"], b.cells["divergence_layer"])
    ok = a.cells["divergence_layer"].isna()
    np.testing.assert_allclose(a.cells["final_std"][ok], b.cells["final_std"][ok],
                               rtol=kernel_rtol("float32", 64, 25))  # fmt: skip
    assert a.meta["config"]["shared"] and not b.meta["config"]["shared"]


def test_identical_members_run_once_and_agree() -> None:
    """xavier_normal and lecun_normal are the same draw on a square layer (2/(n+n) = 1/n):
    the stream runs them once and both cells carry the same numbers."""
    res = initsuite.sweep(["xavier_normal", "lecun_normal"], "tanh", 20, 64, timing=False)
    x = res.layers[res.layers.scheme == "xavier_normal"]["std"].to_numpy()
    y = res.layers[res.layers.scheme == "lecun_normal"]["std"].to_numpy()
    assert np.array_equal(x, y)


def test_early_exit_does_not_change_reported_values() -> None:
    """A member that diverges drops out of the stack; the others' numbers are those of a
    sweep without it (N(0, 1) overflows by layer ~20 at width 64; kaiming keeps going)."""
    kw = dict(activations="relu", depths=60, widths=64, seeds=[2], timing=False)
    both = initsuite.sweep(["normal", "kaiming_normal"], **kw)
    alone = initsuite.sweep("kaiming_normal", **kw)
    assert both.cells.set_index("scheme").loc["normal", "divergence_kind"] == "overflow"
    mine = both.layers[both.layers.scheme == "kaiming_normal"].reset_index(drop=True)
    np.testing.assert_allclose(
        mine["std"], alone.layers["std"], rtol=kernel_rtol("float32", 64, 60)
    )


@pytest.mark.parametrize("every", [1, 3, 8])
def test_windowed_statistics_reads_give_the_same_cells(every: int) -> None:
    """GPUs read the statistics every few layers; divergence inside a window must be cut at
    the same layer and nothing after it reported (run here on the CPU with the same code)."""
    from initsuite.engine import mlp as engine

    kw = dict(activations=["linear", "relu"], depths=[7, 40], widths=48, seeds=[0],
              timing=False)  # fmt: skip
    base = initsuite.sweep(["normal", "kaiming_normal", "zeros"], **kw)
    original = engine.run_stream

    def windowed(stream, *args, **kwargs):  # type: ignore[no-untyped-def]
        return original(stream, *args, check_every=every, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(engine, "run_stream", windowed)
    try:
        res = initsuite.sweep(["normal", "kaiming_normal", "zeros"], **kw)
    finally:
        mp.undo()
    pd.testing.assert_frame_equal(res.cells, base.cells)
    pd.testing.assert_frame_equal(res.layers, base.layers)


def test_memory_does_not_grow_with_depth() -> None:
    """200 layers × 512 in a fresh process: holding the weights would take 200 MB (200 × 512²
    × 4 B) beyond the warmed-up process; the engine keeps one layer's (1 MB) and its batch, so
    the peak grows by a few MB (2 measured), far under the 100 MB allowed."""
    growth, layers = peak_growth_mb(
        "res = initsuite.sweep('kaiming_normal', 'relu', 200, 512, timing=False)\n"
        "print(len(res.layers))"
    )
    assert int(layers) == 200
    assert growth < 100, growth


def test_layer_stats_one_pass_stays_exact_when_the_mean_dominates() -> None:
    """float32 rows go through a one-pass float64 accumulation unless |mean| > 5·std; rows on
    both sides of that guard (mean/std of 0, 4, 4.9, 6, 1e3, 1e6) agree with exact
    arithmetic (Fractions) to 1e-13 relative, plus the two-pass method's own
    ~2e-16·|mean|/std where the guard sends a row there."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 512, generator=g)
    ratios = [0.0, 4.0, 4.9, 6.0, 1e3, 1e6]
    y = (base + torch.tensor(ratios)[:, None]).to(torch.float32)
    std, mean, finite = layer_stats(y)
    assert finite.all()
    for row, ratio in enumerate(ratios):
        vals = [Fraction(v) for v in y[row].double().tolist()]
        m = sum(vals) / len(vals)
        var = sum((v - m) ** 2 for v in vals) / (len(vals) - 1)
        exact_std = math.sqrt(var)
        tol = 1e-13 + 2e-16 * ratio
        assert abs(std[row].item() - exact_std) <= tol * exact_std, (ratio, std[row].item())
        assert abs(mean[row].item() - float(m)) <= 1e-13 * abs(float(m)) + 1e-16, ratio
