"""Tests of the scheme registry and the built-in schemes.

Truth here is independent of the registry's metadata: values are compared bitwise with
``torch.nn.init`` under the same generator state, distributions are KS-tested against laws
written out in this file, and variances against formulas written out in this file.
Tests parametrized over ``schemes.names()`` cover every scheme registered in the future.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from helpers import FakeEntryPoint, distinct_laws, patch_entry_points
from scipy import stats
from torch import Tensor, nn

from initsuite import activations, schemes
from initsuite.core.errors import InitsuiteError
from initsuite.schemes import registry

init = torch.nn.init

SCHEMES = schemes.names()
# The per-scheme contracts run once per distinct law (helpers.distinct_laws: flax:/jax:/keras:
# twins built by one factory); names and metadata are checked for every name.
LAWS = distinct_laws(SCHEMES)
SEED = 1234

# One shape per rank; rank 2 is deliberately non-square so fan_in != fan_out.
SHAPES: dict[int, tuple[int, ...]] = {
    1: (50,),
    2: (48, 32),
    3: (8, 6, 5),
    4: (8, 6, 3, 3),
    5: (4, 4, 3, 3, 3),
}


def _gen(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shape_for(name: str, prefer: tuple[int, ...] = (2, 4, 3, 5, 1)) -> tuple[int, ...]:
    info = schemes.info(name)
    return next(SHAPES[r] for r in prefer if info.accepts_rank(r))


def _example(name: str) -> schemes.Scheme:
    """The scheme with the parameters of its registered example spec (e.g. constant's val)."""
    return schemes.get(schemes.info(name).example)


def _is_random(name: str) -> bool:
    if schemes.info(name).family == "data_dependent":  # LSUV: a random start, then rescaled
        return True
    variance = _example(name).variance(_shape_for(name))
    return variance is not None and variance > 0


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The message, checked to be a single line with no chained traceback shown."""
    err = exc.value
    msg = str(err)
    assert "\n" not in msg, msg
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__
    return msg


# -- every scheme ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAWS)
def test_fills_in_place_and_returns_the_tensor(name: str) -> None:
    tensor = torch.full(_shape_for(name), math.nan)
    out = _example(name)(tensor, generator=_gen())
    assert out is tensor
    assert out.shape == _shape_for(name)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all(), "some entries were left unfilled"


@pytest.mark.parametrize("name", LAWS)
def test_fills_a_parameter_that_requires_grad(name: str) -> None:
    # Layer weights are leaves that require grad: in-place writes must happen under no_grad.
    weight = nn.Parameter(torch.empty(_shape_for(name)))
    out = _example(name)(weight, generator=_gen())
    assert out is weight
    assert weight.requires_grad
    assert weight.grad_fn is None


@pytest.mark.parametrize("name", LAWS)
def test_draws_only_from_the_generator(name: str) -> None:
    # torch's own sparse_ draws its zero pattern from the global RNG; ours must not.
    with torch.random.fork_rng(devices=[]):
        before = torch.get_rng_state()
        _example(name)(torch.empty(_shape_for(name)), generator=_gen())
        assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("rank", [1, 2, 3, 4, 5])
def test_accepts_exactly_its_ranks(name: str, rank: int) -> None:
    scheme = _example(name)
    tensor = torch.empty(SHAPES[rank])
    if scheme.info.accepts_rank(rank):
        assert scheme(tensor, generator=_gen()) is tensor
    else:
        with pytest.raises(ValueError, match=f"scheme {name!r} needs a tensor of rank"):
            scheme(tensor, generator=_gen())


@pytest.mark.parametrize("name", LAWS)
def test_same_seed_same_values(name: str) -> None:
    shape = _shape_for(name)
    first = _example(name)(torch.empty(shape), generator=_gen(7))
    second = _example(name)(torch.empty(shape), generator=_gen(7))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", [n for n in LAWS if _is_random(n)])
def test_different_seeds_different_values(name: str) -> None:
    shape = _shape_for(name)
    first = _example(name)(torch.empty(shape), generator=_gen(7))
    second = _example(name)(torch.empty(shape), generator=_gen(8))
    assert not torch.equal(first, second)


@pytest.mark.parametrize("name", [n for n in LAWS if not _is_random(n)])
def test_deterministic_schemes_ignore_the_generator(name: str) -> None:
    shape = _shape_for(name)
    gen = _gen(7)
    state = gen.get_state()
    first = _example(name)(torch.empty(shape), generator=gen)
    assert torch.equal(gen.get_state(), state), "a deterministic scheme consumed random numbers"
    assert torch.equal(first, _example(name)(torch.empty(shape), generator=_gen(8)))


@pytest.mark.parametrize("name", [n for n in LAWS if schemes.info(n).accepts_rank(2)])
def test_zero_element_tensor_is_a_no_op(name: str) -> None:
    tensor = torch.empty(5, 0)  # fan_in = 0; torch.nn.init returns such tensors unchanged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns "zero-element ... no-op"
        assert _example(name)(tensor, generator=_gen()) is tensor


# -- rank errors, like torch -----------------------------------------------------------------

RANK_ERRORS = [
    ("xavier_uniform", (5,), lambda t: init.xavier_uniform_(t)),
    ("xavier_normal", (5,), lambda t: init.xavier_normal_(t)),
    ("kaiming_uniform", (5,), lambda t: init.kaiming_uniform_(t)),
    ("kaiming_normal", (5,), lambda t: init.kaiming_normal_(t)),
    ("orthogonal", (5,), lambda t: init.orthogonal_(t)),
    ("lecun_normal", (5,), None),
    ("lecun_uniform", (5,), None),
    ("torch_default", (5,), lambda t: init.kaiming_uniform_(t, a=math.sqrt(5))),
    ("eye", (3, 4, 5), lambda t: init.eye_(t)),
    ("sparse", (3, 4, 5), lambda t: init.sparse_(t, 0.5)),
    ("dirac", (4, 5), lambda t: init.dirac_(t)),
]


@pytest.mark.parametrize(
    ("name", "shape", "torch_call"), RANK_ERRORS, ids=[c[0] for c in RANK_ERRORS]
)
def test_wrong_rank_raises_value_error_like_torch(
    name: str, shape: tuple[int, ...], torch_call: Callable[[Tensor], Tensor] | None
) -> None:
    with pytest.raises(ValueError, match="needs a tensor of rank"):
        schemes.get(name)(torch.empty(shape))
    # The function itself checks too (as torch does), for callers that bypass Scheme.
    with pytest.raises(ValueError):
        schemes.info(name).fn(torch.empty(shape))
    if torch_call is not None:
        with torch.random.fork_rng(devices=[]), pytest.raises(ValueError):
            torch_call(torch.empty(shape))


# -- value for value against torch.nn.init ---------------------------------------------------


def _twin(spec: str, shape: tuple[int, ...], call: Callable[[Tensor, torch.Generator], Any]) -> Any:
    return pytest.param(spec, shape, call, id=f"{spec}-{'x'.join(map(str, shape))}")


TWIN_CASES = [
    _twin("uniform", (40, 30), lambda t, g: init.uniform_(t, generator=g)),
    _twin("uniform:a=-2,b=3", (1000,), lambda t, g: init.uniform_(t, -2.0, 3.0, generator=g)),
    _twin("normal", (40, 30), lambda t, g: init.normal_(t, generator=g)),
    _twin("normal:mean=1,std=0.02", (1000,), lambda t, g: init.normal_(t, 1.0, 0.02, generator=g)),
    _twin("trunc_normal", (40, 30), lambda t, g: init.trunc_normal_(t, generator=g)),
    _twin(
        "trunc_normal:mean=0.5,std=2,a=-1,b=3",
        (40, 30),
        lambda t, g: init.trunc_normal_(t, 0.5, 2.0, -1.0, 3.0, generator=g),
    ),
    # P(1 < z < 3) = 0.16 < 0.3: torch's other (uniform-proposal) sampler
    _twin(
        "trunc_normal:a=1,b=3",
        (40, 30),
        lambda t, g: init.trunc_normal_(t, 0, 1, 1, 3, generator=g),
    ),
    _twin("constant:val=0.25", (40, 30), lambda t, g: init.constant_(t, 0.25)),
    _twin("zeros", (40, 30), lambda t, g: init.zeros_(t)),
    _twin("ones", (4, 3, 2), lambda t, g: init.ones_(t)),
    _twin("eye", (5, 5), lambda t, g: init.eye_(t)),
    _twin("eye", (3, 7), lambda t, g: init.eye_(t)),
    _twin("eye", (7, 3), lambda t, g: init.eye_(t)),
    _twin("dirac", (6, 4, 3), lambda t, g: init.dirac_(t)),
    _twin("dirac", (6, 4, 3, 3), lambda t, g: init.dirac_(t)),
    _twin("dirac", (3, 5, 2, 4), lambda t, g: init.dirac_(t)),
    _twin("dirac", (4, 4, 3, 3, 3), lambda t, g: init.dirac_(t)),
    _twin("dirac:groups=2", (8, 3, 3, 3), lambda t, g: init.dirac_(t, groups=2)),
    _twin("dirac:groups=3", (6, 4, 5), lambda t, g: init.dirac_(t, groups=3)),
    _twin("xavier_uniform", (300, 100), lambda t, g: init.xavier_uniform_(t, generator=g)),
    _twin("xavier_uniform:gain=2.5", (300, 100), lambda t, g: init.xavier_uniform_(t, 2.5, g)),
    _twin("xavier_uniform", (16, 8, 3, 3), lambda t, g: init.xavier_uniform_(t, generator=g)),
    _twin("xavier_normal", (300, 100), lambda t, g: init.xavier_normal_(t, generator=g)),
    _twin("xavier_normal:gain=0.5", (300, 100), lambda t, g: init.xavier_normal_(t, 0.5, g)),
    _twin("xavier_normal", (16, 8, 3, 3), lambda t, g: init.xavier_normal_(t, generator=g)),
    _twin("kaiming_uniform", (300, 100), lambda t, g: init.kaiming_uniform_(t, generator=g)),
    _twin(
        "kaiming_uniform:a=0.5,mode=fan_out",
        (300, 100),
        lambda t, g: init.kaiming_uniform_(t, a=0.5, mode="fan_out", generator=g),
    ),
    _twin(
        "kaiming_uniform:a=0.2,mode=fan_out,nonlinearity=leaky_relu",
        (16, 8, 3, 3),
        lambda t, g: init.kaiming_uniform_(t, 0.2, "fan_out", "leaky_relu", generator=g),
    ),
    *[
        _twin(
            f"kaiming_uniform:nonlinearity={nl}",
            (300, 100),
            lambda t, g, nl=nl: init.kaiming_uniform_(t, nonlinearity=nl, generator=g),
        )
        for nl in ("relu", "tanh", "selu", "sigmoid", "linear", "conv2d")
    ],
    _twin("kaiming_normal", (300, 100), lambda t, g: init.kaiming_normal_(t, generator=g)),
    _twin(
        "kaiming_normal:a=0.5,mode=fan_out",
        (16, 8, 3, 3),
        lambda t, g: init.kaiming_normal_(t, a=0.5, mode="fan_out", generator=g),
    ),
    *[
        _twin(
            f"kaiming_normal:mode=fan_out,nonlinearity={nl}",
            (300, 100),
            lambda t, g, nl=nl: init.kaiming_normal_(
                t, mode="fan_out", nonlinearity=nl, generator=g
            ),
        )
        for nl in ("relu", "tanh", "selu", "linear")
    ],
    _twin("orthogonal", (64, 64), lambda t, g: init.orthogonal_(t, generator=g)),
    _twin("orthogonal", (96, 32), lambda t, g: init.orthogonal_(t, generator=g)),
    _twin("orthogonal", (32, 96), lambda t, g: init.orthogonal_(t, generator=g)),
    _twin("orthogonal", (16, 4, 3, 3), lambda t, g: init.orthogonal_(t, generator=g)),
    _twin("orthogonal:gain=1.5", (32, 96), lambda t, g: init.orthogonal_(t, 1.5, g)),
    _twin(
        "torch_default",
        (300, 100),
        lambda t, g: init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
    ),
    _twin(
        "torch_default",
        (16, 8, 3, 3),
        lambda t, g: init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
    ),
]


@pytest.mark.parametrize(("spec", "shape", "torch_call"), TWIN_CASES)
def test_equals_torch_nn_init(
    spec: str, shape: tuple[int, ...], torch_call: Callable[[Tensor, torch.Generator], Any]
) -> None:
    ours = schemes.get(spec)(torch.empty(shape), generator=_gen())
    theirs = torch.empty(shape)
    torch_call(theirs, _gen())
    assert torch.equal(ours, theirs)


def test_every_torch_twin_is_compared() -> None:
    compared = {case.values[0].partition(":")[0] for case in TWIN_CASES} | {"sparse"}
    twins = {n for n in SCHEMES if schemes.info(n).torch_fn}
    assert twins <= compared, f"add TWIN_CASES for {sorted(twins - compared)}"


@pytest.mark.parametrize("name", [n for n in SCHEMES if schemes.info(n).torch_fn])
def test_torch_twin_exists(name: str) -> None:
    torch_fn = schemes.info(name).torch_fn
    assert torch_fn is not None
    assert callable(getattr(init, torch_fn.partition("(")[0]))


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        pytest.param(lambda: nn.Linear(100, 300), (300, 100), id="Linear"),
        pytest.param(lambda: nn.Linear(7, 3, bias=False), (3, 7), id="Linear-nobias"),
        pytest.param(lambda: nn.Conv2d(16, 32, 3), (32, 16, 3, 3), id="Conv2d"),
        pytest.param(lambda: nn.Conv1d(4, 6, 5), (6, 4, 5), id="Conv1d"),
    ],
)
def test_torch_default_equals_a_fresh_layer(
    make: Callable[[], nn.Module], shape: tuple[int, ...]
) -> None:
    # The layer draws its weight first, from the global generator: seed that (and restore it
    # afterwards), then draw ours from a private generator in the same state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        layer = make()
    ours = schemes.get("torch_default")(torch.empty(shape), generator=_gen(SEED))
    assert torch.equal(ours, layer.weight.detach())


@pytest.mark.parametrize(
    ("make", "fan_in"),
    [
        pytest.param(lambda: nn.Linear(100, 300), 100, id="Linear"),
        pytest.param(lambda: nn.Conv2d(16, 32, 3), 16 * 9, id="Conv2d"),
        pytest.param(lambda: nn.Conv1d(4, 6, 5), 4 * 5, id="Conv1d"),
    ],
)
def test_default_bias_equals_a_fresh_layers_bias(
    make: Callable[[], nn.Module], fan_in: int
) -> None:
    # torch draws the weight, then the bias, from the global generator: replay the weight's
    # draw from the same seed, then ours must be the layer's bias value for value.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        layer = make()
        torch.manual_seed(SEED)
        init.kaiming_uniform_(torch.empty(layer.weight.shape), a=math.sqrt(5))
        ours = schemes.default_bias_(torch.empty(layer.bias.shape), fan_in)
    assert torch.equal(ours, layer.bias.detach())


@pytest.mark.parametrize("fan_in", [1, 3, 24, 1000])
def test_default_bias_bound_and_variance(fan_in: int) -> None:
    bound = schemes.default_bias_bound(fan_in)
    assert bound == 1 / math.sqrt(fan_in)
    assert schemes.default_bias_variance(fan_in) == pytest.approx(bound**2 / 3, rel=1e-15)
    # the weight of torch_default has the same law
    assert schemes.get("torch_default").variance((7, fan_in)) == schemes.default_bias_variance(
        fan_in
    )
    b = schemes.default_bias_(torch.empty(200_000, dtype=torch.float64), fan_in, generator=_gen())
    assert float(b.abs().max()) <= bound
    # the sample variance of n = 2e5 uniforms has relative sd sqrt(0.8/n) ≈ 0.2%: 1% is 5 sd
    assert float(b.var()) == pytest.approx(schemes.default_bias_variance(fan_in), rel=0.01)


def test_default_bias_of_an_empty_layer_is_zero_width() -> None:
    assert schemes.default_bias_bound(0) == 0.0  # torch's reset_parameters: no division by 0


@pytest.mark.parametrize(
    ("rows", "cols", "sparsity"), [(50, 40, 0.3), (48, 32, 0.9), (10, 7, 0.05)]
)
def test_sparse_values_are_torchs_normal_draw(rows: int, cols: int, sparsity: float) -> None:
    std = 0.05
    ours = schemes.get(f"sparse:sparsity={sparsity},std={std}")(
        torch.empty(rows, cols), generator=_gen()
    )
    draw = torch.empty(rows, cols).normal_(0, std, generator=_gen())
    nonzero = ours != 0
    assert torch.equal(ours[nonzero], draw[nonzero])
    # torch's sparse_ draws the same values (its zero pattern comes from the global RNG)
    with torch.random.fork_rng(devices=[]):
        theirs = init.sparse_(torch.empty(rows, cols), sparsity, std, generator=_gen())
    assert torch.equal(theirs[theirs != 0], draw[theirs != 0])
    zeros_per_column = (ours == 0).sum(dim=0)
    assert zeros_per_column.tolist() == [math.ceil(sparsity * rows)] * cols
    # Var(W) = (fraction of non-zeros)·std², and that fraction is fixed, not random: the
    # metadata must match it exactly (a floor for the ceil shows at these small row counts).
    nonzero_fraction = nonzero.double().mean().item()
    variance = schemes.get(f"sparse:sparsity={sparsity},std={std}").variance((rows, cols))
    assert variance == pytest.approx(nonzero_fraction * std**2, rel=1e-12)


def test_sparse_zero_pattern_differs_between_columns_and_seeds() -> None:
    first = schemes.get("sparse:sparsity=0.5")(torch.empty(40, 30), generator=_gen(1)) == 0
    second = schemes.get("sparse:sparsity=0.5")(torch.empty(40, 30), generator=_gen(2)) == 0
    assert not torch.equal(first, second)
    assert len({tuple(col.tolist()) for col in first.T}) > 1


def test_sparse_extremes() -> None:
    dense = schemes.get("sparse:sparsity=0")(torch.empty(20, 10), generator=_gen())
    assert torch.equal(dense, torch.empty(20, 10).normal_(0, 0.01, generator=_gen()))
    empty = schemes.get("sparse:sparsity=1")(torch.empty(20, 10), generator=_gen())
    assert torch.equal(empty, torch.zeros(20, 10))
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\]"):
        schemes.get("sparse:sparsity=1.5")(torch.empty(20, 10))


def test_dirac_rejects_indivisible_groups() -> None:
    with pytest.raises(ValueError, match="divisible by groups"):
        schemes.get("dirac:groups=4")(torch.empty(6, 4, 3))


def test_trunc_normal_rejects_empty_interval() -> None:
    with pytest.raises(ValueError, match="a < b"):
        schemes.get("trunc_normal:a=2,b=-2")(torch.empty(5))


# -- dtypes ----------------------------------------------------------------------------------

DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]


# Every scheme in every dtype: tests/test_schemes_extra.py (test_every_scheme_in_every_dtype).


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(64, 64), (32, 96), (96, 32)])
def test_orthogonal_in_every_dtype(dtype: torch.dtype, shape: tuple[int, int]) -> None:
    w = schemes.get("orthogonal")(torch.empty(shape, dtype=dtype), generator=_gen()).double()
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    n = gram.shape[0]
    # Storing Q in `dtype` rounds each entry by a relative u = eps/2, which moves each entry of
    # the Gram matrix by at most (2u + u²)·Σ|q_ik q_jk| <= eps·1.01 (Cauchy-Schwarz on unit
    # rows). The QR itself runs in float32 for half types (no half QR kernel) and loses
    # orthogonality of order n·eps of that precision.
    qr_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    tol = 1.01 * torch.finfo(dtype).eps + n * torch.finfo(qr_dtype).eps
    error = (gram - torch.eye(n, dtype=torch.float64)).abs().max().item()
    assert error <= tol


# -- distributions: KS against laws written here ---------------------------------------------

# 300x100: fan_in = 100 and fan_out = 300 differ by 3x, so a swapped fan fails loudly.
# 64x32x3x3: fan_in = 288, fan_out = 576 (receptive field 9).
LIN = (300, 100)
CONV = (64, 32, 3, 3)
FAN_IN, FAN_OUT = 100, 300
CONV_FAN_IN, CONV_FAN_OUT = 32 * 9, 64 * 9
SQRT2 = math.sqrt(2.0)


def _u(bound: float) -> Any:
    return stats.uniform(loc=-bound, scale=2 * bound)


def _n(std: float, mean: float = 0.0) -> Any:
    return stats.norm(loc=mean, scale=std)


def _tn(mean: float, std: float, a: float, b: float) -> Any:
    # scipy's truncnorm takes bounds in units of std around loc; initsuite's (and torch's)
    # a, b are absolute values.
    return stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)


KS_CASES = [
    ("uniform", LIN, stats.uniform(0, 1)),
    ("uniform:a=-2,b=3", LIN, stats.uniform(-2, 5)),
    ("normal", LIN, _n(1.0)),
    ("normal:mean=1,std=0.02", LIN, _n(0.02, mean=1.0)),
    ("trunc_normal", LIN, _tn(0.0, 1.0, -2.0, 2.0)),
    ("trunc_normal:mean=0.5,std=2,a=-1,b=3", LIN, _tn(0.5, 2.0, -1.0, 3.0)),
    ("trunc_normal:a=1,b=3", LIN, _tn(0.0, 1.0, 1.0, 3.0)),
    ("xavier_uniform", LIN, _u(math.sqrt(6.0 / (FAN_IN + FAN_OUT)))),
    ("xavier_uniform:gain=2", LIN, _u(2 * math.sqrt(6.0 / (FAN_IN + FAN_OUT)))),
    ("xavier_uniform", CONV, _u(math.sqrt(6.0 / (CONV_FAN_IN + CONV_FAN_OUT)))),
    ("xavier_normal", LIN, _n(math.sqrt(2.0 / (FAN_IN + FAN_OUT)))),
    ("xavier_normal:gain=0.5", CONV, _n(0.5 * math.sqrt(2.0 / (CONV_FAN_IN + CONV_FAN_OUT)))),
    # He: bound = gain·sqrt(3/fan), gain = sqrt(2/(1+a²)) for leaky_relu (a=0 is ReLU's √2)
    ("kaiming_uniform", LIN, _u(SQRT2 * math.sqrt(3.0 / FAN_IN))),
    ("kaiming_uniform:mode=fan_out", LIN, _u(SQRT2 * math.sqrt(3.0 / FAN_OUT))),
    ("kaiming_uniform:a=0.2", LIN, _u(math.sqrt(2.0 / 1.04) * math.sqrt(3.0 / FAN_IN))),
    ("kaiming_uniform:nonlinearity=tanh", LIN, _u(5.0 / 3 * math.sqrt(3.0 / FAN_IN))),
    ("kaiming_uniform", CONV, _u(SQRT2 * math.sqrt(3.0 / CONV_FAN_IN))),
    ("kaiming_normal", LIN, _n(SQRT2 / math.sqrt(FAN_IN))),
    ("kaiming_normal:mode=fan_out,nonlinearity=linear", LIN, _n(1.0 / math.sqrt(FAN_OUT))),
    ("kaiming_normal:nonlinearity=selu", LIN, _n(0.75 / math.sqrt(FAN_IN))),
    ("kaiming_normal", CONV, _n(SQRT2 / math.sqrt(CONV_FAN_IN))),
    ("lecun_normal", LIN, _n(1.0 / math.sqrt(FAN_IN))),
    ("lecun_normal:gain=2", CONV, _n(2.0 / math.sqrt(CONV_FAN_IN))),
    ("lecun_uniform", LIN, _u(math.sqrt(3.0 / FAN_IN))),
    ("lecun_uniform", CONV, _u(math.sqrt(3.0 / CONV_FAN_IN))),
    # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    ("torch_default", LIN, _u(1.0 / math.sqrt(FAN_IN))),
    ("torch_default", CONV, _u(1.0 / math.sqrt(CONV_FAN_IN))),
]


def _ks_pvalue(spec: str, shape: tuple[int, ...], law: Any, seed: int = SEED) -> float:
    w = schemes.get(spec)(torch.empty(shape, dtype=torch.float64), generator=_gen(seed))
    return float(stats.kstest(w.flatten().numpy(), law.cdf).pvalue)


@pytest.mark.parametrize(
    ("spec", "shape", "law"), KS_CASES, ids=[f"{c[0]}-{len(c[1])}d" for c in KS_CASES]
)
def test_ks_against_the_exact_law(spec: str, shape: tuple[int, ...], law: Any) -> None:
    # Fixed seed, so deterministic; under the right law p is uniform and p > 1e-4 fails with
    # probability 1e-4 per case. With 18k-30k draws a wrong constant gives p < 1e-10
    # (test_ks_rejects_wrong_formulas).
    assert _ks_pvalue(spec, shape, law) > 1e-4


@pytest.mark.parametrize(
    ("spec", "shape", "wrong_law"),
    [
        pytest.param("xavier_uniform", LIN, _u(SQRT2 * math.sqrt(3.0 / FAN_IN)), id="xavier-vs-he"),
        pytest.param(
            "kaiming_normal", LIN, _n(SQRT2 / math.sqrt(FAN_OUT)), id="kaiming-fan-swapped"
        ),
        pytest.param(
            "kaiming_uniform", LIN, _u(math.sqrt(3.0 / FAN_IN)), id="kaiming-missing-sqrt2"
        ),
        pytest.param(
            "xavier_normal", LIN, _n(1.1 * math.sqrt(2.0 / (FAN_IN + FAN_OUT))), id="xavier-10%"
        ),
        pytest.param("torch_default", LIN, _u(math.sqrt(6.0 / FAN_IN)), id="default-with-a=0"),
        pytest.param(
            "trunc_normal:mean=0.5,std=2,a=-1,b=3",
            LIN,
            stats.truncnorm(-1.0, 3.0, loc=0.5, scale=2.0),
            id="trunc-bounds-in-std-units",
        ),
        pytest.param(
            "kaiming_normal", CONV, _n(SQRT2 / math.sqrt(32)), id="conv-no-receptive-field"
        ),
    ],
)
def test_ks_rejects_wrong_formulas(spec: str, shape: tuple[int, ...], wrong_law: Any) -> None:
    # The KS test has the power to catch the mistakes it is meant to catch.
    assert _ks_pvalue(spec, shape, wrong_law) < 1e-10


def test_trunc_normal_stays_within_absolute_bounds() -> None:
    w = schemes.get("trunc_normal:mean=0.5,std=2,a=-1,b=3")(torch.empty(LIN), generator=_gen())
    assert w.min() >= -1.0
    assert w.max() <= 3.0


# -- moments: sample variance against formulas written here ----------------------------------

NORMAL_KURTOSIS = 3.0
UNIFORM_KURTOSIS = 9.0 / 5.0


def _trunc_normal_var(std: float, alpha: float, beta: float) -> float:
    """Var of N(·, std²) cut to [α, β] standard units (Johnson, Kotz & Balakrishnan)."""
    phi = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    z = 0.5 * (math.erf(beta / SQRT2) - math.erf(alpha / SQRT2))
    return std**2 * (
        1 + (alpha * phi(alpha) - beta * phi(beta)) / z - ((phi(alpha) - phi(beta)) / z) ** 2
    )


MOMENT_CASES = [
    # spec, shape, Var(W) by formula, kurtosis E[x⁴]/E[x²]² of the law (for the tolerance)
    ("uniform:a=-2,b=3", LIN, 5.0**2 / 12, UNIFORM_KURTOSIS),
    ("normal:mean=1,std=0.02", LIN, 0.02**2, NORMAL_KURTOSIS),
    # a normal cut on both sides within ±2σ has kurtosis < 3 (2.37 and 1.97 here), so the
    # normal's 3 is a safe upper bound
    ("trunc_normal", LIN, _trunc_normal_var(1.0, -2.0, 2.0), NORMAL_KURTOSIS),
    ("trunc_normal:mean=0.5,std=2,a=-1,b=3", LIN, _trunc_normal_var(2.0, -0.75, 1.25), 3.0),
    ("xavier_uniform:gain=2", LIN, 4.0 * 2.0 / (FAN_IN + FAN_OUT), UNIFORM_KURTOSIS),
    ("xavier_normal", CONV, 2.0 / (CONV_FAN_IN + CONV_FAN_OUT), NORMAL_KURTOSIS),
    ("kaiming_uniform:a=0.2", LIN, 2.0 / (1 + 0.2**2) / FAN_IN, UNIFORM_KURTOSIS),
    ("kaiming_uniform:mode=fan_out", CONV, 2.0 / CONV_FAN_OUT, UNIFORM_KURTOSIS),
    ("kaiming_normal:mode=fan_out", LIN, 2.0 / FAN_OUT, NORMAL_KURTOSIS),
    ("kaiming_normal:nonlinearity=tanh", LIN, (5.0 / 3) ** 2 / FAN_IN, NORMAL_KURTOSIS),
    ("lecun_normal", LIN, 1.0 / FAN_IN, NORMAL_KURTOSIS),
    ("lecun_uniform:gain=3", CONV, 9.0 / CONV_FAN_IN, UNIFORM_KURTOSIS),
    ("torch_default", LIN, 1.0 / (3 * FAN_IN), UNIFORM_KURTOSIS),
    # half the entries zeroed: E[x²] = std²/2 and E[x⁴] = 3std⁴/2, so kurtosis = 3 / (1/2)
    ("sparse:sparsity=0.5,std=0.1", LIN, 0.5 * 0.1**2, 2 * NORMAL_KURTOSIS),
]


@pytest.mark.parametrize(
    ("spec", "shape", "variance", "kurtosis"),
    MOMENT_CASES,
    ids=[f"{c[0]}-{len(c[1])}d" for c in MOMENT_CASES],
)
def test_sample_variance_matches_formula(
    spec: str, shape: tuple[int, ...], variance: float, kurtosis: float
) -> None:
    w = schemes.get(spec)(torch.empty(shape, dtype=torch.float64), generator=_gen())
    n = w.numel()
    # The relative standard error of a sample variance from n iid draws is
    # sqrt((kurtosis - 1) / n) (sqrt(2/n) for a normal); allow 5 of them (two-sided 6e-7).
    # At n = 30000 that is 4% for a normal, far inside a sqrt(2) slip (100%) or a swapped
    # fan (3x).
    rel_tol = 5 * math.sqrt((kurtosis - 1) / (n - 1))
    assert w.var().item() == pytest.approx(variance, rel=rel_tol)
    # and the registry's metadata agrees with the formula, to rounding
    assert schemes.get(spec).variance(shape) == pytest.approx(variance, rel=1e-12)


@pytest.mark.parametrize("name", ["orthogonal", "orthogonal_householder"])
@pytest.mark.parametrize("gain", [1.0, 1.5])
@pytest.mark.parametrize("shape", [(64, 64), (96, 32), (32, 96), (16, 4, 3, 3)])
def test_orthogonal_gram_and_variance(shape: tuple[int, ...], gain: float, name: str) -> None:
    w = schemes.get(f"{name}:gain={gain}")(
        torch.empty(shape, dtype=torch.float64), generator=_gen()
    )
    rows = shape[0]
    cols = math.prod(shape[1:])
    flat = w.reshape(rows, cols)
    gram = flat @ flat.T if rows <= cols else flat.T @ flat
    n = min(rows, cols)
    # float64 Householder products: orthogonality error of order n·eps64 ~ 1e-14
    torch.testing.assert_close(
        gram, gain**2 * torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-12
    )
    # Σ w² = gain²·min(rows, cols) exactly, so the mean square is gain²/max(rows, cols) up to
    # rounding; the sample variance differs from it only by the squared mean of the entries,
    # which is O(1/numel) relative for a Haar matrix: 1% is generous.
    expected = gain**2 / max(rows, cols)
    assert (flat**2).mean().item() == pytest.approx(expected, rel=1e-12)
    assert flat.var().item() == pytest.approx(expected, rel=1e-2)


@pytest.mark.parametrize("n", [3, 6])
def test_orthogonal_householder_is_haar(n: int) -> None:
    """Same law as torch's QR construction (Haar on O(n)), other values. Haar moments:
    E[tr Q] = 0, E[(tr Q)²] = 1, E[tr Q²] = 1 (Diaconis & Shahshahani 1994), each within 5
    standard errors of 4000 draws (sd of tr Q is 1, of (tr Q)² and tr Q² about √2); and a
    two-sample KS test of tr Q against ``orthogonal``'s at p > 1e-3."""
    draws = 4000
    house, qr = schemes.get("orthogonal_householder"), schemes.get("orthogonal")
    g1, g2 = _gen(3), _gen(4)  # fixed draws: the KS check alarms falsely for 1 seed in 1000
    t_h, t2_h, t_q = [], [], []
    for _ in range(draws):
        q = house(torch.empty(n, n, dtype=torch.float64), generator=g1)
        t_h.append(q.trace().item())
        t2_h.append((q @ q).trace().item())
        t_q.append(qr(torch.empty(n, n, dtype=torch.float64), generator=g2).trace().item())
    t, t2 = np.array(t_h), np.array(t2_h)
    se = 5 / math.sqrt(draws)
    assert abs(t.mean()) < se
    assert abs((t**2).mean() - 1) < se * math.sqrt(2) * 1.5
    assert abs(t2.mean() - 1) < se * math.sqrt(2) * 1.5
    assert stats.ks_2samp(t, np.array(t_q)).pvalue > 1e-3
    same = house(torch.empty(n, n, dtype=torch.float64), generator=_gen(1))
    assert not torch.allclose(same, qr(torch.empty(n, n, dtype=torch.float64), generator=_gen(1)))


def _has_variance(spec: str) -> bool:
    scheme = schemes.get(spec)
    return scheme.variance(_shape_for(scheme.name)) is not None


METADATA_SPECS = [
    spec
    for spec in sorted(
        {schemes.info(n).example for n in SCHEMES}
        | {
            "kaiming_uniform:a=0.5,mode=fan_out",
            "kaiming_normal:nonlinearity=gelu",
            "xavier_normal:gain=3",
            "sparse:sparsity=0.5,std=0.2",
            "trunc_normal:mean=0.5,std=2,a=-1,b=3",
            "orthogonal:gain=2",
            "uniform:a=-1,b=5",
        }
    )
    if _has_variance(spec)  # None: deterministic (eye, dirac)
]

# Larger shapes than SHAPES, non-square so that a fan mix-up in the metadata shows.
BIG_SHAPES = {1: (40000,), 2: (384, 128), 3: (64, 32, 9), 4: (64, 32, 3, 3), 5: (32, 16, 3, 3, 3)}


@pytest.mark.parametrize("spec", METADATA_SPECS)
def test_registered_variance_matches_sample(spec: str) -> None:
    scheme = schemes.get(spec)
    shape = next(BIG_SHAPES[r] for r in (2, 4, 3, 5, 1) if scheme.info.accepts_rank(r))
    expected = scheme.variance(shape)
    assert expected is not None
    x = scheme(torch.empty(shape, dtype=torch.float64), generator=_gen()).flatten()
    centred = x - x.mean()
    m2, m4 = (centred**2).mean().item(), (centred**4).mean().item()
    # Standard error of the sample variance estimated from the sample's own fourth moment
    # (valid for any law, including sparse's heavy-tailed mixture; conservative for
    # orthogonal, whose sum of squares is fixed); 6 of them, plus float64 rounding for the
    # constant schemes, whose variance is exactly 0.
    se = math.sqrt(max(m4 - m2**2, 0.0) / x.numel())
    assert abs(x.var().item() - expected) <= 6 * se + 1e-12


# -- specs -----------------------------------------------------------------------------------


def test_spec_parameters_are_parsed_and_converted() -> None:
    scheme = schemes.get("kaiming_uniform:a=0.5,mode=fan_out")
    assert scheme.name == "kaiming_uniform"
    assert scheme.params == {"a": 0.5, "mode": "fan_out"}
    assert scheme.spec == "kaiming_uniform:a=0.5,mode=fan_out"
    assert repr(scheme) == "Scheme('kaiming_uniform:a=0.5,mode=fan_out')"
    assert scheme == schemes.get(" kaiming_uniform : a = 0.50 , mode = FAN_OUT ")
    assert schemes.get(scheme) is scheme
    assert schemes.get(scheme.spec) == scheme


@pytest.mark.parametrize(
    "spec",
    ["kaiming_uniform:a=0.5,mode=fan_out", "xavier_normal:gain=auto", "sparse:sparsity=0.25"]
    + [schemes.info(n).example for n in SCHEMES],
)
def test_spec_string_round_trips(spec: str) -> None:
    scheme = schemes.get(spec)
    again = schemes.get(scheme.spec)
    assert again == scheme
    assert again.params == scheme.params
    assert hash(again) == hash(scheme)


def test_call_time_params_override_spec_params() -> None:
    scheme = schemes.get("kaiming_uniform:a=0.5,mode=fan_out")
    ours = scheme(torch.empty(LIN), generator=_gen(), mode="fan_in")
    theirs = init.kaiming_uniform_(torch.empty(LIN), a=0.5, mode="fan_in", generator=_gen())
    assert torch.equal(ours, theirs)
    assert scheme.params == {"a": 0.5, "mode": "fan_out"}  # the spec is unchanged
    assert scheme.resolve(a="0.1") == {"a": 0.1, "mode": "fan_out"}
    assert scheme.with_params(mode="fan_in").spec == "kaiming_uniform:a=0.5,mode=fan_in"


@pytest.mark.parametrize(
    ("activation", "gain"),
    [("tanh", 5.0 / 3), ("relu", SQRT2), ("linear", 1.0), ("selu", 0.75)],
)
def test_gain_auto_uses_torchs_gain(activation: str, gain: float) -> None:
    scheme = schemes.get("xavier_uniform:gain=auto")
    assert scheme.resolve(activation)["gain"] == gain
    ours = scheme(torch.empty(LIN), activation=activation, generator=_gen())
    assert torch.equal(ours, init.xavier_uniform_(torch.empty(LIN), gain=gain, generator=_gen()))


def test_gain_auto_with_gelu_uses_the_computed_gain() -> None:
    gelu = activations.get("gelu")
    scheme = schemes.get("xavier_normal:gain=auto")
    assert scheme.resolve("gelu")["gain"] == gelu.computed_gain
    assert scheme.resolve(gelu)["gain"] == gelu.computed_gain  # an Activation works too
    ours = scheme(torch.empty(LIN), activation="gelu", generator=_gen())
    theirs = init.xavier_normal_(torch.empty(LIN), gain=gelu.computed_gain, generator=_gen())
    assert torch.equal(ours, theirs)


def test_gain_auto_for_lecun_and_orthogonal() -> None:
    lecun = schemes.get("lecun_normal:gain=auto")
    assert lecun.variance(LIN, activation="tanh") == pytest.approx((5.0 / 3) ** 2 / FAN_IN)
    ortho = schemes.get("orthogonal:gain=auto")(
        torch.empty(32, 96), activation="relu", generator=_gen()
    )
    assert torch.equal(ortho, init.orthogonal_(torch.empty(32, 96), SQRT2, _gen()))


def test_nonlinearity_auto_with_leaky_relu_slope_is_torchs_a() -> None:
    for name in ("kaiming_uniform", "kaiming_normal"):
        scheme = schemes.get(f"{name}:nonlinearity=auto")
        resolved = scheme.resolve("leaky_relu:negative_slope=0.2")
        assert resolved == {"nonlinearity": "leaky_relu", "a": 0.2}
        ours = scheme(
            torch.empty(LIN), activation="leaky_relu:negative_slope=0.2", generator=_gen()
        )
        theirs = getattr(init, f"{name}_")(torch.empty(LIN), a=0.2, generator=_gen())
        assert torch.equal(ours, theirs)


def test_nonlinearity_auto_with_tanh() -> None:
    ours = schemes.get("kaiming_normal:nonlinearity=auto")(
        torch.empty(LIN), activation="tanh", generator=_gen()
    )
    theirs = init.kaiming_normal_(torch.empty(LIN), nonlinearity="tanh", generator=_gen())
    assert torch.equal(ours, theirs)


def test_nonlinearity_auto_with_gelu_uses_the_computed_gain() -> None:
    gain = activations.get("gelu").computed_gain
    scheme = schemes.get("kaiming_uniform:nonlinearity=auto")
    assert scheme.resolve("gelu")["nonlinearity"] == "gelu"
    assert scheme.variance(LIN, activation="gelu") == pytest.approx(gain**2 / FAN_IN, rel=1e-12)
    ours = scheme(torch.empty(LIN), activation="gelu", generator=_gen())
    # He uniform with the GELU gain, computed the way torch computes the bound
    bound = math.sqrt(3.0) * (gain / math.sqrt(FAN_IN))
    theirs = torch.empty(LIN).uniform_(-bound, bound, generator=_gen())
    assert torch.equal(ours, theirs)


def test_explicit_nonlinearity_may_be_any_activation() -> None:
    gain = activations.get("gelu").computed_gain
    scheme = schemes.get("kaiming_normal:nonlinearity=gelu")
    assert scheme.variance(LIN) == pytest.approx(gain**2 / FAN_IN, rel=1e-12)
    assert schemes.calculate_gain("gelu") == gain
    assert schemes.calculate_gain("leaky_relu", 0.2) == init.calculate_gain("leaky_relu", 0.2)


def test_fans() -> None:
    assert schemes.fans((300, 100)) == (100, 300)
    assert schemes.fans((64, 32, 3, 3)) == (288, 576)
    assert schemes.fans(torch.Size([6, 4, 5])) == (20, 30)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        schemes.fans((5,))


# -- one test per error path -----------------------------------------------------------------


def test_error_unknown_scheme_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaimng_normal")
    msg = _one_line(exc)
    assert "unknown scheme 'kaimng_normal'" in msg
    assert "did you mean 'kaiming_normal'?" in msg
    assert "(initsuite schemes lists all)" in msg


def test_error_unknown_scheme_in_info() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.info("xavier_unifrom")
    assert "did you mean 'xavier_uniform'?" in _one_line(exc)


def test_error_unknown_parameter_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gian=2")
    msg = _one_line(exc)
    assert "scheme 'xavier_uniform' has no parameter 'gian'" in msg
    assert "did you mean 'gain'?" in msg
    assert "(parameters: gain)" in msg


def test_error_unknown_call_time_parameter() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform")(torch.empty(4, 4), gian=2.0)
    assert "did you mean 'gain'?" in _one_line(exc)


def test_error_bad_value() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gain=banana")
    msg = _one_line(exc)
    assert "gain='banana' is not a valid value" in msg
    assert "(expected float | 'auto')" in msg


def test_error_bad_mode() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaiming_uniform:mode=fan_avg")
    msg = _one_line(exc)
    assert "mode='fan_avg' is not a valid value" in msg
    assert "'fan_in' | 'fan_out'" in msg


def test_error_bad_nonlinearity() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaiming_normal:nonlinearity=rellu")
    msg = _one_line(exc)
    assert msg.startswith("scheme 'kaiming_normal': unknown nonlinearity 'rellu'")
    assert "did you mean 'relu'?" in msg
    assert "conv2d" in msg  # torch's linear names are valid choices too


def test_error_missing_required_parameter() -> None:
    scheme = schemes.get("constant")  # parsing is fine; calling cannot be
    with pytest.raises(InitsuiteError) as exc:
        scheme(torch.empty(3, 3))
    msg = _one_line(exc)
    assert "scheme 'constant' needs parameter 'val'" in msg
    assert "'constant:val=0.01'" in msg


def test_error_duplicate_key() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gain=1,gain=2")
    assert "parameter 'gain' given twice" in _one_line(exc)


def test_error_malformed_spec_trailing_colon() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:")
    assert "has ':' but no parameters" in _one_line(exc)


def test_error_malformed_spec_without_value() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gain")
    assert "parameter 'gain' is not of the form key=value" in _one_line(exc)


def test_error_gain_auto_without_activation() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gain=auto")(torch.empty(4, 4))
    msg = _one_line(exc)
    assert "gain=auto needs the activation that follows the layer" in msg


def test_error_nonlinearity_auto_without_activation() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("kaiming_normal:nonlinearity=auto").variance((4, 4))
    assert "nonlinearity=auto needs the activation" in _one_line(exc)


def test_error_auto_with_unknown_activation() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("xavier_uniform:gain=auto")(torch.empty(4, 4), activation="tahn")
    assert "did you mean 'tanh'?" in _one_line(exc)


def test_error_initsuite_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        schemes.get("kaimng_normal")


# -- the registry ----------------------------------------------------------------------------


def test_names_and_list() -> None:
    assert sorted(SCHEMES) == SCHEMES
    assert schemes.list("kaiming*") == ["kaiming_normal", "kaiming_uniform"]
    assert schemes.list("*_normal") == [
        "kaiming_normal",
        "lecun_normal",
        "trunc_normal",
        "xavier_normal",
    ]
    assert schemes.list() == schemes.names()
    assert schemes.list("nothing*") == []


def _register_noop(name: str) -> None:
    @schemes.register(
        schemes.SchemeInfo(
            name=name,
            family="constant",
            variance_formula="0",
            variance=lambda shape: 0.0,
            paper="-",
        )
    )
    def noop(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return tensor


def test_registering_a_name_twice_raises() -> None:
    before = schemes.names(), schemes.info("xavier_uniform")
    with pytest.raises(ValueError, match="'xavier_uniform' is already registered"):
        _register_noop("xavier_uniform")
    assert (schemes.names(), schemes.info("xavier_uniform")) == before


def test_registering_a_bad_name_raises() -> None:
    with pytest.raises(ValueError, match="identifier-like"):
        _register_noop("has space")
    assert "has space" not in schemes.names()


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove whatever a test registers; monkeypatch restores the entry-point flag after."""
    before = set(registry._REGISTRY)  # a snapshot that loads no plugin (names() would)
    yield
    for name in set(registry._REGISTRY) - before:
        schemes.unregister(name)


CUSTOM = "test_suite_scaled_normal"


def test_custom_scheme_through_the_decorator(scratch_registry: None) -> None:
    @schemes.register(
        schemes.SchemeInfo(
            name=CUSTOM,
            family="normal",
            variance_formula="scale²",
            variance=lambda shape, scale=1.0: scale**2,
            paper="-",
            example=f"{CUSTOM}:scale=0.5",
        )
    )
    def scaled_normal(
        tensor: Tensor, scale: float = 1.0, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """N(0, scale²), a scheme registered by this test."""
        with torch.no_grad():
            return tensor.normal_(0.0, scale, generator=generator)

    assert CUSTOM in schemes.names()
    info = schemes.info(CUSTOM)
    assert list(info.params) == ["scale"]
    assert info.summary == "N(0, scale²), a scheme registered by this test."
    assert info.ranks == "any"
    scheme = schemes.get(f"{CUSTOM}:scale=2.5")
    assert scheme.params == {"scale": 2.5}
    assert scheme.variance((3, 3)) == 6.25
    ours = scheme(torch.empty(10, 10), generator=_gen())
    assert torch.equal(ours, torch.empty(10, 10).normal_(0.0, 2.5, generator=_gen()))
    with pytest.raises(InitsuiteError, match="scale='big'"):
        schemes.get(f"{CUSTOM}:scale=big")


def test_unregister_removes_a_scheme(scratch_registry: None) -> None:
    _register_noop("test_suite_unregistered")
    assert "test_suite_unregistered" in schemes.names()
    schemes.unregister("test_suite_unregistered")
    assert "test_suite_unregistered" not in schemes.names()
    _register_noop("test_suite_unregistered")  # the name is free again


def test_error_unregister_unknown_scheme_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError, match="did you mean 'kaiming_normal'"):
        schemes.unregister("kaiming_norml")


def test_fill_is_the_call_with_resolved_parameters() -> None:
    for spec in ("kaiming_uniform:nonlinearity=auto", "xavier_normal:gain=auto", "orthogonal"):
        scheme = schemes.get(spec)
        called = scheme(torch.empty(12, 9), activation="tanh", generator=_gen())
        filled = scheme.fill(torch.empty(12, 9), scheme.resolve("tanh"), generator=_gen())
        assert torch.equal(filled, called)


def test_fill_passes_context_and_data_only_to_schemes_that_take_them(
    scratch_registry: None,
) -> None:
    seen: dict[str, Any] = {}

    @schemes.register(
        schemes.SchemeInfo(
            name="test_suite_takes_both",
            family="constant",
            variance_formula="0",
            variance=lambda shape: 0.0,
            paper="-",
        )
    )
    def takes_both(
        tensor: Tensor,
        *,
        generator: torch.Generator | None = None,
        context: schemes.LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        seen.update(context=context, data=data)
        return tensor

    ctx = schemes.LayerContext(2, 4, 3, 3, "branch_out", 1, 2, 2, 2)
    data = lambda weight: weight  # noqa: E731
    schemes.get("test_suite_takes_both").fill(torch.empty(3, 3), {}, context=ctx, data=data)
    assert seen == {"context": ctx, "data": data}
    # a plain scheme is called without them (its function takes no such keywords)
    w = schemes.get("zeros").fill(torch.ones(3, 3), {}, context=ctx, data=data)
    assert torch.equal(w, torch.zeros(3, 3))


PLUGIN = "test_suite_plugin_scheme"


def _load_plugin() -> Any:
    @schemes.register(
        schemes.SchemeInfo(
            name=PLUGIN,
            family="constant",
            variance_formula="0",
            variance=lambda shape, val=0.5: 0.0,
            paper="-",
        )
    )
    def plugin_scheme(
        tensor: Tensor, val: float = 0.5, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """A scheme from a plugin."""
        with torch.no_grad():
            return tensor.fill_(val)

    return plugin_scheme


def test_entry_point_plugin_is_loaded_once_lazily(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = FakeEntryPoint(
        PLUGIN, "fake_pkg.schemes:plugin_scheme", schemes.ENTRY_POINT_GROUP, _load_plugin
    )
    other = FakeEntryPoint("other", "x:y", "some.other.group", lambda: pytest.fail("wrong group"))
    patch_entry_points(monkeypatch, ep, other)
    assert ep.loads == 0  # nothing happens until the first lookup
    assert PLUGIN in schemes.names()
    assert schemes.list("test_suite_plugin*") == [PLUGIN]
    out = schemes.get(f"{PLUGIN}:val=0.25")(torch.empty(3, 3))
    assert torch.equal(out, torch.full((3, 3), 0.25))
    assert ep.loads == 1


def test_entry_point_plugin_that_fails_is_named(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> Any:
        raise ImportError("No module named 'broken_pkg'")

    patch_entry_points(
        monkeypatch, FakeEntryPoint("broken", "broken_pkg:scheme", schemes.ENTRY_POINT_GROUP, boom)
    )
    with pytest.raises(InitsuiteError) as exc:
        schemes.names()
    msg = _one_line(exc)
    assert "could not load scheme plugin 'broken' (broken_pkg:scheme)" in msg
    assert "No module named 'broken_pkg'" in msg


def test_entry_point_plugin_clashing_with_a_builtin_is_named(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = FakeEntryPoint(
        "clash", "clash:x", schemes.ENTRY_POINT_GROUP, lambda: _register_noop("eye")
    )
    patch_entry_points(monkeypatch, ep)
    with pytest.raises(InitsuiteError, match=r"plugin 'clash'.*'eye' is already registered"):
        schemes.info("eye")


def test_entry_point_plugin_that_fails_keeps_failing(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> Any:
        raise ImportError("No module named 'broken_pkg'")

    patch_entry_points(
        monkeypatch, FakeEntryPoint("broken", "broken_pkg:scheme", schemes.ENTRY_POINT_GROUP, boom)
    )
    with pytest.raises(InitsuiteError):
        schemes.names()
    with pytest.raises(InitsuiteError):
        schemes.names()


# -- the table -------------------------------------------------------------------------------

TABLE_COLUMNS = ["scheme", "family", "variance", "ranks", "params", "torch", "paper"]


def test_table_has_one_row_per_scheme() -> None:
    table = schemes.table()
    assert set(TABLE_COLUMNS) <= set(table.columns)
    assert list(table["scheme"]) == SCHEMES
    rows = table.set_index("scheme")
    assert rows.loc["kaiming_uniform", "torch"] == "torch.nn.init.kaiming_uniform_"
    assert rows.loc["lecun_normal", "torch"] == ""
    assert rows.loc["constant", "params"] == "val"
    assert rows.loc["kaiming_normal", "params"] == "a=0.0, mode=fan_in, nonlinearity=leaky_relu"
    assert rows.loc["dirac", "ranks"] == "3-5"
    assert rows.loc["eye", "ranks"] == "2"
    assert rows.loc["xavier_uniform", "ranks"] == ">=2"
    assert rows.loc["uniform", "ranks"] == "any"
    assert rows.loc["xavier_uniform", "paper"].startswith("Glorot & Bengio (2010)")


def test_table_by_rank() -> None:
    linear = list(schemes.table(rank=2)["scheme"])
    assert "dirac" not in linear
    conv_only = ("dirac", "delta_orthogonal", "delta_scaled_orthogonal")
    assert linear == [n for n in SCHEMES if n.split(":")[-1] not in conv_only]
    conv = list(schemes.table(rank=4)["scheme"])
    assert "dirac" in conv
    assert "eye" not in conv
    assert "sparse" not in conv
