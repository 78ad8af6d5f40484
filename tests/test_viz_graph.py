"""sy.draw: workers as boxes, pointers as arrows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import fedlab as sy
from fedlab.viz.graph import collect


def _gids(fig, prefix):
    return sorted(
        p.get_gid() for p in fig.axes[0].patches if (p.get_gid() or "").startswith(prefix)
    )


def test_a_chain_reads_left_to_right(bob, alice):
    x = torch.tensor([1, 2, 3]).send(bob).send(alice)
    boxes, arrows = collect((x,))
    assert list(boxes) == ["me", "alice", "bob"]
    assert boxes == {
        "me": {2: "-> alice:1"},
        "alice": {1: "-> bob:1"},
        "bob": {1: "int64[3]"},
    }
    assert arrows == [("me:2", "alice:1"), ("alice:1", "bob:1")]
    fig = sy.draw(x)
    assert repr(fig) == "<pointer graph: 3 workers, 2 pointers>"
    assert _gids(fig, "worker:") == ["worker:alice", "worker:bob", "worker:me"]
    assert _gids(fig, "pointer:") == ["pointer:alice:1", "pointer:me:2"]
    del x


def test_everything_alive_when_no_pointer_is_given(bob, alice):
    x = torch.tensor([1.0]).send(bob)
    y = torch.tensor([2.0]).send(alice)
    z = torch.tensor([3.0]).send(bob).send(alice)
    fig = sy.draw()
    assert repr(fig) == "<pointer graph: 3 workers, 4 pointers>"
    assert len(_gids(fig, "worker:")) == 3
    assert len(_gids(fig, "pointer:")) == 4
    assert fig._repr_png_().startswith(b"\x89PNG")
    del x, y, z


def test_a_model_and_bad_arguments(bob):
    model = torch.nn.Linear(2, 1).send(bob)
    fig = sy.draw(model)
    assert repr(fig) == "<pointer graph: 2 workers, 2 pointers>"
    with pytest.raises(TypeError, match="draw"):
        sy.draw(torch.tensor([1]))
    del model


def test_no_empty_band_below_a_chain_whose_arrows_skip_no_column(bob, alice):
    x = torch.tensor([1, 2, 3]).send(bob).send(alice)
    near = sy.draw(x)  # me -> alice -> bob: neighbours only
    bottom, _ = near.axes[0].get_ylim()
    lowest = min(p.get_y() for p in near.axes[0].patches if hasattr(p, "get_y"))
    assert lowest - bottom <= 0.35  # the boxes reach (almost) the bottom of the figure
    far = sy.draw(x, torch.tensor([4]).send(bob))  # me -> bob skips alice's column: room
    assert far.axes[0].get_ylim()[0] < bottom
