"""``initsuite conventions``: each framework's layer defaults, or where two differ."""

from __future__ import annotations

import argparse

from initsuite.cli.common import AddParser, check_output_flags, print_table
from initsuite.core.errors import InitsuiteError

__all__ = ["add_conventions"]


def add_conventions(add_parser: AddParser) -> None:
    c = add_parser("conventions", help="each framework's layer defaults (torch, flax, keras, "
                   "timm, hf, ...), or where two differ")  # fmt: skip
    c.add_argument("framework", nargs="*", help="conventions to show (default: all)")
    c.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="only the layers and parameters where A and B differ")  # fmt: skip
    c.add_argument("--layer", help="one layer type, e.g. linear, embedding, layer_norm")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--markdown", action="store_true", help="a Markdown report section")
    c.add_argument("--html", default=None, metavar="FILE.html",
                   help="also write it as one self-contained HTML page")  # fmt: skip
    c.set_defaults(run=_cmd_conventions)


def _cmd_conventions(args: argparse.Namespace) -> None:
    from initsuite.schemes import convention_table as table_of

    if args.json and args.markdown:
        raise InitsuiteError("--json and --markdown: pick one")
    if args.diff and args.framework:
        raise InitsuiteError("--diff A B compares two conventions: give no others")
    if args.html is not None:
        from initsuite.report.comparison import check_tabulate
        from initsuite.report.html import check_markdown

        check_tabulate()
        check_markdown()
    check_output_flags(html=(args.html, "file"))
    if args.diff:
        table = table_of.diff(args.diff[0], args.diff[1], layer=args.layer)
    else:
        table = table_of.conventions(args.framework or None, layer=args.layer)
    title = f"{args.diff[0]} vs {args.diff[1]}" if args.diff else "Framework conventions"
    if args.html is not None:
        from initsuite.report.conventions import conventions_page
        from initsuite.results import store

        store.atomic_write_text(args.html, conventions_page(table, title))
    if args.markdown:
        from initsuite.report.conventions import conventions_section

        print(conventions_section(table, title))
    elif args.json:
        print_table(table, True)
    else:
        drop = ["note", "framework", "source"] if not args.diff else []
        print_table(table.drop(columns=drop), False)
        if args.html is not None:  # not after --json or --markdown: they are read by machines
            print(f"wrote {args.html}")
