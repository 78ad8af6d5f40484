"""Provenance: random programs on bob, run with two values of a private tensor.

The tracker's rules over-approximate: any object (or any fetched value) whose values
change when the private tensor changes must be marked as derived from it. And the tracker
knows exactly the objects bob holds (nothing left behind, nothing invented).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab as sy
from fedlab.exceptions import FedlabError
from fedlab.grading.provenance import Tracker, in_place, is_view
from fedlab.grading.recorder import Recorder

pytestmark = pytest.mark.filterwarnings("ignore:torch is already hooked")
from tests.support.grading import no_leftovers  # noqa: F401, E402

SECRET = "the secret"
STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["add", "mul", "flip", "view", "narrow", "sumadd", "add_", "copy_", "mul_", "get",
             "plan", "detach", "getitem_set"]
        ),
        st.integers(0, 50),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=25,
)  # fmt: skip


@sy.func2plan()
def _mix(a, b):
    a.add_(b)
    return a * b


def _run(program: list, secret: torch.Tensor):
    """Run ``program`` on bob with ``secret`` private; (store values, fetched values, recorder)."""
    hook = sy.TorchHook(torch)
    sy.reset()
    bob = sy.VirtualWorker(hook, id="bob")
    private = secret.clone()
    rec = Recorder("demo", lambda w, t: SECRET if torch.equal(t, private) else None, ("bob",))
    try:
        ptrs = [secret.clone().send(bob), torch.tensor([1.0, -2.0, 0.5, 4.0]).send(bob)]
        fetched = []
        for op, i, j in program:
            try:
                _step(ptrs, fetched, op, i, j)
            except FedlabError:
                pass  # torch refused it (e.g. overlapping memory): nothing changed, as logged
        values = {k: v.detach().clone() for k, v in bob._objects.items()}
        return values, fetched, rec, ptrs
    finally:
        rec.close()


def _step(ptrs: list, fetched: list, op: str, i: int, j: int) -> None:
    a, b = ptrs[i % len(ptrs)], ptrs[j % len(ptrs)]
    if op == "add":
        ptrs.append(a + b)
    elif op == "mul":
        ptrs.append(a * 2)
    elif op == "flip":
        ptrs.append(a.flip(0))
    elif op == "view":
        ptrs.append(a.view(2, 2).view(4))
    elif op == "narrow":
        ptrs.append(a.narrow(0, 0, 4))
    elif op == "detach":
        ptrs.append(a.detach())
    elif op == "sumadd":
        ptrs.append(a.sum() + b)
    elif op == "add_":
        a.add_(b)
    elif op == "copy_":
        a.copy_(b)
    elif op == "mul_":
        a.mul_(3)
    elif op == "getitem_set":
        a[1:3] = b[0:2]
    elif op == "plan":
        ptrs.append(_mix(a, b))
    elif op == "get" and len(ptrs) > 2:
        fetched.append(ptrs.pop(i % len(ptrs)).get())


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_whatever_depends_on_the_secret_is_marked(program):
    one, fetched_one, rec, ptrs = _run(program, torch.tensor([3.0, 1.0, 4.0, 1.5]))
    two, fetched_two, _, _ = _run(program, torch.tensor([-7.0, 2.0, 0.25, 9.0]))
    tracker = rec.tracker
    assert set(one) == set(two)
    assert {k for (w, k) in tracker.objects if w == "bob"} == set(one)  # nothing invented
    for k in one:
        if not torch.equal(one[k], two[k]):
            assert SECRET in tracker.origins(("bob", k)), (k, program)
    fetches = [t for t in tracker.transfers if t.how == "fetch"]
    assert len(fetches) == len(fetched_one)
    for t, a, b in zip(fetches, fetched_one, fetched_two):
        assert torch.equal(t.value, a)
        if not torch.equal(a, b):
            assert SECRET in t.obj.private, program
    del ptrs


def test_rules_name_in_place_operations_and_views():
    assert in_place("Tensor.add_") and in_place("Tensor.__iadd__") and in_place("backward")
    assert in_place("Tensor.grad.__set__") and in_place("Tensor.__setitem__")
    assert not in_place("Tensor.add") and not in_place("Tensor.__add__")
    assert is_view("Tensor.view") and is_view("Tensor.grad.__get__") and not is_view("Tensor.add")


def test_a_move_carries_provenance_and_a_store_read_is_a_transfer():
    hook = sy.TorchHook(torch)
    sy.reset()
    bob, alice = sy.VirtualWorker(hook, id="bob"), sy.VirtualWorker(hook, id="alice")
    secret = torch.tensor([5.0, 6.0])
    rec = Recorder("demo", lambda w, t: SECRET if torch.equal(t, secret) else None)
    try:
        x = secret.clone().send(bob)
        y = (x * 2).move(alice)
        obj = rec.tracker.get("alice", y.id_at_location)
        assert obj.private == {SECRET} and obj.born.what == "born-op"
        moves = [t for t in rec.tracker.transfers if t.how == "move"]
        assert [(t.frm, t.to) for t in moves] == [("bob", "alice")]
        assert isinstance(rec.tracker, Tracker)
    finally:
        rec.close()
