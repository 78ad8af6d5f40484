"""Property tests for the secure layer: shares look random, and nothing is left behind.

Random programs mix sharing (from here and from where the data lives), products,
comparisons, public arithmetic, fetching, deleting and plain pointer operations. After
every step the workers hold exactly what some live pointer refers to: every share,
triple and mask made for an operation is deleted once used.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedlab as sy

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def ws(me):
    return [sy.VirtualWorker(me.hook, id=i) for i in ("bob", "alice", "carol", "james")]


def live_refs(ws) -> set:
    live = {(p.location_id, p.id_at_location) for p in sy.live_pointers()}
    return {x for x in live if x[0] in {w.id for w in ws}}


def stored(ws) -> set:
    return {(w.id, k) for w in ws for k in w._objects}


def wrap64(v: int) -> int:
    v %= 2**64
    return v - 2**64 if v >= 2**63 else v


# -- statistics ----------------------------------------------------------------------------------
def _chi2_top_byte(values: torch.Tensor) -> float:
    counts = torch.bincount(((values >> 56) & 255), minlength=256).double()
    expected = values.numel() / 256
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("secret", [0, 2**62])
@pytest.mark.parametrize("where", ["here", "on bob"])
def test_each_share_alone_is_uniformly_random(ws, secret, where):
    """Each party's share, whatever the secret, is uniform over the 2**64 int64 values:
    every bit is a fair coin and the top byte is flat (chi-square, 255 degrees of
    freedom; the bound is exceeded with probability below 1e-6 for uniform values)."""
    bob, alice, carol, james = ws
    torch.manual_seed(7)
    seen = {w: [] for w in ("bob", "alice", "carol")}
    for _ in range(12):
        x = torch.full((4096,), secret, dtype=torch.int64)
        if where == "on bob":
            s = x.send(bob).share(bob, alice, carol, crypto_provider=james).get()
        else:
            s = x.share(bob, alice, carol, crypto_provider=james)
        for w, ptr in s.child.child.items():
            seen[w].append(ptr.copy().get())
    for w, parts in seen.items():
        v = torch.cat(parts)
        bits = torch.stack([(v >> k) & 1 for k in range(64)]).double().mean(1)
        # 49152 coin flips per bit: a fair coin strays beyond 0.5 +- 0.0125 with p < 1e-8
        assert ((bits - 0.5).abs() < 0.0125).all(), (w, bits)
        assert _chi2_top_byte(v) < 370, w


# -- nothing left behind -----------------------------------------------------------------------
action = st.one_of(
    st.tuples(st.just("share"), st.integers(-50, 50), st.integers(0, 3)),
    st.tuples(st.just("share_there"), st.integers(-50, 50), st.integers(0, 2)),
    st.tuples(st.just("fix_share_there"), st.floats(-5, 5, width=32), st.integers(0, 2)),
    st.tuples(st.just("send"), st.integers(-50, 50), st.integers(0, 2)),
    st.tuples(st.just("add"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("mul"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("gt"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("public"), st.integers(0, 20), st.integers(-9, 9)),
    st.tuples(st.just("get"), st.integers(0, 20)),
    st.tuples(st.just("del"), st.integers(0, 20)),
    st.tuples(st.just("op"), st.integers(0, 20)),
)
GROUPS = [("bob", "alice"), ("alice", "carol"), ("bob", "alice", "carol"), ("carol", "bob")]


def _step(a: tuple, held: list, ws: list) -> None:
    """One action of a random program (its local names die when it returns)."""
    by_id = {w.id: w for w in ws}
    james, kind = by_id["james"], a[0]
    if kind in ("share", "share_there", "send"):
        value = torch.tensor([a[1], -a[1], 3])
        if kind == "share":
            group = GROUPS[a[2]]
            s = value.share(*[by_id[w] for w in group], crypto_provider=james)
            held.append(("shared", s, value, group))
        elif kind == "share_there":
            s = value.send(ws[a[2]]).share(by_id["bob"], by_id["alice"], crypto_provider=james)
            held.append(("shared", s.get(), value, ("bob", "alice")))
        else:
            held.append(("pointer", value.send(ws[a[2]]), value, None))
        return
    if kind == "fix_share_there":
        x = torch.tensor([a[1], 1.5])
        ptr = x.send(ws[a[2]]).fix_prec()
        s = ptr.share(by_id["bob"], by_id["alice"], crypto_provider=james).get()
        held.append(("fixed", s, x, ("bob", "alice")))
        return
    if not held:
        return
    i = a[1] % len(held)
    k, obj, value, group = held[i]
    if kind in ("add", "mul", "gt"):
        k2, obj2, value2, group2 = held[a[2] % len(held)]
        ops = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "gt": lambda x, y: x > y}
        op = ops[kind]
        if k == k2 == "pointer":
            return  # plain pointer arithmetic: the core's own property tests
        if k != k2 or group != group2:
            before = stored(ws)
            with pytest.raises(sy.exceptions.FedlabError):
                op(obj, obj2)
            assert stored(ws) == before  # a refusal changes no store
        elif k == "fixed":
            held.append(("fixed", op(obj, obj2), op(value, value2).float(), group))
        else:
            held.append(("shared", op(obj, obj2), op(value, value2).long(), group))
    elif kind == "public" and k == "shared":
        held.append(("shared", (obj + a[2]) * 3, (value + a[2]) * 3, group))
    elif kind == "op" and k == "pointer":
        held.append(("pointer", obj * 2, value * 2, None))
    elif kind == "get":
        back = obj.get()
        held.pop(i)
        if k == "fixed":
            assert torch.allclose(back.float_prec(), value, atol=0.02)
        else:
            assert torch.equal(back, value)
    elif kind == "del":
        held.pop(i)


@SETTINGS
@given(actions=st.lists(action, max_size=14))
def test_nothing_is_left_behind_by_secure_programs(ws, actions):
    sy.reset()
    held: list = []  # (kind, pointer or shared tensor, its value, its parties)
    for a in actions:
        _step(a, held, ws)
        # No gc.collect(): shares, triples and masks are freed by reference counting.
        assert stored(ws) == live_refs(ws), a
    while held:  # every value is still right, and then nothing is left
        k, obj, value, _ = held.pop()
        back = obj.get()
        if k == "fixed":
            assert torch.allclose(back.float_prec(), value, atol=0.05)
        else:
            assert torch.equal(back, value)
        del obj, back
    assert stored(ws) == set()


def test_a_product_leaves_nothing_on_the_provider_or_the_parties(ws):
    bob, alice, _, james = ws
    x = torch.tensor([[1.0, -2.0], [0.5, 4.0]]).fix_prec().share(bob, alice, crypto_provider=james)
    y = (x @ x).relu().argmax(dim=1)
    assert stored(ws) == live_refs(ws) and james._objects == {}
    assert len(bob._objects) == len(alice._objects) == 2  # x's share and y's share
    assert torch.equal(y.get().float_prec(), torch.tensor([0.0, 1.0]))  # ties: the first
    del x
    assert stored(ws) == set()
