"""``initsuite probe``: a model factory or source probed under several schemes and precisions
(:func:`initsuite.probe_factory`)."""

from __future__ import annotations

import argparse
import sys

from initsuite.cli.common import (
    AddParser,
    int_arg,
    int_list,
    max_parameters_arg,
    print_table,
    spec_list,
    timeout_arg,
)

__all__ = ["PROBE_TIMEOUT", "add_probe"]


PROBE_TIMEOUT = 600.0
"""``initsuite probe --timeout``'s default: seconds per model (the Python API has none), where
the timeout is available (SIGALRM: not on Windows); else no limit unless one is asked for."""


def add_probe(add_parser: AddParser) -> None:
    pb = add_parser("probe", help="probe any model: per-module std of its forward "
                        "(and backward) pass, from its own init and from schemes")  # fmt: skip
    pb.add_argument("factory", help="a model by name, built from code with no download: "
                    "timm:NAME, torchvision:NAME or hf:MODEL_TYPE, each with KEY=VALUE "
                    "overrides (hf:gpt2,n_layer=24,n_embd=256); or package.module:callable "
                    "returning an nn.Module (the current directory is importable)")  # fmt: skip
    pb.add_argument("--input-shape", type=int_list, default=None,
                    help="shape of the model's one input, e.g. 16,3,32,32 (inferred for a "
                    "model by name: --batch images of its size, or --batch × 128 "
                    "tokens)")  # fmt: skip
    pb.add_argument("--batch", type=int_arg, default=2,
                    help="examples in an inferred input (default 2)")  # fmt: skip
    pb.add_argument("--tokens", type=int_arg, default=None, metavar="VOCAB",
                    help="integer token ids in [0, VOCAB) instead of N(0, 1) values (a text "
                    "model's vocabulary by default)")  # fmt: skip
    pb.add_argument("--max-parameters", type=max_parameters_arg, default=argparse.SUPPRESS,
                    metavar="N",
                    help="refuse a model by name with more parameters (default 5e8; 'none': "
                    "no limit)")  # fmt: skip
    pb.add_argument("--schemes", type=spec_list, default=[],
                    help="comma list of scheme specs, wildcards or framework conventions "
                    "(flax, keras, ...); the model's own init ('as_built') is always probed "
                    "first")  # fmt: skip
    pb.add_argument("--activation", default=None,
                    help="activation after the layers, for gain=auto")  # fmt: skip
    pb.add_argument("--include-embeddings", action="store_true",
                    help="let the schemes draw nn.Embedding weights too")  # fmt: skip
    pb.add_argument("--mode", default="train", help="train (default) or eval")
    pb.add_argument("--backward", action="store_true",
                    help="also back-propagate a random read-out: gradient std per "
                    "module")  # fmt: skip
    pb.add_argument("--seed", type=int_arg, default=0)
    pb.add_argument("--timeout", type=timeout_arg, default=argparse.SUPPRESS, metavar="SECONDS",
                    help=f"limit for importing the factory's module and for each model, built "
                    f"and probed (default {PROBE_TIMEOUT:g}; 'none': no limit)")  # fmt: skip
    pb.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="sweep an override of a model by name, e.g. n_layer=6,12,24 (repeat "
                    "for a grid): one model per point, in one table")  # fmt: skip
    pb.add_argument("--autocasts", "--dtypes", dest="autocasts", type=spec_list,
                    default=["float32"], metavar="P1,P2,...",
                    help="precisions of the forward pass: float32 (no autocast), bfloat16, "
                    "float16 (torch.autocast); each model is probed at each (default "
                    "float32; --dtypes: its old name, deprecated)")  # fmt: skip
    pb.add_argument("--stats", default="exact",
                    help="how the statistics are summed: exact (float64, default) or fast "
                    "(float32 on a CPU: about half the cost, std within 2e-5, typically "
                    "1e-7)")  # fmt: skip
    pb.add_argument("--device", default="cpu")
    pb.add_argument("--dtype", default="float32",
                    help="dtype of the model's parameters (default float32)")  # fmt: skip
    pb.add_argument("--out", required=True, help="results directory (must not hold results)")
    pb.add_argument("--overwrite", action="store_true")
    pb.add_argument("--no-report", action="store_true", help="write the tables only")
    pb.add_argument("--quiet", action="store_true")
    pb.set_defaults(run=_cmd_probe)


def _cmd_probe(args: argparse.Namespace) -> None:
    import os

    from initsuite.results import store
    from initsuite.studies.probe_factory import probe_factory
    from initsuite.studies.user_code import timeout_available

    # not given: the default limit, where the platform has one
    timeout = getattr(args, "timeout", PROBE_TIMEOUT if timeout_available() else None)
    store.check_output(args.out, "replace" if args.overwrite else "new")
    if not args.no_report:
        from initsuite.report.probe_report import check_dependencies

        check_dependencies()
    # like `python -m`, let FACTORY name a module in the current directory
    saved_path = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        limit = {"max_parameters": args.max_parameters} if "max_parameters" in args else {}
        result = probe_factory(
            args.factory, args.input_shape, schemes=args.schemes, tokens=args.tokens,
            batch=args.batch, **limit,
            activation=args.activation, backward=args.backward, seed=args.seed,
            device=args.device, dtype=args.dtype, mode=args.mode,
            include_embeddings=args.include_embeddings, autocasts=args.autocasts, vary=args.vary,
            stats=args.stats,
            progress=False if args.quiet else None, timeout=timeout,
        )  # fmt: skip
    finally:
        sys.path[:] = saved_path
    result.meta["command"] = args.command_line
    path = result.save(args.out, overwrite=args.overwrite)
    if not args.no_report:
        from initsuite.report.probe_report import write_probe_report

        write_probe_report(path)
    if not args.quiet:
        print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.calls)} module calls to {path}")
