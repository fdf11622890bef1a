"""``probe(..., stats="fast")``: float32 sums within their stated bounds of the exact float64
ones, the exact path where float32 cannot hold the sums, the choice checked and recorded; and
no hook of the probe keeps a module's output alive."""

from __future__ import annotations

import gc
import json
import math
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import module_on_path, run_cli
from torch import Tensor, nn

import initsuite.engine.fast_stats as fast_stats
import initsuite.engine.stats as stats_module
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.studies.probe import probe
from initsuite.studies.recorder import Recorder

U32 = 2.0**-24  # float32's unit roundoff
ROWS = (fast_stats.ROW + 3) * U32  # γ₂: Σy² by rows, whatever order each row adds in


def _bound(n: int, extra: float) -> float:
    """A cascade sum's stated error (relative) for n values: (log2(n) + extra)·u, ×4 for the
    constants the cascade's bound leaves out (torch's cascade is pairwise-like, not exactly
    pairwise), still 30-100× below the 1e-4 to 1e-5 a running float32 sum reaches here."""
    return 4 * (math.log2(max(n, 2)) + extra) * U32


def _std_bound(n: int, rho: float) -> float:
    """fast_sums' stated error of the std (relative), ρ = |mean|/std: one pass where ρ ≤ 1,
    ½·(γ₂·(1 + ρ²) + 2ρ·√(1 + ρ²)·γ₁); else two passes, ½·γ (a cascade of the squares)."""
    if rho > 1:
        return _bound(n, 3) / 2
    return (ROWS * (1 + rho**2) + 2 * rho * math.sqrt(1 + rho**2) * _bound(n, 2)) / 2


def _models() -> dict[str, tuple[nn.Module, Tensor]]:
    torch.manual_seed(0)
    conv = nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.Flatten(),
        nn.Linear(16 * 28 * 28, 10),
    )  # fmt: skip
    # a mean far above the std: the case a one-pass float32 formula gets wrong
    shifted = nn.Sequential(nn.Linear(64, 256), nn.Sigmoid(), nn.Linear(256, 256))
    with torch.no_grad():
        shifted[2].bias.fill_(300.0)
    # torch's own residual blocks: the probe's blocks table measures them
    layers = [nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
              for _ in range(3)]  # fmt: skip
    residual = nn.Sequential(*layers)
    return {
        "conv": (conv, torch.randn(8, 3, 32, 32)),
        "shifted": (shifted, torch.randn(512, 64)),
        "residual": (residual, torch.randn(8, 32, 64)),
    }


@pytest.fixture(scope="module")
def pair() -> dict[str, tuple]:
    out = {}
    for name, (model, x) in _models().items():
        exact = probe(model, x, backward=True)
        fast = probe(model, x, backward=True, stats="fast")
        out[name] = (exact, fast)
    return out


@pytest.mark.parametrize("name", ["conv", "shifted", "residual"])
def test_fast_stats_are_within_their_float32_bound_of_the_exact_ones(pair, name) -> None:
    exact, fast = pair[name]
    a, b = exact.calls, fast.calls
    n = a["numel"].to_numpy(dtype=float)
    # the std within its stated bound; the gradient's mean is not recorded, its ρ taken as 1
    rho = (a["mean"].abs() / a["std"]).to_numpy()
    for col, rhos in (("std", rho), ("grad_std", np.ones_like(rho))):
        rel = (np.abs(b[col] - a[col]) / a[col]).to_numpy()
        bound = np.array([_std_bound(int(k), r) for k, r in zip(n, rhos, strict=True)])
        assert (rel <= bound).all(), (col, rel.max())
        # worst cases: random data's rounding errors cancel, hundreds of times under them
        assert (rel <= bound / 20).all(), (col, (rel / bound).max())
    # mean: within (log2 n + 2)·u of the root mean square
    rms = np.sqrt(a["mean"] ** 2 + a["std"] ** 2)
    err = np.abs(b["mean"] - a["mean"]) / rms
    assert (err <= [_bound(k, 2) for k in n]).all(), err.max()
    for col in ("weight_norm", "weight_grad_norm"):  # √Σy²: half of γ₂
        rel = (np.abs(b[col] - a[col]) / a[col]).dropna()
        assert (rel <= ROWS / 2).all() and (rel <= ROWS / 40).all(), (col, rel.max())
    assert list(b["divergence_kind"].fillna("")) == list(a["divergence_kind"].fillna(""))
    assert (len(exact.blocks) > 0) == (name == "residual")
    if len(exact.blocks):  # the residual blocks' update y − x summed in float32 blocks too
        cols = [c for c in exact.blocks.columns if c.endswith("std")]
        for col in cols:
            rel = (np.abs(fast.blocks[col] - exact.blocks[col]) / exact.blocks[col]).dropna()
            assert (rel <= _bound(10**6, 4)).all(), (col, rel.max())
    # the exact path is the default and leaves no trace in the configuration; fast is recorded
    assert "stats" not in exact.meta["config"]
    assert fast.meta["config"]["stats"] == "fast"


def test_the_shifted_case_is_really_shifted(pair) -> None:
    """The "shifted" model's last output has |mean| ≫ std (else the test above proves less)."""
    row = pair["shifted"][0].calls.iloc[-1]
    assert abs(row["mean"]) > 100 * row["std"]


def _case(case: str) -> Tensor:
    """A tensor of about 1 M values. ``centred``: mean 0.1 std; ``channels``: channel means
    N(0, 100²) around a unit spread, the first 64 channels 100 higher (|mean| under the std);
    ``ragged``: 10⁶ + 77 values, not a whole number of rows; ``large``: a mean of 10⁴ in
    image 0 and 1.1·10⁴ in the others (the mean 1.7 std from 0); ``bfloat16``: centred, in
    bfloat16 (summed block by block)."""
    torch.manual_seed(2)
    t = torch.randn(4, 256, 32, 32)
    if case == "channels":
        t += 100 * torch.randn(1, 256, 1, 1)
        t[:, :64] += 100
    elif case == "large":
        t += torch.tensor([1e4, 1.1e4, 1.1e4, 1.1e4]).view(4, 1, 1, 1)
    elif case == "ragged":
        t = torch.randn(10**6 + 77) * 3 + 1
    else:
        t += 0.1
    return t.to(torch.bfloat16) if case == "bfloat16" else t


@pytest.mark.parametrize("case", ["centred", "channels", "ragged", "large", "bfloat16"])
def test_fast_sums_keep_their_bound_and_a_far_mean_takes_two_passes(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fast_sums' stated bound: one pass, K = 0, where ρ = |mean|/std ≤ 1, the std within
    ½·(γ₂·(1 + ρ²) + 2ρ·√(1 + ρ²)·γ₁); where ρ > 1 the tensor is redone in two passes
    (counted), shifted by its float32 mean, within ½·γ."""
    t = _case(case)
    calls = []
    two_pass = fast_stats.fast_two_pass
    monkeypatch.setattr(fast_stats, "fast_two_pass",
                        lambda *a: calls.append(1) or two_pass(*a))  # fmt: skip
    n = t.numel()
    exact = stats_module.tensor_stats(t, Recorder(False).buffer).tolist()
    std, mean, _ = stats_module.finish_stats(exact, n)
    fast = fast_stats.fast_sums(t.reshape(-1), torch.empty(1 << 17))
    assert fast is not None
    f_std, f_mean, bad = stats_module.finish_stats(fast.tolist(), n)
    rho = abs(mean) / std
    assert calls == ([1] if case == "large" else []), rho
    assert (rho > 1.5) if case == "large" else (0.05 < rho < 1), rho
    k = fast[0].item()  # the shift: the float32 mean in two passes, else none
    assert abs(k - mean) <= _bound(n, 2) * math.hypot(mean, std) if calls else k == 0.0, k
    assert bad == 0 and abs(f_std - std) / std <= _std_bound(n, rho), (f_std, std, rho)
    assert abs(f_mean - mean) <= _bound(n, 3) * math.hypot(std, mean)


@pytest.mark.parametrize("std", [1e-15, 1e-25])
def test_fast_stats_of_tiny_values_are_not_lost_below_float32s_normal_range(std) -> None:
    """Values of 1e-25 are normal float32 numbers, their squares (1e-50) are not: the fast
    sums read them as 0 (the std 0, an underflow the probe would report). Below a mean square
    of 2⁻¹⁰⁰ tensor_stats and tensor_norm take the exact path; above it the fast sums keep
    their bound (a std of 1e-15: mean square 1e-30)."""
    torch.manual_seed(3)
    t = torch.randn(10_000) * std + std / 2
    rec = Recorder(False)
    exact = stats_module.tensor_stats(t, rec.buffer)
    fast = stats_module.tensor_stats(t, rec.buffer, stats="fast")
    e_std, e_mean, _ = stats_module.finish_stats(exact.tolist(), t.numel())
    f_std, f_mean, _ = stats_module.finish_stats(fast.tolist(), t.numel())
    assert abs(f_std - e_std) <= _std_bound(t.numel(), abs(e_mean) / e_std) * e_std
    assert abs(f_mean - e_mean) <= _bound(t.numel(), 3) * math.hypot(e_std, e_mean)
    norm_exact = stats_module.tensor_norm(t, rec.buffer)
    norm_fast = stats_module.tensor_norm(t, rec.buffer, stats="fast")
    assert abs(norm_fast - norm_exact) <= ROWS / 2 * norm_exact
    if std < 1e-20:  # the exact path itself
        assert torch.equal(exact, fast) and torch.equal(norm_exact, norm_fast)


@pytest.mark.parametrize("values", ["huge", "inf", "nan"])
def test_fast_takes_the_exact_path_where_float32_cannot_hold_the_sums(values) -> None:
    """Squares past float32's range (finite values of 1e25), or a non-finite value: the fast
    sums are not finite, and tensor_stats returns the exact float64 ones."""
    torch.manual_seed(1)
    t = torch.randn(10_000)
    if values == "huge":
        t = t * 1e25
    else:
        t[17] = math.inf if values == "inf" else math.nan
    rec = Recorder(False)
    exact = stats_module.tensor_stats(t, rec.buffer)
    fast = stats_module.tensor_stats(t, rec.buffer, stats="fast")
    assert torch.equal(exact.nan_to_num(7.0), fast.nan_to_num(7.0))
    norm_exact = stats_module.tensor_norm(t, rec.buffer)
    norm_fast = stats_module.tensor_norm(t, rec.buffer, stats="fast")
    assert torch.equal(norm_exact.nan_to_num(7.0), norm_fast.nan_to_num(7.0))


def test_a_bad_stats_is_one_line_naming_the_choices() -> None:
    net = nn.Linear(2, 2)
    with pytest.raises(InitsuiteError, match=r"unknown stats 'fsat'; did you mean 'fast'\? "
                       r"\(choose from exact, fast\)"):  # fmt: skip
        probe(net, torch.randn(1, 2), stats="fsat")
    with pytest.raises(InitsuiteTypeError, match="stats must be one of exact, fast, got int"):
        probe(net, torch.randn(1, 2), stats=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("stats", ["exact", "fast"])
def test_no_hook_keeps_a_modules_output_alive(stats) -> None:
    """After the probe returns (its result held), every output and gradient of the pass is
    freed: the hooks keep statistics, never tensors."""
    model, x = _models()["residual"]
    refs: list[weakref.ref[Tensor]] = []

    def keep_ref(module: nn.Module, args: object, output: object) -> None:
        if isinstance(output, Tensor):  # (attention returns a tuple: its parts are seen below)
            refs.append(weakref.ref(output))
            output.register_hook(lambda g: refs.append(weakref.ref(g)))  # type: ignore[arg-type]

    handles = [m.register_forward_hook(keep_ref) for m in model.modules()]
    try:
        result = probe(model, x, backward=True, stats=stats)
    finally:
        for h in handles:
            h.remove()
    gc.collect()
    assert len(refs) > 20 and len(result.calls) > 0
    alive = [r() for r in refs if r() is not None]
    assert not alive, [tuple(t.shape) for t in alive]
    # the hooks that took each weight's gradient norm are gone with the pass
    assert all(not p._backward_hooks for p in model.parameters())


_FACTORY = "initsuite_fast_stats_factory"


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = "from torch import nn\n\ndef mlp():\n    return nn.Sequential(nn.Linear(6, 8))\n"
    yield from module_on_path(tmp_path, monkeypatch, _FACTORY, source)


def test_cli_stats_fast_is_recorded_and_a_bad_one_is_one_line(
    factory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["probe", f"{_FACTORY}:mlp", "--input-shape", "4,6", "--backward", "--no-report",
            "--quiet"]  # fmt: skip
    code, _, err = run_cli([*args, "--stats", "fast", "--out", str(tmp_path / "fast")], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "fast" / "meta.json").read_text())
    assert meta["config"]["stats"] == "fast"
    code, _, err = run_cli([*args, "--stats", "fats", "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert "unknown stats 'fats'; did you mean 'fast'?" in err
    assert not (tmp_path / "bad").exists()
