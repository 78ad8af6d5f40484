"""Tracing a plan: the torch calls a function makes on example tensors, recorded as steps.

``trace`` runs the function once on copies of the examples (zeros like a pointer's tensor)
under a ``TorchFunctionMode`` and records each torch call made on them, or on what they
produced, as a ``RunOp`` whose arguments name earlier values by ``Slot``. The function's
own Python (loops, an optimizer, ``if`` on shapes) runs only then. Metadata (shape, dtype)
is answered while tracing; anything that reads values, an operation off the allowlist or
a pointer the plan was not given is refused with a ``PlanError`` that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.overrides import TorchFunctionMode

from fedlab import allowlist
from fedlab import messages as m
from fedlab.dispatch import LOCAL
from fedlab.exceptions import PlanError, SerdeError
from fedlab.planrun import callables
from fedlab.serde import DTYPE_NAMES, encode_value
from fedlab.wrapper import MultiWrapper, Wrapper, usable

# Metadata a traced function may ask (shape, dtype, ...): the same for every call, so it
# is answered while tracing. Whatever reads values (``item``, ``bool``, printing) is not.
_NOT_QUERIES = ("__iter__", "__repr__", "__format__", "requires_grad.__set__")
_QUERIES = frozenset(
    name
    for name, f in LOCAL.items()
    if getattr(f, "__name__", "") != "refuse" and name[7:] not in _NOT_QUERIES
)


def _is_result(value: Any) -> bool:
    if value is None or isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and all(
        v is None or isinstance(v, torch.Tensor) for v in value
    )


class _Tracer(TorchFunctionMode):
    """Records the torch calls made on the tracked tensors, as a plan's steps."""

    def __init__(self, plan: str) -> None:
        super().__init__()
        self.plan = plan
        # The slot of each tracked tensor: id(tensor) -> (tensor, slot). The tensor is kept
        # in the entry, so its id is never reused while tracing, and checked on lookup.
        self.slots: dict[int, tuple[torch.Tensor, m.Slot]] = {}
        self.steps: list = []
        self.count = 0
        # Attribute reads (``p.grad``) since the last operation: read again, same answer.
        self.reads: list[tuple[str, torch.Tensor, Any]] = []
        self.fake: list[torch.Tensor] = []  # the zero gradients given to examples (_example)

    def slot(self, value: torch.Tensor) -> m.Slot | None:
        """The slot that holds ``value``, if it is tracked."""
        entry = self.slots.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else None

    def add(self, value: Any, read: bool = False) -> None:
        """``value`` takes the next slot (a tuple's tensors take its parts)."""
        index, self.count = self.count, self.count + 1
        parts = enumerate(value) if isinstance(value, (tuple, list)) else [(-1, value)]
        for j, v in parts:  # (an in-place step's result keeps its name; a read, the latest)
            if isinstance(v, torch.Tensor) and (read or self.slot(v) is None):
                self.slots[id(v)] = (v, m.Slot(index, j))

    def ref(self, value: Any) -> Any:
        """``value`` as a step names it: tracked tensors by slot; others become constants."""
        if isinstance(value, torch.Tensor) and any(value is f for f in self.fake):
            raise PlanError(
                f"the plan {self.plan} uses the gradient of an input before any backward in "
                "the plan, but on the worker that tensor may have no gradient yet (`if w.grad "
                "is not None: w.grad.zero_()` is traced as if it had one). Clear gradients "
                "with opt.zero_grad() or `w.grad = None`, which work either way."
            )
        if isinstance(value, torch.Tensor):
            slot = self.slot(value)
            if slot is None:  # made by the function itself: it travels, as it is now
                const = value.detach().clone().requires_grad_(value.requires_grad)
                self.steps.append(const)
                self.add(value)
                slot = self.slot(value)
            return slot
        t = type(value)
        if t is tuple or t is list:
            return t(self.ref(v) for v in value)
        if t is dict:
            return {k: self.ref(v) for k, v in value.items()}
        return value

    def involved(self, value: Any) -> bool:
        if isinstance(value, Wrapper):
            raise PlanError(
                f"the plan {self.plan} uses a pointer it was not given as an input. A plan "
                "works on its inputs only: pass the pointer as an argument of the plan."
            )
        if isinstance(value, torch.Tensor):
            return self.slot(value) is not None
        if isinstance(value, (tuple, list)):
            return any([self.involved(v) for v in value])
        if isinstance(value, dict):
            return any([self.involved(v) for v in value.values()])
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not (self.involved(args) or self.involved(kwargs)):
            return func(*args, **kwargs)  # nothing of the plan's inputs: ordinary Python
        name = allowlist.name_of(func)
        if name in _QUERIES:
            return func(*args, **kwargs)
        if name not in allowlist.OPS:
            raise PlanError(_refusal(self.plan, name))
        read = name.endswith(".__get__")
        if read:  # (``p.grad`` again, nothing ran since: no new step, the same answer)
            seen = next((r for n, a, r in self.reads if n == name and a is args[0]), None)
            if seen is not None:
                return seen
        step = m.RunOp(name, self.ref(args), self.ref(kwargs), torch.is_grad_enabled())
        result = func(*args, **kwargs)
        if read and result is None:
            return result  # ("no gradient yet": a fact of the trace, like a shape)
        if not _is_result(result):
            raise PlanError(_refusal(self.plan, name))
        self.steps.append(step)
        if name == "Tensor.backward":
            self.fake.clear()  # gradients from here on are the plan's own
        self.add(result, read)
        if read:
            self.reads.append((name, args[0], result))
        else:
            self.reads.clear()
        return result


def _refusal(plan: str, name: str) -> str:
    op = allowlist.short(name)
    if name in LOCAL:
        return (
            f"the plan {plan} calls {op}, which reads the values of a tensor it works on. "
            "A plan is traced once, on example tensors, and must do the same for any values: "
            "keep printing, .item() and `if` on values outside the plan, on what it returns."
        )
    return (
        f"the plan {plan} calls {op}, which is not on fedlab's allowlist, so no worker "
        "would run it. A plan may use what a pointer may: arithmetic, shapes, reductions, "
        "autograd, layers and losses."
    )


def _example(value: Any) -> torch.Tensor:
    """A fresh tensor like ``value`` to trace with (building never changes the caller's)."""
    if isinstance(value, MultiWrapper):
        raise PlanError("a plan runs on one worker: call it with that worker's pointers")
    if isinstance(value, Wrapper):
        ptr = usable(value)
        t = torch.zeros(ptr.shape, dtype=ptr.dtype).requires_grad_(ptr.requires_grad)
    elif isinstance(value, torch.Tensor):
        t = value.detach().clone().requires_grad_(value.requires_grad)
        if value.grad is not None:
            t.grad = value.grad.detach().clone()
    else:
        raise PlanError(f"a plan's inputs are tensors or pointers, not {type(value).__name__}")
    if t.requires_grad and t.grad is None:
        # Traced with a gradient, code that clears gradients (``opt.zero_grad()``) is
        # recorded: the plan then runs the same whether or not the worker's tensor has one.
        t.grad = torch.zeros_like(t)
    return t


def signature(t: Any) -> tuple:
    """A tensor's or pointer's (shape, dtype, requires_grad), as a plan is built for it."""
    c = usable(t) if isinstance(t, Wrapper) else t
    return tuple(c.shape), c.dtype, bool(c.requires_grad)


def text(sig: tuple) -> str:
    """A signature as students read it: ``float32[2, 3] (requires grad)``."""
    shape, dtype, grad = sig
    return f"{DTYPE_NAMES.get(dtype, dtype)}{list(shape)}" + (" (requires grad)" if grad else "")


class Trace(NamedTuple):
    """One trace of a plan: its definition (as it travels), and how to call it here."""

    plan: m.PlanDef
    fns: list  # each step's callable, for replaying here
    returns: str  # "none", "one" or "many": how outputs come back
    signature: tuple  # each input's (shape, dtype, requires_grad)


def trace(fn: Callable, name: str, args: tuple, state: tuple = ()) -> Trace:
    """Trace ``fn(*examples, *state)`` on copies of ``args`` (pointers: zeros like them).

    ``state`` are the plan's own tensors, tracked as inputs after the caller's: ``fn``
    receives them through ``wrap_state`` (a module's parameters, a ``State``).
    """
    examples = [_example(a) for a in args]
    kept = [_example(t) for t in state]
    tracer = _Tracer(name)
    for a, e in zip((*args, *state), (*examples, *kept)):
        tracer.add(e)
        if e.grad is not None and (isinstance(a, Wrapper) or a.grad is None):
            tracer.fake.append(e.grad)
    with tracer:
        out = fn(examples, kept)
    if out is None:
        outs, returns = [], "none"
    elif isinstance(out, torch.Tensor):
        outs, returns = [out], "one"
    elif isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
        outs, returns = list(out), "many"
    else:
        raise PlanError(
            f"the plan {name} returns a {type(out).__name__}; a plan returns a tensor, "
            "a tuple of tensors or nothing (values would be read on the worker)"
        )
    if any(o is p for i, o in enumerate(outs) for p in outs[:i]):
        raise PlanError(f"the plan {name} returns the same tensor twice; return it once")
    outputs = tuple(tracer.ref(o) for o in outs)
    plan = m.PlanDef(name, tuple(tracer.steps), outputs, (), len(examples) + len(kept))
    try:  # (what it would send: a constant fedlab cannot send is refused now)
        encode_value(plan)
    except SerdeError as e:
        raise PlanError(f"the plan {name} cannot travel: {e}") from None
    return Trace(plan, callables(plan), returns, tuple(signature(e) for e in examples))
