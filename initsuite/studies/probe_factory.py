"""``initsuite probe``: probe a model factory under several schemes and keep the result.

:func:`probe_factory` builds a fresh model per scheme from a model source (``timm:resnet50``,
``hf:gpt2,n_layer=24``: :mod:`initsuite.studies.sources`) or a ``package.module:callable``
factory (plus the model's own init, ``as_built``), feeds each the same inputs and returns one
:class:`~initsuite.results.probe.ProbeResult`; :func:`initsuite.studies.probe.probe` does
the probing itself. The configuration, validated before any model is built, is
:mod:`initsuite.studies.probe_config`; the user's code runs under
:mod:`initsuite.studies.user_code`'s time limit and error handling.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from initsuite.core.devices import DTYPES
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.core.renamed import renamed
from initsuite.engine.reinit import seeded_global_rng
from initsuite.results.probe import ProbeResult
from initsuite.studies import sources as _sources
from initsuite.studies.probe import LOSS, probe
from initsuite.studies.probe_config import ProbeConfig, Variant, make_inputs
from initsuite.studies.user_code import check_timeout, deadline, exit_text, failing_module, one_line

__all__ = ["ProbeConfig", "probe_factory", "run_probe"]


@renamed(autocast="autocasts")
def probe_factory(
    factory: str | Callable[[], nn.Module],
    input_shape: Sequence[int] | None = None,
    *,
    schemes: str | Iterable[str] = (),
    tokens: int | None = None,
    activation: str | None = None,
    backward: bool = False,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
    mode: str = "train",
    include_embeddings: bool = False,
    batch: int = 2,
    max_parameters: int | None = _sources.MAX_PARAMETERS,
    autocasts: str | Iterable[str] = ("float32",),
    stats: str = "exact",
    vary: Iterable[str] | Mapping[str, Iterable[Any]] = (),
    progress: bool | None = None,
    timeout: float | None = None,
) -> ProbeResult:
    """Probe a fresh model from ``factory`` with its own init and with each scheme.

    Each model is built by ``factory`` with torch's global RNG seeded with ``seed`` (forked:
    the caller's state is untouched), so every scheme starts from the same draw and what a
    scheme leaves alone (biases, norms, embeddings) is identical across schemes; then moved
    to ``device`` and ``dtype``, set to ``mode`` and probed (:func:`probe`) on the same
    inputs (:func:`~initsuite.studies.probe_config.make_inputs`).

    Args:
        factory: a model source (``"timm:resnet50"``, ``"hf:gpt2,n_layer=24"``: see
            :mod:`initsuite.studies.sources`), ``"package.module:callable"``, or a callable
            returning an ``nn.Module``.
        input_shape: shape of the model's one positional input; None: inferred from a
            source (``batch`` images of its size, or ``batch`` × 128 token ids).
        schemes: scheme specs, wildcards (any tensor rank) or conventions (``"flax"``);
            ``"as_built"``, the model's own init, is always probed first.
        tokens: draw integer ids in ``[0, tokens)`` instead of N(0, 1) values (a text
            source's vocabulary by default).
        activation, backward, seed, include_embeddings: as in :func:`probe`.
        device, dtype: where the model runs and its floating-point dtype.
        mode: ``"train"`` (default) or ``"eval"``.
        batch: examples in an inferred input.
        max_parameters: refuse a source with more parameters (None: no limit); each model of
            a ``vary`` grid is checked.
        autocasts: a precision or several (``("float32", "bfloat16")``): each model is probed
            at each, the forward pass under ``torch.autocast`` (``float32``: none). Its old
            name ``autocast`` is accepted, deprecated, until the next release.
        stats: how the statistics are summed: ``"exact"`` (float64) or ``"fast"`` (float32
            on a CPU; see :func:`initsuite.probe`).
        vary: a sweep of a source's overrides, ``{"n_layer": [6, 12, 24]}`` or the CLI's
            ``["n_layer=6,12,24", "n_embd=128,256"]``: one model per point of the grid, in
            one table (its ``model`` column names each: ``hf:gpt2,n_layer=6``).
        progress: show a progress bar (default: when stderr is a terminal).
        timeout: seconds allowed to importing the factory's module, and to each model
            (building it and probing it, per scheme); None (default): no limit. Needs the
            main thread (see :func:`~initsuite.studies.user_code.deadline`).

    Raises:
        InitsuiteError: bad arguments (an unknown model, override key or scheme); a factory
            that fails, calls ``sys.exit`` or returns no ``nn.Module``; a forward pass that
            fails on these inputs (chained to the model's exception) or calls ``sys.exit``;
            a timeout.
    """
    # long: its signature and docstring name every setting of a probe, once each
    limit = check_timeout(timeout)
    what = (
        f"importing the library of {str(factory)!r} and counting its model"
        if _sources.is_source(factory)
        else f"importing the module of factory {str(factory)!r}"
    )
    with deadline(limit, what, "raise timeout"):
        cfg = ProbeConfig(
            factory=factory,  # type: ignore[arg-type]  # a callable is named in __post_init__
            input_shape=None if input_shape is None else tuple(input_shape),
            schemes=(schemes,) if isinstance(schemes, str) else tuple(schemes), tokens=tokens,
            activation=activation, backward=backward, seed=seed, device=device, dtype=dtype,
            mode=mode, include_embeddings=include_embeddings, batch=batch,
            max_parameters=max_parameters,
            autocasts=(autocasts,) if isinstance(autocasts, str) else tuple(autocasts),
            stats=stats, vary=vary if isinstance(vary, Mapping) else tuple(vary),  # type: ignore[arg-type]
        )  # fmt: skip
    return run_probe(cfg, progress=progress, timeout=limit)


def _build(cfg: ProbeConfig, variant: Variant) -> nn.Module:
    assert variant.build is not None  # set by __post_init__
    device = torch.device(cfg.device)
    try:
        with seeded_global_rng(cfg.seed, [device]):
            model = variant.build()
    except InitsuiteError:
        raise
    except Exception as exc:
        raise InitsuiteError(f"factory {variant.name!r} raised {one_line(exc)}") from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(f"factory {variant.name!r} called {exit_text(exc)}") from None
    if not isinstance(model, nn.Module):
        raise InitsuiteError(
            f"factory {variant.name!r} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    model.to(device=device, dtype=DTYPES[cfg.dtype])
    return model.train(cfg.mode == "train")


def _what(variant: Variant) -> str:
    """The values of a variant's input, in words."""
    if variant.tokens is not None:
        return f"token ids in [0, {variant.tokens})"
    return "N(0, 1) values"


def _probe_one(cfg: ProbeConfig, variant: Variant, model: nn.Module, x: Tensor, label: str,
               precision: str) -> ProbeResult:  # fmt: skip
    """:func:`probe` one model, naming the model, scheme and precision when its forward or
    backward fails."""
    shape = ",".join(map(str, variant.input_shape))
    where = f"scheme {label!r}" + ("" if precision == "float32" else f", autocast {precision}")
    try:
        return probe(model, x, scheme=cfg.law(label), activation=cfg.activation_object,
                     backward=cfg.backward, seed=cfg.seed,
                     include_embeddings=cfg.include_embeddings, autocast=precision,
                     name=variant.name, stats=cfg.stats)  # fmt: skip
    except InitsuiteError:
        raise
    except Exception as exc:  # the model's own forward or backward failed
        module = failing_module(model, exc)
        raise InitsuiteError(
            f"the model from {variant.name!r} failed on an input of shape {shape} "
            f"({_what(variant)}; {where})"
            + (f" in module {module}" if module else "")
            + f": {one_line(exc)}"
        ) from exc
    except SystemExit as exc:  # not KeyboardInterrupt: Ctrl-C still interrupts
        raise InitsuiteError(
            f"the model from {variant.name!r} called {exit_text(exc)} on an input of shape "
            f"{shape} ({where})"
        ) from None


def run_probe(
    cfg: ProbeConfig, progress: bool | None = None, timeout: float | None = None
) -> ProbeResult:
    """Run a validated :class:`ProbeConfig`: for each model (one, or each point of its
    ``vary`` grid), each autocast precision and each scheme, a fresh model probed on that
    model's inputs; ``timeout``: seconds per model (building it and probing it), None for no
    limit."""
    from tqdm.auto import tqdm

    limit = check_timeout(timeout)
    show = sys.stderr.isatty() if progress is None else progress
    results: list[ProbeResult] = []
    started = time.perf_counter()
    passes = [(v, p, s) for v in cfg._variants for p in cfg.autocasts for s in cfg.schemes]
    inputs: dict[str, Tensor] = {}
    with tqdm(passes, disable=not show, unit="pass", file=sys.stderr, desc="probe") as bar:
        for variant, precision, label in bar:
            if variant.name not in inputs:  # one input per model, the same for every pass
                inputs = {variant.name: make_inputs(
                    variant.input_shape, tokens=variant.tokens, seed=cfg.seed,
                    device=cfg.device, dtype=cfg.dtype)}  # fmt: skip
            hint = f"building and probing it for scheme {label!r}; raise timeout"
            with deadline(limit, f"the model from {variant.name!r}", hint):
                model = _build(cfg, variant)
                results.append(_probe_one(cfg, variant, model, inputs[variant.name], label,
                                          precision))  # fmt: skip
    first = cfg._variants[0]
    per_model = len(cfg.autocasts) * len(cfg.schemes)
    models = [{**m, "parameters": r.meta["model"]["parameters"], "input_values": _what(v)}
              for m, v, r in zip(cfg.models, cfg._variants, results[::per_model],
                                 strict=True)]  # fmt: skip
    source = {"source": first.source} if first.source else {}
    meta = {
        "kind": "probe",
        "config": cfg.to_dict(),
        # every scheme's model is the factory's, redrawn
        "model": {**results[0].meta["model"], **source},
        "models": models,
        "input": {"shape": list(first.input_shape), "values": _what(first)},
        "loss": LOSS,
        "environment": environment([cfg.device]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ProbeResult.concat(results, meta)
