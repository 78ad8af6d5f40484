"""Comparing shared tensors: the sign bit of x - y, with the crypto provider's help.

x < 0 exactly when the top bit of x (as a 64-bit integer) is set. The parties cannot
look at their shares' bits (the bits of a sum are not the sums of bits), so:

1. the provider makes a random r, and shares of r, of each of r's bits, and of its
   top bit; the parties reveal c = x + r among themselves (r hides x);
2. x = c - r, so x's top bit is c's top bit XOR r's top bit XOR "the lower 63 bits
   of c are smaller than those of r" (a borrow);
3. that last bit compares a public number (c) with a shared one (r's bits): bit by
   bit, c_i < r_i is (1 - c_i) r_i and c_i == r_i is (1 - c_i) + (2 c_i - 1) r_i, both
   linear in r_i; pairs of neighbouring bits then merge, "less" = less_hi +
   equal_hi * less_lo and "equal" = equal_hi * equal_lo, in 6 rounds of Beaver
   multiplications (63 bits, halved each round).

Nobody learns anything: the parties see only c (uniformly random), and the provider
sees nothing at all. The result is exact (no probability of error), as a shared 0/1.
Comparisons, ``relu``, ``abs`` and ``max``/``argmax`` are built on it.
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import registry
from fedlab.secure.beaver import Dealer, reveal
from fedlab.secure.shared import AdditiveSharingTensor, ast_of
from fedlab.secure.wrapper import SecureWrapper, wrap

OPS = AdditiveSharingTensor.OPS
SHIFTS = torch.arange(62, -1, -1)  # the lower 63 bit positions, most significant first


def msb(x: Any) -> SecureWrapper:
    """Shares of 1 where the shared ``x`` is negative, of 0 elsewhere."""
    a = ast_of(x)
    parties = a.parties
    dealer = Dealer(a.crypto_provider)
    r = dealer.random(a.shape)
    bits = (r.unsqueeze(-1) >> dealer.public(SHIFTS)) & 1
    top = (r >> 63) & 1
    rs = dealer.split(r, parties, "mask r")
    bits = dealer.split(bits, parties, "mask bits")
    top = dealer.split(top, parties, "mask top bit")
    c = reveal({w: a.child[w] + rs[w] for w in parties})  # public among the parties
    less, equal, flip = {}, {}, {}
    for w in parties:
        cb = (c[w].unsqueeze(-1) >> SHIFTS.send(registry.get_worker(w))) & 1  # c's bits, here
        c63 = (c[w] >> 63) & 1
        less[w] = (1 - cb) * bits[w]
        equal[w] = (2 * cb - 1) * bits[w]
        flip[w] = (1 - 2 * c63) * top[w]  # shares of c63 XOR r63, but for the + c63 below
        if w == parties[0]:
            equal[w] = equal[w] + (1 - cb)
            flip[w] = flip[w] + c63
    borrow = _merge(wrap(a.like(less)), wrap(a.like(equal)))
    u = wrap(a.like(flip))
    return u + borrow - 2 * (u * borrow)  # u XOR borrow


def _merge(less: SecureWrapper, equal: SecureWrapper) -> SecureWrapper:
    """Fold bitwise (less, equal) pairs, most significant first, into one "less" bit."""
    m = less.shape[-1]
    while m > 1:
        k, odd = m // 2, m % 2
        pre = tuple(less.shape[:-1])
        lt = less.narrow(-1, 0, 2 * k).reshape(*pre, k, 2)
        eq = equal.narrow(-1, 0, 2 * k).reshape(*pre, k, 2)
        lt_hi, lt_lo = lt.select(-1, 0), lt.select(-1, 1)
        eq_hi, eq_lo = eq.select(-1, 0), eq.select(-1, 1)
        if k == 1 and not odd:  # the last round: only "less" is still needed
            return (lt_hi + eq_hi * lt_lo).squeeze(-1)
        both = torch.cat([eq_hi, eq_hi], -1) * torch.cat([lt_lo, eq_lo], -1)
        new_less, new_equal = lt_hi + both.narrow(-1, 0, k), both.narrow(-1, k, k)
        if odd:  # the last (least significant) position had no partner: it moves up as is
            new_less = torch.cat([new_less, less.narrow(-1, 2 * k, 1)], -1)
            new_equal = torch.cat([new_equal, equal.narrow(-1, 2 * k, 1)], -1)
        less, equal, m = new_less, new_equal, k + odd
    return less.squeeze(-1)


# -- comparisons ------------------------------------------------------------------------------
def lt(x: Any, y: Any) -> SecureWrapper:
    """x < y, as shared 0/1."""
    return msb(x - y)


def gt(x: Any, y: Any) -> SecureWrapper:
    """x > y, as shared 0/1."""
    return msb(y - x)


def le(x: Any, y: Any) -> SecureWrapper:
    """x <= y, as shared 0/1."""
    return 1 - msb(y - x)


def ge(x: Any, y: Any) -> SecureWrapper:
    """x >= y, as shared 0/1."""
    return 1 - msb(x - y)


def _both_signs(x: Any, y: Any) -> tuple[SecureWrapper, SecureWrapper]:
    d = x - y
    m = msb(torch.stack([d, -d]))  # one comparison for both directions
    return m.select(0, 0), m.select(0, 1)


def eq(x: Any, y: Any) -> SecureWrapper:
    """x == y, as shared 0/1."""
    below, above = _both_signs(x, y)
    return 1 - below - above


def ne(x: Any, y: Any) -> SecureWrapper:
    """x != y, as shared 0/1."""
    below, above = _both_signs(x, y)
    return below + above


def relu(x: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
    """max(x, 0): x times the shared bit x >= 0."""
    return x * (1 - msb(x))


def absolute(x: Any) -> SecureWrapper:
    """|x|: x times 1 - 2 * (x < 0)."""
    return x * (1 - 2 * msb(x))


def first_max(x: Any, dim: int) -> SecureWrapper:
    """Shares of a one-hot mask of the first maximum of ``x`` along ``dim``.

    Element i is the first maximum exactly when x_i >= x_j for every j >= i and
    x_i > x_j for every j < i: one comparison of all pairs, then one of the counts.
    """
    x = x.transpose(dim, -1)
    k = x.shape[-1]
    upper = torch.ones(k, k, dtype=torch.int64).triu()  # j >= i
    sign = 2 * upper - 1
    diff = x.unsqueeze(-1) - x.unsqueeze(-2)  # diff[..., i, j] = x_i - x_j
    m = msb(diff * sign)  # j >= i: x_i < x_j;  j < i: x_j < x_i
    wins = upper - m * sign  # x_i >= x_j (j >= i), x_i > x_j (j < i)
    onehot = 1 - msb(wins.sum(-1) - k)
    return onehot.transpose(dim, -1)


def _dim(x: Any, dim: int | None) -> tuple[Any, int]:
    if dim is None:
        return x.reshape(-1), 0
    return x, dim % max(len(x.shape), 1)


def argmax(x: Any, dim: int | None = None, keepdim: bool = False) -> SecureWrapper:
    """The index of the first maximum (shared), like ``torch.argmax``."""
    flat, d = _dim(x, dim)
    onehot = first_max(flat, d)
    shape = [1] * len(flat.shape)
    shape[d] = flat.shape[d]
    index = (onehot * torch.arange(flat.shape[d]).view(shape)).sum(d, keepdim=keepdim)
    return index if dim is not None or not keepdim else index.reshape([1] * len(x.shape))


def maximum(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """``max()``: the largest value; ``max(dim)``: (values, indices); ``max(x, y)``: elementwise."""
    if isinstance(dim, torch.Tensor):
        y = dim
        return y + relu(x - y)
    flat, d = _dim(x, dim)
    onehot = first_max(flat, d)
    values = (flat * onehot).sum(d, keepdim=keepdim)
    if dim is None:
        return values
    shape = [1] * len(flat.shape)
    shape[d] = flat.shape[d]
    indices = (onehot * torch.arange(flat.shape[d]).view(shape)).sum(d, keepdim=keepdim)
    return torch.return_types.max((values, indices))


def minimum(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """``min``: the maximum of -x, negated."""
    if isinstance(dim, torch.Tensor):
        return -maximum(-x, -dim)
    out = maximum(-x, dim, keepdim)
    if dim is None:
        return -out
    return torch.return_types.min((-out[0], out[1]))


def argmin(x: Any, dim: int | None = None, keepdim: bool = False) -> SecureWrapper:
    """The index of the first minimum (shared)."""
    return argmax(-x, dim, keepdim)


OPS.update({
    "lt": lt, "__lt__": lt, "less": lt, "gt": gt, "__gt__": gt, "greater": gt,
    "le": le, "__le__": le, "ge": ge, "__ge__": ge, "eq": eq, "__eq__": eq,
    "ne": ne, "__ne__": ne, "relu": relu, "abs": absolute, "__abs__": absolute,
    "argmax": argmax, "argmin": argmin, "max": maximum, "min": minimum,
    "maximum": lambda x, y: maximum(x, y), "minimum": lambda x, y: minimum(x, y),
    "amax": lambda x, dim=None, keepdim=False: maximum(x, dim, keepdim)[0] if dim is not None
    else maximum(x),
})  # fmt: skip
