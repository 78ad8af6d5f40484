"""The secure layer against an exact oracle: the same integer arithmetic, done locally.

Shares live in int64 tensors and int64 arithmetic wraps around, which is arithmetic
modulo 2**64: first checked on this build of torch, against Python's integers. Then
every shared operation must give, bit for bit, what the same operation gives on the
plain int64 values (a truncation may give one more, as documented), on every transport.
"""

from __future__ import annotations

import pytest
import torch
from conftest import TRANSPORTS

import fedlab as sy

M = 2**64
LOW = -(2**63)


def wrap64(v: int) -> int:
    """A Python integer reduced to a signed 64-bit value (mod 2**64)."""
    v %= M
    return v - M if v >= 2**63 else v


def rand64(*shape: int) -> torch.Tensor:
    return torch.empty(shape, dtype=torch.int64).random_(LOW, None)


@pytest.fixture
def parties(transport):
    """bob, alice and carol share; james is the crypto provider."""
    ws, teardown = TRANSPORTS[transport](["bob", "alice", "carol", "james"])
    try:
        yield tuple(ws)
    finally:
        teardown()


def stores(ws) -> dict:
    return {w.id: dict(w._objects) for w in ws}


# -- the ring ---------------------------------------------------------------------------------
def test_int64_arithmetic_wraps_modulo_2_64_on_this_build():
    torch.manual_seed(0)
    a, b = rand64(6, 9), rand64(9, 4)
    c = rand64(6, 9)
    A, B, C = a.tolist(), b.tolist(), c.tolist()
    assert (a + c).tolist() == [[wrap64(x + y) for x, y in zip(r, s)] for r, s in zip(A, C)]
    assert (a - c).tolist() == [[wrap64(x - y) for x, y in zip(r, s)] for r, s in zip(A, C)]
    assert (a * c).tolist() == [[wrap64(x * y) for x, y in zip(r, s)] for r, s in zip(A, C)]
    assert (-a).tolist() == [[wrap64(-x) for x in r] for r in A]
    assert a.sum().item() == wrap64(sum(sum(r) for r in A))
    mm = [[wrap64(sum(A[i][k] * B[k][j] for k in range(9))) for j in range(4)] for i in range(6)]
    assert (a @ b).tolist() == mm
    assert torch.matmul(a.unsqueeze(0), b).squeeze(0).tolist() == mm  # the batched kernel too


# -- sharing ------------------------------------------------------------------------------------
def test_shares_sum_to_the_secret_and_get_deletes_them(parties):
    bob, alice, carol, james = parties
    x = torch.tensor([[25, -3], [2**62, LOW]])
    s = x.share(bob, alice, carol, crypto_provider=james)
    assert isinstance(s.child, sy.AdditiveSharingTensor)
    assert list(s.child.child) == ["bob", "alice", "carol"]
    shares = [next(iter(w._objects.values())) for w in (bob, alice, carol)]
    assert all(t.dtype == torch.int64 and t.shape == x.shape for t in shares)
    total = [[wrap64(sum(t[i][j].item() for t in shares)) for j in range(2)] for i in range(2)]
    assert total == x.tolist()
    assert not any(torch.equal(t, x) for t in shares)
    assert torch.equal(s.get(), x)
    assert stores(parties) == {w.id: {} for w in parties}


def test_sharing_where_the_value_lives_keeps_it_off_me(parties):
    bob, alice, _carol, james = parties
    x = torch.tensor([1.5, -2.25, 0.001])
    ptr = x.send(bob)
    with sy.trace() as t:
        shared = ptr.fix_precision().share(bob, alice, crypto_provider=james)
    encoded = torch.round(x.double() * 1000).long()
    assert sy.secure.carries(t, encoded) == [] and sy.secure.carries(t, x) == []
    assert not any(e.receiver == "me" and e.kind == "reply" and "int64[3]" in e.summary for e in t)
    assert "held by bob" in repr(shared)
    with pytest.raises(sy.secure.SecureError, match="get"):
        shared + shared
    home = shared.get()  # the record comes home: no message
    assert torch.equal(home.get().child.child, encoded)


# -- integer operations, bit for bit ------------------------------------------------------------
INT_BINARY = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "matmul": lambda x, y: x @ y.t(),
    "cat": lambda x, y: torch.cat([x, y], 0).sum(0),
}
INT_PUBLIC = {
    "add_int": lambda x: x + 7,
    "rsub_int": lambda x: 5 - x,
    "mul_int": lambda x: x * -3,
    "add_tensor": lambda x: x + torch.tensor([1, -2, 3]),
    "mul_tensor": lambda x: torch.tensor([2, 0, -1]) * x,
    "neg_view_sum": lambda x: (-x).view(-1).sum(),
    "index_t": lambda x: x[1:, ::2].t(),
}


@pytest.mark.parametrize("name", sorted(INT_BINARY))
def test_shared_integer_binary_ops_equal_int64_bit_for_bit(parties, name):
    bob, alice, carol, james = parties
    torch.manual_seed(1)
    x, y = rand64(2, 3), rand64(2, 3)  # full range: products wrap many times
    sx = x.share(bob, alice, carol, crypto_provider=james)
    sy_ = y.share(bob, alice, carol, crypto_provider=james)
    assert torch.equal(INT_BINARY[name](sx, sy_).get(), INT_BINARY[name](x, y))


@pytest.mark.parametrize("name", sorted(INT_PUBLIC))
def test_shared_integer_public_ops_equal_int64_bit_for_bit(parties, name):
    bob, alice, _, james = parties
    torch.manual_seed(2)
    x = rand64(2, 3)
    out = INT_PUBLIC[name](x.share(bob, alice, crypto_provider=james)).get()
    assert torch.equal(out, INT_PUBLIC[name](x))


def test_floor_division_is_floor_or_one_more(parties):
    bob, alice, carol, james = parties
    torch.manual_seed(3)
    x = torch.randint(-(10**12), 10**12, (200,))
    for d in (1, 7, 1000):
        got = (x.share(bob, alice, carol, crypto_provider=james) // d).get()
        diff = got - torch.div(x, d, rounding_mode="floor")
        assert ((diff == 0) | (diff == 1)).all(), d


def test_comparisons_are_exact(parties, transport):
    bob, alice, _, james = parties
    torch.manual_seed(4)
    x = torch.randint(-(2**61), 2**61, (40,))
    y = torch.cat([x[:10], torch.randint(-(2**61), 2**61, (30,))])  # some equal pairs
    sx, sy_ = (t.share(bob, alice, crypto_provider=james) for t in (x, y))
    # (on worker processes a comparison takes a second or two: fewer of them there)
    ops = ("lt", "gt", "le", "ge", "eq", "ne") if transport == "inprocess" else ("le", "eq")
    for op in ops:
        assert torch.equal(getattr(sx, op)(sy_).get(), getattr(x, op)(y).long()), op
    assert torch.equal(sx.relu().get(), x.relu())
    if transport == "inprocess":
        assert torch.equal((sx > 0).get(), (x > 0).long())
        assert torch.equal(sx.abs().get(), x.abs())


def test_max_and_argmax_pick_the_first_maximum(parties, transport):
    bob, alice, _, james = parties
    x = torch.tensor([[3, 9, 9, -1], [5, 5, 5, 5], [-7, -2, -9, -2]])
    s = x.share(bob, alice, crypto_provider=james)
    assert torch.equal(s.argmax(dim=1).get(), x.argmax(dim=1))
    if transport != "inprocess":
        return  # (the rest is the same protocol: in-process only, to keep the run short)
    values, indices = s.max(dim=0)
    assert torch.equal(values.get(), x.max(dim=0).values)
    assert torch.equal(indices.get(), x.max(dim=0).indices)
    assert torch.equal(s.max().get(), x.max())
    assert torch.equal(s.argmax().get(), x.argmax())
    assert torch.equal(s.min(dim=1)[0].get(), x.min(dim=1).values)


# -- fixed precision ---------------------------------------------------------------------------
def test_fixed_precision_encodes_and_decodes_sign_aware():
    x = torch.tensor([0.1, -0.2, 3.14159, -1234.5678, 0.0004, -0.0006])
    f = x.fix_precision()
    assert torch.equal(f.child.child, torch.tensor([100, -200, 3142, -1234568, 0, -1]))
    assert torch.allclose(f.float_precision(), x, atol=5e-4)
    g = x.fix_prec(base=2, precision_fractional=8)
    assert torch.equal(g.child.child, torch.round(x.double() * 256).long())
    assert (g.float_prec() - x).abs().max() <= 0.5 / 256


FIX = {
    "add": (lambda x, y: x + y, lambda a, b, s: a + b),
    "sub": (lambda x, y: x - y, lambda a, b, s: a - b),
    "mul": (lambda x, y: x * y, lambda a, b, s: torch.div(a * b, s, rounding_mode="floor")),
    "matmul": (
        lambda x, y: x.mm(y.t()),
        lambda a, b, s: torch.div(a @ b.t(), s, rounding_mode="floor"),
    ),
    "gt": (lambda x, y: x > y, lambda a, b, s: (a > b).long() * s),
    "relu": (lambda x, y: torch.relu(x - y), lambda a, b, s: torch.relu(a - b)),
    "mul_float": (
        lambda x, y: x * 0.5,
        lambda a, b, s: torch.div(a * 500, s, rounding_mode="floor"),
    ),
    "div_int": (lambda x, y: x / 4, lambda a, b, s: torch.div(a, 4, rounding_mode="floor")),
}


@pytest.mark.parametrize("name", sorted(FIX))
def test_fixed_precision_ops_equal_the_integer_oracle(parties, name):
    """Plain and pointer children give the oracle exactly; shared ones the oracle, or one
    more after a truncation (a product or a division)."""
    bob, alice, carol, james = parties
    torch.manual_seed(5)
    x, y = torch.randn(3, 4) * 10, torch.randn(3, 4) * 10
    op, oracle = FIX[name]
    a, b = x.fix_prec().child.child, y.fix_prec().child.child
    want = oracle(a, b, 1000)
    assert torch.equal(op(x.fix_prec(), y.fix_prec()).child.child, want)
    remote = op(x.send(bob).fix_prec(), y.send(bob).fix_prec()).get()
    assert torch.equal(remote.child.child, want)
    sx = x.fix_prec().share(bob, alice, carol, crypto_provider=james)
    sy_ = y.fix_prec().share(bob, alice, carol, crypto_provider=james)
    diff = op(sx, sy_).get().child.child - want
    truncated = name in ("mul", "matmul", "mul_float", "div_int")
    assert ((diff == 0) | (diff == 1)).all() if truncated else (diff == 0).all()
    del sx, sy_
    assert stores(parties) == {w.id: {} for w in parties}
