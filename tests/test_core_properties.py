"""Property tests: random programs equal local torch, and nothing is ever left behind."""

from __future__ import annotations

import gc

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedlab as sy
from fedlab.exceptions import PointerChainError

UNARY = {
    "neg": lambda x: -x,
    "exp": torch.exp,
    "relu": torch.relu,
    "sigmoid": lambda x: x.sigmoid(),
    "square": lambda x: x * x,
    "sum0": lambda x: x.sum(dim=0, keepdim=True).expand(2, 2),
    "t": lambda x: x.t(),
    "tanh": torch.tanh,
    "abs_": lambda x: x.abs(),
    "clamp": lambda x: x.clamp(-1.0, 1.0),
}
BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "mm": lambda x, y: x.mm(y),
    "max": lambda x, y: torch.maximum(x, y),
    "cat_sum": lambda x, y: torch.cat([x, y]).view(2, 2, 2).sum(0),
    "add_scaled": lambda x, y: x.add(y, alpha=0.5),
}

floats = st.floats(-3, 3, allow_nan=False, width=32)
matrix = st.lists(floats, min_size=4, max_size=4).map(lambda v: torch.tensor(v).view(2, 2))
step = st.one_of(
    st.tuples(st.just("u"), st.sampled_from(sorted(UNARY)), st.integers(0, 50)),
    st.tuples(
        st.just("b"), st.sampled_from(sorted(BINARY)), st.integers(0, 50), st.integers(0, 50)
    ),
)

INPLACE = {
    "mul_": lambda x: x.mul_(2),
    "add_": lambda x: x.add_(1),
    "clamp_": lambda x: x.clamp_(-1.0, 1.0),
    "neg_": lambda x: x.neg_(),
}


def run_program(program, *xs) -> list:
    """Run ``program``'s steps on ``xs`` (tensors or pointers alike); returns every value:
    the inputs, then one per step ("u" unary, "b" binary; "i", in place, makes none)."""
    values = list(xs)
    for s in program:
        if s[0] == "u":
            values.append(UNARY[s[1]](values[s[2] % len(values)]))
        elif s[0] == "b":
            f = BINARY[s[1]]
            values.append(f(values[s[2] % len(values)], values[s[3] % len(values)]))
        else:  # in place, on an input or on a value made before
            INPLACE[s[1]](values[s[2] % len(values)])
    return values


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(inputs=st.lists(matrix, min_size=1, max_size=3), program=st.lists(step, max_size=12))
def test_random_programs_equal_local_torch(workers, inputs, program):
    sy.reset()
    bob = workers[0]
    local = run_program(program, *inputs)
    remote = run_program(program, *[t.send(bob) for t in inputs])
    for r, loc in zip(remote, local):
        assert r.shape == loc.shape and r.dtype == loc.dtype
        assert torch.equal(r.get(), loc)
    assert bob._objects == {}


action = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 2)),
    st.tuples(st.just("op"), st.integers(0, 20)),
    st.tuples(st.just("get"), st.integers(0, 20)),
    st.tuples(st.just("move"), st.integers(0, 20), st.integers(0, 3)),
    st.tuples(st.just("remote_get"), st.integers(0, 20)),
    st.tuples(st.just("chain"), st.integers(0, 20), st.integers(0, 2)),
    st.tuples(st.just("del"), st.integers(0, 20)),
    st.tuples(st.just("rebind"), st.integers(0, 20)),
)


def expected_objects(ws) -> set:
    """What live pointers refer to, across the three workers.

    The pointers here, and those kept in the workers' stores (the middle of a chain: on
    worker processes they live in another process, so we read them from the stores).
    """
    live = {(p.location_id, p.id_at_location) for p in sy.live_pointers()}
    for w in ws:
        for obj in w._objects.values():  # (a stored pointer is the PointerTensor itself)
            child = obj if isinstance(obj, sy.PointerTensor) else None
            if child is not None:
                live.add((child.location_id, child.id_at_location))
    return {x for x in live if x[0] in {w.id for w in ws}}


def stored_objects(ws) -> set:
    return {(w.id, k) for w in ws for k in w._objects}


@SETTINGS
@given(actions=st.lists(action, max_size=25))
def test_nothing_is_left_behind(workers, me, actions):
    sy.reset()
    ws = list(workers)
    held: list = []  # (pointer, expected value)
    counter = 0
    for a in actions:
        kind = a[0]
        if kind == "send":
            counter += 1
            value = torch.tensor([float(counter)])
            held.append((value.send(ws[a[1]]), value))
            continue
        if not held:
            continue
        i = a[1] % len(held)
        ptr, value = held[i]
        if kind == "op":
            held.append((ptr + 1, value + 1))
        elif kind == "get":
            back = ptr.get()
            held.pop(i)
            if isinstance(back, sy.Wrapper):  # a chain peeled one level
                held.append((back, value))
            else:
                assert torch.equal(back, value)
            del back  # the test itself must not keep a pointer alive
        elif kind == "move":
            dest = [*ws, me][a[2]]
            moved = ptr.move(dest)
            if dest is me and not isinstance(moved, sy.Wrapper):
                assert torch.equal(moved, value)
                held.pop(i)
            elif dest is me:
                held[i] = (moved, value)
            del moved
        elif kind == "remote_get":
            before = stored_objects(ws)
            try:
                ptr.remote_get()
            except PointerChainError:
                assert stored_objects(ws) == before
        elif kind == "chain":
            dest = ws[a[2]]
            try:
                held[i] = (ptr.send(dest), value)
            except PointerChainError:
                pass
        elif kind == "del":
            held.pop(i)
        elif kind == "rebind":
            held[i] = ("something else", None)
            held.pop(i)
        del ptr
        # No gc.collect(): pointers must be freed by reference counting alone, at once.
        assert stored_objects(ws) == expected_objects(ws)
    # Every pointer still reaches the right value.
    for ptr, value in held:
        while isinstance(ptr, sy.Wrapper):
            ptr = ptr.get()
        assert torch.equal(ptr, value)
    held.clear()
    gc.collect()
    assert stored_objects(ws) == set()
