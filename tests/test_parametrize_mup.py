"""initsuite's ``mup`` parametrization against the mup package, live (issue 30, item 6): the
same learning rate and weight decay for every parameter (MuAdam, MuAdamW, MuSGD), the same
init law (``set_base_shapes(rescale_params=True)`` on a PyTorch-initialised model with
``MuReadout``), the same readout forward pass and the same training steps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initsuite

mup = pytest.importorskip("mup")
pytestmark = pytest.mark.live("mup")  # every test here compares with the installed mup
stats = pytest.importorskip("scipy.stats")

BASE = 16
ROLES = {"0.weight": "input", "2.weight": "hidden", "4.weight": "output", "*.bias": "bias"}


def mlp(width: int, readout: type[nn.Linear] = nn.Linear, bias: bool = True,
        hidden_out: int | None = None) -> nn.Sequential:  # fmt: skip
    """input (8 → w), hidden (w → hidden_out), readout (hidden_out → 3): mup's test MLP."""
    h = hidden_out or width
    return nn.Sequential(nn.Linear(8, width, bias=bias), nn.ReLU(), nn.Linear(width, h, bias=bias),
                         nn.ReLU(), readout(h, 3, bias=bias))  # fmt: skip


def mup_model(width: int, bias: bool, hidden_out: int | None = None) -> nn.Sequential:
    model = mlp(width, mup.MuReadout, bias, hidden_out)
    base_h = None if hidden_out is None else hidden_out * BASE // width
    mup.set_base_shapes(model, mlp(BASE, mup.MuReadout, bias, base_h))
    return model


def mup_lrs(model: nn.Module, optimizer: object, **kw: float) -> dict[str, tuple[float, float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    opt = optimizer(model.parameters(), lr=0.01, **kw)  # type: ignore[operator]
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in opt.param_groups
            for p in g["params"]}  # fmt: skip


def ours_lrs(p: initsuite.Parametrized, **kw: float) -> dict[str, tuple[float, float]]:
    opt = p.optimizer(0.01, **kw)
    names = {id(q): n for n, q in p.model.named_parameters()}
    return {names[id(q)]: (g["lr"], g["weight_decay"]) for g in opt.param_groups
            for q in g["params"]}  # fmt: skip


OPTIMIZERS = [("adam", "MuAdam"), ("adamw", "MuAdamW"), ("sgd", "MuSGD")]


@pytest.mark.parametrize("optimizer,mu", OPTIMIZERS)
@pytest.mark.parametrize(
    "width,bias,hidden_out",
    [(64, True, None), (256, False, None), (64, True, 128), (48, True, None)],
)
def test_learning_rates_and_weight_decay_equal_mups_bit_for_bit(
    optimizer: str, mu: str, width: int, bias: bool, hidden_out: int | None
) -> None:
    """Every parameter's lr and weight decay, compared with ``==``: the arithmetic is mup's
    (lr / width_mult, lr × width_mult, lr / (fan_in mult / fan_out mult)). Width 48 makes
    width_mult 3 and a non-square hidden weight (64 → 128 over 16 → 32) a ratio of 1/2."""
    ref = mup_lrs(mup_model(width, bias, hidden_out), getattr(mup, mu), weight_decay=0.1)
    base_h = None if hidden_out is None else hidden_out * BASE // width
    p = initsuite.parametrize(mlp(width, bias=bias, hidden_out=hidden_out), "mup",
                              base=mlp(BASE, bias=bias, hidden_out=base_h),
                              optimizer=optimizer, roles=ROLES)  # fmt: skip
    assert ours_lrs(p, weight_decay=0.1) == ref
    assert p.lr_mult == pytest.approx({n: lr / 0.01 for n, (lr, _) in ref.items()})


def _torch_default_draw(model: nn.Module, seed: int) -> None:
    """What parametrize's ``torch_default`` draws, in its order: every Linear weight as
    ``nn.Linear.reset_parameters`` (kaiming_uniform, a=√5), then every bias U(±1/√fan_in),
    from one generator."""
    gen = torch.Generator().manual_seed(seed)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for m in layers:
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
        for m in layers:
            if m.bias is not None:
                bound = 1 / math.sqrt(m.weight.shape[1])
                m.bias.uniform_(-bound, bound, generator=gen)


@pytest.mark.parametrize("bias", [True, False])
def test_init_equals_mups_rescaled_pytorch_init(bias: bool) -> None:
    """Drawn from the same generator, mup's ``set_base_shapes(rescale_params=True)`` of the
    PyTorch init and initsuite's ``mup`` are the same tensors (the readout's weight and every
    bias × √m, the rest as drawn); drawn by each library's own RNG, the same law: a
    two-sample KS test per parameter."""
    width = 256
    ref = mlp(width, mup.MuReadout, bias)
    _torch_default_draw(ref, seed=3)
    mup.set_base_shapes(ref, mlp(BASE, mup.MuReadout, bias))
    ours = mlp(width, bias=bias)
    initsuite.parametrize(ours, "mup", base=mlp(BASE, bias=bias), roles=ROLES, seed=3)
    for (name, a), (_, b) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    torch.manual_seed(11)
    own = mup_model(width, bias)  # mup's own draw, from torch's global RNG
    for (name, a), (_, b) in zip(ours.named_parameters(), own.named_parameters(), strict=True):
        # independent draws of one law: p is uniform; 1e-4 fails a true match 1 time in 10⁴
        # (the seeds are fixed, so the test is deterministic on a given torch)
        assert stats.ks_2samp(a.detach().flatten(), b.detach().flatten()).pvalue > 1e-4, name
    bound = 1 / math.sqrt(BASE)  # U(±1/√fan_in) × √(fan_in/BASE): the base's bound
    assert 0.95 * bound < ours[4].weight.abs().max().item() <= bound


@pytest.mark.parametrize("optimizer,mu", [("adam", "MuAdam"), ("sgd", "MuSGD")])
def test_forward_and_three_steps_equal_mups(optimizer: str, mu: str) -> None:
    """MuReadout's forward (input × output_mult / width_mult) and three optimizer steps on
    one batch give the same outputs: the same weights, multipliers and learning rates."""
    width = 64
    ref = mlp(width, mup.MuReadout)
    _torch_default_draw(ref, seed=0)
    mup.set_base_shapes(ref, mlp(BASE, mup.MuReadout))
    ours = mlp(width)
    p = initsuite.parametrize(ours, "mup", base=mlp(BASE), optimizer=optimizer, roles=ROLES)
    assert p.output_mult == BASE / width
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 8, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    assert torch.equal(ours(x), ref(x))  # width_mult a power of 2: x/4 and x·0.25 agree
    opts = [p.optimizer(0.05), getattr(mup, mu)(ref.parameters(), lr=0.05)]
    for _ in range(3):
        for model, opt in zip((ours, ref), opts, strict=True):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mean_field_trains_the_same_function_as_mup(optimizer: str) -> None:
    """The abc-symmetry: mean_field (N(0, 1) hidden weights × 1/√fan_in, lr × m for SGD,
    / √m for Adam) computes the same function as mup, step after step, at any width."""
    outs = []
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(3))
    for name in ("mup", "mean_field"):
        model = mlp(128)
        p = initsuite.parametrize(model, name, base=mlp(BASE), optimizer=optimizer, roles=ROLES)
        # Adam's ε is not scale-free: the hidden gradients differ by √m between the two
        opt = p.optimizer(0.02, **({"eps": 1e-30} if optimizer == "adam" else {}))
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        outs.append(model(x).detach())
    # float32 round-off of different multiplications over three steps
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-6)
