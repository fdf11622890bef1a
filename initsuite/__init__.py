"""initsuite: a benchmarking harness for neural-network weight initialization.

>>> import initsuite
>>> initsuite.schemes.list("kaiming*")
['kaiming_normal', 'kaiming_uniform']
>>> res = initsuite.sweep(["xavier_uniform", "kaiming_normal"], ["tanh", "relu"],
...                       depths=[10, 100], widths=256, seeds=3)  # doctest: +SKIP
>>> res.cells.head()  # doctest: +SKIP
>>> runs = initsuite.train(["kaiming_normal", "xavier_normal"], "relu",
...                        depth=30).runs  # doctest: +SKIP
>>> calls = initsuite.probe(my_model, inputs, scheme="kaiming_normal",
...                         backward=True).calls  # doctest: +SKIP
>>> initsuite.compare(res, initsuite.SweepResult.load("runs/old"),
...                   gates="final_std:10%").passed  # doctest: +SKIP

The package root is lazy (PEP 562): ``import initsuite`` loads nothing heavy, and each name
below imports its stage on first use. No name here is also a submodule's name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initsuite.core.version import __version__

# public name -> the module that defines it
_API: dict[str, str] = {
    "InitsuiteError": "initsuite.core.errors",
    "SweepConfig": "initsuite.studies.sweep.config",
    "SweepResult": "initsuite.results.sweep",
    "TrainingResult": "initsuite.results.training",
    "CoordCheckResult": "initsuite.results.coordcheck",
    "MuTransferResult": "initsuite.results.mutransfer",
    "CMapResult": "initsuite.results.cmap",
    "KernelShapingResult": "initsuite.results.kernel_shaping",
    "ProbeResult": "initsuite.results.probe",
    "TutorialResult": "initsuite.results.tutorial",
    "Result": "initsuite.results.base",
    "result_class": "initsuite.results.kinds",
    "Comparison": "initsuite.results.comparison",
    "sweep": "initsuite.studies.sweep",
    "train": "initsuite.studies.training",
    "coord_check": "initsuite.studies.coordcheck",
    "probe": "initsuite.studies.probe",
    "probe_factory": "initsuite.studies.probe_factory",
    "apply": "initsuite.engine.reinit",
    "parametrize": "initsuite.engine.parametrize",
    "Parametrized": "initsuite.engine.parametrize",
    "reproduce": "initsuite.studies.reproduce",
    "tutorial_study": "initsuite.studies.tutorial",
    "isometry_study": "initsuite.studies.isometry",
    "cmap_study": "initsuite.studies.cmap",
    "frameworks_study": "initsuite.studies.frameworks",
    "zoo_study": "initsuite.studies.zoo",
    "mutransfer_study": "initsuite.studies.mutransfer",
    "kernel_shaping_study": "initsuite.studies.kernel_shaping",
    "DaskExecutor": "initsuite.studies.sweep.executors",
    "ZooModel": "initsuite.studies.zoo",
    "gains": "initsuite.theory.gains",
    "phase_diagram": "initsuite.theory.phase",
    "critical_sigma_w2": "initsuite.theory.phase",
    "compare": "initsuite.results.comparison",
    "conventions": "initsuite.schemes.convention_table",
    "write_report": "initsuite.report",
}
_SUBMODULES = ("activations", "schemes")

__all__ = ["__version__", *_SUBMODULES, *sorted(_API)]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"initsuite.{name}")
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'initsuite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static checkers and IDEs see the eager imports (re-exported: X as X)
    from initsuite import activations as activations
    from initsuite import schemes as schemes
    from initsuite.core.errors import InitsuiteError as InitsuiteError
    from initsuite.engine.parametrize import Parametrized as Parametrized
    from initsuite.engine.parametrize import parametrize as parametrize
    from initsuite.engine.reinit import apply as apply
    from initsuite.report import write_report as write_report
    from initsuite.results.base import Result as Result
    from initsuite.results.cmap import CMapResult as CMapResult
    from initsuite.results.comparison import Comparison as Comparison
    from initsuite.results.comparison import compare as compare
    from initsuite.results.coordcheck import CoordCheckResult as CoordCheckResult
    from initsuite.results.kernel_shaping import KernelShapingResult as KernelShapingResult
    from initsuite.results.kinds import result_class as result_class
    from initsuite.results.mutransfer import MuTransferResult as MuTransferResult
    from initsuite.results.probe import ProbeResult as ProbeResult
    from initsuite.results.sweep import SweepResult as SweepResult
    from initsuite.results.training import TrainingResult as TrainingResult
    from initsuite.results.tutorial import TutorialResult as TutorialResult
    from initsuite.schemes.convention_table import conventions as conventions
    from initsuite.studies.cmap import cmap_study as cmap_study
    from initsuite.studies.coordcheck import coord_check as coord_check
    from initsuite.studies.frameworks import frameworks_study as frameworks_study
    from initsuite.studies.isometry import isometry_study as isometry_study
    from initsuite.studies.kernel_shaping import kernel_shaping_study as kernel_shaping_study
    from initsuite.studies.mutransfer import mutransfer_study as mutransfer_study
    from initsuite.studies.probe import probe as probe
    from initsuite.studies.probe_factory import probe_factory as probe_factory
    from initsuite.studies.reproduce import reproduce as reproduce
    from initsuite.studies.sweep import SweepConfig as SweepConfig
    from initsuite.studies.sweep import sweep as sweep
    from initsuite.studies.sweep.executors import DaskExecutor as DaskExecutor
    from initsuite.studies.training import train as train
    from initsuite.studies.tutorial import tutorial_study as tutorial_study
    from initsuite.studies.zoo import ZooModel as ZooModel
    from initsuite.studies.zoo import zoo_study as zoo_study
    from initsuite.theory.gains import gains as gains
    from initsuite.theory.phase import critical_sigma_w2 as critical_sigma_w2
    from initsuite.theory.phase import phase_diagram as phase_diagram
