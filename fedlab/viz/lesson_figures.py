"""The lessons' figures, so that a lesson cell says what it plots, not how.

Built on ``FedlabFigure`` (no pyplot state): each displays once, as a PNG, and its text
repr is a one-line description that nbval compares.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedlab.viz.figure import FedlabFigure, new_figure

# Distinct at a glance and when two curves coincide: the later series are drawn
# thinner and dashed on top of the earlier ones, so neither hides the other.
_STYLES = [
    {"marker": "o", "lw": 3.0, "alpha": 0.55, "ms": 6},
    {"marker": "x", "lw": 1.5, "ls": "--", "ms": 7},
    {"marker": "+", "lw": 1.5, "ls": ":", "ms": 9},
    {"marker": "s", "lw": 1.2, "ls": "-.", "ms": 4},
]


def curves(
    series: dict[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    x: Sequence[float] | None = None,
    log: bool = False,
    ylim: tuple[float, float] | None = None,
    size: tuple[float, float] = (6.0, 3.0),
) -> FedlabFigure:
    """Line plots of named series against step numbers (or ``x``), with a legend."""
    fig = new_figure(*size, f"figure: {title}")
    ax = fig.add_subplot()
    for k, (label, values) in enumerate(series.items()):
        xs = list(x) if x is not None else list(range(len(values)))
        ax.plot(xs, list(values), label=label, zorder=2 + k, **_STYLES[k % len(_STYLES)])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if log:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def data_or_model() -> FedlabFigure:
    """Lesson 1: centralised training moves the data; federated learning moves the model."""
    owners = {"phone": 1.5, "hospital": 5.0, "car": 8.5}
    server_box = {"boxstyle": "round", "fc": "#dde8f5", "ec": "#3366aa"}
    owner_box = {"boxstyle": "round", "fc": "#f5ecd9", "ec": "#aa7a22"}
    ways = [
        ("Centralised: the data travels", [("raw data", "#aa3333", "up")]),
        (
            "Federated: the model travels",
            [("model", "#337733", "down"), ("update", "#aa3333", "up")],
        ),
    ]
    fig = new_figure(9, 3.4, "figure: centralised training moves the data, federated the model")
    for k, (title, flows) in enumerate(ways):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.set(title=title, xlim=(0, 10), ylim=(0, 6.2))
        ax.axis("off")
        ax.text(5, 5.3, "server", ha="center", va="center", bbox=server_box)
        for name, x in owners.items():
            ax.text(x, 0.8, f"{name}\n(its data)", ha="center", va="center", bbox=owner_box)
            for i, (_, colour, direction) in enumerate(flows):
                shift = 0.35 * (i - (len(flows) - 1) / 2)  # side by side when two travel
                low, high = (x + shift, 1.5), (5 + shift / 2, 4.8)
                start, end = (low, high) if direction == "up" else (high, low)
                ax.annotate("", xy=end, xytext=start,
                            arrowprops={"arrowstyle": "-|>", "color": colour})  # fmt: skip
        for label, colour, _ in flows:
            ax.plot([], [], color=colour, label=label)
        ax.legend(loc="upper left", frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["curves", "data_or_model"]
