"""Plans: a function traced once into allowlisted operations, then run on a worker in one message.

As in PySyft 0.2, ``@sy.func2plan()`` turns a function of tensors into a ``Plan``.
``plan.build(*examples)`` runs the function once, on copies of the examples, and records
each torch call it makes on them (a ``TorchFunctionMode``): the function's own Python
(loops, an optimizer, ``if`` on shapes) runs only then. Calling the plan with pointers
sends the recorded operations to their worker in one ``RunPlan`` message; the worker looks
each one up in the allowlist and runs them in order. A training step is then one message
instead of one per operation. Called with local tensors, a plan replays the same
operations here, so it can be checked against plain torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from fedlab import allowlist, pointer, worker
from fedlab import messages as m
from fedlab.dispatch import LOCAL
from fedlab.exceptions import PlanError, SerdeError, TensorsNotCollocatedException
from fedlab.planrun import callables, replay, resolve
from fedlab.serde import DTYPE_NAMES, encode_value
from fedlab.wrapper import MultiWrapper, Wrapper, usable, wrap

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


def _signature(t: Any) -> tuple:
    c = usable(t) if isinstance(t, Wrapper) else t
    return tuple(c.shape), c.dtype, bool(c.requires_grad)


def _text(sig: tuple) -> str:
    shape, dtype, grad = sig
    return f"{DTYPE_NAMES.get(dtype, dtype)}{list(shape)}" + (" (requires grad)" if grad else "")


class Plan:
    """A function of tensors, traced once into operations that run on a worker in one message."""

    def __init__(self, fn: Callable, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "plan")
        self.steps: tuple = ()
        self.outputs: tuple = ()
        self.signature: tuple | None = None
        self._fns: list = []  # the steps' callables, for replaying here
        self._returns = "none"  # "none", "one" or "many": how outputs come back

    @property
    def is_built(self) -> bool:
        """True once ``build`` has traced the function."""
        return self.signature is not None

    def build(self, *args: Any) -> Plan:
        """Trace the function on copies of ``args`` (tensors, or pointers: zeros like them)."""
        __tracebackhide__ = True
        examples = [_example(a) for a in args]
        tracer = _Tracer(self.name)
        for a, e in zip(args, examples):
            tracer.add(e)
            if e.grad is not None and (isinstance(a, Wrapper) or a.grad is None):
                tracer.fake.append(e.grad)
        with tracer:
            out = self.fn(*examples)
        if out is None:
            outs, returns = [], "none"
        elif isinstance(out, torch.Tensor):
            outs, returns = [out], "one"
        elif isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
            outs, returns = list(out), "many"
        else:
            raise PlanError(
                f"the plan {self.name} returns a {type(out).__name__}; a plan returns a tensor, "
                "a tuple of tensors or nothing (values would be read on the worker)"
            )
        if any(o is p for i, o in enumerate(outs) for p in outs[:i]):
            raise PlanError(f"the plan {self.name} returns the same tensor twice; return it once")
        outputs = tuple(tracer.ref(o) for o in outs)
        steps = tuple(tracer.steps)
        try:  # (what it would send: a constant fedlab cannot send is refused now)
            encode_value(steps)
        except SerdeError as e:
            raise PlanError(f"the plan {self.name} cannot travel: {e}") from None
        self.steps, self.outputs, self._returns = steps, outputs, returns
        self._fns = callables(steps, len(examples))
        self.signature = tuple(_signature(e) for e in examples)
        return self

    def __call__(self, *args: Any) -> Any:
        """Run the plan: on the pointers' worker in one message, or here on local tensors."""
        __tracebackhide__ = True
        if not self.is_built:
            self.build(*args)
        self._check(args)
        ptrs = [a for a in args if isinstance(a, Wrapper)]
        if not ptrs:
            slots = replay(list(args), self.steps, self._fns)
            return self._shape([resolve(s, slots) for s in self.outputs])
        loc = ptrs[0].child.location_id
        for a in args:
            if not isinstance(a, Wrapper) or a.child.location_id != loc:
                where = f"worker {a.child.location_id}" if isinstance(a, Wrapper) else "me"
                raise TensorsNotCollocatedException(
                    f"the plan {self.name} runs on one worker, but its inputs are on two "
                    f"different workers or mix a pointer with a local tensor: one is on {loc}, "
                    f"another on {where}. Send or move them to the same worker first."
                )
        records = [usable(a) for a in args]
        owner = records[0].owner
        worker.grads_changed()  # a plan may run backward or set a .grad
        refs = tuple(m.ObjRef(p.id_at_location) for p in records)
        msg = m.RunPlan(self.name, refs, self.steps, self.outputs)
        value = owner.send_msg(msg, worker.get_worker(loc))
        out = pointer.results(value, owner, loc, list(zip(records, args)))
        return self._shape([r if isinstance(r, Wrapper) else wrap(r) for r in out])

    def _check(self, args: tuple) -> None:
        __tracebackhide__ = True
        sig = self.signature or ()
        if len(args) != len(sig):
            raise PlanError(f"the plan {self.name} takes {len(sig)} inputs, but got {len(args)}")
        for i, (a, want) in enumerate(zip(args, sig), 1):
            if isinstance(a, MultiWrapper) or not isinstance(a, torch.Tensor):
                _example(a)  # raises the clear error for this kind of input
            got = _signature(a)
            if got != want:
                raise PlanError(
                    f"the plan {self.name} was built for {_text(want)} as input {i}, but got "
                    f"{_text(got)}. Build it again for these inputs: {self.name}.build(...)"
                )

    def _shape(self, results: list) -> Any:
        if self._returns == "none":
            return None
        return results[0] if self._returns == "one" else tuple(results)

    @property
    def code(self) -> str:
        """The recorded operations, one per line, as Python-like text (for reading a plan)."""
        if not self.is_built:
            return f"# {self.name} is not built yet: call {self.name}.build(...) first"
        names = list(inspect.signature(self.fn).parameters)[: len(self.signature or ())]
        names += [f"_{i}" for i in range(len(names), len(self.signature or ()))]
        lines = [f"def {self.name}({', '.join(names)}):"]
        used: set[int] = set()
        _used([s.args + tuple(s.kwargs.values()) for s in self.steps if type(s) is m.RunOp], used)
        _used(self.outputs, used)
        for step in self.steps:
            slot = f"_{len(names)}"
            if isinstance(step, torch.Tensor):
                lines.append(f"    {slot} = <constant {_text(_signature(step))}>")
            else:  # (a value nothing uses, an in-place step's or backward's, is not named)
                lines.append(f"    {_line(step, slot if len(names) in used else '', names)}")
            names.append(slot)
        outs = ", ".join(_name(s, names) for s in self.outputs)
        lines.append(f"    return {outs}" if outs else "    return")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.is_built:
            return f"<Plan {self.name} (not built)>"
        ops = sum(1 for s in self.steps if not isinstance(s, torch.Tensor))
        return f"<Plan {self.name}: {len(self.signature or ())} inputs, {ops} operations>"


def _name(slot: m.Slot, names: list[str]) -> str:
    base = names[slot.index]
    return base if slot.part < 0 else f"{base}[{slot.part}]"


def _arg(value: Any, names: list[str]) -> str:
    if type(value) is m.Slot:
        return _name(value, names)
    if type(value) in (tuple, list):
        inner = ", ".join(_arg(v, names) for v in value)
        return f"({inner})" if type(value) is tuple else f"[{inner}]"
    return repr(value)


def _used(value: Any, out: set[int]) -> None:
    if type(value) is m.Slot:
        out.add(value.index)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _used(v, out)
    elif isinstance(value, dict):
        _used(list(value.values()), out)


def _defaults(op: str) -> dict[str, Any]:
    """The keyword defaults of an operation's Python signature (none for C functions)."""
    try:
        params = inspect.signature(allowlist.OPS[op]).parameters.values()
    except (KeyError, TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _line(step: m.RunOp, slot: str, names: list[str]) -> str:
    args = [_arg(a, names) for a in step.args]
    defaults = _defaults(step.op)  # (arguments left at their defaults are not shown)
    shown = {
        k: v
        for k, v in step.kwargs.items()
        if not (k in defaults and type(v) is type(defaults[k]) and v == defaults[k])
    }
    args += [f"{k}={_arg(v, names)}" for k, v in shown.items()]
    note = "" if step.grad_enabled else "  # no grad"
    to = f"{slot} = " if slot else ""
    if step.op.endswith(".__get__"):
        return f"{to}{args[0]}.{step.op.split('.')[1]}{note}"
    if step.op.endswith(".__set__"):
        return f"{args[0]}.{step.op.split('.')[1]} = {args[1]}{note}"
    return f"{to}{allowlist.short(step.op)}({', '.join(args)}){note}"


def func2plan(args_shape: Any = None) -> Any:
    """Decorator: ``@sy.func2plan()`` makes a ``Plan`` (built at once for ``args_shape``)."""
    if callable(args_shape):  # used bare, as @func2plan
        return Plan(args_shape)

    def make(fn: Callable) -> Plan:
        plan = Plan(fn)
        if args_shape is not None:
            if any(d < 0 for shape in args_shape for d in shape):
                raise PlanError(
                    f"args_shape gives each input's exact shape, but {args_shape} has a -1: "
                    "a fedlab plan is fixed to its inputs' shapes. Give the real sizes."
                )
            try:
                plan.build(*(torch.zeros(shape) for shape in args_shape))
            except RuntimeError as e:
                raise PlanError(
                    f"the plan {plan.name} failed when built from zeros of args_shape ({e}). "
                    "Those zeros require no gradient: for a training step, build it from "
                    "example tensors or pointers instead (plan.build(...), or its first call)."
                ) from e
        return plan

    return make
