"""Figures that draw their text as written.

matplotlib reads a string holding an even number of unescaped ``$`` as mathtext: a stored name
(a scheme, an activation, a model, a directory) such as ``a$b$c`` would be drawn as math, and
``$^$`` or ``x$\\foo$`` would make drawing the figure raise. Names are data, so every text of a
report's figure is drawn as written: titles, legends, axis labels, annotations and tick labels
that name things. initsuite writes no mathtext of its own (σ_w², χ₁ are Unicode); only the
tick labels and offset texts that matplotlib's numeric formatters write (``10⁻³`` on a log
axis) are mathtext.

Two parts make that hold for every figure: :func:`initsuite.report.style.style` draws with
``text.parse_math`` off (seaborn measures tick labels while it draws a heatmap), and
:func:`initsuite.report.style.new_figure` makes every figure a :class:`PlainTextFigure`, which
sorts its texts again when it is drawn. Imports matplotlib: imported when a figure is made.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import LogFormatter, ScalarFormatter

__all__ = ["PlainTextFigure", "plain_text"]

# the formatters that write mathtext of their own (10⁻³ on a log axis, ×10⁴ as offset); any
# other may hold the caller's strings: set_yticks(..., labels) keeps them in a FuncFormatter,
# seaborn's heatmap in a FixedFormatter, a categorical axis in a StrCategoryFormatter
_MATH = (ScalarFormatter, LogFormatter)


class PlainTextFigure(Figure):
    """A Figure whose texts are sorted by :func:`plain_text` each time it is drawn."""

    def draw(self, renderer: Any) -> None:
        # before Figure.draw: its layout engine measures the texts, and measuring parses them
        plain_text(self)
        super().draw(renderer)


def plain_text(fig: Figure) -> None:
    """Draw every text of ``fig`` as written (``Text.set_parse_math(False)``) but the tick
    labels and offset texts of axes whose formatter is one of matplotlib's numeric ones:
    those are mathtext (``set_parse_math(True)``). Idempotent."""
    math: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            major, minor = axis.get_major_formatter(), axis.get_minor_formatter()
            ticks = [*(axis.get_major_ticks() if isinstance(major, _MATH) else ()),
                     *(axis.get_minor_ticks() if isinstance(minor, _MATH) else ())]  # fmt: skip
            math.update(id(t) for tick in ticks for t in (tick.label1, tick.label2))
            if isinstance(major, _MATH):
                math.add(id(axis.offsetText))
    for text in fig.findobj(Text):
        text.set_parse_math(id(text) in math)
