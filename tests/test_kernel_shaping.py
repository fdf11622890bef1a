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
    numbers as "dks:tanh:zeta=1.5,depth=3"), not a prefix of the depth-6 net; the sweep's
    theory table stores the constants each cell ran with, and its report shows them."""
    res = initsuite.sweep(["orthogonal", "kaiming_normal"],
                          ["dks:tanh:zeta=1.5", "dks:tanh:zeta=1.5,depth=3", "tanh"],
                          depths=[3, 6], widths=[8], seeds=1, timing=False, progress=False,
                          out_dir=tmp_path)  # fmt: skip
    layers = res.layers.set_index(["scheme", "activation", "depth", "layer"]).sort_index()["std"]
    free, fixed = "dks:tanh:zeta=1.5", "dks:tanh:zeta=1.5,depth=3"
    o = "orthogonal"
    assert np.array_equal(layers[o, free, 3].to_numpy(), layers[o, fixed, 3].to_numpy())
    assert not np.array_equal(layers[o, free, 3].to_numpy(), layers[o, free, 6].to_numpy()[:3])
    assert set(res.cells["activation"]) == {free, fixed, "tanh"}
    # the theory table, as stored: each cell's constants, those of its activation bound to
    # the depth the spec names, else to the cell's own
    from initsuite.results.sweep import SweepResult

    stored = SweepResult.load(tmp_path)
    theory = stored.theory.set_index(["scheme", "activation", "depth"]).sort_index()
    cols = ["alpha", "beta", "gamma", "delta", "negative_slope"]
    for scheme in ("orthogonal", "kaiming_normal"):
        for act, depth, solved_at in [(free, 3, 3), (free, 6, 6), (fixed, 3, 3), (fixed, 6, 3)]:
            s = activations.get(f"{free},depth={solved_at}").shaping
            row = theory.loc[(scheme, act, depth), cols]
            assert row[:4].tolist() == [s.alpha, s.beta, s.gamma, s.delta]
            assert np.isnan(row["negative_slope"])
        assert theory.loc[(scheme, "tanh"), cols].isna().all().all()
    assert theory.loc[(o, free, 3), "alpha"] != theory.loc[(o, free, 6), "alpha"]
    # the sweep's report shows them: a row per activation and constants, from what was stored
    from initsuite.report.markdown import render

    text = render(stored)
    solved = text[text.index("### Solved constants") :].split("\n\n")[1].splitlines()[2:]
    cells = [(r.split("|")[1].strip(), r.split("|")[2].strip()) for r in solved]
    assert cells == [(free, "3"), (free, "6"), (fixed, "3, 6")]
    assert f"{theory.loc[(o, free, 6), 'alpha']:.3g}" in solved[1]


def test_a_sweep_stored_before_its_theory_table_carried_constants_reports_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A sweep written before the theory table had the constants (meta.json's ``shaping``)
    loads with them null and its report shows meta.json's."""
    import pandas as pd

    from initsuite.report.markdown import render
    from initsuite.results.sweep import SweepResult

    initsuite.sweep("orthogonal", "dks:tanh:zeta=1.5", depths=[3], widths=[8], timing=False,
                    progress=False, out_dir=tmp_path)  # fmt: skip
    (theory,) = (tmp_path / "theory").glob("*/theory.parquet")
    old = pd.read_parquet(theory).drop(columns=["alpha", "beta", "gamma", "delta",
                                                "negative_slope"])  # fmt: skip
    # a column the manifest says was written, missing from the file: refused
    listed = json.loads((theory.parent / "manifest.json").read_text())["tables"]["theory"]
    _rewrite_chunk_table(theory, old)
    manifest = json.loads((theory.parent / "manifest.json").read_text())
    manifest["tables"]["theory"]["columns"] = listed["columns"]
    (theory.parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InitsuiteError, match="lacks column 'alpha'"):
        SweepResult.load(tmp_path)
    _rewrite_chunk_table(theory, old)  # as an older initsuite wrote it
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["shaping"] = [{"activation": "dks:tanh:zeta=1.5", "depth": 3, "alpha": 0.59,
                        "beta": 0.88, "gamma": 3.0, "delta": -0.6,
                        "negative_slope": None}]  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    stored = SweepResult.load(tmp_path)
    assert stored.theory["alpha"].isna().all()
    text = render(stored)
    assert "| dks:tanh:zeta=1.5 |       3 |    0.59 |" in text


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


def _rewrite_chunk_table(f, df) -> None:  # type: ignore[no-untyped-def]
    """Write ``df`` as the chunk table ``f`` and its manifest to match, as an older initsuite
    that wrote fewer columns would have."""
    import hashlib

    df.to_parquet(f, index=False)
    manifest_path = f.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    columns = {str(c): str(d) for c, d in df.dtypes.items()}
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    manifest["tables"][f.stem] = {"rows": len(df), "sha256": digest, "columns": columns}
    manifest_path.write_text(json.dumps(manifest))
