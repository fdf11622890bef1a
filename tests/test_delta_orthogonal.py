"""``delta_orthogonal`` as Xiao et al. (2018) and JAX define it: in_channels <= out_channels
(a narrowing layer is refused, before any draw), the centre tap at (k - 1) // 2 along each
spatial dimension (JAX's; the same as torch's k // 2 for odd k), and a stride-1 "same" conv
with gain 1 that keeps the norm of its input exactly."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import module_on_path, run_cli
from torch import Tensor, nn
from torch.nn import init

import initsuite
from initsuite import schemes
from initsuite.core.errors import InitsuiteError

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
RULE = "in_channels must be <= out_channels (Xiao et al. 2018)"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _draw(shape: tuple[int, ...], gain: float = 1.0, seed: int = 0,
          dtype: torch.dtype = torch.float64) -> Tensor:  # fmt: skip
    spec = f"delta_orthogonal:gain={gain}"
    return schemes.get(spec)(torch.empty(shape, dtype=dtype), generator=_gen(seed))


def _at(tap: Iterable[int]) -> tuple[Any, ...]:
    """The index of the (out × in) matrix at spatial position ``tap``."""
    return (slice(None), slice(None), *tap)


def _same_conv(x: Tensor, w: Tensor) -> Tensor:
    """A stride-1 conv with torch's "same" padding: (k - 1) // 2 zeros before, k // 2 after."""
    with warnings.catch_warnings():  # even kernels: torch warns that it pads a copy
        warnings.simplefilter("ignore", UserWarning)
        return CONV[w.dim() - 2](x, w, padding="same")


# -- in_channels > out_channels is refused ----------------------------------------------------

WIDE = [(4, 8, 3, 3), (2, 3, 5), (3, 4, 1, 1, 1), (4, 8, 2, 2)]


@pytest.mark.parametrize("shape", WIDE, ids=str)
def test_error_a_narrowing_kernel_is_refused_with_one_line(shape: tuple[int, ...]) -> None:
    w = torch.full(shape, math.nan)
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("delta_orthogonal")(w, generator=_gen())
    text = str(exc.value)
    assert text == (f"scheme 'delta_orthogonal': {RULE}, got shape {shape}: {shape[1]} in, "
                    f"{shape[0]} out; 'orthogonal' fills a narrowing conv")  # fmt: skip
    assert w.isnan().all()  # refused before the tensor was touched


@pytest.mark.parametrize("shape", WIDE, ids=str)
def test_error_the_function_itself_refuses_before_writing(shape: tuple[int, ...]) -> None:
    w = torch.full(shape, math.nan)
    with pytest.raises(ValueError, match=r"in_channels must be <= out_channels"):
        schemes.info("delta_orthogonal").fn(w, generator=_gen())
    assert w.isnan().all()


def test_error_variance_and_check_shape_refuse_a_narrowing_shape() -> None:
    scheme = schemes.get("delta_orthogonal")
    with pytest.raises(InitsuiteError, match=r"got shape \(4, 8, 3, 3\)"):
        scheme.variance((4, 8, 3, 3))
    with pytest.raises(InitsuiteError, match=r"got shape \(4, 8, 3\)"):
        scheme.check_shape((4, 8, 3))
    with pytest.raises(InitsuiteError, match="needs a tensor of rank 3-5"):
        scheme.check_shape((8, 8))
    scheme.check_shape((8, 8, 3))  # in == out and in < out are fine
    scheme.check_shape((8, 4, 3, 3))


def test_error_apply_refuses_the_model_before_drawing_any_weight() -> None:
    """The second conv narrows: apply names it and leaves the first conv as it was (every
    shape is checked before the first draw)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InitsuiteError) as exc:
        initsuite.apply(model, "delta_orthogonal")
    assert str(exc.value).startswith(f"2.weight: scheme 'delta_orthogonal': {RULE}")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


NARROW = "narrowing_factory_xyz"


@pytest.fixture
def narrowing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = ("from torch import nn\n\n"
              "def cnn():\n"
              "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),\n"
              "                         nn.Conv2d(8, 4, 3, padding=1))\n")  # fmt: skip
    yield from module_on_path(tmp_path, monkeypatch, NARROW, source)


def test_error_cli_probe_refuses_a_narrowing_conv_one_line_exit_2_writes_nothing(
    narrowing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    code, _, err = run_cli(["probe", f"{NARROW}:cnn", "--input-shape", "2,3,6,6", "--schemes",
                            "delta_orthogonal", "--out", str(runs / "o"), "--quiet"],
                           capsys)  # fmt: skip
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert RULE in lines[0] and "(4, 8, 3, 3)" in lines[0] and "2.weight" in lines[0]
    assert list(runs.iterdir()) == []


def test_a_conv_sweep_never_narrows_so_it_runs() -> None:
    # The sweep's conv layers are width -> width: the rule holds at every layer.
    cells = initsuite.sweep("delta_orthogonal", activations=["linear"], depths=[3], widths=[4],
                            seeds=1, archs=["conv"], timing=False).cells  # fmt: skip
    assert cells["error"].isna().all() and (cells["final_std"] > 0).all()


# -- the centre tap: (k - 1) // 2 ---------------------------------------------------------------

# (shape, the centre tap written out by hand): (k - 1) // 2 per spatial dimension
CENTRES = [
    ((4, 4, 2), (0,)), ((4, 4, 4), (1,)), ((6, 4, 6), (2,)),
    ((4, 4, 2, 2), (0, 0)), ((8, 4, 2, 4), (0, 1)), ((4, 4, 4, 3), (1, 1)),
    ((4, 2, 2, 4, 6), (0, 1, 2)), ((4, 4, 1, 2, 3), (0, 0, 1)),
]  # fmt: skip


@pytest.mark.parametrize(("shape", "tap"), CENTRES, ids=str)
def test_the_centre_tap_is_k_minus_1_over_2(shape: tuple[int, ...], tap: tuple[int, ...]) -> None:
    w = _draw(shape)
    support = (w.abs().sum(dim=(0, 1)) != 0).nonzero().tolist()
    assert support == [list(tap)]
    torch.testing.assert_close(w[_at(tap)],
                               init.orthogonal_(torch.empty(shape[:2], dtype=torch.float64),
                                                generator=_gen()), rtol=0, atol=0)  # fmt: skip


@pytest.mark.live("jax")
@pytest.mark.parametrize(("shape", "tap"), CENTRES, ids=str)
def test_the_centre_tap_is_jaxs(shape: tuple[int, ...], tap: tuple[int, ...]) -> None:
    """JAX's own initializer (kernel layout (k..., in, out)) puts its matrix at the same tap
    (the values differ: another RNG)."""
    jax = pytest.importorskip("jax")
    out_c, in_c, *kernel = shape
    w = np.asarray(jax.nn.initializers.delta_orthogonal()(jax.random.PRNGKey(0),
                                                         (*kernel, in_c, out_c)))  # fmt: skip
    jax_support = np.argwhere(np.abs(w).sum(axis=(-2, -1)) != 0).tolist()
    assert jax_support == [list(tap)]
    assert (_draw(shape).abs().sum(dim=(0, 1)) != 0).nonzero().tolist() == jax_support
    with pytest.raises(ValueError, match="fan_in"):  # JAX refuses in > out too
        jax.nn.initializers.delta_orthogonal()(jax.random.PRNGKey(0), (*kernel, out_c + 1, out_c))


# -- a "same" conv keeps the norm exactly --------------------------------------------------------

ISOMETRIC = [(6, 4, 3), (5, 5, 4), (8, 8, 2, 2), (8, 3, 3, 3), (6, 4, 4, 2), (4, 4, 2, 2, 2),
             (6, 3, 3, 1, 4)]  # fmt: skip


@pytest.mark.parametrize("shape", ISOMETRIC, ids=str)
def test_a_same_conv_keeps_the_norm_of_its_input_exactly(shape: tuple[int, ...]) -> None:
    """in <= out, gain 1, stride 1, "same" padding: the output at each pixel is Q times the
    input at that pixel, Q with orthonormal columns, so ‖y‖ = ‖x‖ to float64 rounding (a
    few roundings of relative 1e-16 per value; 1e-12 leaves room for sums of 10³ terms)."""
    w = _draw(shape)
    dims = len(shape) - 2
    x = torch.randn((3, shape[1], *(7,) * dims), dtype=torch.float64, generator=_gen(1))
    y = _same_conv(x, w)
    assert y.shape[2:] == x.shape[2:]
    assert (y.norm() / x.norm()).item() == pytest.approx(1.0, rel=1e-12, abs=0)
    # pixel by pixel: y = Q x at every position, no shift
    q = w[_at((k - 1) // 2 for k in shape[2:])]
    torch.testing.assert_close(y, torch.einsum("oi,bi...->bo...", q, x), rtol=0, atol=1e-13)


@pytest.mark.parametrize("shape", [(4, 4, 2), (8, 8, 2, 2), (4, 4, 4, 4)], ids=str)
def test_torchs_k_over_2_tap_does_not_keep_the_norm_for_even_kernels(
    shape: tuple[int, ...],
) -> None:
    # The test above has power: the same matrix at dirac_'s tap k // 2 shifts the image by
    # one pixel under "same" padding and loses a border row to it.
    w = _draw(shape)
    moved = torch.zeros_like(w)
    moved[_at(k // 2 for k in shape[2:])] = w[_at((k - 1) // 2 for k in shape[2:])]
    x = torch.randn((3, shape[1], *(7,) * (len(shape) - 2)), dtype=torch.float64,
                    generator=_gen(1))  # fmt: skip
    assert abs((_same_conv(x, moved).norm() / x.norm()).item() - 1.0) > 0.05


# -- odd kernels: the values of before ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gain", [1.0, 1.7])
@pytest.mark.parametrize("shape", [(6, 4, 3), (8, 8, 3, 3), (8, 5, 5, 5), (4, 4, 3, 1, 5)],
                         ids=str)  # fmt: skip
def test_odd_kernels_are_unchanged(shape: tuple[int, ...], gain: float, dtype: torch.dtype) -> None:
    """For odd k, (k - 1) // 2 == k // 2: bit for bit the kernel of before, zeros with
    torch's orthogonal_ (same generator state) at the middle tap."""
    w = _draw(shape, gain, seed=5, dtype=dtype)
    expected = torch.zeros(shape, dtype=dtype)
    expected[_at(k // 2 for k in shape[2:])] = init.orthogonal_(
        torch.empty(shape[:2], dtype=dtype), gain, generator=_gen(5)
    )
    assert torch.equal(w, expected)


def test_the_variance_is_gain2_over_out_k() -> None:
    # E[W²] over all entries: in orthonormal columns of squared norm gain² each, over
    # out·in·K entries
    w = _draw((8, 4, 3, 3), gain=1.5)
    assert (w**2).mean().item() == pytest.approx(1.5**2 / (8 * 9), rel=1e-12)
    assert schemes.get("delta_orthogonal:gain=1.5").variance((8, 4, 3, 3)) == pytest.approx(
        1.5**2 / (8 * 9), rel=1e-15
    )
