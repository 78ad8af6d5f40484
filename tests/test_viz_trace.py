"""sy.trace: the messages of a block, as a table and as a sequence diagram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch

import fedlab as sy
from fedlab import events


def _carries_tensor(e) -> bool:
    value = getattr(e.payload, "obj", getattr(e.payload, "value", None))
    return isinstance(value, torch.Tensor)


def test_send_and_get_table(bob):
    with sy.trace() as t:
        x = torch.tensor([1, 2, 3]).send(bob)
        x.get()
    assert repr(t) == (
        "trace: 4 messages, 140 B\n"
        "#  from  to   kind   summary   bytes\n"
        "1  me    bob  send   int64[3]     56\n"
        "2  bob   me   reply  id 1         14\n"
        "3  me    bob  fetch  id 1         14\n"
        "4  bob   me   reply  int64[3]     56"
    )
    assert [(e.kind, e.sender, e.receiver) for e in t] == [
        ("send", "me", "bob"),
        ("reply", "bob", "me"),
        ("fetch", "me", "bob"),
        ("reply", "bob", "me"),
    ]


def test_move_sends_the_data_from_bob_straight_to_alice(bob, alice):
    x = torch.tensor([1.0, 2.0]).send(bob)
    with sy.trace() as t:
        x.move(alice)
    data = [(e.sender, e.receiver) for e in t if _carries_tensor(e)]
    assert data == [("bob", "alice")]  # the tensor itself never passes through me
    assert [e.kind for e in t] == ["move", "send", "reply", "reply"]
    assert t.workers == ["me", "bob", "alice"]
    fig = t.draw()
    assert repr(fig) == "<sequence diagram: 4 messages between me, bob, alice>"
    arrows = [a for a in fig.axes[0].texts if (a.get_gid() or "").startswith("message:")]
    assert len(arrows) == 4
    assert fig._repr_png_().startswith(b"\x89PNG")
    del x


def test_the_block_unsubscribes_and_long_traces_stay_short(bob):
    before = len(events.bus.subscriptions)
    with sy.trace() as t:
        assert len(events.bus.subscriptions) == before + 1
        for i in range(30):
            x = torch.tensor([i]).send(bob)
    assert len(events.bus.subscriptions) == before
    lines = repr(t).splitlines()
    assert len(t) == 118 and lines[0] == "trace: 118 messages, 3.0 kB"  # 30 sends, 29 deletes
    assert lines[32] == "...                     83 more messages"
    assert len(lines) == 2 + 30 + 1 + 5
    fig = t.draw(max_messages=10)
    assert sum(1 for a in fig.axes[0].texts if (a.get_gid() or "").startswith("message:")) == 10
    assert "fedlab-trace" in t._repr_html_()
    del x


def test_empty_trace():
    with sy.trace() as t:
        pass
    assert repr(t) == "trace: 0 messages, 0 B"
    assert repr(t.draw()) == "<sequence diagram: 0 messages between nobody>"


def test_tensors_keeps_only_the_messages_that_carried_values(bob, alice):
    from torch import nn

    x = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    with sy.trace() as t:
        x.move(alice)
        y = (x * 2).get()
    carried = [(e.sender, e.receiver, e.kind, e.summary) for e in t.tensors()]
    assert carried == [
        ("bob", "alice", "send", "float32[3]"),  # the move: straight from bob to alice
        ("alice", "me", "reply", "float32[3]"),  # the get of x * 2
    ]
    assert torch.equal(y, torch.tensor([2.0, 4.0, 6.0]))
    assert len(t.where(lambda e: e.kind == "op")) == 1 and len(t.tensors()) < len(t)

    model = nn.Linear(2, 1)
    with sy.trace() as t:
        model.send(bob)
        model.get()
    assert [e.summary for e in t.tensors()] == ["float32[1, 2]", "float32[1]"] * 2
    assert t.tensors().draw().description.startswith("sequence diagram: 4 messages")
