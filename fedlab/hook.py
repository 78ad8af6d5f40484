"""Torch integration: ``TorchHook`` adds fedlab's methods to torch and creates the worker ``me``.

``TorchHook`` only *adds* methods (``send``, ``get``, ``move`` to ``torch.Tensor``; the
model methods of ``fedlab.module`` to ``nn.Module``); it replaces no torch function, so
plain tensors pay nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from fedlab import module, registry
from fedlab.exceptions import PointerChainError
from fedlab.worker import BaseWorker, VirtualWorker
from fedlab.wrapper import describe, search, send_tensor, tag

_hook: TorchHook | None = None


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

    def __init__(self, torch_module: Any = torch, local_worker: BaseWorker | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        global _hook
        if _hook is self:
            return
        if torch_module is not torch:
            raise TypeError("pass the torch module itself: sy.TorchHook(torch)")
        self.torch = torch_module
        self.local_worker = local_worker or VirtualWorker(self, id="me")
        self.local_worker.caches_grads = True
        for w in registry.all_workers():
            w.hook = w.hook or self
        registry._local[:] = [self.local_worker]
        torch.Tensor.send = send_tensor
        torch.Tensor.tag = tag
        torch.Tensor.describe = describe
        BaseWorker.search = search  # (PySyft's worker.search, which gives pointers)
        torch.Tensor.get = _tensor_get
        torch.Tensor.move = _tensor_move
        module.install()
        _hook = self

    def __repr__(self) -> str:
        return f"<TorchHook local_worker:{self.local_worker.id}>"
