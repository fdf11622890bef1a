"""``initsuite cmap``: deep MLPs' c-maps, output cosine against input cosine, measured over
seeds beside the composed mean-field map (:func:`initsuite.cmap_study`)."""

from __future__ import annotations

import argparse

from initsuite.cli.common import AddParser, float_list, int_arg, int_list, print_table

__all__ = ["add_cmap"]


def add_cmap(add_parser: AddParser) -> None:
    # the defaults are the study's (initsuite.studies.cmap), named here without importing it
    c = add_parser("cmap", help="the network's c-map: the cosine of an input pair after a "
                   "deep MLP's nonlinear layers against the input cosine, measured beside "
                   "the composed mean-field map (DKS, TAT and the classic pairs)")  # fmt: skip
    c.add_argument("--net", nargs=2, action="append", default=None,
                   metavar=("ACTIVATION", "SCHEME"),
                   help="a net, repeatable (default: dks:tanh:zeta=1.5 and "
                   "tat:leaky_relu:eta=0.9 with scaled_orthogonal, relu with kaiming_normal, "
                   "tanh with xavier_normal:gain=auto, selu with lecun_normal); a dks:/tat: "
                   "activation without depth= is solved for each depth")  # fmt: skip
    c.add_argument("--depths", type=int_list, default=None,
                   help="nonlinear layers, comma list (default 50,100,200,1000)")  # fmt: skip
    c.add_argument("--widths", type=int_list, default=[256],
                   help="units per layer, comma list (default 256)")  # fmt: skip
    c.add_argument("--seeds", type=int_arg, default=3, help="number of seeds (0..N-1; 3)")
    c.add_argument("--cosines", type=float_list, default=None,
                   help="the input pairs' cosines in [-1, 1], comma list (default "
                   "-0.5,0,0.25,0.5,0.75,0.9,0.99)")  # fmt: skip
    c.add_argument("--dtype", default="float64", help="the nets' dtype (default float64)")
    c.add_argument("--device", default="cpu")
    c.add_argument("--out", required=True, help="results directory (must not hold results)")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(run=_cmd_cmap)


def _cmd_cmap(args: argparse.Namespace) -> None:
    from initsuite.report.cmap import cmap_summary
    from initsuite.results import store
    from initsuite.studies.cmap import cmap_study

    store.check_output(args.out, "replace" if args.overwrite else "new")
    given = {"nets": [tuple(n) for n in args.net] if args.net else None,
             "depths": args.depths, "cosines": args.cosines}  # fmt: skip
    result = cmap_study(
        **{k: v for k, v in given.items() if v is not None}, widths=args.widths,
        seeds=args.seeds, dtype=args.dtype, device=args.device,
    )  # fmt: skip
    result.meta["command"] = args.command_line
    path = result.save(args.out, overwrite=args.overwrite)
    if not args.quiet:
        print_table(cmap_summary(result.cmap), as_json=False)
        print(f"\nwrote {len(result.cmap)} rows to {path}")
