"""The events the views are built on: one call per event, and direct handlers for a lone panel."""

from __future__ import annotations

import contextlib

import pytest
import torch

import fedlab as sy
from fedlab import events
from fedlab.viz import panel as panel_mod

HOT = ("publish_message", "publish_stored", "publish_deleted")


def _routed_to_events() -> bool:
    """Whether the ``publish_*`` functions build events (rather than call a panel directly)."""
    return [getattr(events, name).__name__ for name in HOT] == ["_message", "_stored", "_deleted"]


@pytest.fixture(autouse=True)
def _no_panels_left():
    yield
    panel_mod.close_all()


def test_publish_functions_make_the_same_events_as_the_constructors():
    log: list = []
    payload = object()
    with sy.subscribe(log.append):
        events.publish_message("send", "me", "bob", 64, payload, 12.5, 0.25)
        events.publish_stored("bob", 3, payload)
        events.publish_deleted("bob", 3, "get")
    built = [
        events.MessageEvent("send", "me", "bob", 64, payload=payload, time=12.5, elapsed=0.25),
        events.ObjectStored("bob", 3, obj=payload),
        events.ObjectDeleted("bob", 3, "get"),
    ]
    assert [type(e) for e in log] == [type(e) for e in built]
    for got, want in zip(log, built, strict=True):
        for name in type(want).__slots__:  # every slot filled, as the constructor fills it
            assert getattr(got, name) == getattr(want, name), name


def test_a_failing_subscriber_never_reaches_the_core(bob):
    log: list = []
    with sy.subscribe(lambda e: 1 / 0), sy.subscribe(log.append):
        events.publish_message("send", "me", "bob", 1, None, 0.0)
        events.publish_stored("bob", 7, None)
        events.publish_deleted("bob", 7, "r")
        x = torch.tensor([1.0]).send(bob)
        assert x.get().tolist() == [1.0]
    names = [type(e).__name__ for e in log]
    assert names == [
        "MessageEvent", "ObjectStored", "ObjectDeleted",  # the three published above
        "MessageEvent", "ObjectStored", "MessageEvent",  # send, stored on bob, reply
        "MessageEvent", "ObjectDeleted", "MessageEvent",  # fetch, deleted on bob, reply
    ]  # fmt: skip


def test_a_lone_panel_is_called_directly_and_shares_the_bus_otherwise(bob):
    assert _routed_to_events()
    p = sy.watch(bob)
    direct = p._subscription.direct
    assert events.publish_message is direct.message  # no event object is built
    assert events.publish_deleted is direct.deleted
    with sy.subscribe(lambda e: None):  # a second subscriber: events for everyone
        assert _routed_to_events()
    assert events.publish_stored is direct.stored
    p.close()
    assert _routed_to_events()


def test_direct_and_event_paths_paint_the_same(bob):
    def run(extra_subscriber: bool) -> str:
        sy.reset()
        p = sy.watch(sy.local_worker, bob)
        with sy.subscribe(lambda e: None) if extra_subscriber else contextlib.nullcontext():
            a = torch.tensor([1, 2]).send(bob)
            b = torch.tensor([3.0]).send(bob)
            c = a + a
            del b
            assert c.get().tolist() == [2, 4]
        text = repr(p)
        p.close()
        del a
        return text

    direct, objects = run(False), run(True)
    assert direct == objects
    assert "bob:2  tensor  float32[1]  deleted: pointer me:2 died" in direct


def test_direct_handlers_build_the_same_model_as_events(bob):
    class Delete:  # a message's payload, as the panel reads it: it names an id
        id = 1

    x, y = torch.tensor([1.0, 2.0]), torch.tensor([[3]])  # what bob "stores"

    def run(extra_subscriber: bool) -> str:
        p = sy.watch(sy.local_worker, bob)
        with sy.subscribe(lambda e: None) if extra_subscriber else contextlib.nullcontext():
            assert _routed_to_events() is extra_subscriber
            events.publish_message("send", "me", "bob", 64, None, 0.0)
            events.publish_stored("bob", 1, x)
            events.publish_message("reply", "bob", "me", 10, None, 0.0, 0.001)
            events.publish_stored("bob", 2, y)
            events.publish_message("delete", "me", "bob", 12, Delete(), 0.0)
            events.publish_deleted("bob", 1, "pointer me:1 died")
        text = repr(p)
        p.close()
        return text

    direct, objects = run(False), run(True)
    assert direct == objects
    assert direct.splitlines()[2:] == [
        "bob  1 object; in 2 msgs 76 B, out 1 msg 10 B",
        "  x  bob:1  tensor  float32[2]   deleted: pointer me:1 died",
        "  +  bob:2  tensor  int64[1, 1]  [[3]]",
    ]
