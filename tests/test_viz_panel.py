"""The live panel: exact text renderings, marks and reasons, and the subscription lifecycle."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import fedlab as sy
from fedlab import events
from fedlab.viz import panel as panel_mod


@pytest.fixture(autouse=True)
def _no_panels_left():
    yield
    panel_mod.close_all()


@pytest.fixture
def bob():
    return sy.VirtualWorker(sy.local_worker.hook, id="bob")


@pytest.fixture
def alice():
    return sy.VirtualWorker(sy.local_worker.hook, id="alice")


def test_send_then_delete_marks_new_then_deleted_with_reason(bob):
    p = sy.watch(bob)
    assert repr(p) == "fedlab panel: bob\nbob  0 objects; in 0 msgs 0 B, out 0 msgs 0 B"
    x = torch.tensor([1, 2, 3]).send(bob)
    assert repr(p) == (
        "fedlab panel: bob\n"
        "bob  1 object; in 1 msg 56 B, out 1 msg 14 B\n"
        "  +  bob:1  tensor  int64[3]  [1, 2, 3]"
    )
    p.end_cell()  # a cell ended: the mark fades
    assert repr(p).endswith("\n     bob:1  tensor  int64[3]  [1, 2, 3]")
    del x
    assert repr(p) == (
        "fedlab panel: bob\n"
        "bob  0 objects; in 2 msgs 88 B, out 2 msgs 28 B\n"
        "  x  bob:1  tensor  int64[3]  deleted: pointer me:1 died"
    )
    p.end_cell()
    assert repr(p) == "fedlab panel: bob\nbob  0 objects; in 2 msgs 88 B, out 2 msgs 28 B"


def test_chains_read_left_to_right_and_me_shows_held_pointers(bob, alice):
    me = sy.local_worker
    x = torch.tensor([1.0, 2.0]).send(bob)
    p = sy.watch(me, alice, bob)  # the initial state comes from the stores: no marks
    y = x.send(alice)
    assert repr(p) == (
        "fedlab panel: me, alice, bob\n"
        "me  1 pointer held; in 1 msg 14 B, out 1 msg 23 B\n"
        "  x  me:1 -> bob:1    pointer  float32[2]  deleted: sent to alice\n"
        "  +  me:2 -> alice:1  pointer  float32[2]\n"
        "alice  1 object; in 1 msg 42 B, out 1 msg 17 B\n"
        "  +  alice:1 -> bob:1  pointer  float32[2]\n"
        "bob  1 object; in 2 msgs 40 B, out 2 msgs 56 B\n"
        "     bob:1  tensor  float32[2]  [1, 2]"
    )
    del x, y


@pytest.mark.parametrize(
    ("action", "reason"),
    [("get", "get"), ("move", "move to alice"), ("clear", "clear_objects")],
)
def test_deletion_reasons(bob, alice, action, reason):
    x = torch.tensor([[1, 2], [3, 4]]).send(bob)
    p = sy.watch(bob)
    if action == "get":
        x.get()
    elif action == "move":
        x.move(alice)
    else:
        bob.clear_objects()
    assert repr(p).splitlines()[-1] == f"  x  bob:1  tensor  int64[2, 2]  deleted: {reason}"


def test_long_loops_list_only_the_last_deleted_objects(bob):
    p = sy.watch(bob)
    for i in range(1000):
        x = torch.tensor([i]).send(bob)
    lines = repr(p).splitlines()
    assert lines[1] == "bob  1 object; in 1999 msgs 75.5 kB, out 1999 msgs 29.6 kB"
    assert lines[2:] == [
        "  x  bob:997   tensor  int64[1]  deleted: pointer me:997 died",
        "  x  bob:998   tensor  int64[1]  deleted: pointer me:998 died",
        "  x  bob:999   tensor  int64[1]  deleted: pointer me:999 died",
        "  +  bob:1000  tensor  int64[1]  [999]",
        "  ... and 996 more deleted",
    ]
    del x


def test_rewatching_replaces_the_panel_and_does_not_grow_subscribers(bob, alice):
    before = len(events.bus.subscriptions)
    first = sy.watch(bob)
    for _ in range(5):
        sy.watch(bob)
    assert first.closed
    assert len(events.bus.subscriptions) == before + 1
    other = sy.watch(bob, alice)  # another set of workers: a second panel
    assert len(events.bus.subscriptions) == before + 2
    other.close()
    panel_mod.close_all()
    assert len(events.bus.subscriptions) == before


def test_a_forgotten_panel_unsubscribes(bob):
    before = len(events.bus.subscriptions)
    p = panel_mod.Panel(["bob"])  # not registered: only this name holds it
    assert len(events.bus.subscriptions) == before + 1
    del p
    gc.collect()
    assert len(events.bus.subscriptions) == before


def test_displayed_panel_bundle_and_live_widget_updates(bob, monkeypatch):
    monkeypatch.setattr(panel_mod, "INTERVAL", 0.0)  # paint on every event
    p = sy.watch(bob)
    bundle = p._repr_mimebundle_()
    assert set(bundle) == {
        "text/plain",
        "text/html",
        "application/vnd.jupyter.widget-view+json",
    }
    assert bundle["text/plain"] == repr(p)
    widget = p._widget
    assert 'data-worker="bob"' in widget.value and "fedlab-row" not in widget.value
    x = torch.tensor([5.0]).send(bob)
    assert 'data-ref="bob:1"' in widget.value and "fedlab-new" in widget.value
    del x
    assert "fedlab-deleted" in widget.value and "pointer me:1 died" in widget.value
    p.close()
    assert widget.comm is None  # closed with the panel


def test_paints_are_throttled_while_a_cell_runs(bob, monkeypatch):
    p = sy.watch(bob)
    p._repr_mimebundle_()
    paints = []
    monkeypatch.setattr(
        type(p._widget), "value", property(lambda s: "", lambda s, v: paints.append(v))
    )
    for i in range(200):
        x = torch.tensor([i]).send(bob)
    assert 1 <= len(paints) <= 5  # a fast loop: the first event paints, then a few per second
    p.end_cell()  # the cell ended: the final state is painted
    assert "bob:200" in paints[-1]
    del x


def test_html_is_deterministic_and_escaped(bob):
    x = torch.tensor([1.5]).send(bob)
    p = sy.watch(bob)
    assert p._repr_html_() == p._repr_html_()
    assert "<script" not in p._repr_html_()
    assert "#2563eb" in p._repr_html_()  # bob is blue in every view
    del x


def test_watch_needs_real_workers():
    with pytest.raises(TypeError, match="watch"):
        sy.watch(3)
    with pytest.raises(sy.exceptions.WorkerNotFoundError):
        sy.watch("nobody")


def test_a_watched_chain_still_cascades_its_delete(bob, alice, monkeypatch):
    monkeypatch.setattr(panel_mod, "INTERVAL", 3600.0)  # no paint until the cell ends
    p = sy.watch(sy.local_worker, bob, alice)
    p._repr_mimebundle_()
    x = torch.tensor([1.0, 2.0]).send(bob).send(alice)  # me -> alice:1 -> bob:1
    stored = bob._objects[1]
    died = []
    weakref.finalize(stored, died.append, True)
    del x, stored  # the panel must not keep alice's pointer (or bob's tensor) alive
    assert died and bob._objects == {} and alice._objects == {}
    rows = [line for line in repr(p).splitlines() if line.startswith("  ")]
    assert rows == [
        "  x  bob:1  tensor  float32[2]  deleted: pointer alice:1 died",
        "  x  alice:1 -> bob:1  pointer  float32[2]  deleted: pointer me:2 died",
    ]


def test_events_are_not_described_while_a_loop_runs(bob, monkeypatch):
    p = sy.watch(sy.local_worker, bob)
    described = []
    real = events.describe
    monkeypatch.setattr(events, "describe", lambda obj: described.append(obj) or real(obj))
    for i in range(50):
        x = torch.tensor([float(i)]).send(bob)
    assert described == []  # the views describe what they show when they are painted
    assert repr(p).splitlines()[-2:] == [
        "  +  bob:50  tensor  float32[1]  [49]",
        "  ... and 46 more deleted",
    ]
    del x


def test_a_long_loop_forgets_the_pointers_it_freed(bob, alice):
    kept = torch.tensor([1.0]).send(bob)
    p = sy.watch(sy.local_worker, bob)
    moved = kept.send(alice)  # kept is still alive, but alice's pointer owns bob:1 now
    for _ in range(100):
        x = torch.tensor([2.0]).send(bob)
    assert len(p.model.gone) <= 2  # bob:1 sent on, and the last pointer that died
    rows = [" ".join(line.split()) for line in repr(p).splitlines()]
    assert rows[1].startswith("me 2 pointers held; in 200 msgs")
    assert rows[2:5] == [
        "x me:1 -> bob:1 pointer float32[1] deleted: sent to alice",
        "+ me:2 -> alice:1 pointer float32[1]",
        "+ me:102 -> bob:101 pointer float32[1]",
    ]
    del x, moved, kept


def test_an_id_used_again_after_reset_is_listed_once(bob):
    x = torch.tensor([1]).send(bob)
    p = sy.watch(bob)
    sy.reset()
    y = torch.tensor([2]).send(bob)  # bob:1 again
    assert repr(p).splitlines()[1].startswith("bob  1 object;")
    assert repr(p).splitlines()[2:] == [
        "  +  bob:1  tensor  int64[1]  [2]",
        "  ... and 1 more deleted",
    ]
    del x, y


class _Tripwire(dict):
    """A store that records (and refuses) every read: the panel must not look inside."""

    def __init__(self, objects: dict, reads: list[str]) -> None:
        super().__init__(objects)
        self.reads = reads


def _refuse(name: str):
    def method(self: _Tripwire, *args, **kwargs):
        self.reads.append(name)
        raise AssertionError(f"the panel read the worker's store ({name})")

    return method


for _name in ("__getitem__", "__iter__", "__len__", "__contains__", "get", "items", "keys",
              "values", "copy", "pop", "__eq__"):  # fmt: skip
    setattr(_Tripwire, _name, _refuse(_name))


def test_painting_reads_no_store_only_what_events_carried(bob, monkeypatch):
    monkeypatch.setattr(panel_mod, "INTERVAL", 0.0)  # paint on every event
    kept = torch.tensor([1.5, 2.5]).send(bob)  # before the panel: read once, by load()
    p = sy.watch(sy.local_worker, bob)
    p._repr_mimebundle_()  # displayed: a live widget
    x = torch.tensor([1, 2, 3]).send(bob)
    y = torch.tensor([4, 5]).send(bob)
    del y  # deleted while watched: its dtype and shape were read as it went
    reads: list[str] = []
    store = bob._store  # (the dict behind bob._objects and bob.objects())
    monkeypatch.setattr(bob, "_store", _Tripwire(store, reads))
    p.refresh()  # a paint of the widget, then both snapshots
    text, page = repr(p), p._repr_html_()
    monkeypatch.setattr(bob, "_store", store)
    assert reads == []
    assert text.splitlines()[5:] == [
        "     bob:1  tensor  float32[2]  [1.5, 2.5]",
        "  +  bob:2  tensor  int64[3]    [1, 2, 3]",
        "  x  bob:3  tensor  int64[2]    deleted: pointer me:3 died",
    ]
    assert "[1, 2, 3]" in page and p._widget.value == page
    del x, kept


def test_the_panel_never_keeps_a_stored_tensor_alive(bob):
    p = sy.watch(bob)
    p._repr_mimebundle_()
    x = torch.tensor([1.0, 2.0]).send(bob)
    assert "[1, 2]" in repr(p)  # the preview came from the tensor itself
    died: list[bool] = []
    weakref.finalize(bob._objects[1], died.append, True)
    bob._objects.pop(1)  # gone without an event: only the panel could still hold it
    assert died == [True]
    # Still listed (only events change the model), with nothing left to describe it by.
    assert repr(p).splitlines()[-1].split() == ["+", "bob:1", "tensor"]
    x.child.garbage_collect_data = False  # its object is gone already: no delete message
    del x


def test_a_deleted_tensor_dies_at_once_and_is_listed_with_its_shape(bob):
    p = sy.watch(bob)
    x = torch.tensor([[1.0], [2.0]]).send(bob)
    died: list[bool] = []
    weakref.finalize(bob._objects[1], died.append, True)
    del x
    assert died == [True]  # freed by the delete itself, not at the panel's next paint
    last = repr(p).splitlines()[-1]
    assert last == "  x  bob:1  tensor  float32[2, 1]  deleted: pointer me:1 died"


def test_a_failing_paint_never_breaks_the_loop(bob, monkeypatch):
    monkeypatch.setattr(panel_mod, "INTERVAL", 0.0)
    p = sy.watch(bob)
    p._repr_mimebundle_()
    monkeypatch.setattr(p, "refresh", lambda: 1 / 0)  # every paint fails
    for i in range(3):
        x = torch.tensor([i]).send(bob)
    assert x.get().tolist() == [2]
    monkeypatch.undo()
    assert repr(p).splitlines()[1].startswith("bob  0 objects; in 6 msgs")
