"""Plans (PySyft 0.2's ``func2plan``, ``sy.Plan``): traced once, then run as one message.

``@sy.func2plan()`` turns a function of tensors into a ``Plan``; a subclass of ``sy.Plan``
with a ``forward`` (an ``nn.Module``) is a plan whose parameters are its state. Building
traces it (``fedlab.plans.trace``). Called with local tensors, a plan replays its steps
here, equal to plain torch bit for bit; called with pointers, its steps (and its state)
travel to their worker in one ``RunPlan`` message. ``plan.send(bob)`` keeps the plan and
its state on bob: the ``PointerPlan`` it returns runs it there with one message per call,
carrying only references. A worker checks every plan whole against its allowlist before it
runs it, and puts back what a failed plan changed.

A plan is traced for its inputs' shapes and dtypes, and refuses others, unless it was made
with ``func2plan(args_shape=...)``: those shapes (a ``-1``, a dimension that changes from call
to call) only build it, and each new shape or dtype it is called with is traced again, once.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from fedlab import allowlist, pointer, registry
from fedlab import messages as m
from fedlab.exceptions import PlanError, TensorsNotCollocatedException
from fedlab.planrun import replay, resolve
from fedlab.plans.trace import Trace, _example, signature, text, trace
from fedlab.wrapper import MultiWrapper, Wrapper, usable, workers_arg, wrap


class State:
    """A plan's own tensors (PySyft's ``state``); the plan reads them with ``state.read()``."""

    def __init__(self, tensors: Any = (), names: list[str] | None = None) -> None:
        items = list(tensors.items()) if isinstance(tensors, dict) else list(enumerate(tensors))
        self.names = names or [str(k) if isinstance(k, str) else f"state_{k}" for k, _ in items]
        self.tensors = [t for _, t in items]

    def read(self, name: str | None = None) -> Any:
        """All the state's tensors (a tuple), or the one called ``name``."""
        if name is None:
            return tuple(self.tensors)
        return self.tensors[self.names.index(name)]

    def __iadd__(self, names: Any) -> State:
        # (PySyft's ``self.state += ["fc1"]``: a plan class's parameters are its state already)
        return self

    def __repr__(self) -> str:
        return "State: " + ", ".join(self.names)


class Plan(nn.Module):
    """A function of tensors, traced once into operations that run on a worker in one message."""

    def __init__(self, fn: Callable | None = None, name: str | None = None,
                 state: Any = None) -> None:  # fmt: skip
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(self).__name__
        self._own_state = None if state is None else State(state)
        self._traces: dict[tuple, Trace] = {}
        self._last: Trace | None = None
        self._flexible: list | None = None  # args_shape: then other signatures are traced too

    # -- state ------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The plan's own tensors: ``state=`` of ``func2plan``, or a plan class's parameters."""
        if self._own_state is not None:
            return self._own_state
        named = [*self.named_parameters(), *self.named_buffers()]
        return State([t for _, t in named], [n.replace(".", "_") for n, _ in named])

    @state.setter
    def state(self, value: Any) -> None:
        pass  # (``self.state += [...]``, from PySyft's tutorials: nothing to add)

    def add_to_state(self, *names: str) -> None:
        """PySyft's registration of state; a plan class's parameters are its state already."""

    def _run_fn(self, examples: list, kept: list) -> Any:
        if self.fn is None:  # a plan class: its forward, with the kept copies as parameters
            with _swapped(self, kept):
                return self.forward(*examples)
        if self._own_state is not None:
            return self.fn(*examples, State(kept, self._own_state.names))
        return self.fn(*examples)

    # -- building ---------------------------------------------------------------------
    @property
    def signature(self) -> tuple | None:
        """Each input's (shape, dtype, requires_grad) as last traced; None before a build."""
        return None if self._last is None else self._last.signature

    @property
    def is_built(self) -> bool:
        """True once ``build`` (or a first call) has traced the function."""
        return self._last is not None

    def build(self, *args: Any) -> Plan:
        """Trace the function on copies of ``args`` (tensors, or pointers: zeros like them)."""
        __tracebackhide__ = True
        t = trace(self._run_fn, self.name, args, tuple(self.state.tensors))
        self._traces[t.signature] = self._last = t
        return self

    def _trace_for(self, args: tuple) -> Trace:
        __tracebackhide__ = True
        for a in args:
            if isinstance(a, MultiWrapper) or not isinstance(a, torch.Tensor):
                _example(a)  # raises the clear error for this kind of input
        sig = tuple(signature(a) for a in args)
        found = self._traces.get(sig)
        if found is None and self._flexible:
            self.build(*args)  # (made from args_shape: this signature is traced now, and kept)
            found = self._traces[sig]
        if found is None:
            want = self._last.signature
            if len(sig) != len(want):
                raise PlanError(
                    f"the plan {self.name} takes {len(want)} inputs, but got {len(sig)}"
                )
            i = next(i for i, (a, b) in enumerate(zip(sig, want)) if a != b)
            raise PlanError(
                f"the plan {self.name} was built for {text(want[i])} as input {i + 1}, but got "
                f"{text(sig[i])}. Build it again for these inputs: {self.name}.build(...)"
            )
        self._last = found
        return found

    # -- running ----------------------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        """Run the plan: on the pointers' worker in one message, or here on local tensors."""
        __tracebackhide__ = True
        if not self.is_built:
            self.build(*args)
        t = self._trace_for(args)
        state = list(self.state.tensors)
        if not any(isinstance(a, Wrapper) for a in args):
            slots = replay([*args, *state], t.plan.steps, t.fns)
            return _shape(t, [resolve(s, slots) for s in t.plan.outputs])
        values = tuple(s.detach().clone().requires_grad_(s.requires_grad) for s in state)
        return _run(t, t.plan._replace(state=values), args, self.name)

    def send(self, *workers: Any) -> PointerPlan:
        """Keep the plan (and its state) on a worker; its pointer runs it there by reference."""
        __tracebackhide__ = True
        if not self.is_built:
            raise PlanError("A plan needs to be built before being sent to a worker.")
        dest = workers_arg(workers)
        if len(dest) != 1:
            raise PlanError("a plan is sent to one worker at a time: plan.send(bob)")
        return PointerPlan(self, dest[0])

    # -- reading ----------------------------------------------------------------------
    @property
    def code(self) -> str:
        """The recorded operations, one per line, as Python-like text (for reading a plan)."""
        if not self.is_built:
            return f"# {self.name} is not built yet: call {self.name}.build(...) first"
        t = self._last
        n = len(t.signature)
        fn = self.forward if self.fn is None else self.fn
        names = [p for p in inspect.signature(fn).parameters if p != "state"][:n]
        names += [f"_{i}" for i in range(len(names), n)] + self.state.names
        lines = [f"def {self.name}({', '.join(names)}):"]
        if self._flexible and (len(self._traces) > 1 or any(-1 in s for s in self._flexible)):
            shapes = ", ".join(text(s) for s in t.signature)
            kept = len(self._traces)
            lines.append(
                f"    # traced for {shapes}; built from args_shape, so each new shape "
                f"(a -1: any size) is traced again ({kept} kept)"
            )
        used: set[int] = set()
        _used([s.args + tuple(s.kwargs.values()) for s in t.plan.steps if type(s) is m.RunOp], used)
        _used(t.plan.outputs, used)
        for step in t.plan.steps:
            slot = f"_{len(names)}"
            if isinstance(step, torch.Tensor):
                lines.append(f"    {slot} = <constant {text(signature(step))}>")
            else:  # (a value nothing uses, an in-place step's or backward's, is not named)
                lines.append(f"    {_line(step, slot if len(names) in used else '', names)}")
            names.append(slot)
        outs = ", ".join(_name(s, names) for s in t.plan.outputs)
        lines.append(f"    return {outs}" if outs else "    return")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.is_built:
            return f"<Plan {self.name} (not built)>"
        ops = sum(1 for s in self._last.plan.steps if not isinstance(s, torch.Tensor))
        return f"<Plan {self.name}: {len(self._last.signature)} inputs, {ops} operations>"


class PointerPlan:
    """A plan kept on ``location`` (``plan.send(bob)``): calling it sends only references."""

    def __init__(self, plan: Plan, location: Any) -> None:
        self.plan, self.location = plan, location
        self.state = [t.send(location) for t in plan.state.tensors]  # (kept there, with it)
        self._kept: dict[tuple, pointer.PointerTensor] = {}  # signature -> the plan there
        self._keep(plan._last)

    def _keep(self, t: Trace) -> pointer.PointerTensor:
        refs = tuple(m.ObjRef(usable(s).id_at_location) for s in self.state)
        me = registry.local_worker()
        plan_id = me.send_msg(m.SendObject(t.plan._replace(state=refs)), self.location)
        kept = pointer.PointerTensor(me, self.location.id, plan_id, (), torch.float32)
        self._kept[t.signature] = kept  # (a pointer record frees the plan when it dies)
        return kept

    def __call__(self, *args: Any) -> Any:
        """Run the kept plan on ``args`` (pointers on its worker): one message."""
        __tracebackhide__ = True
        t = self.plan._trace_for(args)
        kept = self._kept.get(t.signature) or self._keep(t)
        return _run(t, m.ObjRef(pointer.usable(kept).id_at_location), args, self.plan.name,
                    self.location.id)  # fmt: skip

    def __repr__(self) -> str:
        ids = ", ".join(f"{p.location_id}:{p.id_at_location}" for p in self._kept.values())
        return f"[PointerPlan {self.plan.name} | -> {ids}]"


def _run(t: Trace, plan: Any, args: tuple, name: str, where: str | None = None) -> Any:
    """Run ``plan`` on the worker that holds ``args``, in one ``RunPlan`` message."""
    __tracebackhide__ = True
    loc = where or next(a for a in args if isinstance(a, Wrapper)).child.location_id
    for a in args:
        if not isinstance(a, Wrapper) or a.child.location_id != loc:
            other = f"worker {a.child.location_id}" if isinstance(a, Wrapper) else "me"
            raise TensorsNotCollocatedException(
                f"the plan {name} runs on one worker, but its inputs are on two "
                f"different workers or mix a pointer with a local tensor: one is on {loc}, "
                f"another on {other}. Send or move them to the same worker first."
            )
    records = [usable(a) for a in args]
    owner = records[0].owner
    registry.grads_changed()  # a plan may run backward or set a .grad
    refs = tuple(m.ObjRef(p.id_at_location) for p in records)
    value = owner.send_msg(m.RunPlan(plan, refs), registry.get_worker(loc))
    out = pointer.results(value, owner, loc, list(zip(records, args)))
    return _shape(t, [r if isinstance(r, Wrapper) else wrap(r) for r in out])


def _shape(t: Trace, results: list) -> Any:
    if t.returns == "none":
        return None
    return results[0] if t.returns == "one" else tuple(results)


@contextlib.contextmanager
def _swapped(module: nn.Module, tensors: list) -> Iterator[None]:
    """``module``'s parameters and buffers replaced by ``tensors`` for a while (tracing)."""
    places = [(mod, kind, key) for name, mod in module.named_modules()
              for kind in ("_parameters", "_buffers") for key in getattr(mod, kind)
              if getattr(mod, kind)[key] is not None]  # fmt: skip
    saved = [getattr(mod, kind)[key] for mod, kind, key in places]
    try:
        for (mod, kind, key), t in zip(places, tensors):
            getattr(mod, kind)[key] = t
        yield
    finally:
        for (mod, kind, key), t in zip(places, saved):
            getattr(mod, kind)[key] = t


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


def func2plan(args_shape: Any = None, state: Any = None) -> Any:
    """Decorator: ``@sy.func2plan()`` makes a ``Plan`` (built at once for ``args_shape``).

    ``args_shape`` lists each input's shape (a ``-1``: any size there); ``state`` gives the
    plan tensors of its own (a tuple, or a dict by name), which it reads with ``state.read()``.
    """
    if callable(args_shape):  # used bare, as @func2plan
        return Plan(args_shape)

    def make(fn: Callable) -> Plan:
        plan = Plan(fn, state=state)
        if args_shape is not None:
            plan._flexible = [tuple(shape) for shape in args_shape]
            try:
                plan.build(*(torch.zeros([1 if d == -1 else d for d in s]) for s in args_shape))
            except RuntimeError as e:
                raise PlanError(
                    f"the plan {plan.name} failed when built from zeros of args_shape ({e}). "
                    "Those zeros require no gradient: for a training step, build it from "
                    "example tensors or pointers instead (plan.build(...), or its first call)."
                ) from e
        return plan

    return make
