"""Multiplying shared tensors (Beaver triples) and dividing them by a public integer.

The crypto provider (the "dealer") makes random a and b and their product c = a*b,
and sends each party shares of all three; it never sees the values being multiplied.
To multiply shared x and y, the parties reveal among themselves eps = x - a and
delta = y - b (random-looking: a and b hide x and y), then each party computes

    z_i = c_i + eps*b_i + a_i*delta        (the first party also adds eps*delta)

and the z_i are shares of x*y, because c + eps*b + a*delta + eps*delta = x*y.
The same works for matrix products with @ in place of *. A triple is used once.

Division by a public d (the truncation after a fixed-precision product) uses a mask
pair from the provider: r and q = floor(r / d). The parties reveal c = x + r to the
first party only (r hides x), who takes floor(c / d); every party subtracts its share
of q. The result is floor(x / d) or one more, and is wrong only if x + r overflows
int64, which happens with probability |x| / 2**64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fedlab import registry
from fedlab.secure import labels
from fedlab.secure.errors import SecureError
from fedlab.secure.linear import check_div, matmul_public, scale
from fedlab.secure.shared import LOW, AdditiveSharingTensor, ast_of, same, usable
from fedlab.secure.wrapper import SecureWrapper, wrap

OPS = AdditiveSharingTensor.OPS


class Dealer:
    """The crypto provider at work: random tensors made on it, split among the parties."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.here = provider.id == registry.local_worker().id  # the default provider is me
        # Something to make new tensors from, on the provider (dies with the dealer).
        self.seed = None if self.here else torch.zeros((), dtype=torch.int64).send(provider)

    def random(self, shape: torch.Size) -> Any:
        """A tensor of uniformly random int64 values, made on the provider."""
        if self.here:
            return torch.empty(tuple(shape), dtype=torch.int64).random_(LOW, None)
        return self.seed.new_zeros(tuple(shape)).random_(LOW, None)

    def public(self, t: torch.Tensor) -> Any:
        """A public tensor, on the provider."""
        return t if self.here else t.send(self.provider)

    def split(self, value: Any, parties: list[str], what: str) -> dict[str, Any]:
        """Shares of ``value`` for each party, sent by the provider straight to them."""
        parts = {w: torch.zeros_like(value).random_(LOW, None) for w in parties[1:]}
        rest = value
        for p in parts.values():
            rest = rest - p
        parts = {parties[0]: rest, **parts}
        for w, p in parts.items():
            dest = registry.get_worker(w)
            parts[w] = p.send(dest) if self.here else p.move(dest)
        labels.register_parts(parts, what)
        return parts


def reveal(parts: dict[str, Any]) -> dict[str, Any]:
    """Every party learns the sum of ``parts`` (a value that is public among the parties):
    the parts go to the first party, who adds them and sends each party a copy."""
    ids = list(parts)
    first = registry.get_worker(ids[0])
    total = parts[ids[0]]
    for w in ids[1:]:
        total = total + parts[w].move(first)
    out = {ids[0]: total}
    for w in ids[1:]:
        out[w] = total.copy().move(registry.get_worker(w))
    return out


def _shape(op: Callable, xs: torch.Size, ys: torch.Size) -> torch.Size:
    """The result's shape, or torch's own error, before any message is sent."""
    meta = {"device": "meta", "dtype": torch.int64}
    return op(torch.empty(xs, **meta), torch.empty(ys, **meta)).shape


def beaver(x: AdditiveSharingTensor, y: AdditiveSharingTensor, op: Callable) -> Any:
    """Shares of ``op(x, y)`` (``torch.mul`` or ``torch.matmul``) with one Beaver triple."""
    same(x, y)
    _shape(op, x.shape, y.shape)
    parties = x.parties
    dealer = Dealer(x.crypto_provider)
    a, b = dealer.random(x.shape), dealer.random(y.shape)
    c = op(a, b)
    a = dealer.split(a, parties, "beaver a")
    b = dealer.split(b, parties, "beaver b")
    c = dealer.split(c, parties, "beaver c")
    eps = reveal({w: x.child[w] - a[w] for w in parties})
    delta = reveal({w: y.child[w] - b[w] for w in parties})
    z = {}
    for w in parties:
        z[w] = c[w] + op(eps[w], b[w]) + op(a[w], delta[w])
    z[parties[0]] = z[parties[0]] + op(eps[parties[0]], delta[parties[0]])
    return x.like(z)


def divide(x: AdditiveSharingTensor, d: int) -> AdditiveSharingTensor:
    """Shares of floor(x / d) (or one more) for a public positive integer ``d``."""
    parties = usable(x).parties
    dealer = Dealer(x.crypto_provider)
    r = dealer.random(x.shape)
    q = torch.div(r, d, rounding_mode="floor")
    r = dealer.split(r, parties, "mask r")
    q = dealer.split(q, parties, "mask q")
    first = registry.get_worker(parties[0])
    c = x.child[parties[0]] + r[parties[0]]
    for w in parties[1:]:
        c = c + (x.child[w] + r[w]).move(first)  # only the first party sees x + r
    z = {parties[0]: torch.div(c, d, rounding_mode="floor") - q[parties[0]]}
    for w in parties[1:]:
        z[w] = -q[w]
    return x.like(z)


# -- the operations --------------------------------------------------------------------------
def mul(x: Any, y: Any) -> SecureWrapper:
    """x * y: a Beaver triple if both are shared, else each party scales its share."""
    a, b = ast_of(x), ast_of(y)
    if a is not None and b is not None:
        return wrap(beaver(a, b, torch.mul))
    return scale(x, y)


def matmul(x: Any, y: Any) -> SecureWrapper:
    """x @ y (``mm``, ``matmul``): a Beaver triple if both are shared."""
    a, b = ast_of(x), ast_of(y)
    if a is not None and b is not None:
        return wrap(beaver(a, b, torch.matmul))
    return matmul_public(x, y)


def linear(x: Any, weight: Any, bias: Any = None) -> SecureWrapper:
    """``F.linear``: x @ weight.t() + bias."""
    out = matmul(x, weight.t())
    return out if bias is None else out + bias


def floordiv(x: Any, d: Any, rounding_mode: str | None = "floor") -> SecureWrapper:
    """x // d for a public positive integer d (with help from the crypto provider)."""
    a = ast_of(x)
    if a is None:
        raise SecureError("only a shared tensor can be divided here, by a public integer")
    return wrap(divide(a, check_div(x, d, rounding_mode)))


def true_div(x: Any, d: Any, rounding_mode: str | None = None) -> SecureWrapper:
    """``torch.div``: floor division only (an integer shared tensor has no fractions)."""
    return floordiv(x, d, rounding_mode)


def power(x: Any, n: Any) -> SecureWrapper:
    """x ** n for a public integer n >= 1 (n - 1 Beaver multiplications)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SecureError("a shared tensor is raised only to a public integer power >= 1")
    out = x
    for _ in range(n - 1):
        out = mul(out, x)
    return out


def _inplace(fn):
    def op(x: Any, *args: Any, **kwargs: Any) -> Any:
        x.child.assign(fn(x, *args, **kwargs).child)
        return x

    return op


OPS.update({
    "mul": mul, "__mul__": mul, "__rmul__": mul, "multiply": mul,
    "mul_": _inplace(mul), "__imul__": _inplace(mul),
    "matmul": matmul, "mm": matmul, "__matmul__": matmul,
    "__rmatmul__": lambda x, y: matmul(y, x), "linear": linear,
    "div": true_div, "floor_divide": floordiv, "__floordiv__": floordiv,
    "__truediv__": true_div, "div_": _inplace(true_div),
    "pow": power, "__pow__": power, "square": lambda x: mul(x, x),
})  # fmt: skip
