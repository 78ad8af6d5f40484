"""Torch integration: ``TorchHook`` adds fedlab's methods and creates the local worker.

``TorchHook`` only *adds* methods (``send``, ``get``, ``move``, ...) to ``torch.Tensor``
and ``nn.Module``; it replaces no torch function, so plain tensors pay nothing. The
pointer wrapper lives in ``fedlab.wrapper`` and the dispatch of torch calls on
pointers in ``fedlab.dispatch``; their public names are re-exported here.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from fedlab import messages as m
from fedlab import worker
from fedlab.dispatch import LOCAL, dispatch, run_remote
from fedlab.exceptions import PointerChainError
from fedlab.pointer import PointerTensor
from fedlab.worker import BaseWorker, VirtualWorker
from fedlab.wrapper import (
    MultiWrapper,
    ParameterWrapper,
    Wrapper,
    _child,
    _empty,
    _live_child,
    _workers_arg,
    _wrap_multi,
    is_pointer,
    wrap,
)

__all__ = [
    "LOCAL",
    "MultiWrapper",
    "ParameterWrapper",
    "TorchHook",
    "Wrapper",
    "_child",
    "_empty",
    "_live_child",
    "_tensor_send",
    "_workers_arg",
    "dispatch",
    "is_pointer",
    "local_worker",
    "run_remote",
    "wrap",
]

_hook: TorchHook | None = None


def _tensor_send(self: torch.Tensor, *workers: Any) -> torch.Tensor:
    """Send a copy of this tensor to one worker (a pointer) or several (a multi-pointer)."""
    __tracebackhide__ = True
    if isinstance(self, Wrapper):  # reached through torch.Tensor.send on a subclass
        return Wrapper.send(self, *workers)
    dests = _workers_arg(workers)
    me = local_worker()
    if len(dests) > 1:
        if len({d.id for d in dests}) != len(dests):
            raise TypeError("each worker can appear once in x.send(...)")
        return _wrap_multi({d.id: _tensor_send(self, d) for d in dests})
    dest = dests[0]
    if dest is me:
        raise PointerChainError("this tensor is already here on me; send it to another worker")
    new_id = me.send_msg(m.SendObject(self.detach() if not self.is_leaf else self), dest)
    ptr = PointerTensor(me, dest.id, new_id, self.shape, self.dtype, self.requires_grad)
    if not self.is_leaf or self.grad is None:  # (a gradient travels with a leaf)
        ptr.knows_no_grad()
    return wrap(ptr)


def _tensor_get(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Plain tensors are already here; ``get`` is for pointers."""
    __tracebackhide__ = True
    raise PointerChainError(
        "this tensor is already here on me, not a pointer, so there is nothing to .get(); "
        "did you call .get() twice?"
    )


def _tensor_move(self: torch.Tensor, dest: Any) -> torch.Tensor:
    """A local tensor moves to a worker by ``send``."""
    __tracebackhide__ = True
    raise PointerChainError("this tensor is here on me: use x.send(worker) to give it away")


def local_worker() -> BaseWorker:
    """The local worker ``me`` (made by ``TorchHook``)."""
    if _hook is None:
        raise RuntimeError("hook torch first: hook = sy.TorchHook(torch)")
    return _hook.local_worker


class TorchHook:
    """Adds fedlab's methods to torch and creates the local worker ``me``."""

    def __new__(cls, torch_module: Any = torch, *args: Any, **kwargs: Any):
        if _hook is not None:
            warnings.warn(
                "torch is already hooked; reusing the existing hook and its local worker 'me'",
                stacklevel=2,
            )
            return _hook
        return super().__new__(cls)

    def __init__(
        self, torch_module: Any = torch, local_worker: BaseWorker | None = None, **kwargs: Any
    ) -> None:
        global _hook
        if _hook is self:
            return
        if torch_module is not torch:
            raise TypeError("pass the torch module itself: sy.TorchHook(torch)")
        self.torch = torch_module
        self.local_worker = local_worker or VirtualWorker(self, id="me")
        self.local_worker.caches_grads = True
        for w in worker.all_workers():
            w.hook = w.hook or self
        torch.Tensor.send = _tensor_send
        torch.Tensor.get = _tensor_get
        torch.Tensor.move = _tensor_move
        from fedlab import module

        module.install()
        _hook = self

    def __repr__(self) -> str:
        return f"<TorchHook local_worker:{self.local_worker.id}>"
