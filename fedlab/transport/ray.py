"""Workers in separate processes, on one machine or a cluster, with Ray.

``sy.spawn_workers("bob", "alice")`` starts a local Ray runtime (if none is running in
this process) and one worker process per name; ``sy.connect("bob")`` finds a worker
that a data owner started with ``fedlab worker --id bob``; ``sy.shutdown_workers()``
stops what this process spawned (also at exit), leaving no processes behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import time
from typing import Any

from fedlab import registry
from fedlab.exceptions import WorkerDiedError, WorkerNotFoundError
from fedlab.pointer import all_pointers
from fedlab.transport.errors import (
    ClusterUnavailableError,
    RayNotInstalledError,
    WorkerExistsError,
)
from fedlab.transport.proxy import (
    DEFAULT_TIMEOUT,
    NAMESPACE,
    RayWorker,
    actor_name,
    install_resolver,
)

__all__ = ["RayWorker", "connect", "shutdown_workers", "spawn_workers"]

START_TIMEOUT = 120.0  # seconds for a worker process to start (importing torch is slow)

_spawned: dict[str, RayWorker] = {}  # the workers this process spawned, by id
_started_runtime = False  # whether this process started the Ray runtime it uses
_actor_class: Any = None
_log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayNotInstalledError(
            'workers in separate processes need Ray: pip install "fedlab[ray]"'
        ) from None
    return ray


def _probe(address: str, timeout: float) -> None:
    """Fail fast, with a clear error, when nothing listens at ``host:port``."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and friends: Ray resolves them itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterUnavailableError(
            f"no Ray cluster answers at {address} ({e.strerror or e}). Start one with "
            "`ray start --head` on the head machine and pass the address it prints."
        ) from None


def ensure_runtime(address: str | None = None, timeout: float = 10.0) -> Any:
    """Connect this process to Ray: ``address`` (a cluster), or a new local runtime."""
    global _started_runtime
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address:
        _probe(address, timeout)
    # A busy machine can take long to start Ray's agents; wait for them rather than fail.
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    # fedlab reports a failed or dead worker itself (WorkerDiedError): Ray's own notices of
    # it would only add noise to notebook output.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    _quiet_error_notices(ray)
    quiet = {
        "namespace": NAMESPACE,
        "log_to_driver": False,  # worker processes' log lines stay out of notebooks
        "logging_level": logging.ERROR,
    }
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            _start_local(ray, quiet)
            _started_runtime = True
    except ConnectionError as e:
        raise ClusterUnavailableError(
            f"could not join the Ray cluster at {address}: {e}. On the head machine run "
            "`ray start --head`, then pass the address it prints (or --address auto there)."
        ) from None
    return ray


def _quiet_error_notices(ray: Any) -> None:
    """Send the raylet's error notices ("A worker died ...") to logging, not to stdout."""
    import ray._private.worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_fedlab_quiet", False):
        return

    def to_logging(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            for line in data.get("lines", ()):
                _log.info("ray: %s", line)
        else:
            original(data, ignore_prefix)

    to_logging._fedlab_quiet = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_logging


def _start_local(ray: Any, quiet: dict, attempts: int = 3) -> None:
    # On a loaded machine Ray's node can miss its fixed 30 s start-up window while its
    # agents import; a second try is faster (warm caches), so try again before failing.
    for attempt in range(attempts):
        try:
            ray.init(address="local", include_dashboard=False, **quiet)
            return
        except Exception as e:
            if "timed out during startup" not in str(e) or attempt == attempts - 1:
                raise
            ray.shutdown()


def actor_class() -> Any:
    """The Ray actor class of a worker process (made once)."""
    global _actor_class
    if _actor_class is None:
        from fedlab.transport.actor import WorkerActor

        _actor_class = _ray().remote(WorkerActor)
    return _actor_class


def create_actor(worker_id: str, data_path: str | None = None, node_id: str | None = None,
                 detached: bool = False) -> Any:  # fmt: skip
    """Start the worker process ``worker_id`` (on node ``node_id`` if given)."""
    options: dict[str, Any] = {
        "name": actor_name(worker_id),
        "namespace": NAMESPACE,
        "num_cpus": 0,  # workers mostly wait for messages: many fit on a small machine
        "max_concurrency": 16,  # a worker can be called back while it calls another one
        "max_restarts": 0,  # a dead worker is reported, not silently replaced empty
    }
    if node_id is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
    if detached:
        options["lifetime"] = "detached"
    try:
        import torch

        threads = torch.get_num_threads()
        return actor_class().options(**options).remote(worker_id, data_path, threads)
    except ValueError as e:  # ray.exceptions.ActorAlreadyExistsError is a ValueError
        if "already" not in str(e) and "taken" not in str(e):
            raise
        raise WorkerExistsError(
            f"a worker called {worker_id!r} already runs in the Ray cluster; use "
            f"sy.connect({worker_id!r}) to talk to it, or choose another name"
        ) from None


def _ids(names: tuple) -> list[str]:
    if len(names) == 1 and isinstance(names[0], (list, tuple)):
        names = tuple(names[0])
    if not names:
        raise TypeError('name the workers to start, e.g. sy.spawn_workers("bob", "alice")')
    for n in names:
        if not isinstance(n, str) or not n:
            raise TypeError(f'a worker id must be a non-empty string like "bob", not {n!r}')
    if len(set(names)) != len(names):
        raise TypeError("each worker name can appear once")
    return list(names)


def _alive(w: RayWorker) -> bool:
    try:
        w.ping(timeout=10.0)
    except WorkerDiedError:
        return False
    return True


def _forget_pointers_to(worker_id: str) -> None:
    """Pointers to a dead worker's objects must not free a re-spawned worker's objects."""
    for p in all_pointers():
        if p.location_id == worker_id:
            p.garbage_collect_data = False
            p.generation = -1  # using it now says the object is gone


def spawn_workers(*names: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Start one worker process per name; returns the worker, or a list for several names.

    ``bob, alice = sy.spawn_workers("bob", "alice")``. Spawning a name again returns the
    running worker; a worker whose process died is started afresh (with an empty store).
    """
    ids = _ids(names)
    for i in ids:
        existing = registry._workers.get(i)
        if existing is not None and not isinstance(existing, RayWorker):
            raise WorkerExistsError(
                f"{i!r} is already an in-process worker here ({existing!r}); pick another "
                "name for the worker process, or restart the kernel"
            )
    ray = ensure_runtime()
    _ensure_exit_hook()
    fresh: dict[str, Any] = {}
    out = []
    for i in ids:
        w = _spawned.get(i)
        if w is not None and _alive(w):
            out.append(w)
            continue
        if w is not None:
            _forget_pointers_to(i)
            with contextlib.suppress(Exception):  # frees its name at once
                ray.kill(w.actor, no_restart=True)
        fresh[i] = _create_when_free(i, wait=w is not None)
        out.append(None)
    pending = {i: a.ping.remote() for i, a in fresh.items()}
    deadline = time.monotonic() + START_TIMEOUT
    for i, ref in pending.items():
        try:
            ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
        except Exception as e:
            for a in fresh.values():
                ray.kill(a)
            raise WorkerDiedError(f"the worker process {i} did not start: {e}") from None
    for n, i in enumerate(ids):
        if i in fresh:
            w = RayWorker(None, id=i, actor=fresh[i], timeout=timeout)
            _spawned[i] = w
            out[n] = w
    install_resolver()
    return out[0] if len(out) == 1 else out


def _create_when_free(worker_id: str, wait: bool) -> Any:
    # A worker that was just killed keeps its name until Ray notices it died.
    deadline = time.monotonic() + (30.0 if wait else 0.0)
    while True:
        try:
            return create_actor(worker_id)
        except WorkerExistsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def connect(name: str, address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> RayWorker:
    """The worker ``name`` of the Ray cluster (started by ``fedlab worker --id name``)."""
    ray = ensure_runtime(address or "auto")
    try:
        actor = ray.get_actor(actor_name(name), namespace=NAMESPACE)
    except ValueError:
        prefix = actor_name("")
        names = sorted(
            a["name"].removeprefix(prefix)
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == NAMESPACE and a["name"].startswith(prefix)
        )
        raise WorkerNotFoundError(
            f"there is no worker called {name!r} in the Ray cluster (workers there: "
            f"{', '.join(names) or 'none'}). On the data owner's machine, run "
            f"`fedlab worker --id {name}`."
        ) from None
    w = RayWorker(None, id=name, actor=actor, timeout=timeout)
    w.ping(timeout=min(timeout, 30.0))
    install_resolver()
    return w


def shutdown_workers(*workers: Any) -> None:
    """Stop the worker processes this process spawned (all of them, or those given).

    With no arguments, also stops the local Ray runtime if this process started it.
    """
    ray = _ray()
    ids = [w if isinstance(w, str) else w.id for w in workers] or list(_spawned)
    for i in ids:
        w = _spawned.pop(i, None)
        if w is None:
            continue
        if registry._workers.get(i) is w:
            del registry._workers[i]
        _forget_pointers_to(i)
        if ray.is_initialized():
            with contextlib.suppress(Exception):  # already dead
                ray.kill(w.actor, no_restart=True)
    if not workers:
        _stop_runtime()


def _stop_runtime() -> None:
    global _started_runtime
    ray = _ray()
    if _started_runtime and ray.is_initialized():
        ray.shutdown()
    _started_runtime = False


_exit_hook = False


def _ensure_exit_hook() -> None:
    global _exit_hook
    if not _exit_hook:
        # Registered after ray.init's own hook, so it runs first: our actors go first.
        atexit.register(shutdown_workers)
        _exit_hook = True
