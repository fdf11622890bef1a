"""The sweep study: a validated grid (config), its budget, a runner and executors."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import Any

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.core.renamed import renamed
from initsuite.results.sweep import SweepResult
from initsuite.studies.sweep.config import SweepConfig
from initsuite.studies.sweep.runner import run

__all__ = ["SweepConfig", "sweep"]


@renamed(out="out_dir")
def sweep(
    schemes: str | Iterable[str] | SweepConfig,
    activations: str | Iterable[str] | None = None,
    depths: int | Iterable[int] | None = None,
    widths: int | Iterable[int] | None = None,
    *,
    batch: int = 16,
    seeds: int | Iterable[int] = 1,
    devices: str | Iterable[str] = ("cpu",),
    dtypes: str | Iterable[str] = ("float32",),
    archs: str | Iterable[str] = "mlp",
    bias: str | None = None,
    inputs: str = "gaussian",
    explode_at: float | None = None,
    vanish_at: float | None = None,
    timing: bool = True,
    timing_repeats: int = 7,
    shared: bool = True,
    pair_cosine: float | None = 0.5,
    jacobian: bool = False,
    backward: bool = False,
    progress: bool | None = None,
    resume: bool = False,
    overwrite: bool = False,
    executor: Any = None,
    allow_large: bool = False,
    command: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> SweepResult:
    """Run every cell of scheme × activation × depth × width × seed × device × dtype × arch.

    Args:
        schemes: scheme specs; ``"all"`` and wildcards (``"kaiming*"``) expand to every
            scheme that fits every arch. Or a whole :class:`SweepConfig` (the grid and its
            settings, as ``initsuite sweep`` builds it): then give no other grid setting.
        activations: activation specs (``"tanh"``, ``"leaky_relu:negative_slope=0.2"``).
        depths: layers per net.
        widths: units per layer (channels for conv).
        batch: rows of the N(0, 1) input.
        seeds: a count (``3`` → seeds 0, 1, 2) or explicit seeds.
        devices: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        dtypes: ``"float64"``, ``"float32"``, ``"bfloat16"``, ``"float16"``.
        archs: ``"mlp"``, ``"conv:kernel=3,image=8"``, ``"resmlp:branch=2,scale=1"``.
        bias: None (bias-free layers) or ``"torch_default"`` (nn.Linear's U(±1/√fan_in)).
        inputs: the input batch: ``"gaussian"`` x ~ N(0, 1), or ``"normalized"``, the same
            draw with each example scaled to q = 1 (Deep Kernel Shaping's assumption).
        explode_at, vanish_at: multiples of the input's std beyond which a layer's std also
            counts as divergence (None: off).
        timing, timing_repeats: time one layer's init and forward per scheme, width, device
            and dtype; the timed repeats behind each median.
        shared: serve the schemes that scale one base draw from a single draw per layer.
        pair_cosine: cosine of an input pair traced through every cell (None: no pair).
        jacobian: record each cell's input-output Jacobian spectrum (``jac_*`` columns).
        backward: back-propagate Σ R ⊙ h_depth, R ~ N(0, 1): the gradient columns.
        progress: show a progress bar (default: when stderr is a terminal).
        resume: continue the sweep stored in ``out_dir``, skipping its stored cells.
        overwrite: replace the sweep stored in ``out_dir`` (one that initsuite wrote).
        executor: None (in process) or a :class:`~initsuite.studies.sweep.executors.DaskExecutor`.
        allow_large: run a sweep estimated to take over an hour.
        command: the command line that asked for the sweep, recorded in its meta.json.
        out_dir: a directory that stores the cells as they finish; the result is read from
            it (``out``: its old name, deprecated).

    Returns:
        A :class:`~initsuite.results.sweep.SweepResult`: ``cells``, ``layers`` and ``timing``
        tables and ``meta``. The same seed gives the same numbers.

    Raises:
        InitsuiteError: bad input, found before any compute is spent.

    Example:
        >>> res = initsuite.sweep(["xavier_uniform", "kaiming_normal"], "relu", [10, 50], 256)
        >>> res.cells[["scheme", "depth", "final_std", "growth_per_layer"]]  # doctest: +SKIP
    """
    # long: its signature and docstring name every setting of the grid, once each
    grid = dict(batch=batch, seeds=seeds, devices=devices, dtypes=dtypes, archs=archs, bias=bias,
                inputs=inputs, explode_at=explode_at, vanish_at=vanish_at, timing=timing,
                timing_repeats=timing_repeats, shared=shared, pair_cosine=pair_cosine,
                jacobian=jacobian, backward=backward)  # fmt: skip
    cfg = _config(schemes, {"activations": activations, "depths": depths, "widths": widths}, grid)
    return run(cfg, progress=progress, out=out_dir, resume=resume, overwrite=overwrite,
               executor=executor, allow_large=allow_large, command=command)  # fmt: skip


def _config(
    schemes: str | Iterable[str] | SweepConfig, axes: dict[str, Any], grid: dict[str, Any]
) -> SweepConfig:
    """The SweepConfig that ``sweep``'s arguments name: the one given (with no grid setting
    beside it, which it would ignore), or one built from the axes and settings."""
    if isinstance(schemes, SweepConfig):
        defaults = inspect.signature(sweep).parameters
        given = [k for k, v in axes.items() if v is not None]
        given += [k for k, v in grid.items() if v != defaults[k].default]
        if given:
            raise InitsuiteError(
                f"a SweepConfig holds the whole grid and its settings: drop {', '.join(given)} "
                "(or build the config with them)"
            )
        return schemes
    missing = [k for k, v in axes.items() if v is None]
    if missing:
        raise InitsuiteTypeError(
            f"sweep() needs {', '.join(missing)} beside the schemes (or one SweepConfig)"
        )
    return SweepConfig.build(schemes, **axes, **grid)
