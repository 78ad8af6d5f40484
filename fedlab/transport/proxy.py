"""``RayWorker``: this process's handle on a worker that runs in another process.

It is a ``BaseWorker`` whose ``recv_msg`` carries fedlab's encoded bytes to the
worker's Ray actor and brings the encoded reply back, so pointers, autograd, models
and garbage collection work through it exactly as with a ``VirtualWorker``. Its own
store stays empty: the objects live in the worker process, and ``_objects`` is a copy
fetched from there. The events the worker caused come back with the reply and are
republished here.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from fedlab import messages as m
from fedlab import registry, serde, worker
from fedlab.exceptions import FedlabError, SerdeError, WorkerDiedError
from fedlab.pointer import PointerTensor, from_ref
from fedlab.transport import wire
from fedlab.wrapper import wrap

NAMESPACE = "fedlab"
DEFAULT_TIMEOUT = 60.0  # seconds a worker may take to answer one message

# Per thread: how many calls to a worker process are in flight (see ``recv_msg``).
_depth = threading.local()


def actor_name(worker_id: str) -> str:
    """The Ray actor name under which the worker ``worker_id`` is registered."""
    return f"fedlab-worker:{worker_id}"


class RayWorker(worker.BaseWorker):
    """A worker in another process (a Ray actor); use it like a ``VirtualWorker``."""

    def __init__(self, hook: Any = None, id: str = "me", actor: Any = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:  # fmt: skip
        super().__init__(hook, id)  # (a second call keeps the worker: a re-spawn)
        if actor is not None or not hasattr(self, "actor"):
            self.actor = actor  # re-spawned: the same Python object, a new process
        self.timeout = timeout
        registry._workers[self.id] = self

    # -- talking ----------------------------------------------------------------------
    def recv_msg(self, data: bytes) -> bytes:
        """Carry an encoded message to the worker process; return its encoded reply."""
        import ray

        if getattr(_depth, "n", 0):
            # Only a pointer's __del__ (garbage collection while this thread waits for a
            # worker) gets here: never block inside Ray; the delete travels on its own.
            self.actor.recv_msg.remote(data, False)
            return serde.encode(self.id, "", m.Reply(None))
        reply, evs = wire.unframe(
            self._wait(ray, self.actor.recv_msg.remote(data, wire.listening()))
        )
        wire.publish(evs)
        return reply

    def _wait(self, ray: Any, ref: Any, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        _depth.n = 1
        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise WorkerDiedError(
                f"{self.id} did not answer within {timeout:g} s: its process is stuck or "
                f"overloaded. Re-spawn it with sy.spawn_workers({self.id!r})."
            ) from None
        except ray.exceptions.RayActorError:
            if wire.in_worker_process:
                # Forget the dead actor: a re-spawned worker is found again by name.
                registry._workers.pop(self.id, None)
            raise WorkerDiedError(
                f"the worker process {self.id} has died (killed, crashed or shut down); "
                f"what it held is lost. Re-spawn it with sy.spawn_workers({self.id!r}) "
                "and send its data again."
            ) from None
        finally:
            _depth.n = 0

    def send_msg(self, msg: Any, location: worker.BaseWorker) -> Any:
        """A copy of a worker process's pointer cannot send anything (it is a snapshot)."""
        raise FedlabError(
            f"this is a read-only copy of a pointer held by {self.id}; use your own "
            "pointer (the one you sent or computed) instead"
        )

    # -- the store, seen from here ---------------------------------------------------
    @property
    def _objects(self) -> dict[int, Any]:
        """A copy of the worker's store: tensors, and copies of its pointers."""
        import ray

        rows = serde.decode_value(self._wait(ray, self.actor.snapshot.remote()))
        out: dict[int, Any] = {}
        for k, v in rows:
            if type(v) is m.PointerRef:
                v = from_ref(self, v, pointer_id=k)
                v.garbage_collect_data = False  # a view: it must never free anything
            elif type(v) is not torch.Tensor and type(v) is not m.PlanDef:
                raise SerdeError(f"{self.id} sent a malformed copy of its store")
            out[k] = v
        return out

    def clear_objects(self) -> RayWorker:
        """Empty the worker's store of what this process holds there; returns the worker."""
        registry.local_worker().send_msg(m.ClearObjects("clear_objects"), self)
        return self

    def _reset(self) -> None:
        import ray

        if self.actor is None:
            return
        try:
            framed = self._wait(ray, self.actor.reset.remote(wire.listening()))
        except WorkerDiedError:
            return  # a dead worker has nothing left to reset
        wire.publish(wire.unframe(framed)[1])

    def data(self) -> dict[str, torch.Tensor]:
        """Pointers to the data this worker was started with (``fedlab worker --data``)."""
        import ray

        me = registry.local_worker()
        out = {}
        for name, obj_id, shape, dtype in serde.decode_value(
            self._wait(ray, self.actor.data_index.remote())
        ):
            ptr = PointerTensor(me, self.id, obj_id, tuple(shape), serde.DTYPES[dtype])
            ptr.garbage_collect_data = False  # the owner's data stays when a pointer dies
            out[name] = wrap(ptr)
        return out

    def ping(self, timeout: float | None = None) -> tuple[int, str]:
        """The worker process's pid and Ray node id; a clear error if it does not answer."""
        import ray

        return self._wait(ray, self.actor.ping.remote(), timeout)


def resolve(worker_id: str) -> RayWorker | None:
    """A handle on the worker ``worker_id`` if a Ray actor of that name exists."""
    import ray

    if not ray.is_initialized():
        return None
    try:
        actor = ray.get_actor(actor_name(worker_id), namespace=NAMESPACE)
    except ValueError:
        return None
    return RayWorker(None, id=worker_id, actor=actor)


def install_resolver() -> None:
    """Let ``fedlab.worker.get_worker`` find workers of the Ray cluster by name."""
    if resolve not in registry._resolvers:
        registry._resolvers.append(resolve)
