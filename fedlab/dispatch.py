"""Dispatch: where a torch call on a pointer runs.

Metadata a pointer caches (shape, dtype, ...) is answered here without a message; calls
that would reveal values are refused; everything else travels to the worker that holds
the data as one ``RunOp`` message (``pointer.remote``), after the allowlist check, and
comes back as pointers (an argument itself, for an in-place call). ``fedlab.wrapper``
wraps the new ones. A mistake (a local tensor beside a pointer, pointers on two workers)
is explained with both tensors named, before anything is sent.
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import allowlist, pointer, registry
from fedlab.exceptions import RemoteValueError, TensorsNotCollocatedException
from fedlab.pointer import MultiPointerTensor, PointerTensor, record_of

_EMPTY: dict[torch.dtype, torch.Tensor] = {}


def empty(dtype: torch.dtype) -> torch.Tensor:
    """A shared empty tensor of ``dtype``: what a wrapper holds locally, and asks for metadata."""
    t = _EMPTY.get(dtype)
    if t is None:
        t = _EMPTY[dtype] = torch.empty(0, dtype=dtype)
    return t


def _rec(w: Any) -> Any:
    return w.__dict__["child"]


def _size(w: Any, dim: int | None = None) -> Any:
    shape = _rec(w).shape
    return shape if dim is None else shape[dim]


def _len(w: Any) -> int:
    shape = _rec(w).shape
    if not shape:
        raise TypeError("len() of a 0-d tensor")
    return shape[0]


def _reveal(name: str) -> Any:
    def refuse(w: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        op = allowlist.short(name)
        then = "" if name.startswith("Tensor.__") else f", then call .{op}() on what it gives"
        raise RemoteValueError(
            f"{op} needs the values, and they live on {_rec(w).location_id}, not here. "
            f"Bring the tensor back first with .get(){then}."
        )

    return refuse


def _static(attr: str) -> Any:
    return lambda w, *args, **kwargs: getattr(empty(_rec(w).dtype), attr)


def _set_requires_grad(w: Any, value: bool) -> None:
    run("Tensor.requires_grad.__set__", (w, value), {})
    _rec(w).requires_grad = bool(value)


# Answered here, without a message: metadata that a pointer caches, and refusals.
LOCAL: dict[str, Any] = {
    "Tensor.size": _size,
    "Tensor.dim": lambda w: len(_rec(w).shape),
    "Tensor.ndimension": lambda w: len(_rec(w).shape),
    "Tensor.numel": lambda w: _rec(w).shape.numel(),
    "Tensor.nelement": lambda w: _rec(w).shape.numel(),
    "torch.numel": lambda w: _rec(w).shape.numel(),
    "Tensor.__len__": _len,
    "Tensor.shape.__get__": _size,
    "Tensor.ndim.__get__": lambda w: len(_rec(w).shape),
    "Tensor.dtype.__get__": lambda w: _rec(w).dtype,
    "Tensor.requires_grad.__get__": lambda w: _rec(w).requires_grad,
    "Tensor.is_leaf.__get__": lambda w: _rec(w).is_leaf,
    "Tensor.retains_grad.__get__": lambda w: False,
    "Tensor.grad_fn.__get__": lambda w: None,
    "Tensor.is_floating_point": lambda w: _rec(w).dtype.is_floating_point,
    "torch.is_floating_point": lambda w: _rec(w).dtype.is_floating_point,
    "Tensor.is_complex": lambda w: _rec(w).dtype.is_complex,
    "torch.is_complex": lambda w: _rec(w).dtype.is_complex,
    "Tensor.element_size": lambda w: empty(_rec(w).dtype).element_size(),
    "Tensor.is_contiguous": lambda w, *a, **k: True,
    "Tensor.__hash__": lambda w: id(w),
    "Tensor.__format__": lambda w, spec="": format(repr(w), spec),
    "Tensor.__repr__": lambda w, *a, **k: repr(w),
    "Tensor.__iter__": lambda w: iter(w.unbind(0)),
    "Tensor.requires_grad.__set__": _set_requires_grad,
    **{f"Tensor.{a}.__get__": _static(a) for a in """device layout is_sparse is_cuda is_cpu
        is_meta is_quantized is_mkldnn is_nested is_mps is_xpu is_sparse_csr itemsize is_xla
        is_ipu is_vulkan is_maia is_mtia""".split()},
    **{f"Tensor.{n}": _reveal(f"Tensor.{n}") for n in """__bool__ item tolist numpy __float__
        __int__ __index__ __array__ __complex__ __contains__ data_ptr storage untyped_storage
        __array_wrap__""".split()},
}  # fmt: skip

# Operations that may change which tensor some ``.grad`` is (or whether there is one).
GRAD_CHANGING = frozenset(
    f"Tensor.{n}"
    for n in "backward grad.__set__ data.__set__ requires_grad_ "
    "requires_grad.__set__ retain_grad detach_".split()
)


def dispatch(name: str, args: tuple, kwargs: dict) -> Any:
    """Run the torch call ``name`` that involves a pointer: here for metadata, else remotely."""
    __tracebackhide__ = True
    local = LOCAL.get(name)
    if local is not None and args and isinstance(args[0], torch.Tensor):
        child = args[0].__dict__.get("child")
        if type(child) is MultiPointerTensor:  # metadata: the same on every worker
            return local(next(iter(child.child.values())), *args[1:], **kwargs)
        if type(child) is PointerTensor:
            return local(*args, **kwargs)
    return run(name, args, kwargs)


def run(name: str, args: tuple, kwargs: dict) -> Any:
    """Send the operation ``name`` to where its pointers live; pointers to its results."""
    __tracebackhide__ = True
    if name not in allowlist.OPS:
        allowlist.lookup(name)  # raises the clear "not on the allowlist" error
    if name in GRAD_CHANGING:
        registry.grads_changed()
    try:
        return pointer.remote(name, args, kwargs, torch.is_grad_enabled())
    except TensorsNotCollocatedException:  # (raised before anything was sent)
        return _explain(name, args, kwargs)


def _leaves(value: Any, found: list | None = None) -> list:
    """The values inside nested tuples, lists and dicts, in order."""
    found = [] if found is None else found
    t = type(value)
    if t is tuple or t is list or t is dict:
        for v in value.values() if t is dict else value:
            _leaves(v, found)
    else:
        found.append(value)
    return found


def _explain(name: str, args: tuple, kwargs: dict) -> Any:
    """Multi-pointers run on each worker; anything else mixed up gets a clear error."""
    __tracebackhide__ = True
    tensors = [v for v in _leaves((args, kwargs)) if isinstance(v, torch.Tensor)]
    multis = [v for v in tensors if type(v.__dict__.get("child")) is MultiPointerTensor]
    if multis:
        others = [t for t in tensors if not any(t is mw for mw in multis)]
        return _run_multi(name, args, kwargs, multis, others)
    ptrs = [t for t in tensors if record_of(t) is not None]
    op = allowlist.short(name)
    other = next((t for t in tensors if record_of(t) is None), None)
    if other is not None:
        loc = record_of(ptrs[0]).location_id
        raise TensorsNotCollocatedException(
            f"{op} mixes a pointer to a tensor on {loc} with a local tensor.\n"
            f"  pointer: {ptrs[0]!r}\n  local:   {other!r}\n"
            f"Both must be in the same place: send the local tensor there with "
            f".send({loc}), or bring the remote one here with .get()."
        )
    a = ptrs[0]
    b = next(p for p in ptrs if record_of(p).location_id != record_of(a).location_id)
    la, lb = record_of(a).location_id, record_of(b).location_id
    raise TensorsNotCollocatedException(
        f"{op} involves tensors on two different workers: one is on {la}, the other on "
        f"{lb}.\n  {a!r}\n  {b!r}\n"
        f"Put them on the same worker first, e.g. with .move({la}) or .move({lb}), "
        f"or .get() both."
    )


def _run_multi(name: str, args: tuple, kwargs: dict, multis: list, others: list) -> Any:
    __tracebackhide__ = True
    keys = list(_rec(multis[0]).child)
    op = allowlist.short(name)
    for mw in multis[1:]:
        if list(_rec(mw).child) != keys:
            raise TensorsNotCollocatedException(
                f"{op} mixes multi-pointers on different workers ({', '.join(keys)} vs "
                f"{', '.join(_rec(mw).child)}); they must be on the same workers, in order."
            )
    if others:
        where = record_of(others[0])
        raise TensorsNotCollocatedException(
            f"{op} mixes a multi-pointer (on {', '.join(keys)}) with a tensor on "
            f"{where.location_id if where else 'me (it is a local tensor)'}; combine "
            "multi-pointers only with each other."
        )

    return _combine({k: run(name, _pick(args, k), _pick(kwargs, k)) for k in keys})


def _pick(value: Any, key: str) -> Any:
    """``value`` with each multi-pointer replaced by its pointer on worker ``key``."""
    if isinstance(value, torch.Tensor) and type(value.__dict__.get("child")) is MultiPointerTensor:
        return value.__dict__["child"].child[key]
    if type(value) in (list, tuple):
        return type(value)(_pick(v, key) for v in value)
    if type(value) is dict:
        return {k: _pick(v, key) for k, v in value.items()}
    return value


def _combine(results: dict[str, Any]) -> Any:
    first = next(iter(results.values()))
    if first is None:
        return None
    if isinstance(first, tuple):
        return tuple(_combine({k: v[i] for k, v in results.items()}) for i in range(len(first)))
    return MultiPointerTensor(results)
