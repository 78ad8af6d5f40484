"""Shared fixtures: a hooked torch, fresh workers, and the transports the core runs on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import settings

import fedlab as sy

# Property tests draw the same examples on every run (CI is green or red for the code, not
# for the luck of the draw). HYPOTHESIS_PROFILE=explore draws new ones each run.
settings.register_profile("fedlab", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fedlab"))

hook = sy.TorchHook(torch)

# Transport name -> factory(ids) returning (workers, teardown). The in-process
# transport is the reference; others (Ray) register here so that the same core
# behaviour tests run on every transport from one module.
TRANSPORTS: dict[str, Callable[[list[str]], tuple[list, Callable[[], None]]]] = {}


def _inprocess(ids: list[str]):
    return [sy.VirtualWorker(hook, id=i) for i in ids], lambda: None


TRANSPORTS["inprocess"] = _inprocess

try:  # registered by the Ray transport's test support, when Ray is installed
    from tests.support.ray_transport import register as _register_ray

    _register_ray(TRANSPORTS)
except ImportError:
    pass


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    """Every test starts with empty stores and ids counting from 1."""
    sy.reset()
    yield
    sy.reset()


@pytest.fixture(
    params=[
        pytest.param(n, marks=pytest.mark.ray) if n == "ray" else n
        for n in sorted(TRANSPORTS, key=lambda n: n != "inprocess")
    ]
)
def transport(request) -> str:
    """The name of the transport under test (every core test runs on each)."""
    return request.param


@pytest.fixture
def workers(transport) -> Iterator[tuple]:
    """bob, alice and carol on the transport under test."""
    ws, teardown = TRANSPORTS[transport](["bob", "alice", "carol"])
    try:
        yield tuple(ws)
    finally:
        teardown()


@pytest.fixture
def me():
    """The local worker."""
    return hook.local_worker


@pytest.fixture
def bob():
    """An in-process worker called bob (for tests that need no other transport)."""
    return sy.VirtualWorker(hook, id="bob")


@pytest.fixture
def alice():
    """An in-process worker called alice."""
    return sy.VirtualWorker(hook, id="alice")


@pytest.fixture
def workers_undone() -> Iterator[None]:
    """For a test that makes workers or gives them data (``sy.create_sandbox``, ``data=``).

    Workers and their own data outlive a reset by design; afterwards the workers the test
    made are gone and the others hold the data they held before, so that no later test
    sees them.
    """
    from fedlab import registry

    before = {w.id: list(w._data) for w in sy.all_workers()}
    yield
    for w in sy.all_workers():
        if w.id in before:
            w._data[:] = before[w.id]
        else:
            del registry._workers[w.id]
    sy.reset()
