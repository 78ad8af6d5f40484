"""The inside of a worker process: a Ray actor that holds one fedlab worker.

Each worker process hooks torch with its own worker as the local worker, so the
process *is* bob. Messages arrive as fedlab's encoded bytes through one method,
``recv_msg``, and are handled by the ordinary ``VirtualWorker`` code: the safe codec
and the operation allowlist protect bob exactly as they do in process. Pointers to
other workers reach their actors by name (a resolver installed in ``fedlab.worker``).

The actor is threaded (``max_concurrency``): while bob handles a ``move``, he calls
alice, and alice may call bob back (a chain) without waiting for bob to finish.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch

from fedlab import events, registry, serde, worker
from fedlab.hook import TorchHook
from fedlab.pointer import record_of
from fedlab.transport import proxy, wire

# The collector is subscribed only while some caller listens, so that otherwise the
# worker builds no events at all (``events.bus`` is then empty).
_listeners = 0
_listeners_lock = threading.Lock()
_subscription: events.Subscription | None = None


def load_data(path: str | os.PathLike) -> list[tuple[str, torch.Tensor]]:
    """A data owner's ``.pt`` file: a tensor, or a dict of named tensors (``weights_only``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"no data file at {p}")
    # weights_only=True: the file may hold tensors and plain containers, never code.
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, torch.Tensor):
        obj = {"data": obj}
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{p} must hold a tensor or a dict of named tensors, e.g. "
                         "torch.save({'data': x, 'target': y}, 'bob.pt')")  # fmt: skip
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{p}: every entry must be a tensor under a name; not {bad[0]!r}")
    return list(obj.items())


class WorkerActor:
    """A Ray actor holding the worker ``worker_id`` (and the data it was started with)."""

    def __init__(self, worker_id: str, data_path: str | None = None,
                 num_threads: int | None = None) -> None:  # fmt: skip
        if num_threads:
            # Ray gives workers one thread; the caller's count makes the same sums in the
            # same order, so results are bit-for-bit those of an in-process worker.
            torch.set_num_threads(num_threads)
        wire.in_worker_process = True
        self.data = load_data(data_path) if data_path else []
        # The data a worker was started with is its own: ids 1, 2, ... in the file's order.
        data = [t.detach().clone() for _, t in self.data]
        self.worker = worker.VirtualWorker(None, id=worker_id, data=data)
        TorchHook(torch, local_worker=self.worker)
        proxy.install_resolver()

    def _run(self, listening: bool, fn, *args) -> tuple[Any, list[events.Event]]:
        global _listeners, _subscription
        if not listening:
            return fn(*args), []
        sink: list[events.Event] = []
        wire.collect(sink)
        with _listeners_lock:
            _listeners += 1
            if _subscription is None:
                _subscription = events.subscribe(wire.collector)
        try:
            return fn(*args), sink
        finally:
            wire.collect(None)
            with _listeners_lock:
                _listeners -= 1
                if _listeners == 0 and _subscription is not None:
                    _subscription.close()
                    _subscription = None

    def recv_msg(self, data: bytes, listening: bool = False) -> bytes:
        """Handle one encoded fedlab message; the reply, framed with the events it caused."""
        return wire.frame(*self._run(listening, self.worker.recv_msg, data))

    def reset(self, listening: bool = False) -> bytes:
        """Empty the store and restart the id counter (``sy.reset()`` in the notebook)."""

        def reset() -> bytes:
            # Pointers this worker held before the reset must not delete anything later.
            registry.current_generation = next(registry.generation)
            self.worker._reset()
            return b""

        return wire.frame(*self._run(listening, reset))

    def snapshot(self) -> bytes:
        """A copy of the store for views and tests: tensors, and pointers as references."""
        rows = []
        for k, v in list(self.worker.objects().items()):
            p = record_of(v)
            rows.append([k, v if p is None else p.as_ref()])
        return serde.encode_value(rows)

    def data_index(self) -> bytes:
        """The names, ids, shapes and dtypes of the data this worker was started with."""
        rows = [[name, i + 1, list(t.shape), serde.DTYPE_NAMES[t.dtype]]
                for i, (name, t) in enumerate(self.data)]  # fmt: skip
        return serde.encode_value(rows)

    def ping(self) -> tuple[int, str]:
        """This worker process's pid and Ray node id (to check it is alive, and where)."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id()
