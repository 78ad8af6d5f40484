"""The linear operations on shared tensors: each party works on its own share alone.

If x = x1 + x2 (mod 2**64) then x + y = (x1 + y1) + (x2 + y2), -x = (-x1) + (-x2),
3x = 3x1 + 3x2, and a reshaped or summed x is the reshaped or summed shares. A public
value is added by one party only (else it would count once per party).
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab.secure.errors import SecureError
from fedlab.secure.shared import (
    AdditiveSharingTensor,
    ast_of,
    check_public,
    on_each,
    public_on,
    same,
    widen,
)
from fedlab.secure.wrapper import SecureWrapper, wrap

OPS = AdditiveSharingTensor.OPS


def _shape_of(value: Any) -> torch.Size:
    return torch.Size(value.shape) if isinstance(value, torch.Tensor) else torch.Size()


def add(x: Any, y: Any, *, alpha: Any = 1, sign: int = 1) -> SecureWrapper:
    """x + alpha*y (or x - alpha*y with ``sign=-1``) where one or both are shared."""
    if alpha != 1:
        y = y * alpha
    a, b = ast_of(x), ast_of(y)
    if a is not None and b is not None:
        same(a, b)
        op = torch.add if sign > 0 else torch.sub
        return wrap(a.like({w: op(p, b.child[w]) for w, p in a.child.items()}))
    if a is None:  # public - shared, or public + shared
        return add(y, x) if sign > 0 else add(-y, x)
    value = check_public(y)
    shape = torch.broadcast_shapes(a.shape, _shape_of(value))
    a = widen(a, shape)
    first = next(iter(a.child))
    op = torch.add if sign > 0 else torch.sub
    return wrap(a.like({
        w: op(p, public_on(value, w)) if w == first else p for w, p in a.child.items()
    }))  # fmt: skip


def sub(x: Any, y: Any, *, alpha: Any = 1) -> SecureWrapper:
    """x - alpha*y."""
    return add(x, y, alpha=alpha, sign=-1)


def neg(x: Any) -> SecureWrapper:
    """-x: every party negates its share."""
    return on_each(ast_of(x), torch.neg)


def scale(x: Any, y: Any) -> SecureWrapper:
    """x * y with y public (a number or an integer tensor): every party scales its share."""
    a = ast_of(x)
    if a is None:
        x, y = y, x
        a = ast_of(x)
    value = check_public(y)
    a = widen(a, torch.broadcast_shapes(a.shape, _shape_of(value)))
    return wrap(a.like({w: torch.mul(p, public_on(value, w)) for w, p in a.child.items()}))


def matmul_public(x: Any, y: Any) -> SecureWrapper:
    """x @ y with one side public: every party multiplies its share by it."""
    a = ast_of(x)
    if a is not None:
        value = check_public(y)
        return wrap(a.like({w: torch.matmul(p, public_on(value, w)) for w, p in a.child.items()}))
    a, value = ast_of(y), check_public(x)
    return wrap(a.like({w: torch.matmul(public_on(value, w), p) for w, p in a.child.items()}))


def _sharewise(name: str):
    """An operation that acts on each share alone (a reshape, a sum, an index...)."""

    def op(x: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
        a = ast_of(x)
        if a is None:
            raise SecureError(f"{name} takes a shared tensor first")
        args = tuple(_shape_of(v) if isinstance(v, torch.Tensor) else v for v in args)
        for v in kwargs.values():
            if isinstance(v, torch.Tensor):
                raise SecureError(f"{name} on a shared tensor takes public arguments only")
        if name.endswith("_as"):  # view_as(other): the other tensor's shape
            return on_each(a, lambda p: getattr(p, name[:-3])(*args[0], **kwargs))
        return on_each(a, lambda p: getattr(p, name)(*args, **kwargs))

    return op


def _join(name: str):
    """``torch.cat`` / ``torch.stack`` of shared tensors: each party joins its shares."""

    def op(tensors: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
        records = [ast_of(t) for t in tensors]
        if any(r is None for r in records):
            raise SecureError(f"{name} joins shared tensors with shared tensors only")
        for r in records[1:]:
            same(records[0], r)
        fn = getattr(torch, name)
        return wrap(records[0].like({
            w: fn([r.child[w] for r in records], *args, **kwargs) for w in records[0].child
        }))  # fmt: skip

    return op


def _property(name: str):
    return lambda x: on_each(ast_of(x), lambda p: getattr(p, name))


def _inplace(fn):
    """An in-place form: the result's shares replace the tensor's own."""

    def op(x: Any, *args: Any, **kwargs: Any) -> Any:
        x.child.assign(fn(x, *args, **kwargs).child)
        return x

    return op


def check_div(x: Any, d: Any, rounding_mode: str | None) -> int:
    """The public divisor ``d``, or a clear error: floor division by a positive integer."""
    if rounding_mode != "floor" or isinstance(d, bool) or not isinstance(d, int) or d <= 0:
        raise SecureError(
            "a shared integer tensor divides only by a positive public integer, with "
            "floor division: x // 4 (or torch.div(x, 4, rounding_mode='floor'))"
        )
    return d


SHAREWISE = """view reshape t transpose permute unsqueeze squeeze flatten expand expand_as
view_as reshape_as __getitem__ narrow select flip roll repeat sum cumsum clone long unfold
diagonal tril triu""".split()
OPS.update({n: _sharewise(n) for n in SHAREWISE})
OPS.update({f"{n}.__get__": _property(n) for n in ("T", "mT")})
OPS.update({"cat": _join("cat"), "concat": _join("cat"), "stack": _join("stack")})
OPS.update({
    "add": add, "__add__": add, "__radd__": add, "sub": sub, "__sub__": sub,
    "__rsub__": lambda x, y: add(-x, y), "rsub": lambda x, y: add(-x, y),
    "neg": neg, "__neg__": neg, "negative": neg, "__pos__": lambda x: x,
})  # fmt: skip
OPS.update({
    "add_": _inplace(add), "__iadd__": _inplace(add), "sub_": _inplace(sub),
    "__isub__": _inplace(sub), "neg_": _inplace(neg),
    "copy_": _inplace(lambda x, y: wrap(ast_of(y).copy())),
})  # fmt: skip
