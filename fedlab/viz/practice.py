"""Practice inside the lessons: ``practice.check("task")`` says what is right and what is missing.

A lesson's "Your turn" cell leaves ``...`` for the student to replace; the check cell
below it reads the notebook's variables (and peeks at the workers' stores, sending no
message and changing nothing) and answers at once, in a sentence per step, stopping at
the first step that is not done yet. Nothing is graded: the graded exercises are in
``exercises/`` (``sy.check``). The tasks themselves are in ``fedlab.viz.tasks``.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from fedlab import registry
from fedlab.pointer import record_of
from fedlab.wrapper import is_pointer

Step = tuple[bool, str]
TASKS: dict[str, Callable[[Namespace], Iterator[Step]]] = {}


class NotYet(Exception):
    """Raised inside a task: this step is not done, and the message says what to do."""


class Namespace:
    """The notebook's variables, as a task reads them."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns

    def __getitem__(self, name: str) -> Any:
        if name not in self.ns:
            raise NotYet(f"there is no `{name}` yet: run the cell above that defines it")
        value = self.ns[name]
        if value is Ellipsis:
            raise NotYet(f"`{name}` is still `...`: replace the `...` with your code and run it")
        return value


def task(name: str) -> Callable:
    """Register a task's steps under ``name`` (a generator of ``(passed, sentence)``)."""

    def register(fn: Callable[[Namespace], Iterator[Step]]) -> Callable:
        TASKS[name] = fn
        return fn

    return register


@dataclass
class Feedback:
    """What a check found: one sentence per step; ``passed`` when every step is done."""

    task: str
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every step of the task is done."""
        return bool(self.steps) and all(ok for ok, _ in self.steps)

    def __repr__(self) -> str:
        lines = [f"{'✓' if ok else '✗'} {text}" for ok, text in self.steps]
        end = (
            "Well done: every step is right."
            if self.passed
            else "Not yet: fix the ✗ and run again."
        )
        return "\n".join([*lines, end])

    def _repr_html_(self) -> str:
        items = "".join(
            f"<li style='color:{'#1a7f37' if ok else '#cf222e'};list-style:none'>"
            f"{'✓' if ok else '✗'} <span style='color:inherit'>{html.escape(text)}</span></li>"
            for ok, text in self.steps
        )
        end = (
            "<b style='color:#1a7f37'>Well done: every step is right.</b>"
            if self.passed
            else "<b style='color:#cf222e'>Not yet:</b> fix the ✗ and run again."
        )
        return (
            "<div class='fedlab-practice' style='text-align:left;border-left:4px solid "
            f"{'#1a7f37' if self.passed else '#cf222e'};padding:4px 10px'>"
            f"<ul style='margin:0;padding:0'>{items}</ul><div>{end}</div></div>"
        )


def check(name: str, namespace: dict[str, Any] | None = None) -> Feedback:
    """Check the lesson task ``name`` against the notebook's variables (the caller's)."""
    from fedlab.viz import tasks  # noqa: F401  (registers the lessons' tasks)

    if name not in TASKS:
        raise KeyError(f"there is no practice task {name!r}; the tasks are: {', '.join(TASKS)}")
    if namespace is None:  # a notebook's cell: its globals; a function: its locals too
        caller = sys._getframe(1)
        namespace = {**caller.f_globals, **caller.f_locals}
    ns = Namespace(namespace)
    feedback = Feedback(name)
    try:
        for ok, text in TASKS[name](ns):
            feedback.steps.append((ok, text))
            if not ok:
                break
    except NotYet as e:
        feedback.steps.append((False, str(e)))
    return feedback


# -- helpers for tasks: what a pointer refers to, read without sending a message -------


def location(x: Any) -> str:
    """The id of the worker that holds ``x``'s values (``me`` for a local tensor)."""
    return x.child.location_id if is_pointer(x) and hasattr(x.child, "location_id") else "me"


def peek(x: Any, depth: int = 5) -> Any:
    """The object a pointer refers to, following chains; ``None`` if it is gone."""
    while (ptr := record_of(x)) is not None and depth > 0:  # (a wrapper, or a stored pointer)
        key = getattr(ptr, "id_at_location", None)
        if key is None:
            return None
        try:
            x = registry.get_worker(ptr.location_id).objects().get(key)
        except Exception:
            return None
        depth -= 1
    return x


def same(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are tensors with exactly the same numbers (and shape)."""
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and torch.equal(a.detach().double(), torch.as_tensor(b).detach().double())
    )


def holds(worker_id: str, values: torch.Tensor) -> bool:
    """True when the worker's store holds a tensor with exactly these values."""
    store = registry.get_worker(worker_id).objects()
    return any(same(obj, values) for obj in store.values() if record_of(obj) is None)


def local_tensor(x: Any) -> bool:
    """True for a tensor here on ``me`` (not a pointer)."""
    return isinstance(x, torch.Tensor) and not is_pointer(x)


__all__ = ["Feedback", "NotYet", "check", "holds", "location", "peek", "same", "task"]
