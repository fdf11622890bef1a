"""``initsuite sweep``: the grid's flags, where and how it runs, and the call of
:func:`initsuite.sweep`."""

from __future__ import annotations

import argparse

from initsuite.cli.common import (
    AddParser,
    cosine_arg,
    float_arg,
    int_arg,
    int_list,
    print_table,
    spec_list,
    str_list,
)
from initsuite.core.errors import InitsuiteError
from initsuite.core.inputs import INPUT_LAWS

__all__ = ["add_sweep"]


def add_sweep(add_parser: AddParser) -> None:
    w = add_parser("sweep", help="run a sweep and save its tables")
    w.add_argument(
        "--schemes",
        type=spec_list,
        required=True,
        help="comma list of scheme specs, wildcards, or 'all'",
    )
    w.add_argument("--activations", type=spec_list, default=["linear", "tanh", "relu"])
    w.add_argument("--depths", type=int_list, default=[10, 100])
    w.add_argument("--widths", type=int_list, default=[256])
    w.add_argument("--batch", type=int_arg, default=16)
    w.add_argument("--seeds", type=int_arg, default=1, help="number of seeds (0..N-1)")
    w.add_argument("--devices", type=str_list, default=["cpu"])
    w.add_argument("--dtypes", type=str_list, default=["float32"])
    w.add_argument("--archs", "--arch", dest="archs", type=spec_list, default=["mlp"],
                   help="comma list of architectures: mlp, conv:kernel=3,image=8, "
                   "resmlp:branch=2,scale=1|inv_sqrt_depth|zero (--arch: its old name, "
                   "deprecated)")  # fmt: skip
    w.add_argument("--bias", nargs="?", const="torch_default", default=None, metavar="LAW",
                   help="Linear layers with bias drawn by LAW (torch_default: nn.Linear's "
                   "U(±1/√fan_in), the default)")  # fmt: skip
    w.add_argument(
        "--explode-at",
        type=float_arg,
        default=None,
        help="also flag std above this multiple of the input std",
    )
    w.add_argument(
        "--vanish-at",
        type=float_arg,
        default=None,
        help="also flag std below this multiple of the input std",
    )
    w.add_argument("--no-timing", action="store_true", help="skip the timing pass")
    w.add_argument("--jacobian", action="store_true",
                   help="also record each cell's input-output Jacobian spectrum")  # fmt: skip
    w.add_argument("--backward", action="store_true",
                   help="also back-propagate a random read-out: gradient std and weight-"
                   "gradient norm per layer")  # fmt: skip
    w.add_argument("--pair-cosine", type=cosine_arg, default=0.5,
                   help="cosine of the c-map's input pair (0.5; 'none': no pair)")  # fmt: skip
    w.add_argument("--inputs", choices=INPUT_LAWS, default="gaussian",
                   help="the input batch: gaussian, N(0, 1); normalized, each example then "
                   "scaled to q = 1 (Deep Kernel Shaping's assumption)")  # fmt: skip
    w.add_argument("--no-shared", action="store_true",
                   help="draw every scheme on its own (no common random numbers)")  # fmt: skip
    w.add_argument("--timing-repeats", type=int_arg, default=7)
    _add_sweep_run(w)
    w.set_defaults(run=_cmd_sweep)


def _add_sweep_run(w: argparse.ArgumentParser) -> None:
    """``sweep``'s options on where and how it runs (the grid's are in :func:`add_sweep`)."""
    w.add_argument("--out", required=True,
                   help="results directory, written in chunks as cells finish")  # fmt: skip
    w.add_argument(
        "--resume",
        action="store_true",
        help="continue a sweep in --out: skip the cells already stored there",
    )
    w.add_argument("--overwrite", action="store_true",
                   help="replace a results directory initsuite wrote")  # fmt: skip
    w.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="run groups of cells in process (local) or on a Dask cluster",
    )
    w.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (default: a local cluster of 2 workers)",
    )
    w.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    w.add_argument("--verbose", action="store_true", help="log each chunk written")
    w.add_argument("--allow-large", action="store_true",
                   help="run a sweep estimated to take over an hour (its estimate is "
                   "printed first); without it such a sweep exits 2")  # fmt: skip


def _cmd_sweep(args: argparse.Namespace) -> None:
    import logging
    from pathlib import Path

    from initsuite.results import store
    from initsuite.studies.sweep import SweepConfig, sweep

    if args.verbose:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("initsuite").setLevel(logging.INFO)
    if args.resume and args.overwrite:
        raise InitsuiteError("--resume continues a sweep and --overwrite replaces it: pick one")
    if args.scheduler and args.executor != "dask":
        raise InitsuiteError("--scheduler is for --executor dask")
    cfg = SweepConfig.build(
        args.schemes, args.activations, args.depths, args.widths,
        batch=args.batch, seeds=args.seeds, devices=args.devices, dtypes=args.dtypes,
        archs=args.archs, bias=args.bias, inputs=args.inputs, explode_at=args.explode_at,
        vanish_at=args.vanish_at,
        timing=not args.no_timing, timing_repeats=args.timing_repeats,
        shared=not args.no_shared, jacobian=args.jacobian, pair_cosine=args.pair_cosine,
        backward=args.backward,
    )  # fmt: skip
    if args.overwrite and args.executor != "local":
        raise InitsuiteError("--overwrite runs in process; use a new --out for --executor")
    store.check_output(args.out, "replace" if args.overwrite else
                       "append" if args.resume else "new")  # fmt: skip
    command = args.command_line
    progress = False if args.quiet else None
    executor = None
    if args.executor == "dask":
        from initsuite.studies.sweep.executors import DaskExecutor

        executor = DaskExecutor(args.scheduler)
    try:
        result = sweep(cfg, progress=progress, out_dir=args.out, resume=args.resume,
                       overwrite=args.overwrite, executor=executor,
                       allow_large=args.allow_large, command=command)  # fmt: skip
    finally:
        if executor is not None:
            executor.close()
    path = Path(args.out)
    if not args.quiet:
        print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.cells)} cells, {len(result.layers)} layer rows to {path}")
