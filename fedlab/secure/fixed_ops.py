"""The operations of a fixed-precision tensor, written once for every kind of child.

Each works on the encoded integers with ordinary torch operations, so a plain child
computes here, a pointer's worker computes there, and a shared child runs the
sharing protocols (``linear``, ``beaver``, ``compare``).
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab.secure.errors import SecureError
from fedlab.secure.precision import FixedPrecisionTensor, encode, same_encoding
from fedlab.secure.wrapper import SecureWrapper, is_secure, wrap
from fedlab.wrapper import is_pointer

OPS = FixedPrecisionTensor.OPS


def fpt(x: Any) -> FixedPrecisionTensor | None:
    """The fixed-precision record inside a wrapper (None for anything else)."""
    if isinstance(x, SecureWrapper) and isinstance(x.child, FixedPrecisionTensor):
        return x.child
    return None


def _ref(*values: Any) -> FixedPrecisionTensor:
    for v in values:
        f = fpt(v)
        if f is not None:
            return f
    raise SecureError("a fixed-precision operation needs a fixed-precision tensor")


def _where(child: Any) -> str:
    return "pointer" if is_pointer(child) else "shared" if is_secure(child) else "here"


def encoded(ref: FixedPrecisionTensor, y: Any, for_mul: bool = False) -> tuple[Any, bool]:
    """``y`` as ``ref``'s encoded integers, and whether it carries the scale.

    A plain Python int multiplies without the scale (exact, no truncation).
    """
    f = fpt(y)
    if f is not None:
        same_encoding(ref, f)
        if {_where(ref.child), _where(f.child)} == {"pointer", "shared"}:
            raise SecureError(
                "this mixes a shared tensor with one that lives on a single worker; "
                "share that one among the same parties first"
            )
        return f.child, True
    if isinstance(y, SecureWrapper):
        raise SecureError(
            "this mixes a fixed-precision tensor with an integer shared one; encode both "
            "with fix_precision() before share()"
        )
    if is_pointer(y):
        raise SecureError("fix_precision() this pointer too before mixing it with this tensor")
    if isinstance(y, bool) or (isinstance(y, int) and for_mul):
        return int(y), False
    if isinstance(y, (int, float)):
        return round(y * ref.scale), True
    if isinstance(y, torch.Tensor):
        return encode(y, ref.base, ref.precision_fractional), True
    raise SecureError(f"a fixed-precision tensor does not mix with {type(y).__name__}")


def _children(x: Any, y: Any, for_mul: bool = False) -> tuple[FixedPrecisionTensor, Any, Any, bool]:
    ref = _ref(x, y)
    cx, sx = encoded(ref, x, for_mul)
    cy, sy_ = encoded(ref, y, for_mul)
    return ref, cx, cy, sx and sy_


def truncate(v: Any, scale: int) -> Any:
    """Divide a product of two encodings back to one scale (floor division)."""
    return torch.div(v, scale, rounding_mode="floor")


def _long(v: Any) -> Any:
    return v if is_secure(v) else v.long()


# -- arithmetic ----------------------------------------------------------------------------------
def add(x: Any, y: Any, *, alpha: Any = 1) -> SecureWrapper:
    """x + alpha * y."""
    if not (isinstance(alpha, int) and alpha == 1):
        y = mul(y, alpha)
    ref, cx, cy, _ = _children(x, y)
    return wrap(ref.like(cx + cy))


def sub(x: Any, y: Any, *, alpha: Any = 1) -> SecureWrapper:
    """x - alpha * y."""
    if not (isinstance(alpha, int) and alpha == 1):
        y = mul(y, alpha)
    ref, cx, cy, _ = _children(x, y)
    return wrap(ref.like(cx - cy))


def mul(x: Any, y: Any) -> SecureWrapper:
    """x * y, truncated back to one scale (not for a plain Python int)."""
    ref, cx, cy, scaled = _children(x, y, for_mul=True)
    out = cx * cy
    return wrap(ref.like(truncate(out, ref.scale) if scaled else out))


def matmul(x: Any, y: Any) -> SecureWrapper:
    """x @ y, truncated back to one scale."""
    ref, cx, cy, _ = _children(x, y)
    return wrap(ref.like(truncate(torch.matmul(cx, cy), ref.scale)))


def linear(x: Any, weight: Any, bias: Any = None) -> SecureWrapper:
    """``F.linear``: x @ weight.t() + bias."""
    out = matmul(x, weight.t())
    return out if bias is None else add(out, bias)


def div(x: Any, y: Any, rounding_mode: str | None = None) -> SecureWrapper:
    """x / y for a public y: by an integer directly, by anything else as x * (1 / y)."""
    ref = _ref(x)
    if fpt(x) is None or rounding_mode is not None:
        raise SecureError("a fixed-precision tensor divides by a public number: x / 4")
    if isinstance(y, int) and not isinstance(y, bool) and y > 0:
        return wrap(ref.like(torch.div(ref.child, y, rounding_mode="floor")))
    if isinstance(y, (int, float)) and y != 0:
        return mul(x, 1.0 / y)
    if type(y) is torch.Tensor:
        return mul(x, 1.0 / y.double())
    raise SecureError(
        "a fixed-precision tensor divides only by a public number or tensor; dividing by a "
        "shared value is not supported"
    )


def power(x: Any, n: Any) -> SecureWrapper:
    """x ** n for a public integer n >= 1 (squares and products)."""
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SecureError("a fixed-precision tensor is raised only to an integer power >= 1")
    out = x
    for _ in range(n - 1):
        out = mul(out, x)
    return out


def neg(x: Any) -> SecureWrapper:
    """-x."""
    f = _ref(x)
    return wrap(f.like(-f.child))


# -- comparisons and their friends ---------------------------------------------------------------
def _compare(op: Any):
    def compare(x: Any, y: Any) -> SecureWrapper:
        ref, cx, cy, _ = _children(x, y)
        return wrap(ref.like(_long(op(cx, cy)) * ref.scale))

    return compare


def relu(x: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
    """max(x, 0); keeps the 0/1 mask x > 0 for the backward pass."""
    f = _ref(x)
    mask = _long(f.child > 0)
    out = f.like(f.child * mask)
    out.mask = mask
    return wrap(out)


def absolute(x: Any) -> SecureWrapper:
    """|x|."""
    f = _ref(x)
    return wrap(f.like(f.child.abs()))


def argmax(x: Any, dim: Any = None, keepdim: bool = False) -> SecureWrapper:
    """The index of the maximum, encoded (so it compares with encoded labels)."""
    f = _ref(x)
    return wrap(f.like(f.child.argmax(dim=dim, keepdim=keepdim) * f.scale))


def argmin(x: Any, dim: Any = None, keepdim: bool = False) -> SecureWrapper:
    """The index of the minimum, encoded."""
    f = _ref(x)
    return wrap(f.like(f.child.argmin(dim=dim, keepdim=keepdim) * f.scale))


def _extreme(name: str):
    def extreme(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        f = _ref(x)
        if dim is None:
            return wrap(f.like(getattr(f.child, name)()))
        if isinstance(dim, torch.Tensor):  # max(x, y): elementwise
            ref, cx, cy, _ = _children(x, dim)
            return wrap(ref.like(getattr(torch, name)(cx, cy)))
        values, indices = getattr(f.child, name)(dim, keepdim)
        kind = getattr(torch.return_types, name)
        return kind((wrap(f.like(values)), wrap(f.like(indices * f.scale))))

    return extreme


# -- reductions and shapes -----------------------------------------------------------------------
def mean(x: Any, dim: Any = None, keepdim: bool = False) -> SecureWrapper:
    """The mean: a sum, divided by the count."""
    f = _ref(x)
    total = f.child.sum() if dim is None else f.child.sum(dim, keepdim=keepdim)
    count = max(1, f.shape.numel() // max(1, torch.Size(total.shape).numel()))
    return wrap(f.like(torch.div(total, count, rounding_mode="floor")))


def mse_loss(x: Any, y: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean", weight: Any = None) -> SecureWrapper:  # fmt: skip
    """``F.mse_loss``: the mean (or sum) of squared differences."""
    if weight is not None:
        raise SecureError("mse_loss on secure tensors takes no weight")
    d = sub(x, y)
    sq = mul(d, d)
    if reduction == "none":
        return sq
    return OPS["sum"](sq) if reduction == "sum" else mean(sq)


def _same_scale(name: str):
    """An operation that keeps the scale: on the child alone (reshape, sum, index...)."""

    def op(x: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
        f = _ref(x)
        args = tuple(torch.Size(a.shape) if isinstance(a, torch.Tensor) else a for a in args)
        if name.endswith("_as"):
            return wrap(f.like(getattr(f.child, name[:-3])(*args[0])))
        return wrap(f.like(getattr(f.child, name)(*args, **kwargs)))

    return op


def _join(name: str):
    def op(tensors: Any, *args: Any, **kwargs: Any) -> SecureWrapper:
        ref = _ref(*tensors)
        children = [encoded(ref, t)[0] for t in tensors]
        return wrap(ref.like(getattr(torch, name)(children, *args, **kwargs)))

    return op


def _inplace(fn):
    def op(x: Any, *args: Any, **kwargs: Any) -> Any:
        x.child.assign(fn(x, *args, **kwargs).child)
        return x

    return op


def _copy_(x: Any, y: Any) -> Any:
    ref, _, cy, _ = _children(x, y)
    x.child.assign(ref.like(cy.copy() if is_secure(cy) else cy))
    return x


SAME_SCALE = """view reshape t transpose permute unsqueeze squeeze flatten expand expand_as
view_as reshape_as __getitem__ narrow select flip roll repeat sum cumsum clone unfold diagonal
tril triu""".split()
OPS.update({n: _same_scale(n) for n in SAME_SCALE})
OPS.update({"T.__get__": lambda x: wrap(_ref(x).like(_ref(x).child.T))})
OPS.update({"cat": _join("cat"), "concat": _join("cat"), "stack": _join("stack")})
OPS.update({
    "add": add, "__add__": add, "__radd__": add, "sub": sub, "__sub__": sub,
    "__rsub__": lambda x, y: sub(y, x), "rsub": lambda x, y: sub(y, x),
    "mul": mul, "__mul__": mul, "__rmul__": mul, "multiply": mul,
    "matmul": matmul, "mm": matmul, "__matmul__": matmul, "__rmatmul__": lambda x, y: matmul(y, x),
    "linear": linear, "div": div, "__truediv__": div, "true_divide": div, "divide": div,
    "pow": power, "__pow__": power, "square": lambda x: mul(x, x),
    "neg": neg, "__neg__": neg, "negative": neg, "__pos__": lambda x: x,
    "relu": relu, "abs": absolute, "__abs__": absolute,
    "argmax": argmax, "argmin": argmin, "max": _extreme("max"), "min": _extreme("min"),
    "mean": mean, "mse_loss": mse_loss,
})  # fmt: skip
for _name, _op in [("lt", torch.lt), ("gt", torch.gt), ("le", torch.le), ("ge", torch.ge),
                   ("eq", torch.eq), ("ne", torch.ne)]:  # fmt: skip
    OPS[_name] = OPS[f"__{_name}__"] = _compare(_op)
OPS.update({
    "add_": _inplace(add), "__iadd__": _inplace(add), "sub_": _inplace(sub),
    "__isub__": _inplace(sub), "mul_": _inplace(mul), "__imul__": _inplace(mul),
    "div_": _inplace(div), "__itruediv__": _inplace(div), "neg_": _inplace(neg),
    "copy_": _copy_,
})  # fmt: skip
