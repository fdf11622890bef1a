"""The commands that list what is registered or known: ``schemes``, ``parametrizations``,
``activations``, ``gains`` and ``phase``."""

from __future__ import annotations

import argparse
import json
import sys

from initsuite.cli.common import (
    AddParser,
    check_output_flags,
    int_arg,
    print_table,
    spec_list,
)

__all__ = ["add_activations", "add_gains", "add_parametrizations", "add_phase", "add_schemes"]


def add_schemes(add_parser: AddParser) -> None:
    s = add_parser("schemes", help="list registered initialization schemes")
    s.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="wildcard filter, e.g. 'kaiming*' (exit 1 when none matches)",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_schemes)


def _cmd_schemes(args: argparse.Namespace) -> int:
    from initsuite.core import catalog, patterns

    rows = catalog.load()  # the built-in schemes without torch, when no package adds any
    if rows is None:
        from initsuite import schemes

        matched = schemes.list(args.pattern)  # a malformed pattern raises: exit 2
        if matched:
            table = schemes.table()
            rows = table[table["scheme"].isin(matched)].to_dict(orient="records")
    else:
        if args.pattern is not None:
            patterns.check_pattern(args.pattern)
        rows = [r for r in rows if args.pattern is None
                or patterns.matches(str(r["scheme"]), args.pattern)]  # fmt: skip
        matched = [str(r["scheme"]) for r in rows]
    if not matched:  # like grep: exit 1 when nothing matches
        if args.json:
            print("[]")
        print(f"initsuite: no scheme matches {args.pattern!r} (initsuite schemes lists all)",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.json:  # no pandas either
        print(json.dumps(rows, indent=2, default=str))
        return 0
    import pandas as pd

    print_table(pd.DataFrame.from_records(rows).drop(columns=["summary"]), False)
    return 0


def add_parametrizations(add_parser: AddParser) -> None:
    s = add_parser("parametrizations", help="list width/depth parametrizations (SP, μP, ...)")
    s.add_argument("pattern", nargs="?", default="*",
                   help="wildcard filter, e.g. '*mup' (exit 1 when none matches); one match "
                   "shows its rule per role and its papers")  # fmt: skip
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_parametrizations)


def _cmd_parametrizations(args: argparse.Namespace) -> int:
    from initsuite.schemes import parametrizations as P

    matched = set(P.list_parametrizations(args.pattern))  # a malformed pattern: exit 2
    rows = [r for r in P.table() if r["parametrization"] in matched]
    if not rows:
        if args.json:
            print("[]")
        print(f"initsuite: no parametrization matches {args.pattern!r} (initsuite "
              "parametrizations lists all)", file=sys.stderr)  # fmt: skip
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    import pandas as pd

    print_table(pd.DataFrame.from_records(rows)[["parametrization", "optimizers", "title"]], False)
    if len(rows) == 1:
        print()
        print_table(
            pd.DataFrame({"role": P.ROLES, "rule": [rows[0][f"rule_{r}"] for r in P.ROLES]}), False
        )
        print("\npapers: " + rows[0]["papers"])
        if rows[0]["notes"]:
            print("notes: " + rows[0]["notes"])
    return 0


def add_activations(add_parser: AddParser) -> None:
    a = add_parser("activations", help="list activations and their gains, or show some specs "
                   "(a dks: or tat: one with its solved constants)")  # fmt: skip
    a.add_argument("specs", nargs="*", type=spec_list, metavar="SPEC",
                   help="activation specs to show, e.g. dks:tanh:zeta=1.5,depth=50 "
                   "(default: list every registered activation)")  # fmt: skip
    a.add_argument(
        "--depth",
        type=int_arg,
        default=None,
        help="bind the dks: or tat: specs that leave the depth out to this one",
    )
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(run=_cmd_activations)


def _cmd_activations(args: argparse.Namespace) -> None:
    from initsuite import activations
    from initsuite.activations import shaping
    from initsuite.core import validate
    from initsuite.core.errors import InitsuiteError

    if not args.specs:
        if args.depth is not None:
            raise InitsuiteError("--depth binds the dks: or tat: specs given: name some")
        print_table(activations.table(), args.json)
        if not args.json:  # the kernel-shaped ones are specs over these, not rows of the table
            print("\nkernel-shaped (DKS, TAT): dks:NAME:zeta=Z[,depth=D], "
                  "tat:leaky_relu:eta=E[,depth=D], tat:NAME:tau=T[,depth=D]; "
                  "initsuite activations SPEC shows the solved constants")  # fmt: skip
        return
    depth = None if args.depth is None else validate.count("--depth", args.depth)
    print_table(shaping.table([s for group in args.specs for s in group], depth), args.json)


def add_gains(add_parser: AddParser) -> None:
    gn = add_parser("gains", help="gains per activation and what each preserves")
    gn.add_argument("--json", action="store_true", help="machine-readable output")
    gn.set_defaults(run=_cmd_gains)


def _cmd_gains(args: argparse.Namespace) -> None:
    from initsuite.theory.gains import gains

    print_table(gains(), args.json)
    if not args.json:
        print(
            "\nvariance_gain keeps q = E[h²] at 1; std_ratio keeps the first layer's output std"
            "\nat the input's; fixed_point_* is where a deep net with auto_gain settles; chi1 > 1"
            "\nmeans chaotic (inputs decorrelate), < 1 ordered. 'any (scale-invariant)': for"
            "\nReLU, leaky ReLU and linear every q is a fixed point at the auto gain, so a net"
            "\nkeeps the scale its input gives it; the values shown are for a unit-variance"
            "\ninput (q = gain² at every layer). See initsuite/theory/gains.py."
        )


def add_phase(add_parser: AddParser) -> None:
    ph = add_parser("phase", help="order-chaos phase diagram of an activation")
    ph.add_argument("--activation", required=True, help="activation spec, e.g. tanh")
    ph.add_argument("--schemes", type=spec_list, default=["all"],
                    help="schemes to place (comma list or 'all')")  # fmt: skip
    ph.add_argument("--width", type=int_arg, default=256, help="layer width for σ_w² (default 256)")
    ph.add_argument("--bias", nargs="?", const="torch_default", default=None, metavar="LAW",
                    help="layers with bias drawn by LAW (torch_default: nn.Linear's "
                    "U(±1/√fan_in), the default; zeros)")  # fmt: skip
    ph.add_argument("--out", help="also write the figure (PNG) to this file")
    ph.add_argument("--json", action="store_true", help="machine-readable output")
    ph.set_defaults(run=_cmd_phase)


def _cmd_phase(args: argparse.Namespace) -> None:
    from initsuite import activations
    from initsuite.core import validate
    from initsuite.core.bias import bias_law
    from initsuite.theory import phase
    from initsuite.theory.meanfield import bias_variance

    check_output_flags(out=(args.out, "file"))
    if args.out:
        from initsuite.report.figures import check_png_name

        check_png_name(args.out)
    act = activations.get(args.activation)
    width = validate.count("width", args.width)
    law = bias_law(args.bias, study="phase")
    points = phase.scheme_points(act, args.schemes, width, law)
    print_table(points, args.json)
    if not args.json:
        sigma_b2 = bias_variance(law, width)
        crit = phase.critical_sigma_w2(act, sigma_b2)
        print(f"\ncritical σ_w² (χ₁ = 1) for {act.spec} at this σ_b²: {crit:.4g}")
    if args.out:
        from initsuite.report import plot_phase_diagram, save_figure

        save_figure(plot_phase_diagram(phase.phase_diagram(act), points), args.out)
        if not args.json:
            print(f"wrote {args.out}")
