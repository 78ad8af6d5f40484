"""Autograd for fixed-precision (and shared) tensors, in the style of micrograd.

Torch's own autograd cannot see inside a wrapper, so this layer keeps its own tape:
an operation on tensors that require a gradient records a ``Node`` on its result
(which inputs, and how to pass a gradient back to them). ``loss.backward()`` walks
the nodes from the loss back to the leaves and adds each leaf's gradient to its
``.grad``. The backward of each operation sits next to the others below, written with
the same torch operations as the forward: on a shared tensor they run the same
protocols (a gradient is shared too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fedlab.secure.errors import SecureError
from fedlab.secure.wrapper import TAPE, SecureWrapper, is_secure, wrap


class Node:
    """How the gradient of one result flows back to its inputs (``x.grad_fn``)."""

    __slots__ = ("backward", "inputs", "name")

    def __init__(self, name: str, inputs: tuple, backward: Callable[[Any], tuple]) -> None:
        self.name = name
        self.inputs = inputs
        self.backward = backward

    def __repr__(self) -> str:
        return f"<{self.name.strip('_').capitalize()}Backward>"


def _requires(x: Any) -> bool:
    return is_secure(x) and x.__dict__["requires"]


def _shape(x: Any) -> torch.Size:
    return torch.Size(x.shape) if isinstance(x, torch.Tensor) else torch.Size()


def unbroadcast(g: Any, shape: torch.Size) -> Any:
    """Sum a gradient over the dimensions that broadcasting added or stretched."""
    if _shape(g) == shape:
        return g
    extra = len(_shape(g)) - len(shape)
    if extra > 0:
        g = g.sum(tuple(range(extra)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and _shape(g)[i] != 1)
    return g.sum(dims, keepdim=True) if dims else g


def _mask(g: Any, mask: Any) -> Any:
    """g times a 0/1 integer mask (no truncation: the mask carries no scale)."""
    f = g.child
    return wrap(f.like(f.child * mask))


def _expand_back(g: Any, x: Any, dim: Any, keepdim: bool) -> Any:
    if dim is not None and not keepdim:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        for d in sorted(d % len(_shape(x)) for d in dims):
            g = g.unsqueeze(d)
    return g.expand(_shape(x))


def _sum_back(x: Any, dim: Any = None, keepdim: bool = False) -> Callable:
    return lambda g: (_expand_back(g, x, dim, keepdim),)


def _mean_back(x: Any, dim: Any = None, keepdim: bool = False) -> Callable:
    def back(g: Any) -> tuple:
        full = _expand_back(g, x, dim, keepdim)
        return (full / max(1, _shape(x).numel() // max(1, _shape(g).numel())),)

    return back


def _matmul_back(x: Any, y: Any) -> Callable:
    if len(_shape(x)) != 2 or len(_shape(y)) != 2:
        raise SecureError("backward of a secure matmul works on 2-d tensors (matrices)")
    return lambda g: (g @ y.t(), x.t() @ g)


def _linear_back(x: Any, w: Any, b: Any = None) -> Callable:
    if len(_shape(x)) != 2:
        raise SecureError("backward of a secure linear layer works on a batch of vectors (2-d)")
    return lambda g: (g @ w, g.t() @ x, g.sum(0) if b is not None else None)


def _mse_back(x: Any, y: Any, size_average: Any = None, reduce: Any = None,
              reduction: str = "mean", weight: Any = None) -> Callable:  # fmt: skip
    def back(g: Any) -> tuple:
        d = (x - y) * 2
        gx = d * g if reduction != "mean" else d * g / max(1, _shape(x).numel())
        return gx, -gx

    return back


def _pow_back(x: Any, n: Any) -> Callable:
    return lambda g: ((g * x) * 2 if n == 2 else g * (x ** (n - 1)) * n,)


def _relu_back(out: Any) -> Callable:
    mask = out.child.mask
    return lambda g: (_mask(g, mask),)


def _add_back(x: Any, y: Any, alpha: Any = 1, sign: int = 1) -> Callable:
    def back(g: Any) -> tuple:
        gy = g if isinstance(alpha, int) and alpha == 1 else g * alpha
        return unbroadcast(g, _shape(x)), unbroadcast(gy if sign > 0 else -gy, _shape(y))

    return back


def _mul_back(x: Any, y: Any) -> Callable:
    return lambda g: (unbroadcast(g * y, _shape(x)), unbroadcast(g * x, _shape(y)))


def _div_back(x: Any, y: Any, rounding_mode: Any = None) -> Callable:
    return lambda g: (g / y,)


def _reshape_back(x: Any, *args: Any, **kwargs: Any) -> Callable:
    return lambda g: (g.reshape(_shape(x)),)


# name -> (function of the forward's args, kwargs and output -> backward(g) -> input grads)
RULES: dict[str, Callable[..., Callable]] = {
    "add": lambda a, k, o: _add_back(*a, **k),
    "sub": lambda a, k, o: _add_back(*a, **k, sign=-1),
    "__rsub__": lambda a, k, o: lambda g: (-g, g),
    "mul": lambda a, k, o: _mul_back(*a),
    "matmul": lambda a, k, o: _matmul_back(*a),
    "linear": lambda a, k, o: _linear_back(*a, **k),
    "relu": lambda a, k, o: _relu_back(o),
    "sum": lambda a, k, o: _sum_back(*a, **k),
    "mean": lambda a, k, o: _mean_back(*a, **k),
    "pow": lambda a, k, o: _pow_back(*a),
    "square": lambda a, k, o: _pow_back(a[0], 2),
    "neg": lambda a, k, o: lambda g: (-g,),
    "reshape": lambda a, k, o: _reshape_back(*a, **k),
    "t": lambda a, k, o: lambda g: (g.t(),),
    "transpose": lambda a, k, o: lambda g: (g.transpose(a[1], a[2]),),
    "div": lambda a, k, o: _div_back(*a, **k),
    "mse_loss": lambda a, k, o: _mse_back(*a, **k),
}
ALIASES = {
    "__add__": "add", "__radd__": "add", "__sub__": "sub", "rsub": "__rsub__",
    "__mul__": "mul", "__rmul__": "mul", "multiply": "mul", "mm": "matmul",
    "__matmul__": "matmul", "__pow__": "pow", "__neg__": "neg", "negative": "neg",
    "view": "reshape", "flatten": "reshape", "squeeze": "reshape", "unsqueeze": "reshape",
    "view_as": "reshape", "reshape_as": "reshape", "T.__get__": "t", "__truediv__": "div",
    "true_divide": "div", "divide": "div",
}  # fmt: skip
# Results that carry no gradient (like torch's comparisons and indices).
NO_GRADIENT = set(
    "lt gt le ge eq ne __lt__ __gt__ __le__ __ge__ __eq__ __ne__ argmax argmin".split()
)


def tracks(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether this call must be recorded (an input requires a gradient); refuses the
    operations whose backward is not written, before they run."""
    if name in NO_GRADIENT or name == "backward" or name.endswith("_"):
        return False
    if not any(_requires(v) for v in (*args, *kwargs.values())):
        return False
    if ALIASES.get(name, name) not in RULES:
        raise SecureError(
            f"{name} has no backward on secure tensors, and an input requires a gradient. "
            f"Supported in training: {', '.join(sorted(RULES))}; or run it under "
            "torch.no_grad()"
        )
    return True


def record(name: str, args: tuple, kwargs: dict, out: Any) -> None:
    """Attach the ``Node`` of this operation to its result."""
    rule = RULES[ALIASES.get(name, name)]
    if name in ("__radd__", "__rmul__"):
        args = (args[1], args[0], *args[2:])
    backward = rule(args, kwargs, out)
    if not isinstance(out, SecureWrapper):
        return
    inputs = tuple(args) + tuple(kwargs.values())
    out.__dict__["grad_fn"] = Node(name, inputs, backward)
    out.__dict__["requires"] = True


def backward(root: SecureWrapper, gradient: Any = None, *args: Any, **kwargs: Any) -> None:
    """``loss.backward()``: fill the ``.grad`` of every leaf that requires a gradient."""
    if not _requires(root):
        raise SecureError("this tensor does not require a gradient: share(requires_grad=True)")
    if gradient is None:
        if _shape(root).numel() != 1:
            raise SecureError("backward() without a gradient needs a single value (a loss)")
        f = root.child
        ones = torch.full(tuple(_shape(root)), f.scale, dtype=torch.int64)
        gradient = wrap(f.like(ones))
    order, seen = [], set()

    def visit(w: Any) -> None:  # depth first: a node after everything it feeds
        if id(w) in seen:
            return
        seen.add(id(w))
        node = w.__dict__["grad_fn"]
        if node is not None:
            for v in node.inputs:
                if _requires(v):
                    visit(v)
        order.append(w)

    visit(root)
    grads = {id(root): gradient}
    with torch.no_grad():
        for w in reversed(order):
            g = grads.pop(id(w), None)
            if g is None:
                continue
            node = w.__dict__["grad_fn"]
            if node is None:  # a leaf: its gradient adds up in .grad
                old = w.__dict__["sgrad"]
                w.__dict__["sgrad"] = g if old is None else old + g
                continue
            for v, gv in zip(node.inputs, node.backward(g)):
                if gv is not None and _requires(v):
                    grads[id(v)] = gv if id(v) not in grads else grads[id(v)] + gv


TAPE.update(tracks=tracks, record=record)
