"""Framework-qualified schemes against the frameworks themselves (issue 15).

For each ``jax:``, ``flax:``, ``keras:``, ``timm:`` and ``hf:`` scheme, the test draws from the real
library and from initsuite for a dense weight both ways round, conv kernels with k = 1 and
k = 3, and an embedding-shaped table, each translated to the library's layout (JAX, Flax and
Keras: ``(in, out)`` and ``(*kernel, in, out)``), and compares:

* variance: each sample's variance against the scheme's Var(W) (its ``variance_fn``, the
  number the schemes table shows). For n iid values of kurtosis κ, Var(s²) ≈ σ⁴(κ - 1)/n;
  every law here has κ <= 3 (normal 3, truncated normal ~2.4, uniform 1.8), so the relative
  error of s² has sd <= √(2/n). With n = N = 32768 values per side that is 0.78%, and the
  tolerance of 6 sd (4.7%) fails a correct scheme with probability ~2e-9, while it catches a
  truncated normal left unrescaled (variance × 0.774) or a fan mixed up (× 2 on these shapes).
  Orthogonal entries are not independent, but their sum of squares is fixed, so s² is tighter.
* support: max |w| / the law's bound, <= 1 (+ float rounding) on both sides, and >= 0.9 (N
  draws reach the bound: a uniform's max falls short of it by ~1/N of the width, a normal cut
  at ±2 has density e^-2/√(2π) ≈ 0.054 per σ at the cut). This is what tells a truncated
  normal from an untruncated one of the same variance (whose max over N draws is ~4.3 σ).
* a two-sample KS statistic: under the null, P(D > c·√((n+m)/(nm))) <= 2e^(-2c²); c = 2.69
  gives 1e-6, i.e. D_crit = 0.021 at n = m = N, well under the D between a normal and a
  uniform of one variance (0.057) or two normals whose variances differ by 10% (0.019·… each
  scale error of 2x shows as D > 0.2).

The laws are compared with whichever version is installed: a newer release is never a
failure by itself. Each test is marked ``live(LIBRARY)``; a run with
``INITSUITE_RECORD_CHECKED=1`` (``make lock``, ``make test-latest``) records a library's version
as confirmed once all of its live tests passed (``tests/live_record.py``), and the schemes'
``checked`` metadata quotes that record.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from initsuite import schemes
from initsuite.core.checked import load as load_checked
from initsuite.core.errors import InitsuiteError
from initsuite.schemes.frameworks import CHECKED, LIBRARIES, NOT_CHECKED_LIVE

os.environ.setdefault("KERAS_BACKEND", "torch")

N = 32768  # values per side (see the module docstring for the tolerances it gives)
VAR_TOL = 6 * math.sqrt(2 / N)
KS_C = 2.69  # 2·exp(-2c²) = 1e-6
TRUNC_STD = 0.87962566103423978  # std of N(0, 1) cut at ±2
# Keras 3's torch backend truncates by drawing 4 normals per value and keeping the first inside
# ±2σ, or the first of the 4 when none is: a value escapes the cut with probability
# P(|z| > 2)⁴ = 0.0455⁴ = 4.3e-6, about 0.14 of N values. Up to 5 escapes pass (P(more) ~ 1e-8);
# initsuite's own truncation never escapes.
KERAS_ESCAPES = 5

# torch layout (out, in, *kernel): dense both ways, conv k=1 and k=3, an embedding table. Each
# holds (nearly) N values, so one draw per side makes the sample: the libraries' draws cost
# per call (JAX op by op, Keras per seed), and 64 calls of a 32x16x1x1 kernel took 1.5 s.
SHAPES = [(256, 128), (128, 256), (256, 128, 1, 1), (64, 32, 3, 3), (2048, 16)]


def _to_theirs(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(out, in, *kernel) -> (*kernel, in, out): JAX, Flax and Keras kernels."""
    return (*shape[2:], shape[1], shape[0])


def _to_torch(array: np.ndarray) -> np.ndarray:
    """(*kernel, in, out) -> (out, in, *kernel)."""
    k = array.ndim - 2
    return np.transpose(array, (k + 1, k, *range(k)))


def _ours(
    spec: str, shape: tuple[int, ...], reps: int, gen: torch.Generator | None = None
) -> np.ndarray:
    scheme = schemes.get(spec)
    gen = gen or torch.Generator().manual_seed(1234)
    return np.stack([scheme(torch.empty(shape, dtype=torch.float64), generator=gen).numpy()
                     for _ in range(reps)])  # fmt: skip


def _reps(shape: tuple[int, ...]) -> int:
    return -(-N // math.prod(shape))


# -- the comparison --------------------------------------------------------------------------

BOUNDS: dict[str, Callable[[float], float]] = {
    "uniform": lambda var: math.sqrt(3 * var),  # centred U(±a): a = √(3 Var)
    "truncated_normal": lambda var: 2 * math.sqrt(var) / TRUNC_STD,  # rescaled, cut at ±2 std
}


def _bound(spec: str, shape: tuple[int, ...]) -> float | None:
    """|W|'s bound, from the scheme's variance and the law (formulas written here)."""
    scheme = schemes.get(spec)
    var = scheme.variance(shape)
    family = scheme.info.family
    if scheme.mean(shape) != 0 or var is None or family not in BOUNDS:
        return None
    if scheme.name.startswith("timm:trunc_normal"):  # cut at [a, b]: absolute, or in stds (_tf)
        p = {"std": 0.02, "a": -2.0, "b": 2.0, **scheme.params}
        cut = max(abs(p["a"]), abs(p["b"]))
        bound = cut * p["std"] if scheme.name.endswith("_tf") else cut
        return bound if bound < 4 * p["std"] else None  # a cut past 4 stds is never reached
    if scheme.name.endswith(":truncated_normal"):  # cut at ±2 stddev, not rescaled
        return 2 * math.sqrt(var) / TRUNC_STD
    if scheme.name.endswith("variance_scaling"):
        dist = scheme.params.get("distribution", "truncated_normal")
        return BOUNDS[dist](var) if dist in BOUNDS else None
    return BOUNDS[family](var)


def _assert_matches(spec: str, shape: tuple[int, ...], theirs: np.ndarray) -> None:
    """Theirs (reps draws in torch layout) against ours of the same shape."""
    from scipy import stats

    reps = theirs.shape[0]
    ours = _ours(spec, shape, reps)
    assert ours.shape == theirs.shape
    scheme = schemes.get(spec)
    var = scheme.variance(shape)
    if var is None or var == 0:  # deterministic: the same values
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-6, atol=0)
        return
    if scheme.info.taps == "centre":  # the same taps hold the matrix
        assert np.array_equal((ours[0] != 0).any(axis=(0, 1)), (theirs[0] != 0).any(axis=(0, 1)))
    for side, sample in (("initsuite", ours), ("library", theirs)):
        rel = sample.var() / var - 1
        assert abs(rel) <= VAR_TOL, f"{side}: variance off by {rel:+.2%} (tolerance {VAR_TOL:.2%})"
    bound = _bound(spec, shape)
    if bound is not None:
        for side, sample in (("initsuite", ours), ("library", theirs)):
            inside = np.abs(sample) <= bound * (1 + 1e-6)
            escapes = int((~inside).sum())
            allowed = KERAS_ESCAPES if side == "library" and spec.startswith("keras:") else 0
            assert escapes <= allowed, f"{side}: {escapes} values past the bound {bound:.4g}"
            ratio = np.abs(sample[inside]).max() / bound
            assert 0.9 <= ratio <= 1 + 1e-6, f"{side}: max |w| / bound = {ratio:.4f}"
    n = ours.size
    d_crit = KS_C * math.sqrt(2 / n)
    d = stats.ks_2samp(ours.ravel(), theirs.ravel()).statistic
    assert d <= d_crit, f"KS D = {d:.4f} > {d_crit:.4f}"


def _cases(framework: str, table: dict[str, Any]) -> list[Any]:
    """(spec, shape) pairs for every scheme of ``framework`` that takes the shape."""
    out = []
    for spec in table:
        scheme = schemes.get(spec)
        for shape in SHAPES:
            if not scheme.info.accepts_rank(len(shape)):
                continue
            try:
                scheme.check_shape(shape)
            except InitsuiteError:  # delta_orthogonal: in <= out only
                continue
            out.append(pytest.param(spec, shape, id=f"{spec}-{'x'.join(map(str, shape))}"))
    return out


def _covered(framework: str, table: dict[str, Any]) -> None:
    names = {schemes.get(spec).name for spec in table}
    assert names == set(schemes.list(f"{framework}:*")), "a scheme without a live check"


# -- JAX and Flax ----------------------------------------------------------------------------

JAX: dict[str, Callable[[Any], Any]] = {
    "jax:glorot_normal": lambda m: m.glorot_normal(),
    "jax:glorot_uniform": lambda m: m.glorot_uniform(),
    "jax:he_normal": lambda m: m.he_normal(),
    "jax:he_uniform": lambda m: m.he_uniform(),
    "jax:lecun_normal": lambda m: m.lecun_normal(),
    "jax:lecun_uniform": lambda m: m.lecun_uniform(),
    "jax:variance_scaling:scale=2.0,mode=fan_avg,distribution=normal":
        lambda m: m.variance_scaling(2.0, "fan_avg", "normal"),
    "jax:variance_scaling:scale=0.5,mode=fan_out,distribution=truncated_normal":
        lambda m: m.variance_scaling(0.5, "fan_out", "truncated_normal"),
    "jax:variance_scaling:scale=1.0,mode=fan_geo_avg,distribution=uniform":
        lambda m: m.variance_scaling(1.0, "fan_geo_avg", "uniform"),
    "jax:normal": lambda m: m.normal(),
    "jax:uniform": lambda m: m.uniform(),
    "jax:truncated_normal": lambda m: m.truncated_normal(),
    "jax:orthogonal": lambda m: m.orthogonal(),
    "jax:delta_orthogonal": lambda m: m.delta_orthogonal(),
    "jax:zeros": lambda m: m.zeros,
    "jax:ones": lambda m: m.ones,
}  # fmt: skip


def _jax_draws(init: Any, shape: tuple[int, ...]) -> np.ndarray:
    jax = pytest.importorskip(
        "jax", reason="jax is not installed (pip install initsuite[conventions])"
    )
    keys = jax.random.split(jax.random.key(0), _reps(shape))
    # Op by op: jit would compile each initializer for each shape (~1 s apiece); eager
    # primitives compile once per shape and serve every initializer.
    with jax.disable_jit():
        return np.stack([_to_torch(np.asarray(init(k, _to_theirs(shape)), dtype=np.float64))
                         for k in keys])  # fmt: skip


@pytest.mark.live("jax")
@pytest.mark.parametrize(("spec", "shape"), _cases("jax", JAX))
def test_jax_scheme_matches_jax(spec: str, shape: tuple[int, ...]) -> None:
    jax = pytest.importorskip(
        "jax", reason="jax is not installed (pip install initsuite[conventions])"
    )
    _assert_matches(spec, shape, _jax_draws(JAX[spec](jax.nn.initializers), shape))


def test_every_jax_scheme_is_checked_live() -> None:
    _covered("jax", JAX)


@pytest.mark.live("flax")
def test_flax_schemes_are_jax_schemes() -> None:
    """Flax's initializers are JAX's own functions (flax.linen.initializers re-exports them):
    the same objects, so the live checks of ``jax:`` cover ``flax:`` as they stand. Were one
    to become Flax's own, this fails and it needs a live check of its own."""
    pytest.importorskip("jax", reason="jax is not installed (pip install initsuite[conventions])")
    linen = pytest.importorskip("flax.linen", reason="flax is not installed").initializers
    import jax

    for name in schemes.list("flax:*"):
        local = name.partition(":")[2]
        assert getattr(linen, local) is getattr(jax.nn.initializers, local), local
        # and initsuite's flax: scheme draws what its jax: twin draws, value for value
        flax_spec, jax_spec = schemes.info(name).example, schemes.info(f"jax:{local}").example
        assert flax_spec.partition(":")[2] == jax_spec.partition(":")[2]
        shape = (32, 16, 3, 3) if local == "delta_orthogonal" else (64, 128)
        assert np.array_equal(_ours(flax_spec, shape, 1), _ours(jax_spec, shape, 1)), local


# -- Keras 3 (torch backend) -----------------------------------------------------------------

KERAS: dict[str, Callable[[Any, int], Any]] = {
    "keras:glorot_normal": lambda k, s: k.GlorotNormal(seed=s),
    "keras:glorot_uniform": lambda k, s: k.GlorotUniform(seed=s),
    "keras:he_normal": lambda k, s: k.HeNormal(seed=s),
    "keras:he_uniform": lambda k, s: k.HeUniform(seed=s),
    "keras:lecun_normal": lambda k, s: k.LecunNormal(seed=s),
    "keras:lecun_uniform": lambda k, s: k.LecunUniform(seed=s),
    "keras:variance_scaling": lambda k, s: k.VarianceScaling(seed=s),
    # Keras reads distribution="normal" as truncated: the same-name difference from JAX
    "keras:variance_scaling:scale=2.0,mode=fan_avg,distribution=normal":
        lambda k, s: k.VarianceScaling(2.0, "fan_avg", "normal", seed=s),
    "keras:variance_scaling:scale=3.0,mode=fan_out,distribution=untruncated_normal":
        lambda k, s: k.VarianceScaling(3.0, "fan_out", "untruncated_normal", seed=s),
    "keras:random_normal": lambda k, s: k.RandomNormal(seed=s),
    "keras:random_uniform": lambda k, s: k.RandomUniform(seed=s),
    "keras:truncated_normal": lambda k, s: k.TruncatedNormal(seed=s),
    "keras:orthogonal": lambda k, s: k.Orthogonal(seed=s),
    "keras:identity": lambda k, s: k.Identity(),
    "keras:zeros": lambda k, s: k.Zeros(),
    "keras:ones": lambda k, s: k.Ones(),
}  # fmt: skip


@pytest.mark.live("keras")
@pytest.mark.parametrize(("spec", "shape"), _cases("keras", KERAS))
def test_keras_scheme_matches_keras(spec: str, shape: tuple[int, ...]) -> None:
    keras = pytest.importorskip(
        "keras", reason="keras is not installed (pip install initsuite[conventions])"
    )
    make = KERAS[spec]
    draws = [make(keras.initializers, seed)(_to_theirs(shape), dtype="float32")
             for seed in range(_reps(shape))]  # fmt: skip
    # torch backend: the draws are torch tensors
    theirs = np.stack([_to_torch(torch.as_tensor(d).double().numpy()) for d in draws])
    _assert_matches(spec, shape, theirs)


def test_every_keras_scheme_is_checked_live() -> None:
    _covered("keras", KERAS)


# -- timm ------------------------------------------------------------------------------------

# timm's initializers fill torch tensors in torch's layout from torch's global generator;
# its defaults are std 1, initsuite's timm: schemes take its models' std .02.
TIMM: dict[str, Callable[[Any], Callable[[torch.Tensor], Any]]] = {
    "timm:trunc_normal": lambda m: lambda t: m.trunc_normal_(t, std=0.02),
    "timm:trunc_normal:std=1.0": lambda m: lambda t: m.trunc_normal_(t, std=1.0),
    "timm:trunc_normal:mean=0.5,std=1.0,a=-1.0,b=1.5":
        lambda m: lambda t: m.trunc_normal_(t, mean=0.5, std=1.0, a=-1.0, b=1.5),
    "timm:trunc_normal_tf": lambda m: lambda t: m.trunc_normal_tf_(t, std=0.02),
    "timm:trunc_normal_tf:std=0.5,a=-1.5,b=1.5":
        lambda m: lambda t: m.trunc_normal_tf_(t, std=0.5, a=-1.5, b=1.5),
    "timm:lecun_normal": lambda m: m.lecun_normal_,
}  # fmt: skip


@pytest.mark.live("timm")
@pytest.mark.parametrize(("spec", "shape"), _cases("timm", TIMM))
def test_timm_scheme_matches_timm(spec: str, shape: tuple[int, ...]) -> None:
    import timm.layers  # in the lock (requirements/): never skipped

    fill = TIMM[spec](timm.layers)

    def draw() -> np.ndarray:
        weight = torch.empty(shape, dtype=torch.float64)
        fill(weight)  # in place (lecun_normal_ returns None)
        return weight.numpy()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theirs = np.stack([draw() for _ in range(_reps(shape))])
    _assert_matches(spec, shape, theirs)


def test_every_timm_scheme_is_checked_live() -> None:
    _covered("timm", TIMM)


# -- Hugging Face transformers ---------------------------------------------------------------


@pytest.mark.live("transformers")
def test_hf_normal_matches_bert_init_weights() -> None:
    """A tiny BertModel built from a config in code: its Linear weights and word embeddings,
    as transformers' own _init_weights draws them, against ``hf:normal``."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    config = transformers.BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=16,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.BertModel(config)
    params = dict(model.named_parameters())
    linear = [p for n, p in params.items() if n.endswith("dense.weight") or
              n.split(".")[-2] in ("query", "key", "value")]  # fmt: skip
    groups = {"embedding": [params["embeddings.word_embeddings.weight"]], "linear": linear}
    spec = f"hf:normal:initializer_range={config.initializer_range}"
    for weights in groups.values():
        theirs = np.concatenate([w.detach().double().numpy().ravel() for w in weights])
        gen = torch.Generator().manual_seed(1234)  # one stream: independent weights
        ours = np.concatenate([_ours(spec, tuple(w.shape), 1, gen).ravel() for w in weights])
        _compare_flat(spec, tuple(weights[0].shape), ours, theirs)
    assert set(schemes.list("hf:*")) == {"hf:normal"}, "a scheme without a live check"


def _compare_flat(spec: str, shape: tuple[int, ...], ours: np.ndarray, theirs: np.ndarray) -> None:
    from scipy import stats

    var = schemes.get(spec).variance(shape)
    assert var is not None
    tol = 6 * math.sqrt(2 / len(ours))
    for side, sample in (("initsuite", ours), ("library", theirs)):
        assert abs(sample.var() / var - 1) <= tol, side
    d = stats.ks_2samp(ours, theirs).statistic
    assert d <= KS_C * math.sqrt((len(ours) + len(theirs)) / (len(ours) * len(theirs)))


# -- the versions checked --------------------------------------------------------------------


def test_every_framework_scheme_quotes_the_recorded_version() -> None:
    """``checked`` names the version of the last confirming run (the record), whatever is
    installed now; frameworks without a Python library are marked as not checked live."""
    record = load_checked()
    for name in schemes.list("*:*"):
        info = schemes.info(name)
        framework = name.partition(":")[0]
        assert info.framework == framework
        library = LIBRARIES[framework]
        expected = f"{library} {record[library]}" if library else NOT_CHECKED_LIVE
        assert info.checked == CHECKED[framework] == expected, name
        assert info.source is not None and info.source.startswith("https://")


def test_the_check_tells_a_truncated_normal_from_a_plain_one() -> None:
    """The comparison has the power it needs: JAX's he_normal (truncated, rescaled) against
    torch's kaiming_normal (plain normal, the same variance) fails on the support."""
    jax = pytest.importorskip(
        "jax", reason="jax is not installed (pip install initsuite[conventions])"
    )
    shape = (64, 128)
    theirs = _jax_draws(jax.nn.initializers.he_normal(), shape)
    _assert_matches("jax:he_normal", shape, theirs)
    with pytest.raises(AssertionError, match="max \\|w\\| / bound"):
        _compare_support("kaiming_normal", "jax:he_normal", shape, theirs)


def _compare_support(spec: str, law: str, shape: tuple[int, ...], theirs: np.ndarray) -> None:
    """``spec``'s draws against ``law``'s bound (the support check of :func:`_compare`)."""
    bound = _bound(law, shape)
    assert bound is not None
    ratio = np.abs(_ours(spec, shape, theirs.shape[0])).max() / bound
    assert 0.9 <= ratio <= 1 + 1e-6, f"max |w| / bound = {ratio:.4f}"
