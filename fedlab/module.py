"""Models on remote data: ``model.send(bob)`` turns each parameter into a pointer *in place*.

Because the ``Parameter`` objects stay the same Python objects (only their class
switches to ``ParameterWrapper``), an optimizer made before the send keeps working:
``opt.step()`` updates the parameters on bob. ``model.get()`` switches them back.
"""

from __future__ import annotations

import copy as _copy
from typing import Any

import torch
from torch import nn

from fedlab.dispatch import empty
from fedlab.exceptions import PointerChainError, StatefulOptimizerError
from fedlab.worker import BaseWorker
from fedlab.wrapper import ParameterWrapper, Wrapper, is_pointer, send_tensor, workers_arg

_HOME = "_fedlab_home_class"


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        seen.setdefault(id(t), t)  # shared (tied) weights travel once
    return list(seen.values())


def _become_pointer(t: torch.Tensor, w: Wrapper) -> None:
    """Turn the tensor object ``t`` into the pointer held by the fresh wrapper ``w``."""
    ptr = w.__dict__.pop("child")
    home = type(t)
    with torch.no_grad():
        t.grad = None
        t.data = empty(t.dtype)  # the values now live on the worker, not here
    t.__class__ = ParameterWrapper if isinstance(t, nn.Parameter) else Wrapper
    t.__dict__[_HOME] = home
    t.__dict__["child"] = ptr


def _become_local(t: torch.Tensor, value: torch.Tensor) -> None:
    """Turn the pointer object ``t`` back into a local tensor holding ``value``."""
    ptr = t.__dict__.pop("child")
    ptr.garbage_collect_data = False
    t.__class__ = t.__dict__.pop(
        _HOME, nn.Parameter if isinstance(t, nn.Parameter) else torch.Tensor
    )
    with torch.no_grad():
        t.data = value.detach()
        t.grad = None if value.grad is None else value.grad.detach()
    if t.is_leaf and t.requires_grad != value.requires_grad:
        t.requires_grad_(value.requires_grad)


def location(self: nn.Module) -> BaseWorker | None:
    """The worker that holds this model's parameters (None when they are here)."""
    for t in _tensors(self):
        if is_pointer(t):
            return t.child.location
    return None


def send(self: nn.Module, *workers: Any) -> nn.Module:
    """Send every parameter and buffer to the worker, in place, and return the model."""
    __tracebackhide__ = True
    dests = workers_arg(workers)
    if len(dests) > 1:
        raise PointerChainError(
            "a model goes to one worker at a time; for a second worker, send a copy: "
            "model.copy().send(alice)"
        )
    dest = dests[0]
    tensors = _tensors(self)
    where = location(self)
    if where is not None:
        if where.id == dest.id:
            return self
        raise PointerChainError(
            f"this model is on {where.id}; use model.move({dest.id}) to send it on, "
            f"or model.get() to bring it back first"
        )
    # Send everything before changing anything: a failure leaves the model as it was
    # (the wrappers already made die here, and their objects are deleted on dest).
    wrappers = [send_tensor(t, dest) for t in tensors]
    for t, w in zip(tensors, wrappers):
        _become_pointer(t, w)
    return self


def get(self: nn.Module) -> nn.Module:
    """Bring every parameter and buffer back, in place (values and gradients); returns the model."""
    __tracebackhide__ = True
    for t in _tensors(self):
        getattr(t, "come_home", lambda: None)()  # (a shared parameter's: see fedlab.secure)
        if is_pointer(t):
            value = Wrapper.get(t)
            _become_local(t, value)
    return self


def move(self: nn.Module, dest: Any) -> nn.Module:
    """Send the model's parameters from where they are straight to ``dest``; returns the model."""
    __tracebackhide__ = True
    dest = workers_arg((dest,))[0]
    if location(self) is None:
        return send(self, dest)
    for t in _tensors(self):
        if is_pointer(t):
            if dest.id == t.child.owner.id:
                _become_local(t, Wrapper.get(t))
            else:
                Wrapper.move(t, dest)
    return self


def copy(self: nn.Module) -> nn.Module:
    """A copy of the model, on the same worker as the model (values, not gradients)."""
    memo: dict[int, Any] = {}  # (keyed by the model's own tensors, alive throughout)
    for t in _tensors(self):
        if not is_pointer(t):
            continue
        remote = t.detach().clone()
        if t.child.requires_grad:
            remote = remote.requires_grad_()
        if isinstance(t, nn.Parameter):
            fresh = nn.Parameter(empty(t.dtype).clone(), requires_grad=t.child.requires_grad)
            _become_pointer(fresh, remote)
            memo[id(t)] = fresh
        else:
            memo[id(t)] = remote
    return _copy.deepcopy(self, memo)


def _check_optimizer_state(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    __tracebackhide__ = True
    if not optimizer.state:  # (plain SGD keeps none: every plain torch step passes here)
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if not state:
                continue
            where = p.child.location_id if is_pointer(p) else "me"
            for key, value in state.items():
                if not isinstance(value, torch.Tensor) or (
                    value.dim() == 0 and not is_pointer(value)
                ):
                    continue  # step counters are local scalars by design
                held = value.child.location_id if is_pointer(value) else "me"
                if held != where:
                    raise StatefulOptimizerError(
                        f"{type(optimizer).__name__} keeps state ({key!r}) for this parameter "
                        f"on {held}, but the parameter is now on {where}. An optimizer with "
                        "state (momentum, Adam) cannot follow a model from worker to worker. "
                        "Make one optimizer per worker, created after model.send(worker), or "
                        "use plain SGD without momentum, whose step keeps no state."
                    )


_installed = False


def install() -> None:
    """Add send/get/move/copy/location to ``nn.Module`` and the optimizer-state check."""
    global _installed
    if _installed:
        return
    nn.Module.send = send
    nn.Module.get = get
    nn.Module.move = move
    nn.Module.copy = copy
    nn.Module.location = property(location)
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    register_optimizer_step_pre_hook(_check_optimizer_state)
    _installed = True
