"""What ``initsuite.probe`` records per module call, and how: the weight and its gradient's
norms, passes under autocast (the dtypes each module really returned, overflow and underflow
where float32 has none), statistics accurate across blocks and offsets, and one read-back of
the statistics per pass."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import Amplify
from torch import nn

import initsuite.engine.stats as stats_module
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, probe_summary
from initsuite.studies.probe import probe
from initsuite.studies.recorder import Recorder

NEW_COLUMNS = ["autocast", "weight_norm", "weight_grad_norm", "weight_update_ratio"]


def mlp(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 4)).to(dtype)  # fmt: skip


def linear_stack(depth: int, width: int) -> nn.Sequential:
    return nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(depth)])


# --- weight gradients ------------------------------------------------------------------------


def test_weight_grad_norms_equal_hand_written_backprop_and_write_no_grad() -> None:
    """Loss = Σ R ⊙ y, R drawn here as the probe draws it; dLoss/dW of y = h Wᵀ + b is δᵀh,
    and δ goes back through tanh as δ·(1 − h²): the truth is written out, in float64."""
    model, seed = mlp(torch.float64), 5
    x = torch.randn(32, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    frame = probe(model, x, backward=True, seed=seed).calls.set_index("module")
    w1, w2, w3 = (model[i].weight.detach() for i in (0, 2, 4))
    h1 = torch.tanh(x @ w1.T + model[0].bias.detach())
    h2 = torch.tanh(h1 @ w2.T + model[2].bias.detach())
    r = torch.randn(32, 4, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed + GRAD_SEED_OFFSET))  # fmt: skip
    d2 = (r @ w3) * (1 - h2**2)
    d1 = (d2 @ w2) * (1 - h1**2)
    for name, w, grad in (("0", w1, d1.T @ x), ("2", w2, d2.T @ h1), ("4", w3, r.T @ h2)):
        row = frame.loc[name]
        # float64 on both sides, products of 32-row sums: equal to rounding
        assert row["weight_grad_norm"] == pytest.approx(float(grad.norm()), rel=1e-12), name
        assert row["weight_norm"] == pytest.approx(float(w.norm()), rel=1e-12), name
        assert row["weight_update_ratio"] == pytest.approx(float(grad.norm() / w.norm()), rel=1e-12)
    tanh = frame[frame["type"] == "Tanh"]
    assert tanh[["weight_norm", "weight_grad_norm", "weight_update_ratio"]].isna().all().all()
    assert all(p.grad is None for p in model.parameters())  # autograd.grad, no .grad written


def test_a_module_called_twice_reports_its_whole_gradient_and_forward_only_its_norm() -> None:
    """A weight used by two calls gets the gradient of the pass, the sum over both calls,
    on each call's row; without backward the weight's norm is still recorded."""

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(torch.tanh(self.lin(x)))

    torch.manual_seed(0)
    model, x = Twice(), torch.randn(4, 6)
    rows = probe(model, x, backward=True, seed=3).calls
    lin = rows[rows["module"] == "lin"]
    y = model(x)
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(3 + GRAD_SEED_OFFSET))
    (grad,) = torch.autograd.grad(y, [model.lin.weight], grad_outputs=r)
    assert len(lin) == 2
    # float32 gradients from the same kernels, their norm in float64: any summation order
    assert lin["weight_grad_norm"].tolist() == pytest.approx([float(grad.norm())] * 2, rel=1e-6)
    forward = probe(model, x).calls
    assert forward["weight_grad_norm"].isna().all() and forward["weight_update_ratio"].isna().all()
    w = float(model.lin.weight.detach().double().norm())
    assert forward.loc[forward["module"] == "lin", "weight_norm"].tolist() == pytest.approx(
        [w, w], rel=1e-12
    )


# --- autocast --------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_autocast_records_the_precision_and_each_outputs_actual_dtype(precision: str) -> None:
    model, x = mlp(), torch.randn(16, 8)
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out))
               for n, m in model.named_children()]  # fmt: skip
    with torch.no_grad(), torch.autocast("cpu", dtype=getattr(torch, precision)):
        model(x)
    for h in handles:
        h.remove()
    result = probe(model, x, backward=True, autocast=precision)
    frame = result.calls.set_index("module")
    assert (frame["autocast"] == precision).all() and result.meta["config"]["autocast"] == precision
    for name, out in seen.items():
        assert frame.loc[name, "dtype"] == str(out.dtype).removeprefix("torch."), name
        # the statistics are those of the low-precision values the module returned
        assert frame.loc[name, "std"] == pytest.approx(float(out.double().std()), rel=1e-9)
    assert frame.loc["0", "dtype"] == precision  # Linear runs at the autocast precision
    assert frame["grad_std"].notna().all() and frame["weight_grad_norm"].notna().sum() == 3
    plain = probe(model, x).calls
    assert (plain["autocast"] == "float32").all() and (plain["dtype"] == "float32").all()
    assert probe(model, x, autocast="float32").calls.equals(plain)


@pytest.mark.parametrize(
    ("spec", "kind", "growth"),
    [("normal", "overflow", 8.0), ("normal:std=0.001", "underflow", 0.008)],
    ids=["overflow", "underflow"],
)
def test_float16_divergence_is_flagged_where_float32_has_none(
    spec: str, kind: str, growth: float
) -> None:
    """Width 64, N(0, σ²): the std grows √64·σ per layer. float16 leaves its range (max 65504,
    smallest normal 6.1e-5) within a few layers: overflow once the largest of the 8 × 64
    values, ~4σ, passes the max; underflow once the std drops below tiny. float32 and
    bfloat16 (float32's range) stay finite for 6 layers."""
    model, x = linear_stack(6, 64), torch.randn(8, 64)
    frame = probe(model, x, scheme=spec, autocast="float16").calls
    flagged = frame[frame["divergence_kind"].notna()]
    assert flagged["divergence_kind"].tolist() == [kind]
    fp16 = torch.finfo(torch.float16)
    bound = fp16.max / 4 if kind == "overflow" else fp16.tiny
    predicted = math.log(bound) / math.log(growth)
    assert abs(int(flagged["call"].iloc[0]) - predicted) <= 1
    if kind == "overflow":
        assert frame.loc[flagged.index[0], "nonfinite_fraction"] > 0
    for precision in ("float32", "bfloat16"):
        other = probe(model, x, scheme=spec, autocast=precision).calls
        assert other["divergence_kind"].isna().all(), precision


def test_float16_gradient_overflow_is_flagged_walking_back() -> None:
    """Xavier weights keep the gradient's std on its way back through each Linear(16, 16);
    each Amplify multiplies it by 1e3: ~1 at calls 7 and 6, ~1e3 at 5 and 4, ~1e6 at call 3,
    past float16's 65504 (and far inside float32's range)."""
    model = nn.Sequential(nn.Linear(16, 16), Amplify(1e3), nn.Linear(16, 16), Amplify(1e3),
                          nn.Linear(16, 16), Amplify(1e3), nn.Linear(16, 16))  # fmt: skip
    x = torch.randn(32, 16)
    frame = probe(model, x, scheme="xavier_normal", backward=True, autocast="float16").calls
    flagged = frame[frame["grad_divergence_kind"].notna()]
    assert flagged["call"].tolist() == [3] and flagged["grad_divergence_kind"].iloc[0] == "overflow"
    assert frame["divergence_kind"].isna().all()
    plain = probe(model, x, scheme="xavier_normal", backward=True).calls
    assert plain["grad_divergence_kind"].isna().all()


@pytest.mark.parametrize(
    ("value", "error", "needle"),
    [
        ("fp16", InitsuiteError, "unknown autocast precision 'fp16'; did you mean 'float16'?"),
        ("float64", InitsuiteError, "(choose from None, float32, bfloat16, float16)"),
        (torch.float16, InitsuiteTypeError, "autocast must be None or one of float32, bfloat16"),
    ],
    ids=["typo", "unsupported", "a-dtype"],
)
def test_a_bad_autocast_is_one_line_before_the_model_is_touched(
    value: object, error: type[Exception], needle: str
) -> None:
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(error) as info:
        probe(model, torch.randn(4, 8), scheme="orthogonal", autocast=value)  # type: ignore[arg-type]
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# --- storage ---------------------------------------------------------------------------------


def test_a_probe_directory_without_the_new_columns_still_loads(tmp_path: Path) -> None:
    """Directories written before autocast and the weight norms load with those columns
    empty; a core column is still required."""
    result = probe(mlp(), torch.randn(4, 8), backward=True)
    out = result.save(tmp_path / "old")
    table = pd.read_parquet(out / "probe.parquet")
    table.drop(columns=NEW_COLUMNS).to_parquet(out / "probe.parquet", index=False)
    back = ProbeResult.load(out)
    assert tuple(back.calls.columns) == C.PROBE
    # autocast is a key: a directory from before it held float32 passes only
    assert (back.calls["autocast"] == "float32").all()
    measured = [c for c in NEW_COLUMNS if c != "autocast"]
    assert back.calls[measured].isna().all().all()
    pd.testing.assert_frame_equal(back.calls.drop(columns=measured),
                                  result.calls.drop(columns=measured))  # fmt: skip
    assert len(probe_summary(back.calls)) == 1
    table.drop(columns=["nonfinite_fraction"]).to_parquet(out / "probe.parquet", index=False)
    with pytest.raises(InitsuiteError, match="nonfinite_fraction"):
        ProbeResult.load(out)


# --- how the statistics are taken ------------------------------------------------------------


class Shift(nn.Module):
    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


@pytest.mark.parametrize("block", [1 << 12, None], ids=["many-blocks", "default-blocks"])
def test_stats_match_exact_sums_across_blocks_offsets_and_nonfinite_values(
    block: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """float32 outputs of 600k values (two default blocks; 147 blocks of 4096), the first
    block wider than the rest, offset by 0, 3 (summed as is) and 1e4 std (summed shifted):
    against mean and std from math.fsum (exact sums) at 1e-12. That is layer_stats' own
    accuracy: on these values it is 6e-13 off in the std at offset 3 and 7e-11 in the mean at
    1e4, where the probe measured at most 3e-13. One inf is counted, not hidden."""
    if block is not None:
        monkeypatch.setattr(stats_module, "_BLOCK_CPU", block)
    x = torch.randn(600_000, generator=torch.Generator().manual_seed(0))
    x[:1000] *= 5
    for offset in (0.0, 3.0, 1e4):
        row = probe(nn.Sequential(Shift(offset)), x).calls.iloc[0]
        y = (x + offset).double().numpy()
        mean = math.fsum(y) / len(y)
        std = math.sqrt(math.fsum((y - mean) ** 2) / (len(y) - 1))
        assert row["std"] == pytest.approx(std, rel=1e-12), offset
        assert abs(row["mean"] - mean) <= 1e-12 * std, offset
        assert row["nonfinite_fraction"] == 0
    x[400_000] = math.inf
    row = probe(nn.Sequential(Shift(0.0)), x).calls.iloc[0]
    assert row["nonfinite_fraction"] == 1 / 600_000 and row["divergence_kind"] == "overflow"
    assert np.isnan(row["std"]) and np.isnan(row["mean"])


@pytest.mark.parametrize("block", [1 << 12, None], ids=["many-blocks", "default-blocks"])
def test_a_blocks_update_is_the_exact_difference(
    block: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a residual block added, y − x, is measured without forming it: the difference
    taken in float64 block by block equals the std and mean of the exact difference (math.fsum)
    at 1e-12, for an update as large as the stream and one 1e-6 of it (ConvNeXt's layer
    scale); an inf in either tensor makes it non-finite."""
    if block is not None:
        monkeypatch.setattr(stats_module, "_BLOCK_CPU", block)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300_000, generator=gen) * 3 + 2
    for scale in (1.0, 1e-6):
        y = x + scale * torch.randn(300_000, generator=gen)
        rec = Recorder(backward=False)
        std, mean, bad = rec.finish(rec.difference(y, x).tolist(), y.numel())
        d = (y.double() - x.double()).numpy()
        exact_mean = math.fsum(d) / len(d)
        exact = math.sqrt(math.fsum((d - exact_mean) ** 2) / (len(d) - 1))
        assert std == pytest.approx(exact, rel=1e-12) and bad == 0, scale
        assert abs(mean - exact_mean) <= 1e-12 * exact, scale
    x[7] = math.inf
    std, mean, bad = rec.finish(rec.difference(y, x).tolist(), y.numel())
    assert bad == 1 and math.isnan(std) and math.isnan(mean)


def test_a_tensor_seen_twice_is_measured_again_after_an_in_place_change() -> None:
    """Identity returns the tensor it was given: its statistics are reused, unless an
    in-place op (ReLU(inplace=True)) changed the tensor in between."""
    model = nn.Sequential(nn.Linear(8, 8), nn.Identity(), nn.ReLU(inplace=True), nn.Identity())
    x = torch.randn(16, 8)
    rows = probe(model, x).calls.set_index("module")
    with torch.no_grad():
        h = model[0](x).double()
    assert rows.loc["0", "std"] == rows.loc["1", "std"] == pytest.approx(float(h.std()))
    assert rows.loc["2", "std"] == rows.loc["3", "std"] == pytest.approx(float(h.relu().std()))
    assert rows.loc["2", "std"] != rows.loc["0", "std"]


def test_statistics_are_read_back_once_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``tolist`` per pass, whatever the number of calls; no ``item`` or ``float()`` per
    value (each a device synchronisation on a GPU). On a CPU the finite check reads a host
    flag (``bool``), which synchronises nothing, and is not counted."""
    counts: Counter[str] = Counter()
    for name in ("tolist", "item", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *a: Any, _n: str = name, _f: Any = original) -> Any:
            counts[_n] += 1
            return _f(self, *a)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for depth in (2, 12):
        counts.clear()
        frame = probe(linear_stack(depth, 16), torch.randn(4, 16), backward=True).calls
        assert len(frame) == depth and frame["grad_std"].notna().all()
        assert counts == Counter({"tolist": 1}), depth


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_synchronisations_do_not_grow_with_the_calls() -> None:
    """On a GPU the statistics stay on the device: the synchronisations of a pass (the
    output's finite check, the one read-back) are as many for 12 layers as for 2."""
    syncs = []
    for depth in (2, 12):
        model, x = linear_stack(depth, 64).cuda(), torch.randn(8, 64, device="cuda")
        probe(model, x, backward=True)  # warm-up: lazy CUDA initialisation synchronises
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with pytest.warns(UserWarning) as record:
                frame = probe(model, x, backward=True).calls
        finally:
            torch.cuda.set_sync_debug_mode("default")
        syncs.append(sum("synchroniz" in str(w.message) for w in record))
        assert frame["std"].notna().all() and frame["grad_std"].notna().all()
    assert syncs[0] == syncs[1] <= 3, syncs
