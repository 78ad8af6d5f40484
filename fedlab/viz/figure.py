"""A matplotlib Figure that displays itself (no pyplot state) and says what it shows.

Figures are built with ``matplotlib.figure.Figure`` directly, never pyplot, so a
notebook shows each one exactly once and tests need no display. The text repr is
a one-line description, deterministic for nbval.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class FedlabFigure(Figure):
    """A figure with a meaningful text repr and a PNG repr for notebooks."""

    description = "fedlab figure"

    def __repr__(self) -> str:
        return f"<{self.description}>"

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
        return buf.getvalue()


def new_figure(width: float, height: float, description: str) -> FedlabFigure:
    """An empty figure of the given size in inches, described by ``description``."""
    fig = FedlabFigure(figsize=(width, height), dpi=100)
    fig.description = description
    return fig
