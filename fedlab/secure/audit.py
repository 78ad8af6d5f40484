"""Reading a message log for privacy: who received which values.

``with sy.trace() as t: ...`` records every message; ``carries(t, x)`` lists the
messages whose tensor equals ``x`` (none, for a secret shared from where it lives), and
``received(t)`` every tensor that travelled, with its message (``draw_flows`` in
``fedlab.viz.shared`` draws them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from fedlab import messages as m


def _tensor(e: Any) -> torch.Tensor | None:
    """The tensor a message event carries, if any (a sent object, or a fetched value)."""
    payload = e.payload
    value = getattr(payload, "obj", None) if isinstance(payload, m.SendObject) else None
    if value is None and isinstance(payload, m.Reply):
        value = payload.value
    return value if type(value) is torch.Tensor else None


def received(trace: Iterable[Any]) -> list[tuple[Any, torch.Tensor]]:
    """Every (message event, tensor) of the trace whose message carries a tensor."""
    out = []
    for e in trace:
        t = _tensor(e)
        if t is not None:
            out.append((e, t))
    return out


def carries(trace: Iterable[Any], value: torch.Tensor) -> list[Any]:
    """The messages of ``trace`` that carry exactly ``value`` (same dtype, shape, values)."""
    return [
        e
        for e, t in received(trace)
        if t.dtype == value.dtype and t.shape == value.shape and torch.equal(t, value)
    ]


__all__ = ["carries", "received"]
