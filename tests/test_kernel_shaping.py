"""Kernel-shaped activations (issue 31): ``dks:`` and ``tat:`` specs, their constants checked
against the conditions they solve with initsuite's own mean-field maps, bound to each sweep
cell's depth when the spec leaves it out, and refused in one line where out of range. The
constants equal DeepMind's dks in tests/test_kernel_shaping_live.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import run_cli

import initsuite
from initsuite import activations
from initsuite.core.errors import InitsuiteError
from initsuite.core.quadrature import gaussian_expectation
from initsuite.studies.training import TrainConfig
from initsuite.theory import maps


def _curvature(act: activations.Activation) -> float:
    """C″(1) = E[φ̂″(z)²], by autograd through the activation's own call."""

    def second(z: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(z).requires_grad_()
        (d1,) = torch.autograd.grad(act(x).sum(), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), x)
        return d2.numpy() ** 2

    return float(gaussian_expectation(second))


@pytest.mark.parametrize("base", ["tanh", "softplus", "gelu", "silu"])
def test_dks_meets_its_four_conditions(base: str) -> None:
    """Q(1) = 1, q-slope 1, C(0) = 0 and C′(1) = ζ^(1/D), by theory.maps (σ_w² = 1; its
    quadrature is exact to ~1e-8 on smooth φ; a kink moved off 0, ELU's, costs it ~3e-8)."""
    act = activations.get(f"dks:{base}:zeta=1.5,depth=50")
    assert maps.length_map(act, 1.0, 1.0) == pytest.approx(1.0, abs=1e-8)
    assert maps.length_slope(act, 1.0, 1.0) == pytest.approx(1.0, abs=1e-8)
    assert maps.correlation_map(act, 1.0, 0.0, 1.0)[1] == pytest.approx(0.0, abs=1e-8)
    assert maps.chi1(act, 1.0, 1.0) == pytest.approx(1.5 ** (1 / 50), abs=1e-8)
    assert act.gain == pytest.approx(1.0, abs=1e-8)
    assert act.shaping.alpha > 0  # of the mirror roots ±α, the one dks's starts reach


def test_tat_smooth_meets_its_conditions() -> None:
    act = activations.get("tat:softplus:tau=0.3,depth=10")
    assert maps.length_map(act, 1.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    assert maps.length_slope(act, 1.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    assert maps.chi1(act, 1.0, 1.0) == pytest.approx(1.0, abs=1e-9)
    assert _curvature(act) == pytest.approx(0.3 / 10, abs=1e-9)
    s = act.shaping
    assert s.alpha * s.gamma < 2  # dks rejects the others


def test_tat_leaky_relu_composed_cmap_reaches_eta() -> None:
    """The network's c-map (the local one composed D times, exact by the closed forms) maps
    0 to η, and φ̂ = γ·leaky_relu(x, s) with Q(1) = 1."""
    act = activations.get("tat:leaky_relu:eta=0.9,depth=50")
    s = act.shaping
    assert (s.alpha, s.beta, s.delta) == (1.0, 0.0, 0.0) and 0 < s.negative_slope < 1
    assert s.gamma == pytest.approx(math.sqrt(2 / (1 + s.negative_slope**2)), rel=1e-15)
    c = 0.0
    for _ in range(50):
        c = maps.correlation_map(act, 1.0, c, 1.0)[1]
    assert c == pytest.approx(0.9, abs=1e-9)
    assert act.homogeneous and act.closed_forms.kernel is not None
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    expect = s.gamma * torch.nn.functional.leaky_relu(x, s.negative_slope)
    assert torch.equal(act(x), expect)


def test_spec_round_trips_and_unbound_specs_bind() -> None:
    act = activations.get(" dks : tanh : zeta = 1.50 , depth = 50 ")
    assert act.spec == "dks:tanh:zeta=1.5,depth=50"
    assert activations.get(act.spec) == act and activations.get(act) is act
    assert act.shaping.method == "dks" and act.shaping.depth == 50 and not act.needs_depth
    assert act.at_depth(10) is act  # a depth given in the spec stays
    free = activations.get("dks:tanh:zeta=1.5")
    assert free.needs_depth and free.spec == "dks:tanh:zeta=1.5" and free.gain == 1.0
    assert free.at_depth(50) == act and free.at_depth(50).shaping == act.shaping
    with pytest.raises(InitsuiteError, match=r"depends on the net's depth: give depth=D"):
        free(torch.zeros(2))
    assert activations.get("tanh").at_depth(7) == activations.get("tanh")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("dks:tanh:zeta=1,depth=5", "zeta=1.0 is out of range (need zeta > 1)"),
        ("tat:leaky_relu:eta=1.2", "need 0 < eta < 1"),
        ("tat:leaky_relu:eta=0", "need 0 < eta < 1"),
        ("tat:gelu:tau=0", "need tau > 0"),
        ("dks:tanh:zeta=1.5,depth=0", "need an integer >= 1"),
        ("dks:tanh:zeta=1.5,depth=2.5", "need an integer >= 1"),
        ("dks:tanhh:zeta=1.5", "did you mean 'tanh'?"),
        ("dks:relu:zeta=1.5", "use leaky_relu instead"),
        ("tat:relu:tau=0.3", "TAT on plain relu is not supported"),
        ("tat:tanh:eta=0.5", "did you mean 'tau'?"),
        ("tat:leaky_relu:eta=0.9,depth=10", "out of reach for 10 leaky-ReLU layers (need eta <"),
        ("dks:linear:zeta=1.5,depth=3", "no solution found"),
        ("dks:tanh", "needs its target zeta=..."),
    ],
)
def test_bad_shaping_specs_are_one_line(spec: str, needle: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get(spec).at_depth(3)(torch.zeros(1))
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_cli_shows_constants_and_refuses_bad_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["activations", "dks:tanh:zeta=1.5", "--depth", "50", "--json"], capsys)
    (row,) = json.loads(out)
    assert code == 0 and row["activation"] == "dks:tanh:zeta=1.5,depth=50"
    assert row["alpha"] == activations.get("dks:tanh:zeta=1.5,depth=50").shaping.alpha
    code, out, err = run_cli(["activations", "tat:leaky_relu:eta=0.9,depth=10"], capsys)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "eta <" in err
    # the plain listing names the kernel-shaped specs (they are not rows of it); --json stays JSON
    code, out, _ = run_cli(["activations"], capsys)
    assert code == 0 and "dks:NAME:zeta=Z[,depth=D]" in out and "tat:NAME:tau=T" in out
    code, out, _ = run_cli(["activations", "--json"], capsys)
    assert code == 0 and "tanh" in {r["activation"] for r in json.loads(out)}


def test_sweep_binds_an_unbound_spec_to_each_cell_depth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A depth-3 cell of "dks:tanh:zeta=1.5" runs the constants solved for depth 3 (the same
    numbers as "dks:tanh:zeta=1.5,depth=3"), not a prefix of the depth-6 net; meta.json
    stores the constants of each depth."""
    res = initsuite.sweep("orthogonal", ["dks:tanh:zeta=1.5", "dks:tanh:zeta=1.5,depth=3"],
                          depths=[3, 6], widths=[8], seeds=1, timing=False, progress=False,
                          out_dir=tmp_path)  # fmt: skip
    layers = res.layers.set_index(["activation", "depth", "layer"])["std"]
    free, fixed = "dks:tanh:zeta=1.5", "dks:tanh:zeta=1.5,depth=3"
    assert np.array_equal(layers[free, 3].to_numpy(), layers[fixed, 3].to_numpy())
    assert not np.array_equal(layers[free, 3].to_numpy(), layers[free, 6].to_numpy()[:3])
    shaping = json.loads((tmp_path / "meta.json").read_text())["shaping"]
    rows = {(r["activation"], r["depth"]): r for r in shaping}
    assert set(rows) == {(free, 3), (free, 6), (fixed, 3)}
    assert rows[free, 3]["alpha"] == rows[fixed, 3]["alpha"] != rows[free, 6]["alpha"]
    assert set(res.cells["activation"]) == {free, fixed}
    # the sweep's report shows them: a row per activation and depth, from what the run stored
    from initsuite.report.markdown import render
    from initsuite.results.sweep import SweepResult

    text = render(SweepResult.load(tmp_path))
    solved = text[text.index("### Solved constants") :].split("\n\n")[1].splitlines()[2:]
    assert len(solved) == 3 and [r.split("|")[2].strip() for r in solved] == ["3", "6", "3"]
    assert f"{rows[free, 6]['alpha']:.3g}" in solved[1]


def test_a_trained_mlp_binds_an_unbound_spec_to_its_nonlinear_layers() -> None:
    from initsuite.studies.fit import make_mlp

    net = make_mlp("orthogonal", "dks:tanh:zeta=1.5", 4, 8, 5, 3, torch.Generator())
    specs = {m.act.spec for m in net if hasattr(m, "act")}
    assert specs == {"dks:tanh:zeta=1.5,depth=3"}  # 4 Linear layers, 3 activations


def test_an_unreachable_depth_is_refused_before_anything_is_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "sweep"
    with pytest.raises(InitsuiteError, match="out of reach for 3 leaky-ReLU layers"):
        initsuite.sweep("orthogonal", "tat:leaky_relu:eta=0.9", depths=[3, 60], widths=[8],
                        timing=False, progress=False, out_dir=out)  # fmt: skip
    assert not out.exists()
    with pytest.raises(InitsuiteError, match="out of reach for 3 leaky-ReLU layers"):
        TrainConfig(schemes="orthogonal", activations="tat:leaky_relu:eta=0.9", depth=4)
