"""The lessons' figures: each displays as a PNG and describes itself in one line."""

from __future__ import annotations

from fedlab.viz.lesson_figures import curves, data_or_model


def test_curves_draws_every_series_and_keeps_coinciding_ones_visible():
    fig = curves(
        {"centralised": [0.5, 0.7, 0.8], "FedAvg": [0.5, 0.7, 0.8]},
        title="accuracy",
        xlabel="round",
        ylabel="accuracy",
        x=[1, 2, 3],
        ylim=(0, 1),
    )
    assert repr(fig) == "<figure: accuracy>"
    (ax,) = fig.axes
    first, second = ax.get_lines()
    assert list(first.get_xdata()) == [1, 2, 3] and ax.get_ylim() == (0, 1)
    # the same values, yet both show: a thick translucent line under a dashed one
    assert first.get_linewidth() > second.get_linewidth() and second.get_linestyle() == "--"
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_lesson_one_figure():
    fig = data_or_model()
    assert len(fig.axes) == 2 and "federated" in repr(fig)
    assert fig._repr_png_().startswith(b"\x89PNG")
