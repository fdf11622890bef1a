"""``initsuite.coord_check``: does a parametrization keep every module's output the same size
as the model grows wider (and deeper), once training starts?

mup's coordinate check (Yang et al. 2022, Tensor Programs V): each parametrization × width ×
depth × seed is trained ``steps`` steps on one fixed batch, and each module's output is
measured at every step (:mod:`initsuite.studies.coord_engine`). Under SP the readout's output
grows with width; under μP it stays flat.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd
import torch
from torch import nn

from initsuite.core import validate
from initsuite.core.devices import check_device
from initsuite.core.env import environment
from initsuite.core.errors import Arg, InitsuiteError
from initsuite.engine.param_roles import infer_roles
from initsuite.engine.parametrize import parametrize
from initsuite.results import columns as C
from initsuite.results.coordcheck import CoordCheckResult
from initsuite.schemes.parametrizations import Shape, get_parametrization
from initsuite.studies.coord_engine import coord_data
from initsuite.studies.coord_models import CoordModel
from initsuite.studies.coord_sources import get_model
from initsuite.studies.user_code import one_line
from initsuite.theory.coord_exponents import coord_exponents, depth_exponents

__all__ = ["DATA", "DATA_SEED", "OPTIMIZERS", "CoordCheckConfig", "coord_check", "make_batch",
           "predictions", "roles_of"]  # fmt: skip

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
DATA: tuple[str, ...] = ("synthetic", "digits")
DATA_SEED = 0x00C0_0BD5
"""The seed of the fixed batch's generator: one batch for every run, as mup's check uses."""


@dataclass(frozen=True, kw_only=True)
class CoordCheckConfig:
    """A validated coordinate check; see :func:`coord_check` for each field."""

    model: str = "mlp"
    parametrizations: tuple[str, ...] = ("sp", "mup")
    widths: tuple[int, ...] = (64, 256, 1024)
    depths: tuple[int, ...] = ()
    optimizer: str = "adam"
    lr: float = 0.01
    steps: int = 3
    seeds: tuple[int, ...] = (0, 1)
    data: str = "synthetic"
    batch: int | None = None
    base_width: int | None = None
    base_depth: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    _model: CoordModel | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        names = validate.as_tuple(self.parametrizations)
        if not names:
            raise InitsuiteError("no parametrizations given")
        set_("optimizer", validate.choice("optimizer", self.optimizer, OPTIMIZERS))
        for name in names:  # an unknown name, or an optimizer it has no rules for: now
            get_parametrization(name).multipliers(Shape("hidden", ()), self.optimizer)
        set_("parametrizations", tuple(dict.fromkeys(names)))
        set_("data", validate.choice("data", self.data, DATA))
        set_("lr", validate.number("lr", self.lr, 0, math.inf, open_low=True, open_high=True))
        set_("steps", validate.count("steps", self.steps))
        set_("device", check_device(self.device))
        set_("widths", validate.counts("widths", self.widths))
        model = get_model(self.model, self.options)
        set_("_model", model)
        set_("options", dict(model.options))  # as the model reads them (numbers as numbers)
        # none given (None or empty): the model's own depth
        set_("depths", validate.counts("depths", self.depths or (model.default_depth,)))
        set_("batch", validate.count("batch", 8 if model.tokens else 64)
             if self.batch is None else validate.count("batch", self.batch))  # fmt: skip
        self._bases()
        for width in self.widths:
            for depth in self.depths:
                model.check(width, depth)
        model.check(self.base_width, self.depths[0])  # type: ignore[arg-type]
        if self.data == "digits" and (model.tokens or model.input_option("inputs", 64) != 64
                                      or model.input_option("classes", 10) != 10):  # fmt: skip
            raise InitsuiteError("data 'digits' feeds 8×8 images (64 inputs, 10 classes) to a "
                                 "model of features: use data 'synthetic' here")  # fmt: skip

    def _bases(self) -> None:
        """The base width and depth (default: the smallest), never above the model's."""
        for what, values in (("width", self.widths), ("depth", self.depths)):
            name, least = f"base_{what}", min(values)
            given = getattr(self, name)
            base = least if given is None else validate.count(name, given)
            if base > least:
                raise InitsuiteError(Arg(name), f" {base} is larger than the model at {what} "
                                     f"{least}: the base is the smallest model (give ",
                                     Arg(name), f" <= {least})")  # fmt: skip
            object.__setattr__(self, name, base)

    @property
    def model_object(self) -> CoordModel:
        """The model, resolved once."""
        assert self._model is not None  # set by __post_init__
        return self._model

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values (for meta.json)."""
        return {k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v
                for k, v in self.__dict__.items() if not k.startswith("_")}  # fmt: skip


def roles_of(model: nn.Module) -> dict[str, str]:
    """{parameter name: role} of the ``role`` column (:func:`initsuite.engine.param_roles.
    infer_roles`); a model whose parameters have no role (a user's, run as built under
    ``sp``, where no role is needed) gets none: its column is null, never a guessed role."""
    try:
        return infer_roles(model)
    except InitsuiteError:
        return {}


def make_batch(cfg: CoordCheckConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The one batch every run trains on, drawn from a generator seeded with
    :data:`DATA_SEED`: N(0, 1) features and uniform labels, uniform token ids and next tokens
    (a transformer), or ``batch`` digits images (standardised, as the training study's)."""
    model, device = cfg.model_object, torch.device(cfg.device)
    g = torch.Generator().manual_seed(DATA_SEED)
    n = cfg.batch or 1
    if model.tokens:
        vocab, seq = model.input_option("vocab", 64), model.input_option("seq", 16)
        idx = torch.randint(vocab, (n, seq + 1), generator=g)
        return idx[:, :-1].to(device), idx[:, 1:].to(device)
    if cfg.data == "digits":
        from initsuite.studies.fit import load_dataset

        data = load_dataset("digits")
        rows = torch.randperm(len(data.x_train), generator=g)[:n]
        return data.x_train[rows].float().to(device), data.y_train[rows].to(device)
    inputs, classes = model.input_option("inputs", 64), model.input_option("classes", 10)
    x = torch.randn(n, inputs, generator=g)
    return x.to(device), torch.randint(classes, (n,), generator=g).to(device)


def _xent(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the last axis (a transformer's every position)."""
    return nn.functional.cross_entropy(output.flatten(0, -2), target.flatten())


def _torch_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr)
    raise InitsuiteError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")


def _optimizer_of(cfg: CoordCheckConfig, name: str, depth: int
                  ) -> Callable[[nn.Module, int], torch.optim.Optimizer]:  # fmt: skip
    """``make_optimizer(model, seed)`` of parametrization ``name``: ``sp`` trains the model as
    built with the plain torch optimizer (as mup's coordinate check does without mup); the
    others re-draw it through :func:`initsuite.parametrize` against the model at the base
    width (built on the meta device: only its shapes count) and take its optimizer."""
    model, base_width = cfg.model_object, cfg.base_width or min(cfg.widths)
    if name == "sp":
        return lambda net, seed: _torch_optimizer(cfg.optimizer, net, cfg.lr)

    def make(net: nn.Module, seed: int) -> torch.optim.Optimizer:
        with torch.device("meta"):
            base = model.build(base_width, depth)
        p = parametrize(net, name, base=base, optimizer=cfg.optimizer, depth=depth,
                        base_depth=cfg.base_depth, seed=seed)  # fmt: skip
        return p.optimizer(cfg.lr)

    return make


def _user_errors(model: CoordModel, depth: int, inputs: torch.Tensor,
                 run: Callable[[], pd.DataFrame]) -> pd.DataFrame:  # fmt: skip
    """``run()``, where an error of a user's model (its factory or its forward) is one line;
    an error of a built-in model is a bug, and keeps its traceback."""
    try:
        return run()
    except InitsuiteError:
        raise
    except Exception as exc:
        if not model.user:
            raise
        shape = "×".join(map(str, inputs.shape))
        raise InitsuiteError(f"model {model.name!r} failed at depth {depth} (the check feeds "
                             f"it {shape} features; options inputs=N, classes=N change them): "
                             f"{one_line(exc)}") from exc  # fmt: skip


def predictions(parametrizations: Iterable[str], optimizer: str, bias: bool = False
                ) -> list[dict[str, Any]]:  # fmt: skip
    """The exponents each parametrization predicts under ``optimizer`` (``bias``: the layers
    have biases), one row per parametrization × role, for meta.json. Of width
    (:func:`initsuite.theory.coord_exponents.coord_exponents`; ``branch`` as ``hidden``, no
    ``norm``): ``rms_init`` (the rms at step 0), ``delta`` (the rms of the change after a
    step) and ``rms_after``. Of depth
    (:func:`initsuite.theory.coord_exponents.depth_exponents`): ``depth_rms_init``,
    ``depth_delta`` and ``depth_rms_after``. Null where the analysis gives none."""
    rows = []
    for name in parametrizations:
        width = coord_exponents(name, optimizer, bias=bias)
        width["branch"] = width["hidden"]
        for role, d in depth_exponents(name, optimizer, bias=bias).items():
            w = width.get(role)
            values = {f"{axis}{k}": None if e is None or math.isnan(getattr(e, k)) else
                      getattr(e, k) for axis, e in (("", w), ("depth_", d))
                      for k in ("rms_init", "delta", "rms_after")}  # fmt: skip
            rows.append({"parametrization": name, "optimizer": optimizer, "role": role,
                         **values})  # fmt: skip
    return rows


def _runs(cfg: CoordCheckConfig, batch: tuple[torch.Tensor, torch.Tensor], name: str,
          depth: int, widths: Iterable[int], seeds: Iterable[int]) -> pd.DataFrame:  # fmt: skip
    """The coords of parametrization ``name`` at ``depth``, every width × seed (seed-major)."""
    model = cfg.model_object
    models = {w: partial(model.build, w, depth) for w in widths}
    run = partial(coord_data, models, _optimizer_of(cfg, name, depth), batch, _xent,
                  cfg.steps, tuple(seeds), roles=roles_of)  # fmt: skip
    df = _user_errors(model, depth, batch[0], run)
    return df.assign(parametrization=name, model=model.name, depth=depth,
                     optimizer=cfg.optimizer, lr=float(cfg.lr))  # fmt: skip


def coord_task(config: dict[str, Any], key: list[Any]) -> pd.DataFrame:
    """Run on a worker: one run, ``key`` = [parametrization, depth, width, seed], of the
    coordinate check ``config`` (its :meth:`CoordCheckConfig.to_dict`). A run draws from its
    own seed alone, so a run here equals the same run in process."""
    name, depth, width, seed = key
    cfg = CoordCheckConfig(**config)
    return _runs(cfg, make_batch(cfg), str(name), int(depth), (int(width),), (int(seed),))


def run_coord_check(cfg: CoordCheckConfig, progress: bool | None = None,
                    executor: Any = None) -> CoordCheckResult:  # fmt: skip
    """Run a validated :class:`CoordCheckConfig`, in process or, given an ``executor``
    (:class:`~initsuite.studies.sweep.executors.DaskExecutor`), one task per run."""
    from tqdm.auto import tqdm

    batch = make_batch(cfg)
    model = cfg.model_object
    started = time.perf_counter()
    show = sys.stderr.isatty() if progress is None else progress
    grid = [(p, d) for p in cfg.parametrizations for d in cfg.depths]
    if executor is None:
        frames = [_runs(cfg, batch, name, depth, cfg.widths, cfg.seeds)
                  for name, depth in tqdm(grid, disable=not show, unit="grid", file=sys.stderr,
                                          desc="coords")]  # fmt: skip
    else:  # seed-major within each (parametrization, depth), as coord_data orders them
        keys = [(p, d, w, s) for p, d in grid for s in cfg.seeds for w in cfg.widths]
        frames = executor.map_calls(coord_task, cfg.to_dict(), keys)
    coords = C.coerce(pd.concat(frames, ignore_index=True), C.COORDS)
    with torch.device("meta"):  # only its parameters' roles count
        shape = model.build(cfg.base_width or min(cfg.widths), cfg.depths[0])
    has_bias = "bias" in roles_of(shape).values()
    meta = {
        "kind": "coordcheck",
        "config": cfg.to_dict(),
        "data": {
            "name": cfg.data,
            "batch": cfg.batch,
            "seed": DATA_SEED,
            "input_shape": list(batch[0].shape),
        },
        "predicted": predictions(cfg.parametrizations, cfg.optimizer, bias=has_bias),
        "environment": environment([cfg.device]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return CoordCheckResult(coords, meta)


def coord_check(
    model: str = "mlp",
    parametrizations: str | Iterable[str] = ("sp", "mup"),
    widths: int | Iterable[int] = (64, 256, 1024),
    depths: int | Iterable[int] | None = None,
    *,
    optimizer: str = "adam",
    lr: float = 0.01,
    steps: int = 3,
    seeds: int | Iterable[int] = 2,
    data: str = "synthetic",
    batch: int | None = None,
    base_width: int | None = None,
    base_depth: int | None = None,
    options: Mapping[str, Any] | None = None,
    device: str = "cpu",
    executor: Any = None,
    progress: bool | None = None,
    overwrite: bool = False,
    command: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> CoordCheckResult:
    """mup's coordinate check: each module's output size over a few training steps, per
    parametrization × width × depth × seed (Yang et al. 2022, Tensor Programs V).

    Args:
        model: ``mlp``, ``resmlp``, ``transformer`` or ``package.module:function`` (called
            as ``function(width, depth, **options)``; its model takes ``inputs`` features).
        parametrizations: registered parametrizations (``initsuite parametrizations``;
            ``sp``: the model as built, one learning rate; the others re-drawn by
            :func:`initsuite.parametrize` relative to the model at ``base_width``).
        widths: the widths (a transformer's n_embd; heads = width // 16).
        depths: the depths (default: the model's: mlp 3 Linear layers, resmlp 4 blocks,
            transformer 2 blocks).
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: the base learning rate, positive and finite.
        steps: optimizer steps (≥ 1); steps 0 (init) to ``steps`` are recorded.
        seeds: a count (``2`` → 0, 1) or explicit seeds.
        data: ``synthetic`` (seeded features and labels, or token ids) or ``digits``.
        batch: rows of the fixed batch (default 64; 8 sequences for the transformer).
        base_width, base_depth: the base model of the parametrization (default: the
            smallest); never larger than the model.
        options: the model's options (mlp: ``activation``, ``inputs``, ``classes``, ``bias``;
            transformer: ``heads``, ``vocab``, ``seq``).
        device: where to train.
        executor: None (in process) or a :class:`~initsuite.studies.sweep.executors.
            DaskExecutor`: one task per run (parametrization × depth × width × seed); the
            table equals the in-process one.
        progress: show a progress bar (default: when stderr is a terminal; in process only).
        overwrite: replace ``out_dir`` if initsuite wrote it.
        command: the command line that asked for it, recorded in meta.json.
        out_dir: a results directory to save to (checked before anything runs).

    Returns:
        A :class:`~initsuite.results.coordcheck.CoordCheckResult`.

    Example:
        >>> res = initsuite.coord_check("mlp", ["sp", "mup"], widths=[64, 256, 1024],
        ...                             optimizer="adam", lr=0.01, steps=3)  # doctest: +SKIP
        >>> res.coords.query("module == 'output' and step == 3")  # doctest: +SKIP
    """
    # long: its signature and docstring name every setting of the check, once each
    cfg = CoordCheckConfig(
        model=model, parametrizations=validate.as_tuple(parametrizations),
        widths=widths, depths=() if depths is None else depths,  # type: ignore[arg-type]
        optimizer=optimizer, lr=lr, steps=steps,
        seeds=validate.seeds(seeds), data=data, batch=batch, base_width=base_width,
        base_depth=base_depth, options=dict(options or {}), device=device,
    )  # fmt: skip
    if out_dir is not None:
        from initsuite.results import store

        store.check_output(out_dir, "replace" if overwrite else "new")
    result = run_coord_check(cfg, progress=progress, executor=executor)
    if command is not None:
        result.meta["command"] = command
    if out_dir is not None:
        result.save(out_dir, overwrite=overwrite)
    return result
