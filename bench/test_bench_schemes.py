"""Time every built-in scheme that fills Linear weights, against the raw RNG fill.

One group per shape (``init 1024x1024``): ``test_baseline`` is ``w.normal_(generator=g)``, the
cost of drawing the numbers at all, and sorts first by name; each ``test_scheme`` row reads as
a multiple of it. Only the scheme call is timed: the weight and the generator are made before,
and the same weight is refilled in place round after round, as a sweep refills its layers.
"""

from __future__ import annotations

import pytest
import torch

from initsuite import schemes

DTYPE = torch.float32
SEED = 0

# Every registered scheme that accepts rank-2 tensors, run with its own example spec (which
# supplies required parameters such as constant's ``val``).
SCHEMES = [n for n in schemes.names() if schemes.info(n).accepts_rank(2)]


def _setup(benchmark, shape, device, name):
    rows, cols = shape
    benchmark.group = f"init {rows}x{cols}"
    benchmark.extra_info.update(
        {"shape": [rows, cols], "scheme": name, "dtype": str(DTYPE).removeprefix("torch."),
         "device": str(device)}
    )  # fmt: skip
    w = torch.empty(shape, dtype=DTYPE, device=device)
    g = torch.Generator(device=device).manual_seed(SEED)
    return w, g


def test_baseline(benchmark, run_timed, shape, device):
    """The raw RNG: fill a preallocated weight with N(0, 1)."""
    w, g = _setup(benchmark, shape, device, "baseline:normal_")
    run_timed(lambda: w.normal_(generator=g), reference=True)


@pytest.mark.parametrize("name", SCHEMES)
def test_scheme(benchmark, run_timed, shape, device, name):
    scheme = schemes.get(schemes.info(name).example)
    w, g = _setup(benchmark, shape, device, scheme.spec)
    run_timed(lambda: scheme(w, generator=g))
