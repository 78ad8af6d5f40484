"""Which workers exist in this process, and the counters every pointer checks.

The registry maps worker ids to workers (transports such as Ray add resolvers for ids
that live elsewhere), knows the local worker ``me``, and keeps two counters: the
*generation*, bumped by ``reset()`` (a pointer made before a reset never deletes anything
after it), and the *gradient epoch*, bumped whenever some ``.grad`` may have changed (until
then a pointer answers ``.grad`` from its cache).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from fedlab.exceptions import WorkerNotFoundError

_workers: dict[str, Any] = {}  # every worker of this process, by id, in creation order
_resolvers: list[Callable[[str], Any]] = []
_local: list[Any] = []  # the local worker ``me``, once torch is hooked
generation = itertools.count(1)
current_generation = next(generation)
_grad_epochs = itertools.count(1)
grad_epoch = next(_grad_epochs)


def local_worker() -> Any:
    """The local worker ``me`` (made by ``sy.TorchHook(torch)``)."""
    if not _local:
        raise RuntimeError("hook torch first: hook = sy.TorchHook(torch)")
    return _local[0]


def grads_changed() -> None:
    """Forget every cached ``.grad`` pointer (some gradient may have changed)."""
    global grad_epoch
    grad_epoch = next(_grad_epochs)


def get_worker(worker_id: str) -> Any:
    """The worker with this id, in this process or reachable through a transport."""
    w = _workers.get(worker_id)
    if w is None:
        w = next((found for resolve in _resolvers if (found := resolve(worker_id))), None)
    if w is None:
        known = ", ".join(sorted(_workers)) or "none"
        raise WorkerNotFoundError(
            f"there is no worker called {worker_id!r} (known workers: {known}). "
            f'Create it first, e.g. sy.VirtualWorker(hook, id="{worker_id}").'
        )
    return w


def all_workers() -> list:
    """The workers of this process, in creation order."""
    return list(_workers.values())


def reset() -> None:
    """Empty every worker's store and restart all id counters (for lessons and tests)."""
    global current_generation
    current_generation = next(generation)
    for w in list(_workers.values()):
        w._reset()
