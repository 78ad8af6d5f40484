"""What a student holds for a fixed-precision or a shared tensor: a tensor-like wrapper.

As in PySyft, the wrapper is a ``torch.Tensor`` whose ``.child`` is the real thing: a
``FixedPrecisionTensor`` or an ``AdditiveSharingTensor``. The wrapper's classmethod
``__torch_function__`` catches every torch call that involves it (operators, methods,
``torch.*``, ``F.*`` and property access) and hands it to its child's layer; so
``nn.Linear`` runs unchanged on an encrypted model, and plain tensors pay nothing.
Metadata (shape, dtype, ``requires_grad``, ``.grad``) is answered here, without a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fedlab.secure.errors import SecureError

_EMPTY = {torch.float32: torch.empty(0), torch.int64: torch.empty(0, dtype=torch.int64)}


def op_name(func: Any) -> str:
    """The name a torch callable is known by here: ``add``, ``__add__``, ``shape.__get__``."""
    if type(func).__name__ == "method-wrapper":  # a property's __get__ / __set__
        return f"{func.__self__.__name__}.{func.__name__}"
    return getattr(func, "__name__", repr(func))


def is_secure(x: Any) -> bool:
    """True for a fixed-precision or shared tensor (a wrapper with a secure child)."""
    return isinstance(x, SecureWrapper)


def wrap(child: Any, requires_grad: bool = False, cls: type | None = None) -> SecureWrapper:
    """A new wrapper around a ``FixedPrecisionTensor`` or an ``AdditiveSharingTensor``."""
    w = torch.Tensor._make_subclass(cls or SecureWrapper, _EMPTY[child.dtype])
    d = w.__dict__
    d["child"], d["requires"], d["sgrad"], d["grad_fn"] = child, requires_grad, None, None
    return w


class SecureWrapper(torch.Tensor):
    """A fixed-precision or shared tensor: torch calls on it run on its child's layer."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        __tracebackhide__ = True
        return dispatch(func, args, kwargs or {})

    def __repr__(self) -> str:
        return f"(Wrapper)>{self.child!r}"

    __str__ = __repr__

    def __hash__(self) -> int:
        return id(self)

    def __reduce_ex__(self, protocol):
        raise SecureError("a fixed-precision or shared tensor cannot be pickled; use .copy()")

    # -- the course's methods ---------------------------------------------------------
    def get(self) -> Any:
        """Bring the value home: a shared tensor is rebuilt from its shares (they are deleted)."""
        __tracebackhide__ = True
        return self.child.get_wrapped(self)

    def copy(self) -> SecureWrapper:
        """A copy with its own objects on the workers (a shared tensor gets fresh shares' ids)."""
        return wrap(self.child.copy())

    def float_precision(self) -> torch.Tensor:
        """Decode a fixed-precision tensor back to floats (a pointer stays a pointer)."""
        __tracebackhide__ = True
        return self.child.float_precision()

    float_prec = float_precision

    def fix_precision(self, *args: Any, **kwargs: Any) -> SecureWrapper:
        """Refused: this tensor is already encoded or shared."""
        __tracebackhide__ = True
        raise SecureError(
            f"this tensor is already a {type(self.child).__name__}; fix_precision() takes "
            "a float tensor (or a pointer to one)"
        )

    fix_prec = fix_precision

    def share(self, *workers: Any, **kwargs: Any) -> SecureWrapper:
        """Split the fixed-precision values into additive shares held by ``workers``."""
        __tracebackhide__ = True
        return self.child.share_wrapped(self, *workers, **kwargs)

    def send(self, *workers: Any) -> Any:
        """Refused: a shared tensor already lives on its workers."""
        __tracebackhide__ = True
        raise SecureError(
            "send() moves plain tensors; share() a fixed-precision tensor instead, or "
            ".get() it first"
        )

    @property
    def location(self) -> Any:
        """Where the values are: a worker for a pointer, the parties for a shared tensor."""
        return self.child.location


class SecureParameter(SecureWrapper, nn.Parameter):
    """A model's ``Parameter`` after ``model.fix_precision()``: the same object, re-classed."""

    def __repr__(self) -> str:
        return f"Parameter containing:\nParameter>{self.child!r}"

    def come_home(self) -> None:
        """Bring a shared parameter's values here (still encoded): ``model.get()`` calls it."""
        if getattr(self.child, "bring_home", lambda: False)():
            self.__dict__["sgrad"] = None

    def __deepcopy__(self, memo: dict) -> SecureParameter:
        return wrap(self.child.copy(), self.__dict__["requires"], SecureParameter)

    __str__ = __repr__


def to_parameter(p: nn.Parameter, child: Any) -> None:
    """Turn the parameter ``p`` itself into a secure one holding ``child`` (in place).

    The object stays the same, so an optimizer made before keeps its references.
    """
    requires = p.requires_grad
    with torch.no_grad():
        p.grad = None
        p.data = torch.empty(0, dtype=p.dtype)
    p.__class__ = SecureParameter
    d = p.__dict__
    d["child"], d["requires"], d["sgrad"], d["grad_fn"] = child, requires, None, None


# -- metadata, answered here --------------------------------------------------------------
def _requires_grad_(w: SecureWrapper, requires_grad: bool = True) -> SecureWrapper:
    w.__dict__["requires"] = bool(requires_grad)
    return w


def _set_requires(w: SecureWrapper, value: bool) -> None:
    _requires_grad_(w, value)


def _set_grad(w: SecureWrapper, g: Any) -> None:
    if g is not None and not is_secure(g):
        raise SecureError("the gradient of a secure tensor must be a secure tensor too")
    w.__dict__["sgrad"] = g


def _set_data(w: SecureWrapper, value: Any) -> None:
    if not is_secure(value) or type(value.child) is not type(w.child):
        raise SecureError(f".data of a {type(w.child).__name__} takes another one")
    w.child.assign(value.child)


def _detach(w: SecureWrapper) -> SecureWrapper:
    return wrap(w.child)  # the same values, no history: like torch, a view that shares them


def _reveal(name: str) -> Callable[..., Any]:
    def refuse(w: SecureWrapper, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        raise SecureError(
            f"{name} needs the plain values, but this is a {type(w.child).__name__}. "
            "Decode it first: x.get().float_precision() (shared) or x.float_precision()."
        )

    return refuse


def _size(w: SecureWrapper, dim: int | None = None) -> Any:
    return w.child.shape if dim is None else w.child.shape[dim]


def _len(w: SecureWrapper) -> int:
    if not w.child.shape:
        raise TypeError("len() of a 0-d tensor")
    return w.child.shape[0]


_STATIC = {"device": torch.device("cpu"), "layout": torch.strided}
META: dict[str, Callable[..., Any]] = {
    "shape.__get__": lambda w: w.child.shape,
    "size": _size,
    "dim": lambda w: len(w.child.shape),
    "ndimension": lambda w: len(w.child.shape),
    "ndim.__get__": lambda w: len(w.child.shape),
    "numel": lambda w: w.child.shape.numel(),
    "nelement": lambda w: w.child.shape.numel(),
    "__len__": _len,
    "dtype.__get__": lambda w: w.child.dtype,
    "is_floating_point": lambda w: w.child.dtype.is_floating_point,
    "is_complex": lambda w: False,
    "requires_grad.__get__": lambda w: w.__dict__["requires"],
    "requires_grad.__set__": _set_requires,
    "requires_grad_": _requires_grad_,
    "is_leaf.__get__": lambda w: w.__dict__["grad_fn"] is None,
    "grad.__get__": lambda w: w.__dict__["sgrad"],
    "grad.__set__": _set_grad,
    "grad_fn.__get__": lambda w: w.__dict__["grad_fn"],
    "retains_grad.__get__": lambda w: False,
    "data.__get__": _detach,
    "data.__set__": _set_data,
    "detach": _detach,
    "__hash__": lambda w: id(w),
    "__repr__": lambda w, *a, **k: repr(w),
    "__format__": lambda w, spec="": format(repr(w), spec),
    "__deepcopy__": lambda w, memo: w.copy(),
    "is_contiguous": lambda w, *a, **k: True,
    "contiguous": lambda w, *a, **k: w,
    **{f"{k}.__get__": (lambda value: lambda w: value)(v) for k, v in _STATIC.items()},
    **{
        f"{k}.__get__": lambda w: False
        for k in ("is_sparse", "is_cuda", "is_meta", "is_quantized", "is_nested", "is_mkldnn")
    },
    **{n: _reveal(n) for n in "__bool__ item tolist numpy __float__ __int__ __index__".split()},
    **{n: _reveal(n) for n in ("__array__", "__iter__", "__contains__")},
}


def _layer(args: Any, kwargs: dict) -> type:
    for v in (*args, *kwargs.values()):
        if isinstance(v, SecureWrapper):
            return type(v.child)
        if isinstance(v, (list, tuple)):
            for u in v:
                if isinstance(u, SecureWrapper):
                    return type(u.child)
    raise SecureError("no secure tensor among the arguments")


# Operations that need gradients are recorded by autograd.py, a module above this one:
# it puts its ``tracks`` and ``record`` here when imported (so this one never imports it).
TAPE: dict[str, Callable[..., Any]] = {}


def dispatch(func: Any, args: tuple, kwargs: dict) -> Any:
    """Run a torch call that involves a secure wrapper: metadata here, the rest on its layer."""
    __tracebackhide__ = True
    name = op_name(func)
    meta = META.get(name)
    if meta is not None and args and isinstance(args[0], SecureWrapper):
        return meta(*args, **kwargs)
    layer = _layer(args, kwargs)
    handler = layer.OPS.get(name)
    if handler is None:
        raise SecureError(
            f"{name} is not available on a {layer.__name__}. Shared and fixed-precision "
            f"tensors support {layer.SUPPORTED}; for anything else, .get() the values first."
        )
    track = torch.is_grad_enabled() and "tracks" in TAPE and TAPE["tracks"](name, args, kwargs)
    out = run_protocol(handler, args, kwargs)
    if track:
        TAPE["record"](name, args, kwargs, out)
    return out


NOTE = "\n(The secure operation stopped there; what it had made on the workers is deleted.)"


def run_protocol(handler: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Run a protocol; if it fails, its half-made objects die before the error is raised.

    A traceback keeps every frame of the failed protocol alive, and with them the
    pointers to shares and triples made so far. Raising a fresh error after the
    ``except`` block lets those frames go: the pointers die and their objects are
    deleted on the workers, so a failed operation leaves every store as it was.
    """
    __tracebackhide__ = True
    failure: tuple[type, str] | None = None
    try:
        return handler(*args, **kwargs)
    except Exception as e:  # re-raised below, once the frames are gone
        failure = (type(e), str(e))
    kind, message = failure
    if not issubclass(kind, SecureError) and NOTE not in message:
        message += NOTE
    try:
        error = kind(message)
    except Exception:  # an exception class that wants other arguments
        error = SecureError(message)
    try:
        raise error
    finally:  # (a local naming the error would tie it to this frame: a cycle only gc frees,
        del error  # and with it the arguments, whose shares would stay on the workers)
