"""``initsuite.reproduce(name, ...)``: every study the CLI's ``initsuite reproduce`` runs, by
name, with that study's own settings.

    >>> from initsuite.studies.reproduce import STUDIES
    >>> sorted(STUDIES)
    ['frameworks', 'isometry', 'kernel-shaping', 'mutransfer', 'tutorial', 'zoo']
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean, unknown

__all__ = ["STUDIES", "reproduce"]

# study name -> (module, function): imported when run (each study's imports are heavy)
STUDIES: dict[str, tuple[str, str]] = {
    "tutorial": ("initsuite.studies.tutorial", "tutorial_study"),
    "isometry": ("initsuite.studies.isometry", "isometry_study"),
    "frameworks": ("initsuite.studies.frameworks", "frameworks_study"),
    "zoo": ("initsuite.studies.zoo", "zoo_study"),
    "mutransfer": ("initsuite.studies.mutransfer", "mutransfer_study"),
    "kernel-shaping": ("initsuite.studies.kernel_shaping", "kernel_shaping_study"),
}


def reproduce(name: str = "tutorial", /, **settings: Any) -> Any:
    """Run the reproduced study ``name`` and return its Result (not saved).

    Args:
        name: ``"tutorial"`` (Dellinger's claims over many seeds: :func:`~initsuite.studies.
            tutorial.tutorial_study`), ``"isometry"`` (Jacobian spectra:
            :func:`~initsuite.studies.isometry.isometry_study`), ``"frameworks"`` (each
            framework's convention on deep nets and in training:
            :func:`~initsuite.studies.frameworks.frameworks_study`) or ``"zoo"`` (real
            architectures as built and re-drawn: :func:`~initsuite.studies.zoo.zoo_study`),
            ``"mutransfer"`` (the best learning rate across widths and depths under each
            parametrization: :func:`~initsuite.studies.mutransfer.mutransfer_study`) or
            ``"kernel-shaping"`` (which deep vanilla MLPs train, DKS's and TAT's among them:
            :func:`~initsuite.studies.kernel_shaping.kernel_shaping_study`).
        **settings: that study's keyword arguments (``seeds=``, ``laws=``, ``models=``...);
            one it does not take is refused, naming the nearest one it does.

    Returns:
        The study's Result: ``TutorialResult``, ``IsometryResult``, ``FrameworksResult``,
        ``ProbeResult`` (the zoo), ``MuTransferResult`` or ``KernelShapingResult``;
        ``.save(dir)`` writes it.

    Example:
        >>> import initsuite
        >>> initsuite.reproduce("tutorial", seeds=2).claims  # doctest: +SKIP
    """
    if not isinstance(name, str):
        raise InitsuiteTypeError(f"study name must be a string, got {name!r}")
    if name not in STUDIES:
        raise InitsuiteError(unknown("study", name, list(STUDIES)))
    module, attr = STUDIES[name]
    study = getattr(importlib.import_module(module), attr)
    accepted = [p.name for p in inspect.signature(study).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    for key in settings:
        if key not in accepted:
            near = did_you_mean(key, accepted)
            hint = f"; did you mean {near!r}?" if near else ""
            raise InitsuiteError(
                f"reproduce {name!r} takes no setting {key!r}{hint} (it takes "
                f"{', '.join(accepted)})"
            )
    return study(**settings)
