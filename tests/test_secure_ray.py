"""Secure aggregation on worker processes, and a party whose process dies mid-protocol."""

from __future__ import annotations

import time

import psutil
import pytest
import torch

from fedlab.exceptions import WorkerDiedError

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_runtime():
    """The session's Ray runtime, or a visible skip."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install "fedlab[ray]")')
    from fedlab.transport import ray as transport

    try:
        return transport.ensure_runtime()
    except Exception as e:
        pytest.skip(f"Ray could not start here: {type(e).__name__}: {e}")


def test_a_killed_party_stops_the_protocol_and_the_others_keep_their_stores(ray_runtime, me):
    from fedlab.transport import ray as transport

    hal, ida, jay = transport.spawn_workers("hal", "ida", "jay", timeout=10.0)
    try:
        x = torch.tensor([1.5, -2.0]).fix_prec().share(hal, ida, crypto_provider=jay)
        sums = []
        for p in (torch.tensor([0.25, 1.0]), torch.tensor([2.0, 0.5])):
            ptr = p.send(hal)  # an update that lives on hal, shared there
            sums.append(ptr.fix_prec().share(hal, ida, crypto_provider=jay).get())
            del ptr
        assert torch.allclose((sums[0] + sums[1]).get().float_prec(), torch.tensor([2.25, 1.5]))
        del sums
        before = {w.id: sorted(w._objects) for w in (hal, jay)}
        pid, _ = ida.ping()
        psutil.Process(pid).kill()
        start = time.monotonic()
        with pytest.raises(WorkerDiedError, match="ida") as info:
            x * x
        assert "deleted" in str(info.value)
        assert time.monotonic() - start < 30
        assert {w.id: sorted(w._objects) for w in (hal, jay)} == before
    finally:
        transport.shutdown_workers("hal", "ida", "jay")
