"""A sequence diagram of messages: one lifeline per worker, one arrow per message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fedlab.viz import style
from fedlab.viz.figure import FedlabFigure, new_figure

GAP_X = 2.3  # between lifelines (data units)
GAP_Y = 0.6  # between messages


def _label(e: Any) -> str:
    summary = f" {e.summary}" if e.summary else ""
    return f"{e.kind}{summary} · {style.nbytes(e.nbytes)}"


def sequence_diagram(events: Sequence[Any], workers: list[str], max_messages: int) -> FedlabFigure:
    """Draw ``events`` (MessageEvents) between ``workers`` as a matplotlib Figure."""
    shown = list(events)[:max_messages]
    hidden = len(events) - len(shown)
    cols = {w: k * GAP_X for k, w in enumerate(workers)}
    rows = len(shown) + (1 if hidden else 0)
    n = len(events)
    who = ", ".join(workers) or "nobody"
    fig = new_figure(
        max(3.6, 1.6 + 1.9 * len(workers)),
        1.0 + 0.36 * max(rows, 1),
        f"sequence diagram: {n} message{'' if n == 1 else 's'} between {who}",
    )
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
    ax.set_axis_off()
    bottom = -(rows + 0.6) * GAP_Y
    for w, x in cols.items():
        c = style.colour(w)
        ax.plot([x, x], [0, bottom], color=c, lw=1.2, alpha=0.35, zorder=0, gid=f"lifeline:{w}")
        ax.text(
            x, 0.1, w, ha="center", va="bottom", fontsize=10, fontweight="bold", color="white",
            bbox={"boxstyle": "round,pad=0.35", "fc": c, "ec": c}, gid=f"worker:{w}",
        )  # fmt: skip
    for i, e in enumerate(shown, 1):
        y = -i * GAP_Y
        x0, x1 = cols[e.sender], cols[e.receiver]
        reply = e.kind in ("reply", "error")
        c = "#b91c1c" if e.kind == "error" else style.colour(e.sender)
        ax.annotate(
            "", xy=(x1, y), xytext=(x0, y), gid=f"message:{i}",
            arrowprops={
                "arrowstyle": "-|>", "color": c, "lw": 1.0 if reply else 1.6,
                "linestyle": (0, (3, 2)) if reply else "-", "shrinkA": 0, "shrinkB": 2,
            },
        )  # fmt: skip
        ax.text(
            (x0 + x1) / 2, y + 0.05, _label(e), ha="center", va="bottom", fontsize=7.5,
            color="#6b7280" if reply else "#111827",
            bbox={"fc": "white", "ec": "none", "pad": 0.4, "alpha": 0.85},
        )  # fmt: skip
        ax.text(
            min(cols.values()) - 0.35,
            y,
            str(i),
            ha="right",
            va="center",
            fontsize=7,
            color="#9ca3af",
        )
    if hidden:
        ax.text(
            sum(cols.values()) / max(len(cols), 1), -(len(shown) + 1) * GAP_Y,
            f"... and {hidden} more messages", ha="center", fontsize=8, color="#6b7280",
        )  # fmt: skip
    left = min(cols.values(), default=0) - 0.8
    right = max(cols.values(), default=0) + 0.8
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, 0.6)
    return fig
