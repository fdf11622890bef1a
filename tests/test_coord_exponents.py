"""The width exponents the parametrizations predict for a coordinate check
(initsuite.theory.coord_exponents), against TP4's values and against a measured MLP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import initsuite
from initsuite.theory.coord_exponents import coord_exponent_table, coord_exponents, depth_exponents

ROLES = {"0.weight": "input", "2.weight": "hidden", "4.weight": "hidden", "6.weight": "output"}


def test_known_values_and_every_entry_predicted() -> None:
    """TP4: SP's logits move ∝ n after an SGD step, its features ∝ √n; NTK's features move
    ∝ 1/√n and its logits Θ(1); μP moves every layer Θ(1) and starts its logits at n^-½
    (with biases, the readout's Θ(1) bias holds them at n⁰)."""
    sp, ntk = coord_exponents("sp", "sgd"), coord_exponents("ntk", "sgd")
    assert (sp["hidden"].delta, sp["output"].delta, sp["output"].rms_after) == (0.5, 1.0, 1.0)
    assert (ntk["hidden"].delta, ntk["output"].delta) == (-0.5, 0.0)
    ntk_adam, sp_adam = coord_exponents("ntk", "adam"), coord_exponents("sp", "adam")
    # under Adam ntk is SP with lr / n on hidden and readout weights: features move Θ(1),
    # and the readout's initial weights, aligned with that move, carry it to logits ∝ √n
    assert (ntk_adam["hidden"].delta, ntk_adam["output"].delta) == (0.0, 0.5)
    assert sp_adam["output"].delta == 1.5  # one global lr
    for name in ("mup", "mean_field", "depth_mup", "completep"):
        e = coord_exponents(name, "adam")
        assert [x.delta for x in e.values()] == [0.0, 0.0, 0.0], name
        assert e["output"].rms_init == -0.5 and coord_exponents(name, "adam", bias=True)[
            "output"].rms_init == 0.0  # fmt: skip
    rows = coord_exponent_table()
    assert {(r["parametrization"], r["optimizer"]) for r in rows} == {
        (n, o) for n in initsuite.schemes.parametrizations.list_parametrizations()
        for o in initsuite.schemes.parametrizations.get_parametrization(n).optimizers}  # fmt: skip
    assert not any(math.isnan(float(r["delta"])) for r in rows)  # type: ignore[arg-type]


def _slopes(name: str, optimizer: str) -> dict[str, tuple[float, float]]:
    """(rms at init, rms of the change after one step) slopes in log width, per layer."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 16, generator=gen), torch.randint(0, 4, (8,), generator=gen)
    widths = (64, 128, 256, 512)
    logs: dict[int, list[tuple[float, float]]] = {0: [], 4: [], 6: []}
    for w in widths:

        def mlp(w: int = w) -> nn.Sequential:
            return nn.Sequential(nn.Linear(16, w, bias=False), nn.ReLU(),
                                 nn.Linear(w, w, bias=False), nn.ReLU(),
                                 nn.Linear(w, w, bias=False), nn.ReLU(),
                                 nn.Linear(w, 4, bias=False))  # fmt: skip

        model = mlp()
        p = initsuite.parametrize(model, name, base=mlp(32), optimizer=optimizer, roles=ROLES)
        before = [model[: i + 1](x).detach() for i in logs]
        opt = p.optimizer(0.1 if optimizer == "sgd" else 1e-3)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        for i, b in zip(logs, before, strict=True):
            logs[i].append(
                (
                    b.pow(2).mean().sqrt().item(),
                    (model[: i + 1](x).detach() - b).pow(2).mean().sqrt().item(),
                )
            )
    lw = np.log(widths)
    return {role: tuple(np.polyfit(lw, np.log([v[k] for v in logs[i]]), 1)[0] for k in (0, 1))
            for i, role in zip(logs, ("input", "hidden", "output"), strict=True)}  # fmt: skip


@pytest.mark.parametrize(("name", "optimizer"), [("sp", "sgd"), ("sp", "adam"), ("mup", "sgd"),
                                                 ("ntk", "sgd"), ("ntk", "adam")])  # fmt: skip
def test_predicted_exponents_match_a_measured_mlp(name: str, optimizer: str) -> None:
    """Widths 64 to 512, one step, no biases: the fitted slopes within 0.25 of the
    prediction (at these widths SP's logits under Adam, predicted n^1.5, measure about
    1.35: the √n-smaller terms still count at n = 64)."""
    measured = _slopes(name, optimizer)
    for role, e in coord_exponents(name, optimizer).items():
        assert measured[role] == pytest.approx((e.rms_init, e.delta), abs=0.25), role


def test_depth_exponents_known_values() -> None:
    """Depth-μP (a = L^-½) and CompleteP (a = L^-1) hold the stream and its change at L⁰
    under the optimizers they define, a branch's own term at L^-α; a = 1 (every width-only
    entry) grows the stream as (1 + c)^L: no power law, NaN but for the input layer at init.
    Block biases change nothing (the branch multiplier scales them with the branch)."""
    for name, optimizer, alpha in (("depth_mup", "sgd", 0.5), ("depth_mup", "adam", 0.5),
                                   ("completep", "adam", 1.0)):  # fmt: skip
        for bias in (False, True):
            e = depth_exponents(name, optimizer, bias=bias)
            assert {r: (x.rms_init, x.delta, x.rms_after) for r, x in e.items()} == {
                "input": (0, 0, 0), "hidden": (0, 0, 0), "branch": (-alpha, -alpha, -alpha),
                "norm": (0, 0, 0), "output": (0, 0, 0)}, (name, optimizer)  # fmt: skip
    for name, optimizer in (("sp", "sgd"), ("mup", "adam"), ("ntk", "sgd"),
                            ("mean_field", "sgd")):  # fmt: skip
        e = depth_exponents(name, optimizer, bias=True)
        assert e["input"].rms_init == 0 and math.isnan(e["input"].delta)
        assert all(math.isnan(x.rms_init) and math.isnan(x.rms_after)
                   for r, x in e.items() if r != "input"), name  # fmt: skip
    with pytest.raises(initsuite.InitsuiteError, match="adam only"):
        depth_exponents("completep", "sgd")


@pytest.fixture(scope="module")
def resmlp_over_depth() -> initsuite.CoordCheckResult:
    """A bias-free resmlp of width 64 and 256 input features at L = 2, 8, 32, one Adam step."""
    return initsuite.coord_check("resmlp", ["depth_mup", "completep", "mup"], widths=64,
                                 depths=[2, 8, 32], optimizer="adam", lr=1e-3, steps=1,
                                 seeds=1, options={"bias": False, "inputs": 256},
                                 progress=False)  # fmt: skip


def test_depth_exponents_match_a_measured_resmlp(resmlp_over_depth) -> None:
    """The coordinate check stores the depth exponents, and the measured slopes of every
    role against log L (2 to 32) lie within 0.15 of them; μP (no prediction) grows with L.
    The branch's change under depth_mup, predicted L^-½ (a times the stream's change, which
    the input layer's depth-free update holds at Θ(1)), measures −0.58: its own weights'
    L^-1 terms still count at L ≤ 32, the less the more the input layer moves (−0.73 with
    64 input features, −0.85 with 16: hence 256)."""
    from initsuite.report.coord_report import predicted_exponents
    from initsuite.report.coord_tables import coord_slopes

    res = resmlp_over_depth
    stored = {(r["parametrization"], r["role"]): r for r in res.meta["predicted"]}
    assert stored[("completep", "branch")]["depth_delta"] == -1.0
    assert stored[("mup", "hidden")]["depth_rms_init"] is None
    s = coord_slopes(res.coords, "depth", predicted_exponents(res.meta, "depth"))
    known = s[s["predicted"].notna()]
    assert set(known[known["role"] != "input"]["parametrization"]) == {"depth_mup", "completep"}
    assert set(known["role"]) == {"input", "hidden", "branch", "output"}
    np.testing.assert_allclose(known["slope"], known["predicted"], atol=0.15)
    mup = s[(s["parametrization"] == "mup") & (s["role"] == "hidden")]
    assert mup["predicted"].isna().all() and (mup["slope"] > 0.1).all()


def test_depth_exponents_hold_with_biases_in_the_blocks() -> None:
    """The resmlp's default, biases in every block: the branch multiplier scales the branch's
    last bias with it, so the slopes still lie within 0.15 of the same exponents (they did
    not while the multiplier scaled W·x alone: the biases' √L sum grew the stream)."""
    from initsuite.report.coord_report import predicted_exponents
    from initsuite.report.coord_tables import coord_slopes

    res = initsuite.coord_check("resmlp", ["depth_mup", "completep"], widths=64,
                                depths=[2, 8, 32], optimizer="adam", lr=1e-3, steps=1,
                                seeds=1, options={"inputs": 256}, progress=False)  # fmt: skip
    s = coord_slopes(res.coords, "depth", predicted_exponents(res.meta, "depth"))
    known = s[s["predicted"].notna()]
    assert set(known["role"]) == {"input", "hidden", "branch", "output"}
    np.testing.assert_allclose(known["slope"], known["predicted"], atol=0.15)
