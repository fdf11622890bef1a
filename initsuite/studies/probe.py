r"""Probe any model: per-module statistics of a real ``nn.Module``'s forward and backward pass.

:func:`apply` re-draws a model's weights in place with a registry scheme, layer by layer, as
``torch.nn.init`` would; :func:`probe` (after applying a scheme, if given) runs one forward
pass, and optionally one backward pass, with hooks on the model's modules, and returns a
:class:`~initsuite.results.probe.ProbeResult` with one row per module call.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
    ...                           torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(7200, 10))
    >>> calls = initsuite.probe(net, torch.randn(16, 3, 32, 32), scheme="kaiming_normal",
    ...                         backward=True).calls  # re-draws net's Conv2d and Linear in place
    >>> calls[["call", "module", "type", "std", "grad_std"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pandas as pd
import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.engine.stats import classify, layer_stats, ratio
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult
from initsuite.schemes import conventions as _conventions
from initsuite.schemes.lsuv import rescale_to_unit_std
from initsuite.studies.blocks import BlockRecorder, is_transposed_linear, residual_roles
from initsuite.studies.port import apply_convention

__all__ = [
    "AUTOCAST", "DEFAULT", "INPUT_SEED_OFFSET", "LOSS", "MODES", "ROOT", "WEIGHTED", "apply",
    "check_autocast", "probe", "probed_modules", "seeded_global_rng",
]  # fmt: skip

DEFAULT = "as_built"
"""The ``scheme`` of rows measured with the model's own initialisation (as its library built
it: timm's and Hugging Face's ``_init_weights`` included). Directories written before 0.2
call it ``default``, which is still accepted as a name for it."""
ROOT = "(root)"
"""The ``module`` name of the model itself (torch names it ``""``)."""
INPUT_SEED_OFFSET = 0x1A7_0B5E  # factory inputs: a generator seeded with seed + this
LOSS = "Σ R ⊙ y, R ~ N(0, 1) of the output's shape, seed + GRAD_SEED_OFFSET"
"""The loss a backward probe differentiates (``y``: the model's output)."""

AUTOCAST: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""The precisions :func:`probe` runs a pass at (``autocast=``): float32 is no autocast."""

Mode = Literal["train", "eval"]
MODES: tuple[str, ...] = get_args(Mode)

WEIGHTED: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
"""Module types whose ``weight`` :func:`apply` draws (subclasses included), besides
``nn.MultiheadAttention``'s input projections and, when asked, embeddings."""

Inputs = Tensor | Sequence[Any] | Mapping[str, Any]


# --- apply -----------------------------------------------------------------------------------


def _targets(model: nn.Module, include_embeddings: bool) -> list[tuple[str, str, nn.Module, bool]]:
    """(module name, parameter name, module, stored transposed) of every weight apply may
    draw, in module order, each parameter once (tied weights are drawn by their first
    owner)."""
    out: list[tuple[str, str, nn.Module, bool]] = []
    seen: set[int] = set()
    for name, m in model.named_modules():
        transposed = is_transposed_linear(m)
        if isinstance(m, WEIGHTED) or transposed:
            names = ["weight"]
        elif isinstance(m, nn.MultiheadAttention):
            # one stacked (3E, E) matrix, or three when kdim/vdim differ; out_proj is a Linear
            names = ["in_proj_weight"] if m.in_proj_weight is not None else [
                "q_proj_weight", "k_proj_weight", "v_proj_weight"]  # fmt: skip
        elif include_embeddings and isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            names = ["weight"]
        else:
            continue
        for pname in names:
            w = getattr(m, pname, None)
            if isinstance(w, Tensor) and id(w) not in seen:
                seen.add(id(w))
                out.append((name, pname, m, transposed))
    return out


def _apply(
    model: nn.Module,
    scheme: _schemes.Scheme,
    activation: str | _activations.Activation | None,
    include_embeddings: bool,
    generator: Callable[[torch.device], torch.Generator],
    inputs: Inputs | None = None,
) -> list[tuple[str, str]]:
    """Draw every target weight the scheme accepts; (module name, parameter name) of each.
    Schemes that take a layer context get each residual branch weight's
    (:func:`~initsuite.studies.blocks.residual_roles`); the others never see one."""
    scheme.resolve(activation)  # gain=auto without an activation fails before any draw
    roles = residual_roles(model) if "context" in scheme.info.uses else {}
    chosen = []
    for name, pname, m, transposed in _targets(model, include_embeddings):
        w = getattr(m, pname)
        qual = f"{name}.{pname}" if name else pname
        if isinstance(w, nn.parameter.UninitializedParameter):
            raise InitsuiteError(
                f"{qual} is a lazy parameter that has no shape yet: run the model once on "
                "an input before applying a scheme"
            )
        if scheme.info.accepts_rank(w.dim()):
            chosen.append((name, pname, m, w, transposed))
    if not chosen:
        kinds = "Linear, Conv, ConvTranspose, MultiheadAttention or Conv1D weights"
        if include_embeddings:
            kinds += " or embeddings"
        raise InitsuiteError(
            f"scheme {scheme.spec!r} (tensor rank {scheme.info.ranks}) applies to none of "
            f"the {type(model).__name__}'s {kinds}"
        )
    for name, pname, _, w, transposed in chosen:  # every shape, before the first draw
        try:
            scheme.check_shape(tuple(w.shape[::-1] if transposed else w.shape), activation)
        except InitsuiteError as exc:
            raise InitsuiteError(f"{name}.{pname}: {exc}" if name else f"{pname}: {exc}") from None
    with torch.no_grad():
        for name, pname, m, w, transposed in chosen:
            gen = generator(w.device)
            ctx = roles.get(f"{name}.{pname}" if name else pname)
            if transposed:  # drawn as the (out, in) Linear it is: its fans, its values
                t = torch.empty(w.shape[::-1], dtype=w.dtype, device=w.device)
                w.copy_(scheme(t, activation=activation, generator=gen, context=ctx).T)
            else:
                scheme(w, activation=activation, generator=gen, context=ctx)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                w[m.padding_idx].fill_(0)  # as nn.Embedding.reset_parameters does
    if "data" in scheme.info.uses:
        if inputs is None:
            raise InitsuiteError(
                f"scheme {scheme.spec!r} is data-dependent: pass inputs= (a batch the model "
                "takes), as probe does"
            )
        defaults = {k: p.default for k, p in scheme.info.params.items()}
        params = {**defaults, **scheme.resolve(activation)}
        _fit_unit_variance(model, [m for _, pname, m, _, _ in chosen if pname == "weight"],
                           inputs, float(params["tol"]), int(params["max_iter"]))  # fmt: skip
    return [(name, pname) for name, pname, *_ in chosen]


def _fit_unit_variance(
    model: nn.Module, layers: list[nn.Module], inputs: Inputs, tol: float, max_iter: int
) -> None:
    """LSUV's second step (:func:`~initsuite.schemes.lsuv.rescale_to_unit_std`) on each of
    ``layers`` in the order the forward pass calls them, in one forward pass of the whole
    model on ``inputs``: at a layer's first call, a hook rescales its weight by calling the
    layer alone on the input it was given, then hands the rescaled layer's output on, so each
    layer sees the output of the layers before it as already rescaled (what a full pass per
    rescaling, the paper's loop, computes, at the cost of one pass). The model's buffers
    (BatchNorm statistics) are restored afterwards."""
    args, kwargs = _split_inputs(inputs)
    todo = set(layers)
    done: set[nn.Module] = set()

    def fit(m: nn.Module, m_args: tuple[Any, ...], m_kwargs: dict[str, Any], out: Any) -> Any:
        if m not in todo or m in done:  # a later call, or the layer's own call below
            return None
        done.add(m)
        weight = m.weight
        if not isinstance(weight, Tensor):
            raise InitsuiteError(f"LSUV needs a weight tensor on {type(m).__name__}")
        last: list[Any] = [out, weight._version]

        def output(_weight: Tensor) -> Tensor | None:
            if last[1] != weight._version:  # rescaled since: the layer again, alone
                last[:] = [m(*m_args, **m_kwargs), weight._version]
            return _first_float(last[0])

        rescale_to_unit_std(weight, output, tol, max_iter)
        output(weight)  # the output of the weight as left (after a last division)
        return last[0]

    handles = [m.register_forward_hook(fit, with_kwargs=True) for m in dict.fromkeys(layers)]
    try:
        with _restored_buffers(model), torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()


def apply(
    model: nn.Module,
    scheme: str | _schemes.Scheme,
    *,
    activation: str | _activations.Activation | None = None,
    generator: torch.Generator | None = None,
    include_embeddings: bool = False,
    inputs: Inputs | None = None,
) -> list[str]:
    r"""Re-initialise ``model``'s weights in place with ``scheme``, like ``torch.nn.init``
    applied to each layer in turn, or with a framework's layer defaults.

    ``scheme`` may name a convention (``"flax"``, ``"keras"``, ``"hf_bert"``, ...;
    ``initsuite conventions`` lists them): then every parameter of every layer a convention
    covers (Linear and Conv1D, Conv, ConvTranspose, Embedding, Layer/Batch/GroupNorm,
    MultiheadAttention: weights, biases, norm scales and shifts) is drawn from the law that
    framework gives that layer (:mod:`initsuite.schemes.conventions`), in module order, and
    the parameters it has no law for are left as they are, listed in the result's
    ``untouched`` (``{name: why}``) and named, by module type, in a warning. ``activation``
    does not apply, embeddings are always drawn, and ``inputs`` must be None.

    Draws the ``weight`` of every ``nn.Linear``, ``nn.Conv1d/2d/3d`` and
    ``nn.ConvTranspose1d/2d/3d`` (subclasses included) and the input projections of every
    ``nn.MultiheadAttention`` (``in_proj_weight``, or ``q/k/v_proj_weight``; its ``out_proj``
    is a Linear) whose rank the scheme accepts, in ``model.named_modules()`` order, each
    tied weight once. Fans are torch's, from the weight's shape (``shape[1]·k`` in,
    ``shape[0]·k`` out, k the kernel size; so a ConvTranspose weight (in, out/groups, k…) gets
    fan_in = out/groups·k, as in torch's own ``reset_parameters``; MultiheadAttention's
    stacked (3E, E) weight fan_out 3E, as in torch). Hugging Face's ``Conv1D`` (GPT-2), a
    Linear whose weight is stored (in, out), is drawn as that (out, in) Linear and stored
    transposed. Biases, norm layers (BatchNorm/LayerNorm/GroupNorm…), embeddings and every
    other module are left as they are.

    Residual roles: in the residual blocks initsuite knows (Hugging Face's GPT-2, BERT and
    LLaMA layers, torch's ``nn.TransformerEncoderLayer``/``DecoderLayer``, timm's ViT,
    ConvNeXt and ResNet blocks, torchvision's ResNet blocks:
    :data:`~initsuite.studies.blocks.KNOWN_BLOCKS`), each weight of a residual branch is
    drawn at its :class:`~initsuite.schemes.LayerContext`
    (:func:`initsuite.studies.blocks.residual_roles` lists them), for the schemes that take
    one: ``gpt2`` draws the residual projections (GPT-2's ``c_proj``) at std/√N, N the
    model's residual projections (2·n_layer), and ``fixup`` zeroes them and scales the other
    branch layers by L^(-1/(2m-2)). Every other scheme, and every weight outside a known
    block, is drawn as without roles.

    Args:
        model: the model; changed in place (pass a ``copy.deepcopy`` to keep the original).
        scheme: a scheme spec, e.g. ``"kaiming_normal"`` or ``"xavier_uniform:gain=auto"``.
        activation: the activation after the layers, for ``gain=auto``/``nonlinearity=auto``
            (default None: such a scheme raises).
        generator: the generator of every draw, in order (default: a fresh one seeded 0 per
            device), so the same generator state gives the same weights.
        include_embeddings: also draw ``nn.Embedding``/``nn.EmbeddingBag`` weights
            (fan_in = embedding_dim; the padding row is zeroed after, as torch does).
            Default False.
        inputs: a batch the model takes, for data-dependent schemes (``lsuv``): after the
            start draws, each Linear/Conv weight, in forward order, is divided by the std of
            its layer's output on the batch until that output's variance is within ``tol``
            of 1.

    Returns:
        The qualified names of the parameters drawn, in draw order.

    Raises:
        InitsuiteTypeError: an argument of the wrong type (a ``generator`` that is not a
            ``torch.Generator``, a ``model`` that is not an ``nn.Module``), before any draw.
        InitsuiteError: unknown scheme, ``auto`` without an activation, a lazy parameter
            not materialised yet, a model on the meta device (no storage to draw into), or
            no weight of the model that the scheme accepts.

    Example::

        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.LayerNorm(4))
        >>> initsuite.apply(net, "kaiming_normal", generator=torch.Generator().manual_seed(0))
        ['0.weight']
    """
    _check_arguments("apply", model, scheme, activation, include_embeddings)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InitsuiteTypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if inputs is not None:
        _split_inputs(inputs)
    pick = _seeded(0) if generator is None else _fixed(generator)
    if isinstance(scheme, str) and scheme.strip() in _conventions.CONVENTIONS:
        if inputs is not None:
            raise InitsuiteError(f"convention {scheme!r} draws no data-dependent law: pass no "
                                 "inputs")  # fmt: skip
        return apply_convention(model, scheme.strip(), pick)
    drawn = _apply(model, _scheme_or_convention(scheme), activation, include_embeddings, pick,
                   inputs)  # fmt: skip
    return [f"{name}.{pname}" if name else pname for name, pname in drawn]


def _scheme_or_convention(spec: str | _schemes.Scheme) -> _schemes.Scheme:
    """The scheme ``spec`` names; an unknown name suggests the nearest scheme *or* convention
    (``apply(model, "flx")`` most likely meant the convention ``flax``)."""
    try:
        return _schemes.get(spec)
    except InitsuiteError as exc:
        name = spec.strip() if isinstance(spec, str) else ""
        if not str(exc).startswith("unknown scheme") or not name:
            raise
        choices = [*_conventions.CONVENTIONS, *_schemes.names()]
        hint = did_you_mean(name, choices)
        raise InitsuiteError(
            f"unknown scheme or convention {name!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" (conventions: {', '.join(_conventions.CONVENTIONS)}; initsuite schemes lists "
            "the schemes)"
        ) from None


def _check_arguments(
    who: str, model: object, scheme: object, activation: object, include_embeddings: object
) -> None:
    """The types :func:`apply` and :func:`probe` share, checked before the model is touched
    (a wrong type found halfway would leave some layers re-drawn)."""
    if not isinstance(model, nn.Module):
        raise InitsuiteTypeError(f"{who} needs a torch.nn.Module, got {_kind(model)}")
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    meta = next((name for name, t in tensors if t.is_meta), None)
    if meta is not None:  # no storage: nothing to draw into, nothing to run
        raise InitsuiteError(
            f"{who} needs a model with storage, but {meta!r} is on the meta device: "
            "materialise it first, e.g. model.to_empty(device='cpu')"
        )
    if scheme is not None and not isinstance(scheme, (str, _schemes.Scheme)):
        raise InitsuiteTypeError(
            f"scheme must be a spec string or a Scheme (e.g. 'kaiming_normal'), got "
            f"{type(scheme).__name__}"
        )
    if activation is not None and not isinstance(activation, (str, _activations.Activation)):
        raise InitsuiteTypeError(
            f"activation must be an activation spec (e.g. 'relu') or None, got "
            f"{type(activation).__name__}"
        )
    if not isinstance(include_embeddings, bool):
        raise InitsuiteTypeError(
            f"include_embeddings must be True or False, got {include_embeddings!r}"
        )


def _kind(value: object) -> str:
    """A value's type for a message; a class passed where an instance goes says so."""
    if isinstance(value, type):
        return f"the class {value.__name__} (call it to make a model)"
    return type(value).__name__


def _fixed(generator: torch.Generator) -> Callable[[torch.device], torch.Generator]:
    """``generator`` for every weight, which must share its device type."""

    def pick(device: torch.device) -> torch.Generator:
        if device.type != generator.device.type:
            raise InitsuiteError(
                f"generator is on {generator.device} but the model has weights on {device}"
            )
        return generator

    return pick


def _seeded(seed: int) -> Callable[[torch.device], torch.Generator]:
    """One generator per device, each seeded with ``seed``, made when first needed."""
    gens: dict[torch.device, torch.Generator] = {}

    def pick(device: torch.device) -> torch.Generator:
        if device not in gens:
            gens[device] = torch.Generator(device=device).manual_seed(seed)
        return gens[device]

    return pick


# --- probe -----------------------------------------------------------------------------------


def _first_float(value: Any) -> Tensor | None:
    """The first floating-point tensor in ``value``, depth-first through tuples, lists and
    dicts (a Hugging Face ``ModelOutput`` is a dict of its non-None fields, in order)."""
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else None
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, (tuple, list)):
        items = value
    else:
        return None
    for item in items:
        found = _first_float(item)
        if found is not None:
            return found
    return None


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


# Elements per float64 block of the sums. On a CPU 2^19 (4 MiB, in cache): the fastest of
# 2^15..2^21 on 1 and 2 threads; converting a whole 2M-element tensor at once ran 1.5x slower
# and sum(dtype=float64) of float32 (a scalar loop) 2.5x. Elsewhere 2^25 (256 MiB): a bounded
# copy without a Python loop of blocks.
_BLOCK_CPU = 1 << 19
_BLOCK_DEVICE = 1 << 25


def _blocks(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Iterator[Tensor]:
    """1-D ``flat`` (minus 1-D ``minus``, its length) in float64, block by block, each
    copied into ``buf`` (one block's length); the difference is taken in float64, exact for
    float32 and narrower values."""
    n, size = flat.numel(), buf.numel()
    for i in range(0, n, size):
        end = min(i + size, n)
        block = buf[: end - i].copy_(flat[i:end])
        if minus is not None:
            block.sub_(minus[i:end])
        yield block


def _sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None
          ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """(K, Σy, Σ(y − K)²) over 1-D float32/bfloat16/float16 ``flat``, in float64, K the mean
    of its first block.

    The values and their squares are exact in float64 and cannot overflow there, and the
    shift takes the mean out before squaring: var = (Σ(y−K)² − n·(mean − K)²)/(n − 1) is
    within about 2e-15·(1 + (mean − K)²/var) of exact, where (mean − K)²/var ≤ n/block (K
    averages a block of the same data) and is O(1) in practice; mean = Σy/n as in
    :func:`~initsuite.engine.stats.layer_stats`. Its accuracy in one pass of cached blocks,
    without a float64 copy of the tensor. With ``minus``: the same of ``flat − minus``.
    """
    k: Tensor | None = None
    s1, s2 = [], []
    for block in _blocks(flat, buf, minus):
        s1.append(block.sum())
        if k is None:
            k = s1[0] / block.numel()
        s2.append(torch.dot(block.sub_(k), block))
    if k is None:
        raise InitsuiteError("no elements to sum")  # callers pass n >= 2
    if len(s1) == 1:
        return k, s1[0], s2[0]
    return k, torch.stack(s1).sum(), torch.stack(s2).sum()


def _plain_sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """(0, Σy, Σy²): :func:`_sums` without the shift, one pass fewer over each block, within
    about 2e-15·(1 + mean²/var) of exact."""
    s1, s2 = [], []
    for block in _blocks(flat, buf, minus):
        s1.append(block.sum())
        s2.append(torch.dot(block, block))
    if len(s1) == 1:
        return torch.zeros_like(s1[0]), s1[0], s2[0]
    return torch.zeros_like(s1[0]), torch.stack(s1).sum(), torch.stack(s2).sum()


def _nonfinite(y: Tensor, minus: Tensor | None = None) -> Tensor:
    """The number of non-finite values of ``y`` (of ``y − minus``: where either is)."""
    ok = torch.isfinite(y) if minus is None else torch.isfinite(y) & torch.isfinite(minus)
    return (~ok).sum().to(torch.float64)


def _stats(t: Tensor, buffer: Callable[[torch.device, int], Tensor],
           minus: Tensor | None = None) -> Tensor:  # fmt: skip
    """What :func:`_finish` turns into the std, mean and non-finite count of all of ``t``'s
    elements: float64 on its device, read back once, at the end of the pass.

    Below float64, sums [K, Σy, Σ(y − K)², count] in float64 blocks from ``buffer(device,
    block length)``; float64 takes layer_stats' exact path, and under two elements there is
    nothing to sum: both give [std, mean, count]. Off the CPU every decision would be a
    synchronisation: the shifted :func:`_sums` and the non-finite count always run. On a CPU
    reading a host value costs nothing, so, as layer_stats does, it takes the cheaper
    :func:`_plain_sums` and redoes them shifted only where the mean exceeds 5 std (the error
    stays under ~5e-14), and counts the non-finite values (a costlier pass than the sums)
    only when there are some.

    With ``minus`` (``t``'s shape): the same of ``t − minus``, the difference taken in
    float64 block by block (no copy of the difference).
    """
    y = t.detach().reshape(-1)
    m = None if minus is None else minus.detach().reshape(-1)
    n = y.numel()
    if n < 2 or y.dtype == torch.float64:
        d = y if m is None else y.to(torch.float64) - m.to(torch.float64)
        if n < 2:
            nan = torch.full((), math.nan, dtype=torch.float64, device=y.device)
            return torch.stack([nan, d[0].to(torch.float64) if n == 1 else nan, _nonfinite(d)])
        std, mean, _ = layer_stats(d.view(1, -1))
        return torch.stack([std[0], mean[0], _nonfinite(d)])
    if y.device.type != "cpu":
        size = min(n, _BLOCK_DEVICE)
        return torch.stack([*_sums(y, buffer(y.device, size), m), _nonfinite(y, m)])
    buf = buffer(y.device, min(n, _BLOCK_CPU))
    k, s1, s2 = _plain_sums(y, buf, m)
    # an inf or nan anywhere makes Σy² inf or nan; mean² ≤ 25·var ⇔ 26·(Σy)² ≤ 25·n·Σy²
    finite = s2 < math.inf
    if bool(finite & (26 * s1 * s1 <= 25 * n * s2)):
        return torch.stack([k, s1, s2, torch.zeros_like(s2)])
    if bool(finite):
        return torch.stack([*_sums(y, buf, m), torch.zeros_like(s2)])
    return torch.stack([k, s1, s2, _nonfinite(y, m)])


def _finish(values: list[float], n: int) -> tuple[float, float, float]:
    """(std, mean, non-finite count) of a tensor of ``n`` elements from what :func:`_stats`
    recorded, in float64 arithmetic; std and mean are NaN when a value is inf or nan (as in
    layer_stats)."""
    if len(values) == 3:
        std, mean, bad = values
        return std, mean, bad
    k, s1, s2, bad = values
    if bad:
        return math.nan, math.nan, bad
    mean = s1 / n
    return math.sqrt(max((s2 - n * (mean - k) ** 2) / (n - 1), 0.0)), mean, bad


def _norm(t: Tensor, buffer: Callable[[torch.device, int], Tensor]) -> Tensor:
    """Frobenius norm of ``t``: float64, 0-dim, on its device; finite unless ``t`` holds an
    inf or nan."""
    y = t.detach().reshape(-1)
    n = y.numel()
    if n == 0:
        return torch.zeros((), dtype=torch.float64, device=y.device)
    if y.dtype == torch.float64:  # squares could overflow: scaled by the largest magnitude
        s = y.abs().amax()
        s = torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))
        return torch.linalg.vector_norm(y / s) * s
    size = min(n, _BLOCK_CPU if y.device.type == "cpu" else _BLOCK_DEVICE)
    squares = [torch.dot(b, b) for b in _blocks(y, buffer(y.device, size))]
    return (squares[0] if len(squares) == 1 else torch.stack(squares).sum()).sqrt()


@dataclass
class _Call:
    """One returned call of a probed module; statistics stay tensors until the end."""

    module: str
    type: str
    shape: str | None = None
    dtype: str | None = None
    numel: int | None = None
    tiny: float = math.nan
    stats: Tensor | None = None  # what _stats recorded of the output
    grad: Tensor | None = None  # the same of dLoss/d(output)
    weight: Tensor | None = None  # the module's own ``weight`` parameter
    norms: Tensor | None = None  # [‖weight‖, ‖dLoss/dweight‖]


class _Recorder:
    """The forward hooks' shared state: calls in order of return, open during the forward
    pass only (a recomputation in backward, e.g. activation checkpointing, adds no rows)."""

    def __init__(self, backward: bool) -> None:
        self.calls: list[_Call] = []
        self.open = True
        self.backward = backward
        self._buffers: dict[torch.device, Tensor] = {}
        self._seen: dict[int, tuple[weakref.ref[Tensor], int, Tensor]] = {}

    def hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def forward_hook(module: nn.Module, args: Any, output: Any) -> None:
            if self.open:
                self.record(name, module, output)

        return forward_hook

    def record(self, name: str, module: nn.Module, output: Any) -> None:
        call = _Call(name, type(module).__name__)
        self.calls.append(call)
        weight = module._parameters.get("weight")
        call.weight = weight if isinstance(weight, Tensor) else None
        t = _first_float(output)
        if t is None:
            return
        call.shape = ",".join(str(n) for n in t.shape)
        call.dtype = str(t.dtype).removeprefix("torch.")
        call.numel = t.numel()
        call.tiny = torch.finfo(t.dtype).tiny
        # now, before a later in-place op (ReLU(inplace=True)) overwrites the tensor
        call.stats = self.stats(t)
        if self.backward and t.requires_grad:
            t.register_hook(functools.partial(_grad_hook, self, call))

    def stats(self, t: Tensor) -> Tensor:
        """:func:`_stats` of ``t``, taken once per tensor and version: a module that returns
        its input (Identity, Dropout in eval mode) and the gradient of a tensor two calls
        returned reuse it."""
        if t.is_inference():  # no version counter to tell a later in-place change by
            return _stats(t, self.buffer)
        seen = self._seen.get(id(t))
        if seen is not None and seen[0]() is t and seen[1] == t._version:
            return seen[2]
        out = _stats(t, self.buffer)
        self._seen[id(t)] = (weakref.ref(t), t._version, out)
        return out

    def difference(self, y: Tensor, x: Tensor) -> Tensor:
        """:func:`_stats` of ``y − x`` (same shape), the difference in float64."""
        return _stats(y, self.buffer, x)

    @staticmethod
    def finish(values: list[float], n: int) -> tuple[float, float, float]:
        """(std, mean, non-finite count) of what :meth:`stats` recorded (:func:`_finish`)."""
        return _finish(values, n)

    @staticmethod
    def read(vectors: list[Tensor]) -> list[list[float]]:
        """:func:`_read_back`: one transfer per device."""
        return _read_back(vectors)

    def buffer(self, device: torch.device, size: int) -> Tensor:
        """A float64 block of ``size`` elements on ``device``, reused from call to call."""
        buf = self._buffers.get(device)
        if buf is None or buf.numel() < size:
            buf = self._buffers[device] = torch.empty(size, dtype=torch.float64, device=device)
        return buf[:size]

    def weigh(self, grads: Mapping[int, Tensor]) -> None:
        """[‖W‖, ‖dLoss/dW‖] of each call's weight W, on its device, each weight once;
        ``grads`` maps id(W) to its gradient (a weight without one gets NaN)."""
        done: dict[int, Tensor] = {}
        for call in self.calls:
            w = call.weight
            if w is None:
                continue
            if id(w) not in done:
                g = grads.get(id(w))
                nan = torch.full((), math.nan, dtype=torch.float64, device=w.device)
                gnorm = _norm(g, self.buffer) if g is not None else nan
                done[id(w)] = torch.stack([_norm(w, self.buffer), gnorm])
            call.norms = done[id(w)]


def _grad_hook(rec: _Recorder, call: _Call, grad: Tensor) -> None:
    call.grad = rec.stats(grad)


def probed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of what :func:`probe` hooks: leaf modules and modules with parameters
    of their own, each module once; the model itself is named :data:`ROOT`."""
    return [
        (name or ROOT, m)
        for name, m in model.named_modules()
        if next(m.children(), None) is None or next(m.parameters(recurse=False), None) is not None
    ]


@contextlib.contextmanager
def _restored_buffers(model: nn.Module) -> Iterator[None]:
    """Put every buffer back (object and values) on exit: a train-mode forward updates
    BatchNorm's running statistics and its batch count."""
    saved = []
    for m in model.modules():
        for name, b in m._buffers.items():
            if b is not None:
                saved.append((m, name, b, b.detach().clone()))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, name, b, value in saved:
                m._buffers[name] = b
                b.copy_(value)


@contextlib.contextmanager
def seeded_global_rng(seed: int, devices: Iterable[torch.device]) -> Iterator[None]:
    """torch's global RNG (CPU, and the CUDA devices in use) seeded with ``seed`` inside, and
    restored after: dropout masks and a factory's own init become reproducible without
    touching the caller's random state."""
    cuda = sorted({d.index if d.index is not None else torch.cuda.current_device()
                   for d in devices if d.type == "cuda"})  # fmt: skip
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def _split_inputs(inputs: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(inputs, Tensor):
        return (inputs,), {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    raise InitsuiteTypeError(
        f"inputs must be a tensor, a tuple of positional arguments or a dict of keyword "
        f"arguments, got {type(inputs).__name__}"
    )


def probe(
    model: nn.Module,
    inputs: Inputs,
    *,
    scheme: str | _schemes.Scheme | None = None,
    activation: str | _activations.Activation | None = None,
    backward: bool = False,
    seed: int = 0,
    include_embeddings: bool = False,
    autocast: str | None = None,
    name: str | None = None,
) -> ProbeResult:
    r"""Per-module statistics of one forward (and backward) pass of ``model`` on ``inputs``.

    Args:
        model: any ``nn.Module``, in the mode it should run in (train or eval).
        inputs: a tensor (``model(x)``), a tuple or list (``model(*inputs)``), or a dict
            (``model(**inputs)``, e.g. ``{"input_ids": ids}``), already on the model's device.
        scheme: a scheme spec or a framework convention (``"flax"``) to :func:`apply` first,
            **in place**, drawing from a generator seeded with ``seed`` (pass a copy to keep
            your model). Default None: the model's own weights (``scheme`` column
            ``"as_built"``). A scheme leaves biases as they are; a convention draws them.
        activation: the activation for ``gain=auto`` (see :func:`apply`).
        backward: also back-propagate :data:`LOSS` and record ``grad_std`` and each module's
            ``weight_grad_norm`` (no ``.grad`` is written).
        seed: seed of the scheme's draws, of R and of torch's global RNG during the pass.
        include_embeddings: let the scheme draw embedding weights too (see :func:`apply`).
        autocast: run the forward pass under ``torch.autocast`` at this precision, one of
            :data:`AUTOCAST` (None or ``"float32"``: no autocast); the ``dtype`` column then
            shows what each module's output actually was.
        name: the ``model`` column of the tables (default: the model's class name).

    Returns:
        A :class:`~initsuite.results.probe.ProbeResult` whose ``calls`` table has one row per
        returned call of a probed module, in execution order.

    Raises:
        InitsuiteTypeError: an argument of the wrong type, before the model is touched.
        InitsuiteError: bad arguments (a model on the meta device among them), or
            ``backward=True`` on an output without a floating tensor that requires grad.
            Whatever the model's forward raises propagates
            unchanged (after the hooks are removed and the buffers restored).
    """
    _check_arguments("probe", model, scheme, activation, include_embeddings)
    seed = validate.seed(seed)
    if not isinstance(backward, bool):
        raise InitsuiteTypeError(f"backward must be True or False, got {backward!r}")
    precision = check_autocast(autocast)
    if name is not None and not isinstance(name, str):
        raise InitsuiteTypeError(f"name must be a string, got {type(name).__name__}")
    label = type(model).__name__ if name is None else name
    args, kwargs = _split_inputs(inputs)
    devices = {t.device for t in [*model.parameters(), *model.buffers(), *_tensors(args),
                                  *_tensors(kwargs)]}  # fmt: skip
    _autocast(precision, devices)  # a device without autocast fails before any draw
    config = {
        "scheme": DEFAULT, "activation": None if activation is None
        else _activations.get(activation).spec, "backward": backward, "seed": seed,
        "include_embeddings": include_embeddings, "mode": "train" if model.training else "eval",
        "autocast": precision,
    }  # fmt: skip
    model_info = {"type": type(model).__name__,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "probed_modules": len(probed_modules(model))}  # fmt: skip
    drawn = set[str]()
    if isinstance(scheme, str) and scheme.strip() in _conventions.CONVENTIONS:
        config["scheme"] = scheme.strip()
        drawn = {q.rpartition(".")[0] or ROOT
                 for q in apply_convention(model, scheme.strip(), _seeded(seed))}  # fmt: skip
    elif scheme is not None:
        s = _scheme_or_convention(scheme)
        config["scheme"] = s.spec
        drawn = {name or ROOT for name, _ in
                 _apply(model, s, activation, include_embeddings, _seeded(seed),
                        inputs)}  # fmt: skip
    devices = {t.device for t in [*model.parameters(), *model.buffers(), *_tensors(args),
                                  *_tensors(kwargs)]}  # fmt: skip
    blocks = BlockRecorder(model, backward)
    calls = _run(model, args, kwargs, backward, seed, devices, blocks, precision)
    meta = {"kind": "probe", "config": config, "model": model_info,
            "loss": LOSS if backward else None,
            "environment": environment(sorted({str(d) for d in devices}))}  # fmt: skip
    scheme_label = str(config["scheme"])
    return ProbeResult(_frame(calls, label, scheme_label, seed, drawn, precision), meta,
                       blocks.frame(label, scheme_label, seed, precision))  # fmt: skip


def _run(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    backward: bool,
    seed: int,
    devices: Iterable[torch.device],
    blocks: BlockRecorder,
    precision: str = "float32",
) -> list[_Call]:
    rec = _Recorder(backward)
    grads: dict[int, Tensor] = {}
    handles = []
    with _restored_buffers(model):
        try:
            for name, m in probed_modules(model):
                handles.append(m.register_forward_hook(rec.hook(name)))
            handles += blocks.attach(rec)
            with seeded_global_rng(seed, devices), torch.set_grad_enabled(backward):
                with _autocast(precision, devices):  # backward runs outside, as torch advises
                    output = model(*args, **kwargs)
                rec.open = blocks.open = False
                if backward:
                    grads = _backward(model, output, [*_tensors(args), *_tensors(kwargs)], seed)
        finally:
            for h in handles:
                h.remove()
    rec.weigh(grads)
    return rec.calls


def _backward(model: nn.Module, output: Any, inputs: list[Tensor], seed: int) -> dict[int, Tensor]:
    """dLoss/d(every hooked output) for Loss = Σ R ⊙ y, through the tensor hooks; returns
    dLoss/dW by id(W) for every parameter W the loss reaches ({} when the forward pass
    overflowed)."""
    y = _first_float(output)
    if y is None:
        raise InitsuiteError(
            f"backward=True needs a floating-point tensor in the model's output; got "
            f"{type(output).__name__}"
        )
    if not y.requires_grad:
        raise InitsuiteError(
            "backward=True: the model's output does not require grad (are its parameters "
            "frozen, or does it run under torch.no_grad?)"
        )
    if not bool(torch.isfinite(y).all()):
        return {}  # the forward pass overflowed: every gradient would be NaN
    leaves: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
    ids = {id(p) for p in leaves}
    leaves += [t for t in inputs if t.requires_grad and id(t) not in ids]
    gen = torch.Generator(device=y.device).manual_seed(seed + GRAD_SEED_OFFSET)
    r = torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
    # autograd.grad, not backward(): the hooks see every gradient, no .grad is written
    grads = torch.autograd.grad(y, leaves, grad_outputs=r, allow_unused=True)
    return {id(t): g for t, g in zip(leaves, grads, strict=True) if g is not None}


def check_autocast(autocast: object) -> str:
    """The ``autocast`` argument as its precision's name (``float32``: none)."""
    if autocast is None:
        return "float32"
    if not isinstance(autocast, str):
        raise InitsuiteTypeError(
            f"autocast must be None or one of {', '.join(AUTOCAST)}, got {type(autocast).__name__}"
        )
    if autocast not in AUTOCAST:
        hint = did_you_mean(autocast, AUTOCAST)
        raise InitsuiteError(
            f"unknown autocast precision {autocast!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" (choose from None, {', '.join(AUTOCAST)})"
        )
    return autocast


def _autocast(
    precision: str, devices: Iterable[torch.device]
) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` at ``precision`` on the devices' type (a no-op for float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    kinds = sorted({d.type for d in devices})
    if len(kinds) != 1:
        raise InitsuiteError(
            f"autocast={precision!r} needs the model and its inputs on one device type, got "
            f"{', '.join(kinds) or 'no tensors'}"
        )
    if not torch.amp.is_autocast_available(kinds[0]):
        raise InitsuiteError(f"autocast={precision!r}: torch has no autocast on {kinds[0]}")
    return torch.autocast(kinds[0], dtype=getattr(torch, precision))


def _read_back(vectors: list[Tensor]) -> list[list[float]]:
    """The values of the 1-D ``vectors``, read with one ``tolist`` per device: one
    synchronisation of a GPU per pass, not one per value."""
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(vectors):
        by_device.setdefault(v.device, []).append(i)
    out: list[list[float]] = [[] for _ in vectors]
    for index in by_device.values():
        values = torch.cat([vectors[i] for i in index]).tolist()
        start = 0
        for i in index:
            out[i] = values[start : start + vectors[i].numel()]
            start += vectors[i].numel()
    return out


def _frame(calls: list[_Call], model: str, label: str, seed: int, drawn: set[str],
           precision: str = "float32") -> pd.DataFrame:  # fmt: skip
    nan = math.nan
    pending = [v for c in calls for v in (c.stats, c.grad, c.norms) if v is not None]
    values = iter(_read_back(pending))
    read = [[next(values) if v is not None else None for v in (c.stats, c.grad, c.norms)]
            for c in calls]  # fmt: skip
    rows: list[dict[str, Any]] = []
    grad_finite: list[bool] = []
    div_seen = False
    for k, (c, (stats, grad, norms)) in enumerate(zip(calls, read, strict=True), start=1):
        std = mean = frac = nan
        kind = None
        if stats is not None and c.numel is not None:
            std, mean, bad = _finish(stats, c.numel)
            frac = bad / c.numel if c.numel else nan
            if not div_seen and c.numel:
                kind = classify(std, bad == 0, c.tiny, 1.0, None, None)
                div_seen = kind is not None
        wnorm, gnorm = norms if norms is not None else (nan, nan)
        grad_std, _, grad_bad = _finish(grad, c.numel or 0) if grad is not None else (nan, 0, 0)
        grad_finite.append(grad_bad == 0)
        rows.append({
            "model": model, "scheme": label, "seed": seed, "autocast": precision, "call": k,
            "module": c.module, "type": c.type, "reinitialised": c.module in drawn,
            "shape": c.shape, "dtype": c.dtype, "numel": c.numel, "std": std, "mean": mean,
            "nonfinite_fraction": frac, "grad_std": grad_std,
            "weight_norm": wnorm, "weight_grad_norm": gnorm,
            "weight_update_ratio": ratio(gnorm, wnorm), "divergence_kind": kind,
            "grad_divergence_kind": None,
        })  # fmt: skip
    # walking back from the output: the first call whose gradient left the range
    for row, c, finite in zip(reversed(rows), reversed(calls), reversed(grad_finite), strict=True):
        if c.grad is not None:
            kind = classify(row["grad_std"], finite, c.tiny, 1.0, None, None)
            if kind is not None:
                row["grad_divergence_kind"] = kind
                break
    return C.frame(C.PROBE, rows)
