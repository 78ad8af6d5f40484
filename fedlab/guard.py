"""How a worker runs an allowlisted operation: within its limits, and undone if it fails.

Limits. A result may hold at most ``max_result_bytes`` and an operation may do at most
``max_work`` steps of work (about one multiply-add each): a 52-byte request must not
fill a worker's memory, nor ``x.expand(2**40).sum()`` keep it busy forever. Each
operation's size and work are bounded from its inputs' shapes before it runs (a few
multiplications for the usual small operation); where that bound is too loose, torch
works out the result's shape on the ``meta`` device, without computing anything.

Undo. An in-place operation that fails midway (``scatter_`` with a bad index) leaves a
partial write in plain torch; a worker copies the tensor first and puts it back, into the
same memory, so a failed operation leaves every object as it was. In-place operations
that torch checks whole before writing (``add_``, ``zero_``...) need no copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from fedlab.allowlist import short
from fedlab.exceptions import LimitError, RemoteValueError
from fedlab.serde import DTYPE_NAMES

# Operations whose result can be far bigger than their inputs' broadcast shape: size
# arguments, outer products, lookups. Their size is bounded on ``meta`` when it matters.
_GROWING = frozenset(
    """new_zeros new_ones new_full new_empty new_tensor repeat repeat_interleave
expand broadcast_to tile pad one_hot unfold fold diag diag_embed diagflat interpolate upsample
upsample_nearest upsample_bilinear conv_transpose1d conv_transpose2d conv_transpose3d outer ger
kron cdist pdist einsum tensordot bilinear embedding embedding_bag cartesian_prod meshgrid
block_diag combinations cov corrcoef histc vander __getitem__ index_select take gather
take_along_dim""".split()
)
# Operations whose work per result element grows with an input's size (a contraction).
_CONTRACTING = frozenset(
    """mm matmul bmm mv dot vdot inner __matmul__ __rmatmul__ addmm addbmm
baddbmm addmv linear bilinear einsum tensordot chain_matmul multi_dot cdist""".split()
)
# In-place operations that torch checks whole (shapes, dtypes, overlap) before writing.
_CHECKED_FIRST = frozenset(
    f"Tensor.{n}"
    for n in """add_ sub_ mul_ div_ zero_ fill_ copy_ addcmul_ addcdiv_ lerp_ clamp_ clamp_min_
clamp_max_ neg_ abs_ sqrt_ rsqrt_ exp_ log_ pow_ relu_ sigmoid_ tanh_ sign_ square_ reciprocal_
normal_ uniform_ bernoulli_ random_ exponential_ requires_grad_ detach_ retain_grad t_
transpose_ squeeze_ unsqueeze_ swapaxes_ swapdims_ __iadd__ __isub__ __imul__ __itruediv__
__idiv__ grad.__set__ data.__set__ requires_grad.__set__ backward""".split()
)


def changes_input(name: str) -> bool:
    """Whether the operation ``name`` may change its first argument (or its gradient)."""
    last = name.rsplit(".", 1)[-1]
    return (last.endswith("_") and not last.endswith("__")) or name.endswith(
        ("__set__", "__setitem__", ".backward")) or last.startswith("__i")  # fmt: skip


def run(fn: Callable, name: str, args: Any, kwargs: dict, tensors: list, limits: Any,
        undo: bool = True) -> Any:  # fmt: skip
    """``fn(*args, **kwargs)`` within ``limits``; if it fails, its first argument is put back.

    ``tensors`` are the tensors among the arguments; ``undo=False`` when the caller puts
    back what changed itself (a plan).
    """
    if kwargs.get("out") is not None:  # (F.normalize passes out=None itself)
        raise RemoteValueError(f"{short(name)}: workers do not take out=; assign the result")
    check_size(name, fn, args, kwargs, tensors, limits)
    saved = None
    if (
        undo
        and name not in _CHECKED_FIRST
        and changes_input(name)
        and isinstance(args[0], torch.Tensor)
    ):
        saved = save(args[0])
    try:
        result = fn(*args, **kwargs)
        check_result(result, name, limits.max_result_bytes)
    except BaseException:
        if saved is not None:
            restore(*saved)
        raise
    return result


def check_size(
    name: str, fn: Callable, args: Any, kwargs: dict, tensors: list, limits: Any
) -> None:
    """Refuse, before it runs, an operation whose result or work would exceed ``limits``."""
    max_bytes, max_work = limits.max_result_bytes, limits.max_work
    total = 1
    for t in tensors:
        total *= t.numel() or 1
    op = short(name).removeprefix("F.").removeprefix("linalg.")
    growing = op in _GROWING
    if not growing and total * 16 <= max_bytes and total <= max_work:
        return  # the usual operation: small tensors, no size arguments (work <= total)
    size = _broadcast([t.shape for t in tensors])  # the result's size, unless it grows
    if growing or size * 16 > max_bytes:
        size = _meta_size(fn, args, kwargs, tensors) or size  # (a slower, exact answer)
    if size * 16 > max_bytes:
        raise _too_big(name, size * 16, max_bytes)
    work = _work(op, args, tensors, size)
    if work > max_work:
        raise LimitError(
            f"{short(name)} would take about {work:.2g} steps of work on this worker, more "
            f"than its limit of {max_work:.2g}. Work on smaller tensors, or raise the "
            "worker's max_work if you own it."
        )


def _broadcast(shapes: list) -> int:
    """The size of the inputs' shapes broadcast together (aligned from the right)."""
    ndim = max((len(s) for s in shapes), default=0)
    dims = (max((s[-i] for s in shapes if len(s) >= i), default=1) for i in range(1, ndim + 1))
    return math.prod(dims)


def _work(op: str, args: Any, tensors: list, size: int) -> int:
    """About how many multiply-adds: each result element reads ``k`` inputs in a contraction."""
    if op.startswith("conv") and len(args) > 1 and isinstance(args[1], torch.Tensor):
        w = args[1]  # a convolution's weight: each output reads a window of its inputs
        k = w.numel() // max(min(w.shape[:2]), 1) if w.dim() > 1 else w.numel()
    elif op in _CONTRACTING:
        k = max((d for t in tensors for d in t.shape), default=1)
    else:
        k = 1
    return size * k + sum(t.numel() for t in tensors)


def _meta_size(fn: Callable, args: Any, kwargs: dict, tensors: list) -> int | None:
    """The result's size as torch works it out on ``meta`` (no memory, no computing)."""
    metas = [(t, t.to("meta")) for t in tensors]
    try:
        out = fn(*_swap(args, metas), **{k: _swap(v, metas) for k, v in kwargs.items()})
    except Exception:  # meta cannot tell (e.g. a size that depends on the values)
        return None
    outs = out if isinstance(out, (tuple, list)) else [out]
    return sum(o.numel() for o in outs if isinstance(o, torch.Tensor))


def _swap(v: Any, metas: list) -> Any:
    if isinstance(v, torch.Tensor):
        return next((meta for t, meta in metas if t is v), v)
    return type(v)(_swap(x, metas) for x in v) if type(v) in (list, tuple) else v


def check_result(result: Any, name: str, max_bytes: int) -> None:
    """A worker stores only CPU tensors it can send, of a size within its limit."""
    for r in result if isinstance(result, (tuple, list)) else (result,):
        if r is None:
            continue
        if not isinstance(r, torch.Tensor):
            raise RemoteValueError(
                f"{short(name)} gives back a {type(r).__name__}, which would reveal data; "
                "fedlab only returns pointers. Use .get() first if you may see the values."
            )
        if r.layout != torch.strided or not r.is_cpu or r.dtype not in DTYPE_NAMES:
            raise RemoteValueError(
                f"{short(name)} gives a {r.layout} {r.dtype} tensor on {r.device}; workers "
                "keep dense CPU tensors only"
            )
        if r.numel() * r.element_size() > max_bytes:
            raise _too_big(name, r.numel() * r.element_size(), max_bytes)


def _too_big(name: str, nbytes: int, max_bytes: int) -> LimitError:
    return LimitError(
        f"{short(name)} would make a result of about {nbytes / 2**20:.0f} MiB on this worker, "
        f"more than its limit of {max_bytes / 2**20:.0f} MiB per result. Work on smaller "
        "tensors, or raise the worker's max_result_bytes if you own it."
    )


def save(t: torch.Tensor) -> tuple:
    """What ``restore`` needs to put ``t`` back: its memory, values, gradient and flag."""
    g = t.grad
    return (
        t,
        t.data,
        t.detach().clone(),
        g,
        None if g is None else g.detach().clone(),
        t.requires_grad,
    )


def restore(t: torch.Tensor, data: torch.Tensor, values: torch.Tensor, grad: Any, grad_values: Any,
            requires_grad: bool) -> None:  # fmt: skip
    """Put ``t`` back as ``save`` found it, into the same memory (views of it see it too)."""
    with torch.no_grad():
        t.data = data  # its storage, shape and strides (after ``t_``, ``w.data = ...``)
        t.copy_(values)
        if t.grad is not grad:
            t.grad = grad  # the same gradient object (another pointer may hold it)
        if grad is not None:
            grad.copy_(grad_values)
    if t.is_leaf and t.requires_grad != requires_grad:
        t.requires_grad_(requires_grad)
