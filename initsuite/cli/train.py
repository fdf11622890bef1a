"""``initsuite train``: the training study's flags and the call of :func:`initsuite.train`."""

from __future__ import annotations

import argparse

from initsuite.cli.common import AddParser, float_arg, int_arg, print_table, spec_list

__all__ = ["add_train"]


def add_train(add_parser: AddParser) -> None:
    n = add_parser("train", help="train the MLP from each scheme (does the init learn?)")
    n.add_argument(
        "--schemes",
        type=spec_list,
        required=True,
        help="comma list of scheme specs, wildcards, or 'all'",
    )
    n.add_argument("--activations", type=spec_list, default=["relu"])
    n.add_argument("--depth", type=int_arg, default=30, help="Linear layers in all (30)")
    n.add_argument("--width", type=int_arg, default=128, help="hidden units (128)")
    n.add_argument("--seeds", type=int_arg, default=3, help="number of seeds (0..N-1)")
    n.add_argument("--steps", type=int_arg, default=400)
    n.add_argument("--lr", type=float_arg, default=0.002)
    n.add_argument("--optimizer", default="sgd", help="sgd (with --momentum) or adam")
    n.add_argument("--momentum", type=float_arg, default=None,
                   help="SGD's momentum, in [0, 1) (default 0.9); adam takes none")  # fmt: skip
    n.add_argument("--batch", "--batch-size", dest="batch", type=int_arg, default=64,
                   help="examples per SGD step (64; --batch-size is its old name)")  # fmt: skip
    n.add_argument(
        "--threshold",
        type=float_arg,
        default=0.5,
        help="train loss to reach (steps_to_threshold; chance is ln 10 = 2.30)",
    )
    n.add_argument(
        "--eval-every", type=int_arg, default=10, help="steps between full train/test evaluations"
    )
    n.add_argument("--bias", nargs="?", const="zeros", default=None, metavar="LAW",
                   help="Linear layers with bias starting at LAW (zeros, the default)")  # fmt: skip
    n.add_argument("--dataset", default="digits")
    n.add_argument("--device", default="cpu")
    n.add_argument("--dtype", default="float32")
    n.add_argument("--out", required=True, help="results directory (must not hold results)")
    n.add_argument("--overwrite", action="store_true")
    n.add_argument("--quiet", action="store_true")
    n.set_defaults(run=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> None:
    from initsuite.results import store
    from initsuite.studies.training import train

    store.check_output(args.out, "replace" if args.overwrite else "new")
    result = train(
        args.schemes, args.activations, args.depth, args.width, seeds=args.seeds, steps=args.steps,
        lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
        batch=args.batch, threshold=args.threshold, eval_every=args.eval_every,
        bias=args.bias, dataset=args.dataset, device=args.device, dtype=args.dtype,
        progress=False if args.quiet else None,
    )  # fmt: skip
    result.meta["command"] = args.command_line
    path = result.save(args.out, overwrite=args.overwrite)
    if not args.quiet:
        print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.runs)} runs to {path}")
