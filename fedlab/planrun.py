"""Running a plan's steps: here (a local call) or on the worker that received ``RunPlan``.

A worker checks a received plan whole before anything runs: every operation on the
allowlist, every slot naming an earlier value. Each step then runs as a single operation
would, within the worker's limits. If a step fails, the worker puts back every input the
plan could have changed, which it works out from the steps itself (an in-place step, an
attribute set, a backward), never from the sender: a failed plan leaves the store as it was.
"""

from __future__ import annotations

from typing import Any

import torch

from fedlab import allowlist, guard
from fedlab import messages as m
from fedlab.exceptions import PlanError, SerdeError


def callables(plan: m.PlanDef) -> list:
    """Each step's allowlisted callable (None for a constant), the plan checked whole first."""
    if not all(type(s) is m.ObjRef or type(s) is torch.Tensor for s in plan.state):
        raise SerdeError("a plan's state holds tensors or stored objects")
    fns, count = [], plan.arity
    for step in plan.steps:
        if type(step) is m.RunOp:
            fns.append(allowlist.lookup(step.op))
            _check_slots((step.args, step.kwargs), count)
        elif type(step) is torch.Tensor:
            fns.append(None)
        else:
            raise SerdeError("a plan's steps are operations and constant tensors")
        count += 1
    _check_slots(plan.outputs, count)
    if not all(type(o) is m.Slot for o in plan.outputs) or len(set(plan.outputs)) != len(
        plan.outputs
    ):
        raise SerdeError("a plan's outputs are distinct slots")
    return fns


def _check_slots(value: Any, count: int) -> None:
    t = type(value)
    if t is m.Slot:
        if not 0 <= value.index < count:
            raise SerdeError("a plan's step names a value that does not exist yet")
    elif t is tuple or t is list:
        for v in value:
            _check_slots(v, count)
    elif t is dict:
        _check_slots(tuple(value.values()), count)
    elif t is m.ObjRef or t is m.PointerRef or isinstance(value, torch.Tensor):
        raise SerdeError("a plan's steps name its own values (slots), not stored objects")


def resolve(value: Any, slots: list, tensors: list | None = None) -> Any:
    """``value`` with each ``Slot`` replaced by the value it names (tensors collected)."""
    t = type(value)
    if t is m.Slot:
        v = slots[value.index]
        v = v if value.part < 0 else v[value.part]
        if tensors is not None and isinstance(v, torch.Tensor):
            tensors.append(v)
        return v
    if t is tuple or t is list:
        return t(resolve(v, slots, tensors) for v in value)
    if t is dict:
        return {k: resolve(v, slots, tensors) for k, v in value.items()}
    return value


def replay(inputs: list, steps: tuple, fns: list, limits: Any = None) -> list:
    """Run ``steps`` on ``inputs`` (within a worker's ``limits``); returns every slot's value."""
    slots, was, n = list(inputs), torch.is_grad_enabled(), len(inputs)
    step = None
    try:
        for step, fn in zip(steps, fns):
            if fn is None:  # a constant: a fresh copy each run, as in-place steps may change it
                slots.append(step.detach().clone().requires_grad_(step.requires_grad))
                continue
            torch.set_grad_enabled(step.grad_enabled)
            tensors: list = []
            args, kwargs = resolve(step.args, slots, tensors), resolve(step.kwargs, slots, tensors)
            if limits is None:
                slots.append(fn(*args, **kwargs))
            else:
                slots.append(guard.run(fn, step.op, args, kwargs, tensors, limits, undo=False))
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


def run_on(w: Any, plan: m.PlanDef, inputs: list) -> list:
    """Run a received plan on ``w``'s ``inputs``: all its steps, or no change to any input."""
    for obj in inputs:
        if type(obj) is not torch.Tensor:
            what = "a pointer" if hasattr(obj, "location_id") else f"a {type(obj).__name__}"
            raise PlanError(
                f"a plan runs on tensors that {w.id} holds, but one of its inputs is {what}. "
                "Move the tensor there first with .move(), or call the plan where it is."
            )
    if len(inputs) != plan.arity:
        raise PlanError(f"the plan {plan.name} takes {plan.arity} inputs, not {len(inputs)}")
    fns = callables(plan)
    changes = any(type(s) is m.RunOp and guard.changes_input(s.op) for s in plan.steps)
    saved = [guard.save(t) for t in inputs] if changes else []
    try:
        slots = replay(inputs, plan.steps, fns, w)
        results = [resolve(s, slots) for s in plan.outputs]
        for r in results:
            if type(r) in (tuple, list):
                raise PlanError(f"the plan {plan.name} returns a tuple inside its outputs")
            guard.check_result(r, f"plan {plan.name}", w.max_result_bytes)
    except BaseException:
        for s in reversed(saved):  # (reversed: an input that is a view of another comes last)
            guard.restore(*s)
        raise
    return results
