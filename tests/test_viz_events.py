"""The events the views are built on: one path, whoever listens."""

from __future__ import annotations

import contextlib

import pytest
import torch

import fedlab as sy
from fedlab import events
from fedlab.viz import panel as panel_mod


@pytest.fixture(autouse=True)
def _no_panels_left():
    yield
    panel_mod.close_all()


def test_a_failing_subscriber_never_reaches_the_core(bob):
    log: list = []
    with sy.subscribe(lambda e: 1 / 0), sy.subscribe(log.append):
        events.bus.publish(events.ObjectStored("bob", 7, obj=None))
        events.bus.publish(events.ObjectDeleted("bob", 7, "r"))
        x = torch.tensor([1.0]).send(bob)
        assert x.get().tolist() == [1.0]
    names = [type(e).__name__ for e in log]
    assert names == [
        "ObjectStored", "ObjectDeleted",  # the two published above
        "ObjectStored", "Exchange",  # stored on bob while it handled the send, then the send
        "ObjectDeleted", "Exchange",  # the same for the fetch
    ]  # fmt: skip


def test_an_exchange_comes_after_the_exchanges_inside_it_and_numbers_put_them_back(bob, alice):
    log: list = []
    x = torch.tensor([1.0, 2.0]).send(bob)
    with sy.subscribe(log.append):
        x.move(alice)
    exchanges = [e for e in log if type(e) is events.Exchange]
    # bob sends the data to alice while it handles the move: that exchange is complete first
    assert [(e.kind, e.sender, e.receiver) for e in exchanges] == [
        ("send", "bob", "alice"),
        ("move", "me", "bob"),
    ]
    inner, outer = exchanges
    assert outer.seq < inner.seq < inner.end < outer.end
    assert [(m.kind, m.sender, m.receiver) for m in sy.log.messages(log)] == [
        ("move", "me", "bob"),
        ("send", "bob", "alice"),
        ("reply", "alice", "bob"),
        ("reply", "bob", "me"),
    ]
    assert outer.elapsed >= inner.elapsed >= 0
    request, reply = sy.log.rows(outer)
    assert reply.elapsed == outer.elapsed and request.elapsed is None


def test_events_name_what_moved(bob):
    log: list = []
    with sy.subscribe(log.append):
        x = torch.tensor([1, 2]).send(bob)
        y = x + x
        del x
    messages = [(e.kind, e.sender, e.receiver, e.summary, e.ids) for e in sy.log.messages(log)]
    assert messages == [
        ("send", "me", "bob", "int64[2]", ()),
        ("reply", "bob", "me", "id 1", (1,)),
        ("op", "me", "bob", "add", (1, 1)),
        ("reply", "bob", "me", "stored 2", (2,)),
        ("delete", "me", "bob", "id 1", (1,)),
        ("reply", "bob", "me", "", ()),
    ]
    stored = [(e.worker, e.id, e.kind, e.summary) for e in log if type(e) is events.ObjectStored]
    assert stored == [("bob", 1, "tensor", "int64[2]"), ("bob", 2, "tensor", "int64[2]")]
    assert y.get().tolist() == [2, 4]


def test_a_panel_paints_the_same_alone_and_beside_other_subscribers(bob):
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

    alone, beside = run(False), run(True)
    assert alone == beside
    assert "bob:2  tensor  float32[1]  deleted: pointer me:2 died" in alone


def test_a_trace_reads_a_move_in_wire_order_in_process_and_on_worker_processes(workers):
    """On Ray, bob's message to alice comes back inside his reply and is numbered here."""
    bob, alice, _ = workers
    x = torch.tensor([1.0, 2.0]).send(bob)
    with sy.trace() as t:
        x.move(alice)
        assert x.get().tolist() == [1.0, 2.0]
    assert [(m.kind, m.sender, m.receiver, m.summary) for m in t] == [
        ("move", "me", "bob", "id 1 -> alice"),
        ("send", "bob", "alice", "float32[2]"),
        ("reply", "alice", "bob", "id 1"),
        ("reply", "bob", "me", "id 1"),
        ("fetch", "me", "alice", "id 1"),
        ("reply", "alice", "me", "float32[2]"),
    ]
    sent = t[1]
    assert t.nbytes == sum(m.nbytes for m in t) and sent.nbytes > 0
    assert t[3].elapsed >= t[2].elapsed >= 0  # the move's round trip holds bob's to alice


def test_a_lone_safe_subscriber_gets_the_same_events_directly(bob):
    def run(safe: bool) -> list:
        sy.reset()
        seen: list = []
        with sy.subscribe(lambda e: seen.append((type(e).__name__, getattr(e, "kind", ""))),
                          safe=safe):  # fmt: skip
            # called directly only while it is the one subscriber: never beside another
            assert (events.bus.publish != events.bus._deliver) is safe
            x = torch.tensor([1.0, 2.0]).send(bob)
            with sy.subscribe(lambda e: 1 / 0):  # a failing one beside it is guarded
                assert events.bus.publish == events.bus._deliver
                y = x + x
            del x
            assert y.get().tolist() == [2.0, 4.0]
        assert events.bus.publish == events.bus._deliver and not events.bus
        return seen

    assert run(True) == run(False) == [
        ("ObjectStored", "tensor"), ("Exchange", "send"),  # send
        ("ObjectStored", "tensor"), ("Exchange", "op"),  # add
        ("ObjectDeleted", ""), ("Exchange", "delete"),  # x dies
        ("ObjectDeleted", ""), ("Exchange", "fetch"),  # y.get()
    ]  # fmt: skip
