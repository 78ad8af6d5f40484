"""The Ray transport for the core tests: worker processes started once per test session.

``register(TRANSPORTS)`` adds a ``"ray"`` factory. The first test that uses it starts a
local Ray runtime and the worker processes; later tests reuse them, and each test gets
them with empty stores and counters restarted (``sy.reset()`` reaches them too). If Ray
cannot start here, every Ray test is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_error: list[str] = []


def _factory(ids: list[str]) -> tuple[list, Callable[[], None]]:
    if _error:
        pytest.skip(_error[0])
    from fedlab import registry
    from fedlab.transport import ray as transport

    # In-process workers of earlier tests hold these names; sy.reset() already emptied them.
    for i in ids:
        if not isinstance(registry._workers.get(i), transport.RayWorker):
            registry._workers.pop(i, None)
    try:
        ws = transport.spawn_workers(*ids, timeout=30.0)
    except Exception as e:  # no Ray, no room for its processes, ...
        _error.append(f"Ray could not start worker processes here: {type(e).__name__}: {e}")
        pytest.skip(_error[0])
    ws = ws if isinstance(ws, list) else [ws]
    for w in ws:
        registry._workers[w.id] = w
        w._reset()

    def teardown() -> None:
        for w in ws:
            w._reset()
            if registry._workers.get(w.id) is w:
                del registry._workers[w.id]

    return ws, teardown


def register(transports: dict) -> None:
    """Add the ``"ray"`` transport when Ray is installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return
    transports["ray"] = _factory
