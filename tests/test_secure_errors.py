"""Misuse of the secure layer: a clear error that says what to do, and no store changed."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

import fedlab as sy
from fedlab.secure import SecureError


@pytest.fixture
def ws(me):
    return [sy.VirtualWorker(me.hook, id=i) for i in ("bob", "alice", "carol", "james", "jon")]


def snapshot(ws) -> dict:
    return {w.id: {k: v.clone() for k, v in w._objects.items()} for w in ws}


def same_stores(ws, before) -> bool:
    now = snapshot(ws)
    return now.keys() == before.keys() and all(
        now[w].keys() == before[w].keys()
        and all(torch.equal(now[w][k], before[w][k]) for k in now[w])
        for w in now
    )


def test_sharing_a_float_tensor_says_to_fix_precision_first(ws):
    bob, alice, *_ = ws
    with sy.trace() as t, pytest.raises(SecureError, match=r"fix_precision\(\)"):
        torch.tensor([0.5, 1.5]).share(bob, alice)
    ptr = torch.tensor([0.5]).send(bob)
    with sy.trace() as t2, pytest.raises(SecureError, match=r"fix_precision\(\)"):
        ptr.share(bob, alice)
    assert len(t) == 0 and len(t2) == 0
    assert all(w._objects == {} for w in ws if w.id != "bob") and len(bob._objects) == 1


def test_sharing_needs_two_distinct_workers_and_not_me(ws, me):
    bob, alice, *_ = ws
    x = torch.tensor([1, 2])
    with pytest.raises(SecureError, match="two workers"):
        x.share(bob)
    with pytest.raises(SecureError, match="once"):
        x.share(bob, bob)
    with pytest.raises(SecureError, match="me cannot hold"):
        x.share(bob, me)
    with pytest.raises(SecureError, match="int64"):
        x.share(bob, alice, field=2**32)
    assert all(w._objects == {} for w in ws)


def test_mixing_parties_or_providers_is_refused_before_any_message(ws):
    bob, alice, carol, james, jon = ws
    x = torch.tensor([1, 2]).share(bob, alice, crypto_provider=james)
    y = torch.tensor([3, 4]).share(alice, bob, crypto_provider=james)
    z = torch.tensor([3, 4]).share(bob, alice, crypto_provider=jon)
    w = torch.tensor([3, 4]).share(bob, alice, carol, crypto_provider=james)
    before = snapshot(ws)
    with sy.trace() as t:
        for other, words in [(y, "different parties"), (w, "different parties"),
                             (z, "different crypto providers")]:  # fmt: skip
            for op in (lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a > b):
                with pytest.raises(SecureError, match=words):
                    op(x, other)
    assert len(t) == 0 and same_stores(ws, before)


def test_mixing_kinds_is_refused_with_advice(ws):
    bob, alice, _, james, _ = ws
    ints = torch.tensor([1, 2]).share(bob, alice, crypto_provider=james)
    fixed = torch.tensor([1.0, 2.0]).fix_prec().share(bob, alice, crypto_provider=james)
    ptr = torch.tensor([1, 2]).send(bob)
    before = snapshot(ws)
    with sy.trace() as t:
        with pytest.raises(SecureError, match="fix_precision"):
            ints + fixed
        with pytest.raises(SecureError, match="pointer"):
            ints + ptr
        with pytest.raises(SecureError, match="fix_precision"):
            fixed * ptr
        with pytest.raises(SecureError, match="floats"):
            ints + torch.tensor([0.5, 0.5])
        with pytest.raises(SecureError, match="positive public integer"):
            ints / 2
        with pytest.raises(SecureError, match="public number"):
            fixed / fixed
    assert len(t) == 0  # refused before any message
    with pytest.raises(SecureError, match="get"):
        bool(ints > 0)  # the comparison runs; looking at its result is refused
    assert same_stores(ws, before)
    with pytest.raises(SecureError, match=r"\.get\(\) it first"):
        fixed.float_precision()
    with pytest.raises(SecureError, match="item"):
        fixed.item()
    with pytest.raises(SecureError, match="already"):
        fixed.fix_precision()


def test_a_party_that_died_stops_the_operation_and_leaves_the_others_as_they_were(ws):
    bob, alice, carol, james, _ = ws
    x = (
        torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        .fix_prec()
        .share(bob, alice, carol, crypto_provider=james)
    )
    before = snapshot(ws)

    def dead(data):
        raise ConnectionError("carol's machine is unreachable")

    carol.recv_msg = dead  # every message to carol now fails, as to a worker that died
    try:
        for op in (lambda a: a * a, lambda a: a @ a, lambda a: a > 0, lambda a: a + a):
            with pytest.raises((ConnectionError, sy.exceptions.FedlabError), match="carol") as info:
                op(x)
            assert "deleted" in str(info.value)
            assert same_stores(ws, before)
    finally:
        del carol.recv_msg
    assert torch.allclose((x * x).get().float_prec(), torch.tensor([[1.0, 4.0], [9.0, 16.0]]))


def test_models_and_optimizers_refuse_what_would_go_wrong(ws):
    bob, alice, _, james, _ = ws
    model = nn.Linear(2, 1)
    with pytest.raises(SecureError, match=r"fix_precision\(\)\.share"):
        model.share(bob, alice, crypto_provider=james)
    opt = optim.SGD(model.parameters(), lr=0.0001)
    with pytest.raises(SecureError, match="encodes to 0"):
        opt.fix_precision()
    assert optim.SGD(model.parameters(), lr=0.01).fix_precision(precision_fractional=3)
    model.fix_precision().share(bob, alice, crypto_provider=james)
    with pytest.raises(SecureError, match="has no backward"):
        torch.tensor([[1.0, 2.0]]).fix_prec().share(
            bob, alice, crypto_provider=james, requires_grad=True
        ).abs()
    assert all(w._objects for w in (bob, alice))
