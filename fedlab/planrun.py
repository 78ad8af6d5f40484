"""Running a plan's steps: here (a local call) or on the worker that received ``RunPlan``.

A worker checks a received plan whole before anything runs: every operation on the
allowlist, every slot naming an earlier value. If a step then fails, the inputs the plan
changes in place are put back, so a failed plan leaves the store as it was.
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import allowlist, worker
from fedlab import messages as m
from fedlab.exceptions import PlanError, SerdeError
from fedlab.serde import decode
from fedlab.wrapper import Wrapper


def callables(steps: tuple) -> list:
    """The allowlisted callable of each step (None for a constant)."""
    return [None if isinstance(s, torch.Tensor) else allowlist.lookup(s.op) for s in steps]


def resolve(value: Any, slots: list) -> Any:
    """``value`` with each ``Slot`` replaced by the value it names."""
    t = type(value)
    if t is m.Slot:
        v = slots[value.index]
        return v if value.part < 0 else v[value.part]
    if t is tuple or t is list:
        return t(resolve(v, slots) for v in value)
    if t is dict:
        return {k: resolve(v, slots) for k, v in value.items()}
    return value


def _values(values: Any, slots: list) -> list:
    """``resolve`` for an operation's flat arguments (the usual case), one loop, no calls."""
    out = []
    for v in values:
        t = type(v)
        if t is m.Slot:
            v = slots[v.index] if v.part < 0 else slots[v.index][v.part]
        elif t is tuple or t is list or t is dict:
            v = resolve(v, slots)
        out.append(v)
    return out


def replay(inputs: list, steps: tuple, fns: list) -> list:
    """Run ``steps`` (with their callables ``fns``) on ``inputs``; returns every slot's value."""
    slots = inputs
    was = grad = torch.is_grad_enabled()
    step, n = None, len(slots)
    try:
        for step, fn in zip(steps, fns):
            if fn is None:  # a constant: a fresh copy each run, as in-place steps may change it
                slots.append(step.detach().clone().requires_grad_(step.requires_grad))
                continue
            if bool(step.grad_enabled) is not grad:  # (switched only when it changes)
                grad = bool(step.grad_enabled)
                torch.set_grad_enabled(grad)
            args = _values(step.args, slots)
            if step.kwargs:
                keys = step.kwargs.keys()
                slots.append(fn(*args, **dict(zip(keys, _values(step.kwargs.values(), slots)))))
            else:
                slots.append(fn(*args))
    except Exception as e:
        if type(step) is m.RunOp and _grad_missing(step, slots, steps, n):
            raise PlanError(
                "a step of this plan uses a .grad that is None here: no backward has reached "
                "that tensor yet. A plan is traced with a gradient on every input that "
                "requires one, so `if w.grad is not None: w.grad.zero_()` was recorded as if "
                "it had one. Clear gradients with opt.zero_grad() or `w.grad = None`, which "
                "work either way."
            ) from e
        raise
    finally:
        torch.set_grad_enabled(was)
    return slots


def _grad_missing(step: m.RunOp, slots: list, steps: tuple, n: int) -> bool:
    """Whether ``step`` got a None that a ``.grad`` step gave (it failed on that, surely)."""
    for v in (*step.args, *step.kwargs.values()):
        if type(v) is m.Slot and v.index >= n and slots[v.index] is None:
            source = steps[v.index - n]
            if type(source) is m.RunOp and source.op == "Tensor.grad.__get__":
                return True
    return False


def _check_refs(value: Any, count: int) -> None:
    t = type(value)
    if t is m.Slot:
        if not (type(value.index) is int and 0 <= value.index < count):
            raise SerdeError("a plan's step names a value that does not exist yet")
        if type(value.part) is not int:
            raise SerdeError("a plan's slot part must be an integer")
    elif t is tuple or t is list:
        for v in value:
            _check_refs(v, count)
    elif t is dict:
        for v in value.values():
            _check_refs(v, count)
    elif t is m.ObjRef or t is m.PointerRef:
        raise SerdeError("a plan's steps name its own values (slots), not stored objects")


# A worker decodes and checks each distinct plan once: a training loop sends the same one.
_DECODED: dict[tuple[bytes, int], tuple[tuple, list]] = {}


def _steps(data: Any, n: int) -> tuple[tuple, list]:
    """A received plan's steps and their callables, checked whole before anything runs."""
    hit = _DECODED.get((data, n)) if type(data) is bytes else None
    if hit is not None:
        return hit
    steps = decode(data)
    if type(steps) is not tuple:
        raise SerdeError("a plan's steps must be a tuple")
    fns, count = [], n
    for step in steps:
        if type(step) is m.RunOp:
            if type(step.args) is not tuple or type(step.kwargs) is not dict:
                raise SerdeError("an operation's arguments must be a tuple and a dict")
            fns.append(allowlist.lookup(step.op))
            _check_refs((step.args, step.kwargs), count)
        elif type(step) is torch.Tensor:
            fns.append(None)
        else:
            raise SerdeError("a plan's steps are operations and constant tensors")
        count += 1
    if len(_DECODED) >= 64:
        _DECODED.clear()
    _DECODED[data, n] = steps, fns
    return steps, fns


def _check_ends(msg: m.RunPlan, n: int, count: int) -> None:
    outs = msg.outputs
    if type(outs) is not tuple or type(msg.mutates) is not tuple:
        raise SerdeError("a plan's outputs and mutated inputs must be tuples")
    _check_refs(outs, count)
    if not all(type(o) is m.Slot for o in outs) or len({(o.index, o.part) for o in outs}) != len(
        outs
    ):
        raise SerdeError("a plan's outputs are distinct slots")
    if not all(type(i) is int and 0 <= i < n for i in msg.mutates):
        raise SerdeError("a plan's mutated inputs must be input positions")


def run_on(w: worker.BaseWorker, msg: m.RunPlan) -> Any:
    """Handle ``RunPlan`` on ``w``: all steps, or (if one fails) no change to ``w``'s store."""
    if type(msg.inputs) is not tuple or not all(type(r) is m.ObjRef for r in msg.inputs):
        raise SerdeError("a plan's inputs must be stored objects")
    inputs = [w.get_obj(r.id) for r in msg.inputs]
    for r, obj in zip(msg.inputs, inputs):
        if not isinstance(obj, torch.Tensor) or isinstance(obj, Wrapper):
            raise PlanError(
                f"a plan runs on tensors that {w.id} holds, but {w.id}:{r.id} is a pointer. "
                "Move the tensor here first with .move(), or call the plan where it is."
            )
    steps, fns = _steps(msg.steps, len(inputs))
    _check_ends(msg, len(inputs), len(inputs) + len(steps))
    saved = [_save(inputs[i]) for i in sorted(set(msg.mutates))]
    try:
        slots = replay(list(inputs), steps, fns)
        results = [resolve(s, slots) for s in msg.outputs]
        for r in results:
            worker._check_result(r, f"plan {msg.name}")
            if isinstance(r, (tuple, list)):
                raise PlanError(f"the plan {msg.name} returns a tuple inside its outputs")
    except BaseException:
        for s in saved:
            _restore(*s)
        raise
    used = {id(obj): r.id for obj, r in zip(inputs, msg.inputs)}
    return tuple(w._keep(r, used) for r in results)


def _save(t: torch.Tensor) -> tuple:
    g = t.grad
    layout = (t.size(), t.stride(), t.storage_offset())
    return t, layout, t.detach().clone(), None if g is None else g.detach().clone(), t.requires_grad


def _restore(t: torch.Tensor, layout: tuple, data: Any, grad: Any, requires_grad: bool) -> None:
    # In place, into the same memory: a stored view's base is put back too.
    with torch.no_grad():
        if (t.size(), t.stride(), t.storage_offset()) != layout:  # (``t_``, ``squeeze_``)
            t.as_strided_(*layout)
        t.copy_(data)
        t.grad = grad
    if t.is_leaf and t.requires_grad != requires_grad:
        t.requires_grad_(requires_grad)
