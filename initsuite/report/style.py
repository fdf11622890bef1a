"""How the report looks: the figures' style and layout helpers, and Markdown tables.

Every report (a sweep's, a probe's, an isometry study's, a comparison) draws and tabulates
through these, so they look alike. seaborn and matplotlib are imported when a figure is drawn,
never by importing this module; styling goes through context managers only (no ``sns.set()``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "COL_WRAP", "DASHES", "FLOAT_FORMAT", "PANEL_H", "PANEL_W", "at_least_a_decade", "decade_ticks",
    "facets",
    "md_code", "md_table", "md_text", "need", "new_figure", "outside_legend", "palette", "style",
]  # fmt: skip

PANEL_W, PANEL_H = 3.6, 2.8  # inches per facet
COL_WRAP = 3  # facets per row
DASHES: list[tuple[float, ...]] = [(), (5, 1.5), (1.5, 1.2), (4, 1.2, 1.2, 1.2), (8, 2)]
"""Line dashes cycled over schemes, so lines differ in grey print too."""
FLOAT_FORMAT = ".3g"
"""How tables print floats: three significant digits."""


@contextlib.contextmanager
def style() -> Iterator[Any]:
    """seaborn, with the report's style active and seaborn's pandas-3 noise muted."""
    try:
        import matplotlib as mpl
        import seaborn as sns
    except ImportError as exc:
        raise InitsuiteError(
            f"figures need matplotlib and seaborn ({exc.name} is missing): "
            "pip install 'initsuite[report]'"
        ) from None
    except ValueError as exc:  # matplotlib refuses to start, e.g. MPLBACKEND=nope
        backend = os.environ.get("MPLBACKEND")
        if backend and "backend" in str(exc):
            raise InitsuiteError(
                f"matplotlib cannot start: MPLBACKEND={backend!r} is not a backend it knows; "
                "unset MPLBACKEND or set it to agg (initsuite draws without a display)"
            ) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InitsuiteError(f"matplotlib cannot start: {first}") from None
    rc: Any = {  # Any: matplotlib types the keys as a Literal of every rcParam
        "font.size": 9,
        "axes.titlesize": 9.5,
        "axes.labelsize": 9,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        "legend.title_fontsize": 8.5,
        "figure.titlesize": 11,
        "axes.titlelocation": "left",
        # texts are drawn as written, a stored name's "$" included: seaborn measures some
        # while drawing; a figure re-enables the numeric tick labels' mathtext when it is
        # drawn (initsuite.report.plain_text)
        "text.parse_math": False,
    }
    with (
        warnings.catch_warnings(),
        sns.axes_style("whitegrid"),
        sns.plotting_context("notebook"),
        mpl.rc_context(rc),
    ):
        # seaborn 0.13.2 raises deprecation warnings under pandas 3 for some inputs (none seen
        # for the calls here with pandas 3.1); keep them from users, for seaborn's code only
        warnings.filterwarnings("ignore", category=FutureWarning, module="seaborn")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="seaborn")
        yield sns


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure (no pyplot: no backend chosen, no window) of this size in inches,
    drawing its texts as written: a ``$`` in a stored name is no mathtext
    (:mod:`initsuite.report.plain_text`)."""
    from initsuite.report.plain_text import PlainTextFigure

    return PlainTextFigure(figsize=(width, height), layout="constrained")


def palette(sns: Any, names: Sequence[str]) -> dict[str, Any]:
    """One colour per name: tab10 for up to ten, evenly spaced hues beyond."""
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def facets(fig: Figure, n: int, ncols: int) -> list[Axes]:
    """``n`` facets filling ``ncols`` columns row by row, unused slots removed."""
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.tick_params(labelbottom=True, labelleft=True)
    return list(axes[:n])


def decade_ticks(axes: Sequence[Axes]) -> None:
    """Evenly strided powers of ten (at most nine) on log y axes spanning many decades.

    matplotlib's own choice there lands on odd decades (1e-39, 1e-26, ...); over a few decades
    its labelled minor ticks read better, so those axes are left alone.
    """
    from matplotlib.ticker import FixedLocator, NullLocator

    lo, hi = axes[0].get_ylim()
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b - a <= 8:
        return
    steps = (1, 2, 3, 5, 10, 20, 25, 50, 100, 1000)
    step = next(k for k in steps if b // k - math.ceil(a / k) + 1 <= 9)  # ticks in [a, b]
    ticks = 10.0 ** np.arange(math.ceil(a / step) * step, b + 1, step)
    for ax in axes:
        ax.yaxis.set_major_locator(FixedLocator(ticks.tolist()))
        ax.yaxis.set_minor_locator(NullLocator())


def at_least_a_decade(ax: Axes) -> None:
    """Widen a log y axis whose lines span less than a factor of 10 to one decade about their
    geometric middle, so that noise about a constant (a post-LayerNorm stream's std of
    1.00002) reads as flat instead of being magnified into ticks labelled alike."""
    values = [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
    v = np.concatenate(values) if values else np.empty(0)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0 or v.max() >= 10 * v.min():
        return
    mid = math.sqrt(float(v.min()) * float(v.max()))
    ax.set_ylim(mid / math.sqrt(10), mid * math.sqrt(10))


def outside_legend(fig: Figure, handles: list[Any], title: str | None = None) -> None:
    """A frameless legend right of the panels."""
    fig.legend(handles=handles, loc="outside right center", title=title, frameon=False)


def need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise unless ``df`` (the table ``what``) has ``columns``, naming the missing ones."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InitsuiteError(f"{what} needs columns {missing}; got {list(df.columns)}")


# every character that ends a line somewhere (Markdown, a browser, str.splitlines) or is a
# control character: shown as a space, so a stored string stays on its line and in its cell
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Markdown's inline punctuation, escaped with a backslash (python-markdown and CommonMark
# both take these) where it could act: ``_`` where it could open or close emphasis (not
# inside a word), ``]`` where it could end a link's text (before ``(`` or ``[``, or last:
# what follows is not known), ``#`` where it could close a heading (a run at the end)
_PUNCTUATION = re.compile(r"[\\`*|]|_(?![^\W_])|(?<![^\W_])_|\](?=[(\[]|$)|#(?=#*\s*$)")
# written as entities (a backslash before them is no escape in python-markdown); every ``&``,
# since what follows a string on the page may complete an entity (``&#0`` and ``;``)
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _one_line(text: object) -> str:
    return _BREAKS.sub(" ", str(text))


def md_text(text: object) -> str:
    """``text`` read from a file or given by a user (a directory's name, a model's module
    class, a meta.json field) as plain Markdown text: on the page it reads as written, in a
    paragraph, a heading or a table cell. Markdown's punctuation is escaped (no emphasis,
    link, code span or column break), ``<``, ``>`` and ``&`` are written as entities (no HTML
    tag or character reference), and line breaks and control characters become spaces.

        >>> print(md_text("a|b <img src=x> *c*"))
        a\\|b &lt;img src=x&gt; \\*c\\*
    """
    s = re.sub(r"[<>&]", lambda m: _ENTITIES[m.group(0)], _one_line(text))
    return _PUNCTUATION.sub(lambda m: "\\" + m.group(0), s)


def md_code(text: object) -> str:
    """``text`` read from a file (a benchmark's name, a path, a module's name) as a Markdown
    code span, so that neither Markdown nor HTML in it takes effect on the page:
    python-markdown escapes a code span's ``<``, ``>`` and ``&`` and forms no link inside it.
    The fence is one backtick longer than the longest run of backticks in ``text`` (CommonMark's
    rule); line breaks and control characters become spaces."""
    s = _one_line(text)
    runs = [len(r) for r in re.findall(r"`+", s)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# a run of backticks, with the backslashes before it
_TICKS = re.compile(r"(\\*)(`+)")


def _cell_pipes(cell: str) -> str:
    """A table cell's Markdown whose pipes would end the cell, escaped: outside code spans
    each ``|`` not escaped yet; inside one every ``|`` (GitHub's tables split a row at a pipe
    in a code span too; the page shows it unescaped, :mod:`initsuite.report.html`)."""
    out, i = [], 0
    while (run := _TICKS.search(cell, i)) is not None:
        out.append(re.sub(r"(?<!\\)((?:\\\\)*)\|", r"\1\\|", cell[i : run.start(2)]))
        fence = run.group(2)
        close = re.compile(rf"(?<!`){fence}(?!`)").search(cell, run.end())
        if len(run.group(1)) % 2 or close is None:  # an escaped or unclosed run: text
            out.append(fence)
            i = run.end()
            continue
        out.append(fence + cell[run.end() : close.start()].replace("|", r"\|") + fence)
        i = close.end()
    out.append(re.sub(r"(?<!\\)((?:\\\\)*)\|", r"\1\\|", cell[i:]))
    return "".join(out)


def md_table(df: pd.DataFrame, markdown: Sequence[str] | bool = ()) -> str:
    """``df`` as a Markdown pipe table: floats to 3 significant digits, missing values as —,
    headers and text cells as plain text (:func:`md_text`: nothing in a stored string acts as
    Markdown or HTML), needs ``tabulate``.

    Args:
        df: the table.
        markdown: the columns whose cells are Markdown already (built with :func:`md_code` and
            :func:`md_text`): only the pipes that would end a cell are escaped
            (:func:`_cell_pipes`); ``True``: every column.
    """
    clean = df.copy()
    written = set(clean.columns) if markdown is True else set(markdown or ())
    # columns of strings only: shown as written (tabulate would read "0." or "1e5" as numbers)
    texts = [i for i, c in enumerate(clean.columns)
             if all(isinstance(v, str) or v is None or v is pd.NA for v in clean[c])]  # fmt: skip
    for c in clean.columns:
        if clean[c].dtype == object or pd.api.types.is_string_dtype(clean[c]):
            clean[c] = [
                "" if v is None or v is pd.NA
                else _cell_pipes(_one_line(v)) if c in written else md_text(v)
                for v in clean[c]
            ]  # fmt: skip
        elif pd.api.types.is_float_dtype(clean[c]) or pd.api.types.is_extension_array_dtype(
            clean[c]
        ):
            values = clean[c].astype(float)
            if values.isna().any():  # tabulate prints NaN as "nan"; None gets missingval
                clean[c] = pd.Series([None if np.isnan(v) else v for v in values], dtype=object)
    clean.columns = [md_text(c) for c in clean.columns]
    return clean.to_markdown(index=False, floatfmt=FLOAT_FORMAT, missingval="—",
                             disable_numparse=texts)  # fmt: skip
