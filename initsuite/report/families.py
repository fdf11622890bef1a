"""Schemes grouped into families for the report's figures: one row of panels per family, at
most :data:`MAX_LINES` schemes a panel, one colour per scheme in every figure of a report.

A default study runs some twenty schemes; drawn in one panel their lines hide each other.
Each figure that draws one line per scheme lays its panels out with :func:`family_rows` (rows)
and colours them with :func:`scheme_colors`, computed from all the schemes of a report, so a
scheme has one colour everywhere and no two schemes share one: the schemes of a row differ in
hue, and a figure that draws every scheme in one panel (the interactive ones, a bar chart per
activation) still tells them apart.

A scheme's family comes from the scheme registry (``SchemeInfo.family``, shipped in
``initsuite/core/scheme_catalog.json``), grouped by :data:`REGISTRY_GROUPS`; the few names
whose registry family is not the one a reader looks for are in :data:`OVERRIDES`. Schemes the
catalog does not know (a third-party package's) fall in ``"other"``. The report never
imports the registry (:mod:`initsuite.report` reads stored tables only), so this reads the
shipped catalog.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initsuite.core import catalog
from initsuite.core.errors import InitsuiteError
from initsuite.report.style import PANEL_W, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FAMILIES", "MAX_LINES", "OVERRIDES", "REGISTRY_GROUPS", "ROW_H", "Row", "arch_dashes",
    "check_colors", "family", "family_figure", "family_rows", "key_handles", "key_legend",
    "namesake", "panel_rows", "row_legend", "scheme_colors",
]  # fmt: skip

ROW_H = 2.3  # inches per row of panels: a family's row is shorter than a lone facet
MAX_LINES = 8
"""The most schemes drawn in one panel: more than this and lines hide each other."""

FAMILIES = ("normal", "uniform", "orthogonal", "structured", "residual", "data-dependent",
            "other")  # fmt: skip
"""The report's families, in the order of their rows."""

REGISTRY_GROUPS: dict[str, str] = {
    "normal": "normal",
    "truncated_normal": "normal",
    "truncated_normal | normal | uniform": "normal",  # variance_scaling: truncated by default
    "uniform": "uniform",
    "orthogonal": "orthogonal",
    "identity": "structured",
    "constant": "structured",
    "sparse_normal": "structured",  # mostly zeros: its structure is what it is about
    "residual": "residual",
    "data_dependent": "data-dependent",
}
"""The registry's family (``SchemeInfo.family``) → the report's family."""

OVERRIDES: dict[str, str] = {
    "gpt2": "residual",  # a normal law, but its point is the scaled residual projections
}
"""Scheme names whose report family is not their registry family's group."""

# tab10 without its grey (kept for the key: theory, ×): nine hues, distinct in a panel
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf")  # fmt: skip
_MAX_SHADES = 64  # shades of each hue: 9 × 64 schemes, far beyond any study
# architectures' line styles: none of them dotted, which is the theory's
_DASHES: tuple[tuple[float, ...], ...] = ((), (6, 2), (6, 1.5, 1.5, 1.5), (11, 3), (3, 1.5))


@functools.cache
def _registry_families() -> dict[str, str]:
    return catalog.families()


def _name(scheme: str) -> str:
    """The registry name in a stored scheme label: the spec's parameters
    (``constant:val=0.01``) and a report's `` @ arch`` dropped."""
    label = scheme.split(" @ ", 1)[0].strip()
    known = _registry_families()
    parts = label.split(":")
    for n in range(len(parts), 0, -1):  # longest known prefix: "jax:variance_scaling:..."
        name = ":".join(parts[:n])
        if name in known or name in OVERRIDES:
            return name
    return parts[0]


def family(scheme: str) -> str:
    """The report family of the scheme labelled ``scheme`` (a stored spec string such as
    ``"kaiming_uniform:a=0.5"``); ``"other"`` for a scheme the catalog does not know.

    >>> family("kaiming_uniform:a=0.5"), family("lsuv"), family("my_plugin_scheme")
    ('uniform', 'data-dependent', 'other')
    """
    name = _name(scheme)
    if name in OVERRIDES:
        return OVERRIDES[name]
    return REGISTRY_GROUPS.get(_registry_families().get(name, ""), "other")


_NAMESAKES = {"lecun": "LeCun", "jax": "JAX", "tf": "TF", "he": "He"}  # as their authors write them


def namesake(scheme: str) -> str | None:
    """Who or what the scheme labelled ``scheme`` is named after, as a prose names a group of
    schemes ("the Xavier schemes"): the first word of its registry name, where the name has
    more than one; None for a one-word name (``normal``, ``orthogonal``).

    >>> namesake("xavier_uniform:gain=auto"), namesake("lecun_normal"), namesake("orthogonal")
    ('Xavier', 'LeCun', None)
    """
    words = re.split(r"[_:]", _name(scheme))
    if len(words) < 2 or not words[0]:
        return None
    return _NAMESAKES.get(words[0], words[0].capitalize())


@dataclass(frozen=True)
class Row:
    """One row of panels: ``schemes`` (at most :data:`MAX_LINES`) of ``family``, titled
    ``title`` (``"normal"``, or ``"normal 1/2"`` where the family takes two rows)."""

    family: str
    schemes: tuple[str, ...]
    title: str


def family_rows(schemes: Sequence[str], max_lines: int = MAX_LINES) -> list[Row]:
    """``schemes`` by family in :data:`FAMILIES` order, each family split into as few rows
    of at most ``max_lines`` as it needs, the rows of one family as even as can be."""
    if max_lines < 1:
        raise InitsuiteError(f"max_lines must be at least 1, got {max_lines}")
    rows: list[Row] = []
    for fam in FAMILIES:
        members = sorted(s for s in set(schemes) if family(s) == fam)
        if not members:
            continue
        n = math.ceil(len(members) / max_lines)
        size = math.ceil(len(members) / n)
        for k in range(n):
            title = fam if n == 1 else f"{fam} {k + 1}/{n}"
            rows.append(Row(fam, tuple(members[k * size : (k + 1) * size]), title))
    return rows


def panel_rows(colors: dict[str, str], present: Sequence[str],
               max_lines: int = MAX_LINES) -> list[Row]:  # fmt: skip
    """The rows of a figure that draws the schemes ``present``, laid out over all the schemes
    of ``colors`` (the report's, :func:`scheme_colors`) and then thinned to ``present``, so
    that no panel holds two schemes of one colour; rows left empty are dropped."""
    check_colors(colors, present)
    keep = set(present)
    rows = []
    for row in family_rows(sorted(colors), max_lines):
        schemes = tuple(s for s in row.schemes if s in keep)
        if schemes:
            rows.append(Row(row.family, schemes, row.title))
    return rows


def check_colors(colors: dict[str, str], present: Sequence[str]) -> None:
    """Raise unless ``colors`` (a report's, :func:`scheme_colors`) has every scheme drawn:
    a colour made up for a missing one could be another scheme's."""
    missing = sorted(set(present) - set(colors))
    if missing:
        raise InitsuiteError(f"no colour for schemes {missing}: pass colours of every scheme "
                             "drawn (scheme_colors of all the report's schemes)")  # fmt: skip


def scheme_colors(schemes: Sequence[str]) -> dict[str, str]:
    """One colour (hex) per scheme, from all the schemes of a report, the same in every
    figure drawn from that list. No two schemes share a colour, since some panels draw every
    scheme (the interactive figures, the steps-to-threshold bars); the schemes of a row of
    :func:`family_rows` (a static panel) differ in hue as well. The first nine schemes take
    tab10's hues; later ones take darker, then lighter shades of a hue their row lacks.

    >>> scheme_colors(["kaiming_normal", "xavier_uniform"])  # two families, two hues
    {'kaiming_normal': '#1f77b4', 'xavier_uniform': '#ff7f0e'}
    """
    colors: dict[str, str] = {}
    taken: set[str] = set()
    for row in family_rows(schemes):
        hues: set[int] = set()  # the row's hues: at most MAX_LINES < len(_COLORS) of them
        for scheme in row.schemes:
            hue, color = _free_color(hues, taken)
            hues.add(hue)
            taken.add(color)
            colors[scheme] = color
    return colors


def _free_color(hues: set[int], taken: set[str]) -> tuple[int, str]:
    """The first (shade, hue) whose colour is not ``taken``, of a hue not in ``hues``."""
    for shade in range(_MAX_SHADES):
        for hue, base in enumerate(_COLORS):
            color = _shade(base, shade)
            if hue not in hues and color not in taken:
                return hue, color
    raise InitsuiteError(f"more schemes than distinct colours ({len(taken)}): draw fewer")


def _shade(color: str, shade: int) -> str:
    """``color`` (hex) at lightness level ``shade``: itself at 0, then dark (0.25), light
    (0.75) and the levels between, halving the gaps (never a level twice)."""
    if shade == 0:
        return color
    import colorsys

    if shade <= 2:
        lightness = 0.25 if shade == 1 else 0.75
    else:  # the van der Corput sequence over (0.25, 0.75): 0.5, 0.375, 0.625, 0.3125, ...
        k, f, v = shade - 2, 0.5, 0.0
        while k:
            v, k, f = v + f * (k & 1), k >> 1, f / 2
        lightness = 0.25 + 0.5 * v
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, _, s = colorsys.rgb_to_hls(r, g, b)
    rgb = colorsys.hls_to_rgb(h, lightness, s)
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def arch_dashes(archs: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One line style (matplotlib dashes) per architecture, solid first, in sorted order."""
    names = sorted(set(archs))
    if len(names) > len(_DASHES):
        raise InitsuiteError(f"at most {len(_DASHES)} architectures fit one figure's line "
                             f"styles; got {len(names)}: {names}")  # fmt: skip
    return dict(zip(names, _DASHES, strict=False))


def row_legend(ax: Any, schemes: Sequence[str], colors: dict[str, str],
               labels: dict[str, str] | None = None) -> None:  # fmt: skip
    """The legend of one row of panels, right of its last panel (``ax``): each scheme's
    colour, labelled ``labels[scheme]`` (default the scheme). Constrained layout makes room
    for it, since it belongs to the axes."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[s], lw=1.8, label=(labels or {}).get(s, s))
               for s in schemes]  # fmt: skip
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False,
              borderaxespad=0.0, handlelength=1.6)  # fmt: skip


def key_handles(dashes: dict[str, Any], theory: bool, theory_label: str,
                 stopped: bool = True) -> list[Any]:  # fmt: skip
    """Handles of what every panel shares: the architectures' line styles (when several),
    the × of a stopped line and the theory's dots."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.25", dashes=d, lw=1.6, label=a) for a, d in dashes.items()]
    handles = handles if len(dashes) > 1 else []
    if stopped:
        handles.append(Line2D([], [], color="0.3", marker="x", ls="", label="all seeds stopped"))
    if theory:
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1.0, label=theory_label))
    return handles


def key_legend(fig: Figure, handles: list[Any]) -> None:
    """The legend of what is the same in every panel (line styles of the architectures, the
    theory's dots, ×), in one line below the panels."""
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
                   frameon=False)  # fmt: skip


def family_figure(
    n_rows: int, n_cols: int, xlabel: str, legend_w: float = 2.3
) -> tuple[Figure, Any]:
    """A figure of ``n_rows`` × ``n_cols`` panels, ``legend_w`` inches right of them for the
    rows' legends; the panels as a 2-D array (rows, columns). Panels share x, and y within a
    row (one family), so a family's lines are not flattened by another's range. ``xlabel``
    goes under the bottom row (not ``supxlabel``, which a legend below the panels would
    cover)."""
    fig = new_figure(PANEL_W * n_cols + legend_w, ROW_H * n_rows + 1.3)
    axes = fig.subplots(n_rows, n_cols, sharex=True, sharey="row", squeeze=False)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    return fig, axes
