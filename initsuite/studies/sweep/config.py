"""The sweep configuration: a typed, frozen grid, validated before any compute is spent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from initsuite import activations
from initsuite import schemes as schemes_mod  # ``build`` has a parameter named schemes
from initsuite.activations import Activation
from initsuite.core import validate
from initsuite.core.bias import bias_law, stored_bias_law
from initsuite.core.devices import check_device, parse_dtype
from initsuite.core.errors import Arg, InitsuiteError
from initsuite.core.inputs import input_law
from initsuite.engine.archs import Arch, parse_arch, registered
from initsuite.results.sweep import LEGACY_BIAS

__all__ = ["BIAS_LAWS", "SweepConfig"]

BIAS_LAWS: tuple[str, ...] = ("torch_default",)
"""The bias laws sweeps draw (:mod:`initsuite.core.bias`); None: bias-free layers."""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _expand_for(items: list[str], archs: Sequence[Arch]) -> tuple[str, ...]:
    """Expand ``all`` and wildcards into the schemes that fit every arch of the grid (the
    weights' rank, and the schemes' own ``archs``); explicit specs pass through (and are
    checked against the archs later, with a clear error)."""
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not (
            item.strip() == "all" or any(c in item for c in "*?[")
        ):
            out.append(item)
            continue
        per_arch = [set(schemes_mod.expand([item], rank=a.weight_rank, arch=a.name))
                    for a in archs]  # fmt: skip
        first = schemes_mod.expand([item], rank=archs[0].weight_rank, arch=archs[0].name)
        out.extend(spec for spec in first if all(spec in hits for hits in per_arch))
    return tuple(out)


def _parse_archs(specs: Iterable[str]) -> list[Arch]:
    archs = [parse_arch(a) for a in specs]
    if not archs:
        raise InitsuiteError("no arch given")
    return archs


def _check_ranks(objs: Sequence[schemes_mod.Scheme], archs: Sequence[Arch]) -> None:
    """Every scheme applies to the weights of every arch."""
    for arch in archs:
        for s in objs:
            arch.check_scheme(s)


def _check_supported(archs: Sequence[Arch], options: dict[str, object]) -> None:
    """``options`` set to True (backward, jacobian) are computed only for the archs that
    support them (the MLP)."""
    for name, value in options.items():
        other = [arch.spec for arch in archs if not arch.supports(name)]
        if value is True and other:
            able = " or ".join(repr(n) for n in registered() if parse_arch(n).supports(name))
            raise InitsuiteError(
                f"{name} statistics are computed for arch {able} only, not {other[0]!r}: "
                "sweep it without ", Arg(name, True),
            )  # fmt: skip


def _check_thresholds(explode_at: object, vanish_at: object) -> None:
    """Positive multiples of the input std (or None), ``vanish_at`` below ``explode_at``."""
    bounds = {}
    for name, value in (("explode_at", explode_at), ("vanish_at", vanish_at)):
        if value is not None:
            bounds[name] = validate.number(name, value, 0, open_low=True)
    if len(bounds) == 2 and bounds["vanish_at"] >= bounds["explode_at"]:
        raise InitsuiteError(f"vanish_at ({vanish_at}) must be below explode_at ({explode_at})")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep grid: the product of every list below is the set of cells.

    Schemes and activations are stored as canonical spec strings, seeds as explicit values
    (``seeds=3`` means seeds 0, 1, 2). Thresholds ``explode_at``/``vanish_at`` are multiples of
    the input's std that also count as divergence (None: only overflow/underflow do).
    ``inputs``: the input batch's law (:mod:`initsuite.core.inputs`): ``"gaussian"``, or
    ``"normalized"`` (each example at q = 1, as Deep Kernel Shaping assumes).
    ``shared``: serve schemes that are scalings of one base draw from a single draw per layer
    (common random numbers; see :mod:`initsuite.engine`); False gives every scheme its own.
    """

    schemes: tuple[str, ...]
    activations: tuple[str, ...]
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    batch: int = 16
    seeds: tuple[int, ...] = (0,)
    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    archs: tuple[str, ...] = ("mlp",)
    bias: str | None = None
    inputs: str = "gaussian"
    explode_at: float | None = None
    vanish_at: float | None = None
    timing: bool = True
    timing_repeats: int = 7
    shared: bool = True
    pair_cosine: float | None = 0.5
    jacobian: bool = False
    backward: bool = False
    # the specs above, resolved once (build passes the archs it parsed): what the sweep runs
    _scheme_objs: tuple[schemes_mod.Scheme, ...] = field(default=(), repr=False, compare=False)
    _act_objs: tuple[Activation, ...] = field(default=(), repr=False, compare=False)
    _arch_objs: tuple[Arch, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(
        cls,
        schemes: str | Iterable[str],
        activations: str | Iterable[str],
        depths: int | Iterable[int],
        widths: int | Iterable[int],
        batch: int = 16,
        seeds: int | Iterable[int] = 1,
        devices: str | Iterable[str] = ("cpu",),
        dtypes: str | Iterable[str] = ("float32",),
        archs: str | Iterable[str] = "mlp",
        bias: str | None = None,
        inputs: str = "gaussian",
        explode_at: float | None = None,
        vanish_at: float | None = None,
        timing: bool = True,
        timing_repeats: int = 7,
        shared: bool = True,
        pair_cosine: float | None = 0.5,
        jacobian: bool = False,
        backward: bool = False,
    ) -> SweepConfig:
        """Normalise user input (single values or lists, ``seeds`` as a count) and validate."""
        seed_values = validate.seeds(seeds)
        arch_objs = _parse_archs(validate.as_tuple(archs))
        return cls(
            schemes=_expand_for(list(validate.as_tuple(schemes)), arch_objs),
            activations=validate.as_tuple(activations),
            depths=validate.as_tuple(depths),
            widths=validate.as_tuple(widths),
            batch=batch,
            seeds=seed_values,
            devices=validate.as_tuple(devices),
            dtypes=validate.as_tuple(dtypes),
            archs=tuple(a.spec for a in arch_objs),
            bias=bias,
            inputs=inputs,
            explode_at=explode_at,
            vanish_at=vanish_at,
            timing=timing,
            timing_repeats=timing_repeats,
            shared=shared,
            pair_cosine=pair_cosine,
            jacobian=jacobian,
            backward=backward,
            _arch_objs=tuple(arch_objs),
        )

    def __post_init__(self) -> None:
        # frozen: the checked, canonical values are set through object.__setattr__
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        given = self._arch_objs  # build's, where they are still these archs (not replaced)
        same = [a.spec for a in given] == list(self.archs)
        parsed = given if given and same else _parse_archs(self.archs)
        archs = tuple({a.spec: a for a in parsed}.values())
        set_("archs", tuple(a.spec for a in archs))
        if not self.schemes:
            raise InitsuiteError("no schemes given")
        if not self.activations:
            raise InitsuiteError("no activations given")
        objs = tuple(schemes_mod.get(s) for s in self.schemes)
        _check_ranks(objs, archs)
        _check_supported(archs, {"backward": self.backward, "jacobian": self.jacobian})
        acts = tuple(activations.get(a) for a in self.activations)
        for s in objs:
            for a in acts:
                s.resolve(a)  # a missing required parameter or an unresolvable auto fails here
        objs = tuple({s.spec: s for s in objs}.values())
        acts = tuple({a.spec: a for a in acts}.values())
        set_("_scheme_objs", objs)
        set_("_act_objs", acts)
        set_("_arch_objs", archs)
        set_("schemes", tuple(s.spec for s in objs))
        set_("activations", tuple(a.spec for a in acts))
        set_("depths", validate.counts("depths", self.depths))
        for a in acts:  # a dks:/tat: spec without depth is solved per depth: a target out of
            for depth in self.depths if a.needs_depth else ():  # reach fails here, unwritten
                a.at_depth(depth)
        set_("widths", validate.counts("widths", self.widths))
        set_("batch", validate.count("batch", self.batch))
        set_("seeds", validate.seeds(self.seeds))  # an int here is a count too
        set_("dtypes", _unique(parse_dtype(d) for d in self.dtypes))
        set_("devices", _unique(check_device(d) for d in self.devices))
        set_("bias", bias_law(self.bias, BIAS_LAWS, "sweep"))
        set_("inputs", input_law(self.inputs))
        for name in ("shared", "timing", "jacobian", "backward"):
            validate.flag(name, getattr(self, name))
        _check_thresholds(self.explode_at, self.vanish_at)
        if self.pair_cosine is not None:
            validate.number("pair_cosine", self.pair_cosine, -1.0, 1.0)
        set_("timing_repeats", validate.count("timing_repeats", self.timing_repeats))

    @property
    def scheme_objects(self) -> tuple[schemes_mod.Scheme, ...]:
        """The schemes of :attr:`schemes`, looked up once (in the same order)."""
        return self._scheme_objs

    @property
    def activation_objects(self) -> tuple[Activation, ...]:
        """The activations of :attr:`activations`, parsed once (in the same order)."""
        return self._act_objs

    @property
    def arch_objects(self) -> tuple[Arch, ...]:
        """The architectures of :attr:`archs`, parsed once (in the same order)."""
        return self._arch_objs

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepConfig:
        """The configuration :meth:`to_dict` wrote (what distributed workers rebuild)."""
        return cls.build(
            d["schemes"], d["activations"], d["depths"], d["widths"], batch=d["batch"],
            seeds=list(d["seeds"]), devices=d["devices"], dtypes=d["dtypes"],
            archs=d.get("archs", ["mlp"]), bias=stored_bias_law(d["bias"], LEGACY_BIAS),
            inputs=d.get("inputs", "gaussian"),
            explode_at=d["explode_at"],
            vanish_at=d["vanish_at"], timing=d["timing"], timing_repeats=d["timing_repeats"],
            shared=d["shared"], pair_cosine=d["pair_cosine"], jacobian=d["jacobian"],
            backward=d.get("backward", False),
        )  # fmt: skip

    @property
    def torch_bias(self) -> bool:
        """Whether the layers draw nn.Linear's default bias (law ``"torch_default"``)."""
        return self.bias == "torch_default"

    @property
    def n_cells(self) -> int:
        return (
            len(self.schemes) * len(self.activations) * len(self.depths) * len(self.widths)
            * len(self.seeds) * len(self.devices) * len(self.dtypes) * len(self.archs)
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        """The configuration as plain JSON-able values (for meta.json)."""
        return {
            "schemes": list(self.schemes),
            "activations": list(self.activations),
            "depths": list(self.depths),
            "widths": list(self.widths),
            "batch": self.batch,
            "seeds": list(self.seeds),
            "devices": list(self.devices),
            "dtypes": list(self.dtypes),
            "archs": list(self.archs),
            "bias": self.bias,
            "inputs": self.inputs,
            "explode_at": self.explode_at,
            "vanish_at": self.vanish_at,
            "timing": self.timing,
            "timing_repeats": self.timing_repeats,
            "shared": self.shared,
            "pair_cosine": self.pair_cosine,
            "jacobian": self.jacobian,
            "backward": self.backward,
        }
