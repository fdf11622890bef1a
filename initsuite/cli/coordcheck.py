"""``initsuite coordcheck``: mup's coordinate check of parametrizations over width and depth
(:func:`initsuite.coord_check`)."""

from __future__ import annotations

import argparse

from initsuite.cli.common import AddParser, float_arg, int_arg, int_list, print_table, str_list

__all__ = ["add_coordcheck"]


def _options(text: str) -> dict[str, str]:
    """``--options KEY=VALUE,...``: the model's options, as text (the model reads them)."""
    from initsuite.core.errors import InitsuiteError
    from initsuite.core.spec import parse_spec

    try:
        return parse_spec(f"model:{text}", kind="model")[1]
    except InitsuiteError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_coordcheck(add_parser: AddParser) -> None:
    c = add_parser("coordcheck", help="mup's coordinate check: does each module's output "
                   "keep its size as the model grows wider and deeper, once it "
                   "trains?")  # fmt: skip
    c.add_argument("--model", default="mlp", help="mlp (default), resmlp, transformer, or "
                   "package.module:function(width, depth) returning an nn.Module")  # fmt: skip
    c.add_argument("--options", type=_options, default={}, metavar="KEY=VALUE,...",
                   help="the model's options, e.g. activation=tanh,inputs=32 (mlp, resmlp: "
                   "activation, inputs, classes, bias; resmlp: norm; transformer: heads, "
                   "vocab, seq)")  # fmt: skip
    c.add_argument("--parametrizations", type=str_list, default=["sp", "mup"],
                   help="comma list (default sp,mup)")  # fmt: skip
    c.add_argument("--widths", type=int_list, default=[64, 256, 1024],
                   help="comma list (default 64,256,1024; a transformer's n_embd)")  # fmt: skip
    c.add_argument("--depths", type=int_list, default=None,
                   help="comma list (default: the model's: mlp 3 Linear layers, resmlp 4 "
                   "blocks, transformer 2 blocks)")  # fmt: skip
    c.add_argument("--base-width", type=int_arg, default=None,
                   help="the parametrizations' base width (default: the smallest)")  # fmt: skip
    c.add_argument("--base-depth", type=int_arg, default=None,
                   help="their base depth (default: the smallest)")  # fmt: skip
    c.add_argument("--optimizer", default="adam", help="sgd, adam (default) or adamw")
    c.add_argument("--lr", type=float_arg, default=0.01, help="base learning rate (0.01)")
    c.add_argument("--steps", type=int_arg, default=3, help="optimizer steps (3)")
    c.add_argument("--seeds", type=int_arg, default=2, help="number of seeds (0..N-1)")
    c.add_argument("--data", default="synthetic", help="synthetic (default) or digits")
    c.add_argument("--batch", type=int_arg, default=None,
                   help="rows of the fixed batch (64; 8 sequences for a transformer)")  # fmt: skip
    c.add_argument("--device", default="cpu")
    c.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local (default): in process; dask: one task per run on a Dask "
                   "cluster")  # fmt: skip
    c.add_argument("--scheduler", default=None,
                   help="Dask scheduler address (default: a local cluster of 2 "
                   "workers)")  # fmt: skip
    c.add_argument("--out", required=True, help="results directory (must not hold results)")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(run=_cmd_coordcheck)


def _cmd_coordcheck(args: argparse.Namespace) -> None:
    from initsuite.core.errors import InitsuiteError
    from initsuite.studies.coordcheck import coord_check

    if args.scheduler and args.executor != "dask":
        raise InitsuiteError("--scheduler is for --executor dask")
    executor = None
    if args.executor == "dask":
        from initsuite.studies.sweep.executors import DaskExecutor

        executor = DaskExecutor(args.scheduler)
    try:
        result = coord_check(
            args.model, args.parametrizations, args.widths, args.depths,
            optimizer=args.optimizer, lr=args.lr, steps=args.steps, seeds=args.seeds,
            data=args.data, batch=args.batch, base_width=args.base_width,
            base_depth=args.base_depth, options=args.options, device=args.device,
            executor=executor, progress=False if args.quiet else None,
            overwrite=args.overwrite, command=args.command_line, out_dir=args.out,
        )  # fmt: skip
    finally:
        if executor is not None:
            executor.close()
    if not args.quiet:
        c = result.coords
        last = c[c["step"] == c["step"].max()]
        table = (last.groupby(["parametrization", "depth", "module", "width"], observed=True)
                 ["l1"].mean().unstack("width").reset_index())  # fmt: skip
        table.columns = [f"l1@{w}" if isinstance(w, int) else w for w in table.columns]
        print_table(table, as_json=False)
        print(f"\nwrote {len(c)} rows to {args.out}")
