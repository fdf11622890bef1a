r"""Re-initialise a model in place: :func:`apply` draws a torch model's weights with a
registry scheme, layer by layer, as ``torch.nn.init`` would, or every parameter with a
framework's convention (:func:`~initsuite.engine.port.apply_convention`); and the seeding of
those draws and of torch's global RNG.

    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.LayerNorm(4))
    >>> initsuite.apply(net, "kaiming_normal", generator=torch.Generator().manual_seed(0))
    ['0.weight']
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean
from initsuite.engine.forward import Inputs, first_float, restored_buffers, split_inputs
from initsuite.engine.port import apply_convention
from initsuite.engine.roles import is_transposed_linear, residual_roles
from initsuite.schemes import conventions as _conventions
from initsuite.schemes.lsuv import rescale_to_unit_std

__all__ = [
    "WEIGHTED", "apply", "check_arguments", "draw", "scheme_or_convention", "seeded",
    "seeded_global_rng",
]  # fmt: skip

WEIGHTED: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)  # fmt: skip
"""Module types whose ``weight`` :func:`apply` draws (subclasses included), besides
``nn.MultiheadAttention``'s input projections and, when asked, embeddings."""


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


def draw(
    model: nn.Module,
    scheme: _schemes.Scheme,
    activation: str | _activations.Activation | None,
    include_embeddings: bool,
    generator: Callable[[torch.device], torch.Generator],
    inputs: Inputs | None = None,
) -> list[tuple[str, str]]:
    """Draw every target weight the scheme accepts; (module name, parameter name) of each.
    Schemes that take a layer context get each residual branch weight's
    (:func:`~initsuite.engine.roles.residual_roles`); the others never see one."""
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
    args, kwargs = split_inputs(inputs)
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
            return first_float(last[0])

        rescale_to_unit_std(weight, output, tol, max_iter)
        output(weight)  # the output of the weight as left (after a last division)
        return last[0]

    handles = [m.register_forward_hook(fit, with_kwargs=True) for m in dict.fromkeys(layers)]
    try:
        with restored_buffers(model), torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()


# long: all but 16 lines are the docstring, the public reference of initsuite.apply.
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
    :data:`~initsuite.engine.roles.KNOWN_BLOCKS`), each weight of a residual branch is
    drawn at its :class:`~initsuite.schemes.LayerContext`
    (:func:`initsuite.engine.roles.residual_roles` lists them), for the schemes that take
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
    check_arguments("apply", model, scheme, activation, include_embeddings)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InitsuiteTypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if inputs is not None:
        split_inputs(inputs)
    pick = seeded(0) if generator is None else _fixed(generator)
    if isinstance(scheme, str) and scheme.strip() in _conventions.CONVENTIONS:
        if inputs is not None:
            raise InitsuiteError(f"convention {scheme!r} draws no data-dependent law: pass no "
                                 "inputs")  # fmt: skip
        return apply_convention(model, scheme.strip(), pick)
    drawn = draw(model, scheme_or_convention(scheme), activation, include_embeddings, pick,
                   inputs)  # fmt: skip
    return [f"{name}.{pname}" if name else pname for name, pname in drawn]


def scheme_or_convention(spec: str | _schemes.Scheme) -> _schemes.Scheme:
    """The scheme ``spec`` names; an unknown name suggests the nearest scheme *or* convention
    (``apply(model, "flx")`` most likely meant the convention ``flax``)."""
    try:
        return _schemes.get(spec)
    except InitsuiteError as exc:
        name = spec.strip() if isinstance(spec, str) else ""
        if not str(exc).startswith("unknown scheme") or not name:
            raise
        if name in _conventions.NOT_CONVENTIONS:
            raise InitsuiteError(_conventions.NOT_CONVENTIONS[name]) from None
        choices = [*_conventions.CONVENTIONS, *_schemes.names()]
        hint = did_you_mean(name, choices)
        raise InitsuiteError(
            f"unknown scheme or convention {name!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" (conventions: {', '.join(_conventions.CONVENTIONS)}; initsuite schemes lists "
            "the schemes)"
        ) from None


def check_arguments(
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


def seeded(seed: int) -> Callable[[torch.device], torch.Generator]:
    """One generator per device, each seeded with ``seed``, made when first needed."""
    gens: dict[torch.device, torch.Generator] = {}

    def pick(device: torch.device) -> torch.Generator:
        if device not in gens:
            gens[device] = torch.Generator(device=device).manual_seed(seed)
        return gens[device]

    return pick


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
