"""Issue 12, items 3, 9, 10, 11, 14 and 16: bad input fails before any compute, as one line.

Scheme parameters out of range (every path: config, shared draws, direct calls, phase,
theory), seeds and sizes that are not integers, sweeps too large for the machine, and scheme
calls on things that are not floating-point tensors of the right rank.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import run_cli
from torch import Tensor

import initsuite
from initsuite import schemes
from initsuite.core import validate
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.core.spec import parse_spec
from initsuite.schemes import registry
from initsuite.studies.sweep import budget
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory import meanfield as theory
from initsuite.theory import phase

ROOT = Path(__file__).resolve().parents[1]


def _line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


# -- item 3/10/14: every scheme's parameters are checked ------------------------------------

# (spec, what the one-line message says after "scheme '<spec>': ")
BAD_PARAMS = [
    ("normal:std=-1", "std must be >= 0, got -1.0"),
    ("uniform:a=1,b=0", "needs a < b, got a=1.0, b=0.0"),
    ("uniform:a=1,b=1", "needs a < b"),
    ("trunc_normal:a=2,b=-2", "needs a < b"),
    ("trunc_normal:std=0", "std must be > 0, got 0.0"),
    ("trunc_normal:std=-1", "std must be > 0"),
    ("trunc_normal:a=10,b=11", "more than 2 std from [a, b]"),
    ("trunc_normal:std=1e200", "too little for torch's sampler"),
    ("uniform:a=-1e308,b=1e308", "b - a must be finite"),
    ("xavier_uniform:gain=-1", "gain must be >= 0, got -1.0"),
    ("xavier_normal:gain=-0.5", "gain must be >= 0"),
    ("lecun_normal:gain=-1", "gain must be >= 0"),
    ("lecun_uniform:gain=-1", "gain must be >= 0"),
    ("kaiming_normal:a=1e200", "cannot be computed"),
    ("kaiming_uniform:a=1e200", "cannot be computed"),
    ("sparse:sparsity=2", "sparsity must be in [0, 1], got 2.0"),
    ("sparse:sparsity=-0.1", "sparsity must be in [0, 1]"),
    ("sparse:std=-1", "std must be >= 0"),
    ("variance_scaling:scale=0", "needs scale > 0"),
    ("variance_scaling:scale=-2", "needs scale > 0"),
    ("fixup:base=nope", "unknown scheme 'nope'"),
    ("skipinit:base=constant", "needs parameter 'val'"),
    ("rezero:base=normal:std=-1", "std must be >= 0"),
    ("gpt2:std=-0.02", "std must be >= 0"),
    ("lsuv:tol=0", "tol must be > 0"),
    ("lsuv:max_iter=0", "max_iter must be >= 1"),
    ("lsuv:start=lsuv", "start must be another scheme"),
]


@pytest.mark.parametrize(("spec", "why"), BAD_PARAMS, ids=[s for s, _ in BAD_PARAMS])
def test_bad_parameters_fail_when_the_config_is_built(spec: str, why: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        SweepConfig.build(spec, "relu", 3, 8, archs="resmlp" if "base" in spec else "mlp")
    msg = _line(exc)
    assert msg.startswith(f"scheme {schemes.get(spec).spec!r}: "), msg
    assert why in msg


@pytest.mark.parametrize("spec", ["dirac:groups=0", "dirac:groups=-3"])
def test_dirac_groups_must_be_positive(spec: str) -> None:
    with pytest.raises(InitsuiteError, match="groups must be >= 1"):
        schemes.get(spec).resolve()


def test_a_shape_check_runs_when_the_tensor_is_known() -> None:
    scheme = schemes.get("dirac:groups=4")
    scheme.resolve()  # no shape yet: fine
    with pytest.raises(InitsuiteError) as exc:
        scheme(torch.empty(6, 4, 3))
    assert _line(exc) == ("scheme 'dirac:groups=4': dim 0 must be divisible by groups, got "
                          "shape (6, 4, 3), groups=4")  # fmt: skip


@pytest.mark.parametrize(
    "spec", ["normal:std=-1", "uniform:a=1,b=0", "xavier_uniform:gain=-1", "sparse:sparsity=2"]
)
def test_direct_calls_and_metadata_are_checked_too(spec: str) -> None:
    scheme = schemes.get(spec)
    with pytest.raises(InitsuiteError, match=re.escape(f"scheme {scheme.spec!r}: ")):
        scheme(torch.empty(8, 8), generator=torch.Generator().manual_seed(0))
    with pytest.raises(InitsuiteError):
        scheme.variance((8, 8))
    name, raw = parse_spec(spec)
    with pytest.raises(InitsuiteError):  # call-time overrides are checked like the spec
        schemes.get(name)(torch.empty(8, 8), **raw)


def test_a_valid_override_repairs_a_spec() -> None:
    w = schemes.get("normal:std=-1")(torch.empty(4, 4), std=0.5)
    assert w.shape == (4, 4)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("spec", ["normal:std=-1", "uniform:a=1,b=0", "xavier_uniform:gain=-1"])
def test_sweep_api_refuses_before_writing(spec: str, shared: bool, tmp_path: Path) -> None:
    out = tmp_path / "o"
    with pytest.raises(InitsuiteError, match=r"^scheme "):
        initsuite.sweep(spec, "relu", 3, 8, shared=shared, timing=False, out_dir=out)
    assert not out.exists()


@pytest.mark.parametrize("flags", [[], ["--no-shared"]])
@pytest.mark.parametrize("spec", ["normal:std=-1", "uniform:a=1,b=0", "xavier_uniform:gain=-1"])
def test_sweep_cli_exits_2_and_writes_nothing(
    spec: str, flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code, _, err = run_cli(["sweep", "--schemes", spec, "--depths", "3", "--widths", "8",
                                 "--out", str(out), *flags], capsys)  # fmt: skip
    assert code == 2
    assert err.startswith("initsuite: error: scheme ") and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_item_14_sparse_out_of_range_no_domain_error_no_meta(
    activation: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code, _, err = run_cli(["sweep", "--schemes", "sparse:sparsity=2", "--activations",
                            activation, "--depths", "3", "--widths", "8", "--out", str(out)],
                           capsys)  # fmt: skip
    assert code == 2
    assert "sparsity must be in [0, 1], got 2.0" in err
    assert "domain" not in err
    assert not out.exists()


def test_item_10_phase_refuses_out_of_range_sparsity(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run_cli(["phase", "--activation", "tanh", "--schemes",
                                 "sparse:sparsity=2"], capsys)  # fmt: skip
    assert code == 2
    assert stdout == ""
    assert err == ("initsuite: error: scheme 'sparse:sparsity=2.0': sparsity must be in "
                   "[0, 1], got 2.0\n")  # fmt: skip
    with pytest.raises(InitsuiteError):
        phase.scheme_points("relu", ["sparse:sparsity=2"])


def test_theory_refuses_a_negative_variance_instead_of_a_domain_error() -> None:
    with pytest.raises(InitsuiteError, match=r"sigma_w2 must be >= 0, got -0\.0256"):
        theory.mlp_moments("tanh", -0.0256, 3)
    with pytest.raises(InitsuiteError, match="sigma_w2 must be finite numbers >= 0"):
        phase.phase_diagram("tanh", sigma_w2=[-1.0, 1.0])
    with pytest.raises(InitsuiteError, match="sigma_b2"):
        phase.critical_sigma_w2("tanh", -0.5)


def test_theory_names_a_broken_variance_formula(scratch: None) -> None:
    @schemes.register(
        schemes.SchemeInfo(
            family="normal", variance_formula="-1", variance=lambda shape: -1.0, paper="-"
        )
    )
    def trust_broken_var(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return tensor

    with pytest.raises(InitsuiteError, match=r"its variance for shape \(8, 8\) is -1.0"):
        theory.weight_prior(schemes.get("trust_broken_var"), {}, 8, None)


def test_theory_takes_a_huge_valid_std_as_infinite_variance() -> None:
    # std**2 overflows Python floats: an infinite σ_w², not an OverflowError traceback
    assert theory.weight_prior(schemes.get("normal:std=1e200"), {"std": 1e200}, 8, None) == (
        np.inf, 0.0)  # fmt: skip
    with pytest.raises(InitsuiteError, match="beyond float64's range, so it has no phase"):
        phase.scheme_points("tanh", ["normal:std=1e200"])
    res = initsuite.sweep("normal:std=1e200", ["tanh", "relu"], 3, 8, timing=False)
    assert (res.cells["divergence_kind"] == "overflow").all()
    assert (res.cells["theory_divergence_layer"] == 1).all()


def test_every_valid_builtin_example_resolves() -> None:
    for name in schemes.names():
        info = schemes.info(name)
        params = schemes.get(info.example).resolve("relu")
        # every parameter checked and concrete: no unresolved auto, no key the scheme lacks
        assert "auto" not in params.values() and set(params) <= set(info.params), name


def test_float_parameters_refuse_nan_and_inf() -> None:
    for spec in ["normal:std=nan", "normal:mean=inf", "uniform:b=-inf", "constant:val=nan"]:
        with pytest.raises(InitsuiteError, match="must be finite"):
            schemes.get(spec)
    with pytest.raises(InitsuiteError, match="must be finite"):
        schemes.get("normal")(torch.empty(3, 3), std=float("nan"))
    with pytest.raises(InitsuiteError, match="must be finite"):
        initsuite.activations.get("leaky_relu:negative_slope=inf")


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove whatever a test registers."""
    before = set(registry._REGISTRY)
    yield
    for name in set(registry._REGISTRY) - before:
        del registry._REGISTRY[name]


def test_register_check_keyword(scratch: None) -> None:
    seen: list[tuple[object, float]] = []

    def check(shape: tuple[int, ...] | None, scale: float) -> None:
        seen.append((shape, scale))
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")

    @schemes.register(
        schemes.SchemeInfo(
            family="normal",
            variance_formula="scale²",
            variance=lambda shape, scale=1.0: scale**2,
            paper="-",
            min_rank=2,
            check=check,
        )
    )
    def trust_scaled(
        tensor: Tensor, scale: float = 1.0, *, generator: torch.Generator | None = None
    ) -> Tensor:
        with torch.no_grad():
            return tensor.normal_(0.0, scale, generator=generator)

    assert schemes.info("trust_scaled").check is check
    schemes.get("trust_scaled").resolve()
    assert seen[-1] == (None, 1.0)  # the default filled in, no shape yet
    schemes.get("trust_scaled:scale=2")(torch.empty(3, 5))
    assert seen[-1] == ((3, 5), 2.0)
    with pytest.raises(InitsuiteError) as exc:
        SweepConfig.build("trust_scaled:scale=-1", "relu", 2, 4)
    assert _line(exc) == "scheme 'trust_scaled:scale=-1.0': scale must be > 0, got -1.0"


def test_register_check_sees_auto_resolved(scratch: None) -> None:
    got: list[float] = []

    @schemes.register(
        schemes.SchemeInfo(
            family="normal",
            variance_formula="g²",
            variance=lambda shape, gain=1.0: gain**2,
            paper="-",
            check=lambda shape, gain: got.append(gain),
        )
    )
    def trust_gained(
        tensor: Tensor, gain: float | str = 1.0, *, generator: torch.Generator | None = None
    ) -> Tensor:
        return tensor

    schemes.get("trust_gained:gain=auto").resolve("tanh")
    assert got == [pytest.approx(5 / 3)]


# -- item 9: seeds and sizes are integers ----------------------------------------------------


@pytest.mark.parametrize("seeds", [3.0, 2.5, [1.9, 0.2], ["a"], "3", True, [True], [1, 2.0],
                                   None, np.float64(2.0)])  # fmt: skip
def test_seeds_refuse_non_integers(seeds: object) -> None:
    with pytest.raises(InitsuiteTypeError) as exc:
        SweepConfig.build("normal", "relu", 2, 8, seeds=seeds)
    assert _line(exc).startswith("seeds must be an int count or a list of ints, got ")
    assert isinstance(exc.value, TypeError)


def test_seeds_3_point_0_message() -> None:
    with pytest.raises(InitsuiteTypeError) as exc:
        initsuite.sweep("normal", "relu", 2, 8, seeds=3.0, timing=False)
    assert _line(exc) == "seeds must be an int count or a list of ints, got 3.0"


@pytest.mark.parametrize(("seeds", "match"), [(0, "count"), (-1, "count"), ([], "empty"),
                                              ([0, -2], ">= 0, got -2")])  # fmt: skip
def test_seeds_refuse_out_of_range(seeds: object, match: str) -> None:
    with pytest.raises(InitsuiteError, match=match):
        SweepConfig.build("normal", "relu", 2, 8, seeds=seeds)


@pytest.mark.parametrize(("seeds", "expected"), [
    (3, (0, 1, 2)), (np.int64(2), (0, 1)), ([4, 1, 4], (4, 1)), (np.arange(2), (0, 1)),
    ((np.int32(5),), (5,)), (range(2), (0, 1)),
])  # fmt: skip
def test_seeds_accept_integers(seeds: object, expected: tuple[int, ...]) -> None:
    assert SweepConfig.build("normal", "relu", 2, 8, seeds=seeds).seeds == expected
    assert validate.seeds(seeds) == expected


@pytest.mark.parametrize("arg", ["depths", "widths", "batch", "timing_repeats"])
@pytest.mark.parametrize("value", [3.0, "3", True, [2, 2.5]])
def test_sizes_refuse_non_integers(arg: str, value: object) -> None:
    if arg in ("batch", "timing_repeats") and isinstance(value, list):
        value = 2.5
    kwargs: dict[str, object] = {"schemes": "normal", "activations": "relu", "depths": 2,
                                 "widths": 8, arg: value}  # fmt: skip
    with pytest.raises(InitsuiteTypeError, match=f"^{arg} must be an integer >= 1, got "):
        SweepConfig.build(**kwargs)  # type: ignore[arg-type]


def test_sizes_accept_numpy_integers() -> None:
    cfg = SweepConfig.build("normal", "relu", np.array([2, 3]), np.int64(8), batch=np.int16(4))
    assert (cfg.depths, cfg.widths, cfg.batch) == ((2, 3), (8,), 4)
    assert all(type(v) is int for v in (*cfg.depths, *cfg.widths, cfg.batch))


def test_train_probe_reproduce_take_the_same_rule() -> None:
    from initsuite.studies import probe_factory, training, tutorial

    for kwargs in ({"seeds": 2.5}, {"seeds": 3.0}, {"depth": 30.0}, {"width": "128"}):
        with pytest.raises(InitsuiteTypeError):
            training.train("kaiming_normal", "relu", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InitsuiteTypeError, match=r"seeds must be an int count or a list of ints"):
        tutorial.tutorial_study(seeds=3.0)  # type: ignore[arg-type]
    model = torch.nn.Linear(4, 4)
    for seed in (1.0, -1, True):
        with pytest.raises(InitsuiteError, match=r"seed must be (an integer )?>= 0"):
            initsuite.probe(model, torch.randn(2, 4), seed=seed)  # type: ignore[arg-type]
        with pytest.raises(InitsuiteError, match=r"seed must be (an integer )?>= 0"):
            probe_factory.ProbeConfig("m:f", (2, 4), seed=seed)  # type: ignore[arg-type]


def test_cli_seeds_parse_as_integers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["sweep", "--schemes", "normal", "--seeds", "2.5", "--out",
                            str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 2 and "argument --seeds: expected an integer" in err and "'2.5'" in err
    assert not (tmp_path / "o").exists()


# -- item 11: absurd sizes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "what"),
    [("--widths", "1000000", "weights of width"), ("--depths", "1000000000", "layers table")],
)
def test_absurd_sizes_exit_2_at_once(
    flag: str, value: str, what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    args = {"--widths": "8", "--depths": "3", flag: value}
    code, _, err = run_cli(["sweep", "--schemes", "normal", "--activations", "relu",
                            "--depths", args["--depths"], "--widths", args["--widths"],
                            "--out", str(out)], capsys)  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1
    assert re.search(r"needs about [\d.]+ (TB|PB|EB) of memory \(mostly the " + what, err), err
    assert re.search(r"more than the [\d.]+ \w+ available", err), err
    assert not out.exists()


def test_absurd_size_in_the_api(tmp_path: Path) -> None:
    with pytest.raises(InitsuiteError, match="of memory"):
        initsuite.sweep("normal", "relu", 3, 10**6, out_dir=tmp_path / "o")
    with pytest.raises(InitsuiteError, match="of memory"):
        initsuite.sweep("normal", "relu", 10**9, 8)
    assert not (tmp_path / "o").exists()


def test_a_huge_batch_counts_its_activations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--batch 100000000 at width 8 (issue 27, item 15) grew to 15 GB in 2 minutes on a 23 GB
    machine after the budget passed it at 13 GB: the engine holds each stacked value about
    five times over (input, product, pre-activation, output, a copy for the statistics) and
    the statistics' float64 workspace. Refused before anything runs, naming --batch."""
    monkeypatch.setattr(budget, "available_memory", lambda device="cpu": 20e9)
    cfg = SweepConfig.build("kaiming_normal", "tanh", 3, 8, batch=100_000_000, timing=False)
    # one stream of one member: 8e8 values × (6 × 4 bytes + 8 bytes of float64) + the input
    assert budget.estimate(cfg, stored=True).parts["the activations"] == pytest.approx(
        (100_000_004 * 8) * 32 + 100_000_000 * 8 * 4, rel=1e-6)  # fmt: skip
    with pytest.raises(InitsuiteError) as exc:
        budget.check(cfg, stored=True)
    assert exc.value.arguments == ("batch", "allow_large")
    out = tmp_path / "o"
    code, _, err = run_cli(["sweep", "--schemes", "kaiming_normal", "--activations", "tanh",
                            "--depths", "3", "--widths", "8", "--batch", "100000000",
                            "--no-timing", "--out", str(out)], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert err.startswith("initsuite: error: this sweep needs about 29.3 GB of memory (mostly "
                          "the activations of a batch of 100,000,000), more than the 20 GB "
                          "available: use a smaller --batch (--allow-large lifts only the time "
                          "limit)"), err  # fmt: skip


def test_long_sweeps_need_allow_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(budget, "available_memory", lambda device="cpu": 64e9)
    cfg = SweepConfig.build("normal", "relu", 100_000, 4096)
    est = budget.estimate(cfg)
    assert est.seconds > budget.LARGE_SECONDS and est.host_bytes < 4e9
    with pytest.raises(InitsuiteError) as exc:
        budget.check(cfg)
    assert "pass allow_large=True to run it anyway" in _line(exc)
    assert exc.value.arguments == ("allow_large",)
    assert "hours" in _line(exc)
    with caplog.at_level(logging.WARNING, logger="initsuite"):
        assert budget.check(cfg, allow_large=True) == est
    assert "a large sweep: about" in caplog.text


def test_allow_large_runs_and_prints_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(budget, "LARGE_SECONDS", 0.0)  # every sweep counts as large
    out = tmp_path / "o"
    base = ["sweep", "--schemes", "normal", "--activations", "relu", "--depths", "2",
            "--widths", "4", "--no-timing", "--quiet", "--out", str(out)]  # fmt: skip
    code, _, err = run_cli(base, capsys)
    assert code == 2 and "pass --allow-large to run it anyway" in err and not out.exists()
    with caplog.at_level(logging.WARNING, logger="initsuite"):
        code, _, err = run_cli([*base, "--allow-large"], capsys)
    assert code == 0
    assert "a large sweep: about" in caplog.text
    with pytest.raises(InitsuiteError, match="allow_large"):
        initsuite.sweep("normal", "relu", 2, 4, timing=False)
    assert len(initsuite.sweep("normal", "relu", 2, 4, timing=False, allow_large=True).cells)


def _make_vars() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return dict(re.findall(r"^(\w+) \?= (.*)$", text, flags=re.M))


def test_the_projects_own_sweeps_pass_the_estimate() -> None:
    """make bench's studies (read from the Makefile) fit well within the limits."""
    v = _make_vars()
    split = lambda text: [s.strip() for s in re.split(r",(?![^:,]*=)", text)]  # noqa: E731
    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    study = SweepConfig.build(
        v["STUDY_SCHEMES"].split(","), v["STUDY_ACTIVATIONS"].split(","),
        ints(v["STUDY_DEPTHS"]), ints(v["STUDY_WIDTHS"]), seeds=int(v["STUDY_SEEDS"]),
        backward=True,
    )  # fmt: skip
    dynamics = SweepConfig.build(v["DYNAMICS_SCHEMES"].split(","), ["linear", "tanh", "relu"],
                                 [4, 16, 64], 256, seeds=3, jacobian=True, backward=True,
                                 timing=False)  # fmt: skip
    archs = SweepConfig.build(v["ARCH_SCHEMES"].split(","), ["relu", "tanh"], [10, 50], 64,
                              seeds=2, archs=split(v["ARCH_ARCHS"]), timing=False)  # fmt: skip
    assert study.n_cells == 5040  # the grid the README measures
    for cfg in (study, dynamics, archs):
        est = budget.estimate(cfg, stored=True)
        # measured: the study's sweep took 159 s (2026-12-01 fresh-clone make bench) and
        # well under 2 GB; the estimate is on the high side
        assert est.seconds < budget.LARGE_SECONDS / 2
        assert est.host_bytes < 3e9
        budget.check(cfg, stored=True)
    assert budget.estimate(study, stored=True).seconds > 159  # never below the measured time


def test_available_memory_reads_this_machine() -> None:
    have = budget.available_memory()
    assert have is None or 1e6 < have < 1e15


# -- item 16: what a scheme is called on -----------------------------------------------------


@pytest.mark.parametrize("name", ["normal", "kaiming_normal", "orthogonal", "sparse", "zeros"])
def test_scheme_on_a_numpy_array(name: str) -> None:
    with pytest.raises(InitsuiteTypeError) as exc:
        schemes.get(name)(np.zeros((3, 3), dtype=np.float32))
    assert _line(exc) == (f"scheme {name!r} fills a torch.Tensor, got numpy.ndarray; convert "
                          "it with torch.from_numpy(...)")  # fmt: skip
    assert isinstance(exc.value, TypeError)
    with pytest.raises(InitsuiteTypeError, match="got list"):
        schemes.get(name)([[0.0]])


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_scheme_on_an_int_tensor(dtype: torch.dtype) -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaiming_normal")(torch.zeros(3, 3, dtype=dtype))
    assert _line(exc) == f"scheme 'kaiming_normal' needs a floating-point tensor, got {dtype}"


def test_scheme_on_a_1d_tensor() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaiming_normal")(torch.zeros(3))
    assert _line(exc) == "scheme 'kaiming_normal' needs a tensor of rank >=2, got shape (3,)"
    assert isinstance(exc.value, ValueError)  # as torch raises


def test_sweep_seeds_of_strings_is_a_type_error() -> None:
    with pytest.raises(InitsuiteTypeError, match=r"got 'a' in \['a'\]"):
        initsuite.sweep("normal", "relu", 2, 8, seeds=["a"], timing=False)


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (10**9, "more than 100000 seeds"),  # a count is listed: it must stop before
        (range(10**9), "lists 1000000000 seeds"),
        ([2**64], "at most 2\\*\\*63 - 1"),  # torch.Generator takes 64-bit seeds
    ],
)
def test_huge_seed_counts_and_values_are_refused_before_listing(seeds: object, message: str):
    with pytest.raises(InitsuiteError, match=message):
        initsuite.sweep("normal", "linear", 2, 2, seeds=seeds, timing=False)


# --- the shared validators (initsuite.core.validate) ------------------------------------------


def test_flag_takes_only_booleans() -> None:
    assert validate.flag("bias", True) is True and validate.flag("bias", False) is False
    for value in (1, 0, "yes", None):
        with pytest.raises(InitsuiteTypeError, match=r"bias must be True or False, got "):
            validate.flag("bias", value)


@pytest.mark.parametrize(
    ("kwargs", "good", "bad", "what"),
    [
        ({"low": 0, "open_low": True}, [1e-9, 3, math.inf], [0, -1.0, math.nan],
         "a positive number"),
        ({"low": -1.0, "high": 1.0}, [-1.0, 0, 1], [1.0001, -2, math.nan, math.inf],
         r"a number in \[-1, 1\]"),
        ({"low": 0, "high": 1, "open_high": True}, [0, 0.5], [1, -0.1],
         r"a number in \[0, 1\)"),
    ],
    ids=["positive", "closed", "half-open"],
)  # fmt: skip
def test_number_checks_its_interval(
    kwargs: dict[str, Any], good: list[float], bad: list[float], what: str
) -> None:
    for v in good:
        assert validate.number("x", v, **kwargs) is v  # returned as given
    for v in bad:
        with pytest.raises(InitsuiteError, match=rf"^x must be {what}, got "):
            validate.number("x", v, **kwargs)
    for v in (True, "0.5", None):
        with pytest.raises(InitsuiteTypeError, match=rf"^x must be {what}, got "):
            validate.number("x", v, **kwargs)


def test_as_tuple_wraps_one_value_and_lists_an_iterable() -> None:
    assert validate.as_tuple("relu") == ("relu",)
    assert validate.as_tuple(3) == (3,) and validate.as_tuple(0.5) == (0.5,)
    assert validate.as_tuple(["a", "b"]) == ("a", "b")
    assert validate.as_tuple(x for x in (1, 2)) == (1, 2)
    assert validate.as_tuple(None) == (None,)  # not iterable: one (bad) value, checked later


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bias": 1}, "bias must name its law ('torch_default', None), got 1"),
        ({"shared": "no"}, "shared must be True or False, got 'no'"),
        ({"explode_at": True}, "explode_at must be a positive number, got True"),
        ({"vanish_at": -1.0}, "vanish_at must be a positive number, got -1.0"),
        ({"explode_at": 10, "vanish_at": 10}, "vanish_at (10) must be below explode_at (10)"),
        ({"pair_cosine": 1.5}, "pair_cosine must be a number in [-1, 1], got 1.5"),
        ({"timing_repeats": 0}, "timing_repeats must be >= 1, got 0"),
    ],
    ids=["bias", "shared", "explode-bool", "vanish-negative", "vanish-not-below", "cosine",
         "repeats"],
)  # fmt: skip
def test_sweep_config_refuses_each_bad_option(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        SweepConfig.build("normal", "relu", 2, 4, **kwargs)
    assert _line(exc) == message


@pytest.mark.parametrize("name", ["backward", "jacobian"])
def test_mlp_only_statistics_name_the_argument(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InitsuiteError) as exc:
        SweepConfig.build("normal", "relu", 2, 4, archs="conv", **{name: True})
    assert _line(exc).endswith(f": sweep it without {name}=True")
    assert exc.value.arguments == (name,)  # type: ignore[attr-defined]
    code, _, err = run_cli(["sweep", "--schemes", "normal", "--arch", "conv", f"--{name}",
                            "--out", str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 2 and err.strip().endswith(f": sweep it without --{name}")
    assert not (tmp_path / "o").exists()


def test_sweep_config_exposes_its_scheme_objects() -> None:
    cfg = SweepConfig.build(["xavier_uniform", "normal:std=2"], "relu", 2, 4)
    assert [s.spec for s in cfg.scheme_objects] == list(cfg.schemes)
    assert cfg.schemes == ("xavier_uniform", "normal:std=2.0")
