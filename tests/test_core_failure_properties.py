"""Random programs with failures injected: each step fails remotely exactly when plain torch
fails, with the same builtin error type; a failed step leaves every store as it was (in
place, midway, along a chain of pointers, inside a plan); a step that succeeds gives
torch's values bit for bit; and nothing is ever left behind."""

from __future__ import annotations

import builtins

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fedlab as sy
from fedlab.pointer import record_of

N = 5
GOOD = torch.tensor([4, 0, 2, 1, 3])
BAD = torch.tensor([4, 0, 2, 1, 99])  # the last index is out of range: torch fails midway

# In-place steps: (name, needs an index tensor, f(x, index, ones) -> None). Those with an
# index, given BAD, write some elements before they fail; the worker must put them back.
INPLACE = {
    "scatter_": (True, lambda x, i, s: x.scatter_(0, i, s)),
    "index_fill_": (True, lambda x, i, s: x.index_fill_(0, i, 9.0)),
    "index_add_": (True, lambda x, i, s: x.index_add_(0, i, s)),
    "index_copy_": (True, lambda x, i, s: x.index_copy_(0, i, s)),
    "setitem": (True, lambda x, i, s: x.__setitem__(i, s)),
    "mul_": (False, lambda x, i, s: x.mul_(3)),
    "clamp_": (False, lambda x, i, s: x.clamp_(-2.0, 5.0)),
    "unsqueeze_bad": (False, lambda x, i, s: x.unsqueeze_(7)),  # fails: no dimension 7
    "add_bad": (False, lambda x, i, s: x.add_(x.view(N, 1))),  # fails: broadcast in place
    "fill_diagonal_bad": (False, lambda x, i, s: x.fill_diagonal_(1.0)),  # fails: 1-D
}
# Steps that make a new value: (name, f(x, y) -> tensor).
OPS = {
    "add": lambda x, y: x + y,
    "mul": lambda x, y: x * y,
    "dot": lambda x, y: x.dot(y).reshape(1).expand(N).clone(),
    "view_bad": lambda x, y: x.view(2, 3),  # fails: 5 elements
    "cat_bad": lambda x, y: torch.cat([x, y.view(N, 1)]),  # fails: dimensions differ
}


def _step_data(w, i):
    w.mul_(2)
    w.data.add_(1)
    return w[i]  # with an index out of range this fails on the worker, after the changes


action = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 1)),
    st.tuples(st.just("chain"), st.integers(0, 20)),
    st.tuples(
        st.just("inplace"), st.integers(0, 20), st.sampled_from(sorted(INPLACE)), st.booleans()
    ),
    st.tuples(st.just("op"), st.integers(0, 20), st.integers(0, 20), st.sampled_from(sorted(OPS))),
    st.tuples(st.just("plan"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("del"), st.integers(0, 20)),
    st.tuples(st.just("get"), st.integers(0, 20)),
)


def builtin_type(e: BaseException) -> type:
    """The builtin class an error is one of (``RemoteIndexError`` is an ``IndexError``)."""
    return next(c for c in type(e).__mro__ if c.__module__ == "builtins")


def snapshot(ws) -> dict:
    out = {}
    for w in ws:
        for k, v in w.objects().items():
            rec = record_of(v)
            if rec is not None:
                out[w.id, k] = (rec.location_id, rec.id_at_location)
            elif isinstance(v, torch.Tensor):
                out[w.id, k] = (v.detach().clone(),)
            else:
                out[w.id, k] = type(v).__name__
    return out


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k][0], b[k][0]) if isinstance(a[k][0], torch.Tensor) else a[k] == b[k]
        for k in a
    )


def peek(ws, ptr) -> torch.Tensor:
    """The values a pointer (or a chain of them) reaches, read from the stores (no message)."""
    by_id = {w.id: w for w in ws}
    rec = ptr.child
    obj = by_id[rec.location_id].objects()[rec.id_at_location]
    while record_of(obj) is not None:
        rec = record_of(obj)
        obj = by_id[rec.location_id].objects()[rec.id_at_location]
    return obj


def expected_objects(ws) -> set:
    live = {(p.location_id, p.id_at_location) for p in sy.live_pointers()}
    for w in ws:
        for obj in w.objects().values():
            rec = record_of(obj)
            if rec is not None:
                live.add((rec.location_id, rec.id_at_location))
    return {x for x in live if x[0] in {w.id for w in ws}}


def attempt(f):
    """``(result, None)`` or ``(None, error)``: the error without its traceback, which would
    keep the failed step's temporaries (pointers to its intermediate values) alive."""
    try:
        return f(), None
    except Exception as e:
        e.__traceback__ = e.__context__ = e.__cause__ = None
        return None, e


def failed_alike(ws, before: dict, local_error: Exception, remote_error: Exception | None) -> None:
    """The remote step failed as torch did, and (its error and temporaries gone) changed nothing."""
    event(f"failed as torch did: {type(local_error).__name__}")
    assert isinstance(remote_error, builtin_type(local_error)), remote_error
    assert same(snapshot(ws), before), f"a failed step left a change: {local_error}"


def step(ws, plan, held: list, a: tuple, gen: torch.Generator) -> None:
    """One action of a program, checked against plain torch."""
    bob, alice = ws
    kind = a[0]
    if kind == "send":
        value = torch.randn(N, generator=gen)
        held.append([value.clone().send(ws[a[1]]), value, False])
        return
    if not held:
        return
    at = a[1] % len(held)
    entry = held[at]
    ptr, value, chained = entry
    before = snapshot(ws)
    if kind == "chain":
        if not chained and ptr.location is bob:
            entry[0], entry[2] = ptr.send(alice), True  # me -> alice -> bob
        return
    if kind == "del":
        held.pop(at)
    elif kind == "get":
        got = ptr.get()
        if chained:  # a chain peels one level: the pointer to bob comes back
            entry[0], entry[2] = got, False
        else:
            assert torch.equal(got, value)
            held.pop(at)
        del got
    elif kind == "inplace":
        needs_index, f = INPLACE[a[2]]
        if needs_index and chained:
            return  # (an index on the same chain is beyond this test)
        index = (BAD if a[3] else GOOD).clone()
        local = value.clone()
        _, local_error = attempt(lambda: f(local, index, torch.ones(N)))
        loc = ptr.location
        args = (index.send(loc), torch.ones(N).send(loc)) if needs_index else (None, None)
        before = snapshot(ws)
        _, remote_error = attempt(lambda: f(ptr, *args))
        if local_error is None:
            assert remote_error is None, remote_error
            entry[1] = local
        else:
            failed_alike(ws, before, local_error, remote_error)
        del args
    elif kind == "op":
        other = held[a[2] % len(held)]
        if other[2] or chained or other[0].location is not ptr.location:
            return
        local, local_error = attempt(lambda: OPS[a[3]](value, other[1]))
        result, remote_error = attempt(lambda: OPS[a[3]](ptr, other[0]))
        if local_error is None:
            assert remote_error is None, remote_error
            held.append([result, local, False])
        else:
            failed_alike(ws, before, local_error, remote_error)
        del result, other
    elif kind == "plan":
        if chained:
            return
        index = torch.tensor([99 if a[2] else 1])
        local = value.clone()
        out, local_error = attempt(lambda: _step_data(local, index))
        i = index.send(ptr.location)
        before = snapshot(ws)
        result, remote_error = attempt(lambda: plan(ptr, i))
        if local_error is None:
            assert remote_error is None, remote_error
            entry[1] = local
            assert torch.equal(peek(ws, result), out)
        else:
            failed_alike(ws, before, local_error, remote_error)
        del i, result, out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(action, min_size=2, max_size=14), seed=st.integers(0, 2**16))
def test_failures_change_nothing_and_successes_equal_torch(workers, actions, seed):
    sy.reset()
    ws = workers[:2]  # bob and alice
    gen = torch.Generator().manual_seed(seed)
    plan = sy.Plan(_step_data).build(torch.ones(N), torch.tensor([0]))
    held: list = []  # [pointer, local value, chained?]
    for a in [("send", 0), ("send", 1), *actions]:
        step(ws, plan, held, a, gen)  # (its locals, pointers included, die when it returns)
        # Every pointer still reaches torch's values...
        assert all(torch.equal(peek(ws, entry[0]), entry[1]) for entry in held)
        # ... and the stores hold exactly what some live pointer refers to.
        assert {(w.id, k) for w in ws for k in w.objects()} == expected_objects(ws)
    held.clear()
    assert all(not w.objects() for w in ws)


def test_builtin_type_names_the_builtin_base():
    with pytest.raises(IndexError) as info:
        torch.ones(2)[5]
    assert builtin_type(info.value) is IndexError
    assert builtin_type(sy.exceptions.RemoteError("x")) in vars(builtins).values()
