"""``initsuite reproduce``: a classic study by name (:func:`initsuite.reproduce`), its flags
checked against the study they belong to."""

from __future__ import annotations

import argparse
from typing import Any

from initsuite.cli.common import (
    AddParser,
    float_arg,
    int_arg,
    int_list,
    max_parameters_arg,
    print_table,
    spec_list,
)
from initsuite.core.errors import InitsuiteError

__all__ = ["add_reproduce"]

# kernel-shaping's own flags: each is the study's keyword of the same name
_KSHAPING_FLAGS = ("nets", "depths", "width", "steps", "optimizer", "lr")


def add_reproduce(add_parser: AddParser) -> None:
    t = add_parser("reproduce", help="reproduce a classic study")
    t.add_argument("study", choices=["tutorial", "isometry", "frameworks", "zoo", "mutransfer",
                                     "kernel-shaping"], help="which study")  # fmt: skip
    t.add_argument("--out", required=True, help="results directory (must not hold results)")
    t.add_argument("--seeds", type=int_arg, default=None,
                   help="number of seeds (tutorial: 10, isometry: 2, frameworks: 2, "
                   "mutransfer: 2, kernel-shaping: 3)")  # fmt: skip
    t.add_argument("--laws", type=spec_list, default=None,
                   help="frameworks: conventions or scheme specs to apply, comma-separated "
                   "(default: torch,flax,keras,hf_bert,timm_vit)")  # fmt: skip
    t.add_argument("--train-steps", type=int_arg, default=None,
                   help="frameworks: SGD steps of each law's digits MLP (default 400; 0: no "
                   "training); mutransfer: the steps of every experiment (default "
                   "100)")  # fmt: skip
    t.add_argument("--models", default=None, metavar="SOURCES",
                   help="zoo: model sources, comma-separated, a KEY=VALUE item overriding the "
                   "model before it, e.g. timm:resnet50,hf:gpt2,n_layer=6 (default: ResNet-50, "
                   "ConvNeXt-T, ViT-S, GPT-2 and BERT depth sweeps from transformers); "
                   "mutransfer: its experiments, of mlp, transformer, resmlp (default: "
                   "all)")  # fmt: skip
    t.add_argument("--schemes", type=spec_list, default=None,
                   help="zoo: schemes every model gets after as_built (default: kaiming_normal,"
                   "xavier_normal,normal:std=0.02; gpt2 or lsuv added by kind)")  # fmt: skip
    t.add_argument("--max-parameters", type=max_parameters_arg, default=argparse.SUPPRESS,
                   metavar="N", help="zoo: refuse a model with more parameters (default 5e8; "
                   "'none': no limit)")  # fmt: skip
    t.add_argument("--nets", type=spec_list, default=None,
                   help="kernel-shaping: nets, comma-separated, of relu_he, tanh_xavier, "
                   "dks_tanh, tat_leaky_relu, resmlp_fixup (default: all)")  # fmt: skip
    t.add_argument("--depths", type=int_list, default=None,
                   help="kernel-shaping: Linear layers of each net (default 50,100)")  # fmt: skip
    t.add_argument("--width", type=int_arg, default=None,
                   help="kernel-shaping: units of the hidden layers (default 256)")  # fmt: skip
    t.add_argument("--steps", type=int_arg, default=None,
                   help="kernel-shaping: optimiser steps of each run (default 500)")  # fmt: skip
    t.add_argument("--optimizer", default=None,
                   help="kernel-shaping: adam (default) or sgd (momentum 0.9)")  # fmt: skip
    t.add_argument("--lr", type=float_arg, default=None,
                   help="kernel-shaping: every net's learning rate (default 0.0001)")  # fmt: skip
    t.add_argument("--executor", choices=["local", "dask"], default=None,
                   help="mutransfer, kernel-shaping: local (default, in process) or dask (one "
                   "task per trained model)")  # fmt: skip
    t.add_argument("--scheduler", default=None,
                   help="mutransfer, kernel-shaping with --executor dask: the Dask scheduler's "
                   "address (default: a local cluster of 2 workers)")  # fmt: skip
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(run=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from initsuite.results import store
    from initsuite.studies.reproduce import reproduce

    store.check_output(args.out, "replace" if args.overwrite else "new")
    for flag, value, owners in (("--laws", args.laws, ("frameworks",)),
                                ("--train-steps", args.train_steps, ("frameworks", "mutransfer")),
                                ("--models", args.models, ("zoo", "mutransfer")),
                                ("--schemes", args.schemes, ("zoo",)),
                                ("--executor", args.executor, ("mutransfer", "kernel-shaping")),
                                ("--scheduler", args.scheduler, ("mutransfer", "kernel-shaping")),
                                *((f"--{k}", getattr(args, k), ("kernel-shaping",))
                                  for k in _KSHAPING_FLAGS),
                                ("--max-parameters", True if "max_parameters" in args else None,
                                 ("zoo",))):  # fmt: skip
        if value is not None and args.study not in owners:
            which = " or ".join(f"'reproduce {o}'" for o in owners)
            raise InitsuiteError(f"{flag} belongs to {which}, not {args.study!r}")
    if args.seeds is not None and args.study == "zoo":
        raise InitsuiteError("--seeds does not apply to 'reproduce zoo' (one seed, 0: its "
                             "models differ by architecture, not by draw)")  # fmt: skip
    if args.scheduler and args.executor != "dask":
        raise InitsuiteError("--scheduler is for --executor dask")
    settings = _reproduce_settings(args)
    if args.executor == "dask":
        from initsuite.studies.sweep.executors import DaskExecutor

        settings["executor"] = DaskExecutor(args.scheduler)
    try:
        study = reproduce(args.study, **settings)
    finally:
        if "executor" in settings:
            settings["executor"].close()
    study.meta["command"] = args.command_line
    path = study.save(args.out, overwrite=args.overwrite)
    if args.quiet:
        return
    if args.study == "tutorial":
        cols = ["experiment", "quantity", "expected", "measured_mean", "measured_sd",
                "tolerance", "agree"]  # fmt: skip
        print_table(study.claims[cols], as_json=False)
        print(f"\nwrote {path}")
    elif args.study == "isometry":
        print(f"wrote {len(study.spectra)} singular values to {path}")
    elif args.study == "frameworks":
        print(f"wrote {len(study.runs)} runs, {len(study.layers)} layer rows and "
              f"{len(study.training_runs)} training runs to {path}")  # fmt: skip
    elif args.study in ("mutransfer", "kernel-shaping"):
        print(f"wrote {len(study.runs)} training runs to {path} "
              f"({study.meta['seconds']:.0f} s)")  # fmt: skip
    else:
        n = len(study.meta["models"])
        print(f"wrote {len(study.calls)} module calls of {n} model{'s' if n != 1 else ''} "
              f"to {path} ({study.meta['seconds']:.0f} s)")  # fmt: skip


def _reproduce_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword settings of ``initsuite.reproduce(args.study, ...)`` that the flags give (a
    flag left out keeps the study's default; each flag's study was checked)."""
    models = args.models
    if models is not None and args.study == "mutransfer":
        models = [m.strip() for m in models.split(",") if m.strip()]
    elif models is not None:
        from initsuite.studies.zoo import split_models

        models = split_models(models)
    given = {"seeds": args.seeds, "laws": args.laws, "train_steps": args.train_steps,
             "models": models, "schemes": args.schemes}  # fmt: skip
    if args.study == "kernel-shaping":
        given.update({k: getattr(args, k) for k in _KSHAPING_FLAGS})
    settings = {k: v for k, v in given.items() if v is not None}
    if "max_parameters" in args:
        settings["max_parameters"] = args.max_parameters
    if args.study in ("tutorial", "zoo", "mutransfer", "kernel-shaping"):
        settings["progress"] = False if args.quiet else None
    return settings
