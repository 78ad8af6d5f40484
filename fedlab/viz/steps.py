"""What a lesson's practice task is made of: its steps, the notebook's variables, and helpers.

A task (``fedlab.viz.tasks``) is a generator of ``(passed, sentence)`` steps registered with
``@task(name)``; it reads the notebook's variables through a ``Namespace`` and may peek at
the workers' stores (sending no message, changing nothing). ``fedlab.viz.practice`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


__all__ = ["Namespace", "NotYet", "holds", "location", "peek", "same", "task"]
