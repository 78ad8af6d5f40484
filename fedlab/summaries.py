"""Short descriptions of stored objects and messages, for events and the views.

Worked out only when a subscriber asks (``event.summary``), so they cost nothing on
the message path when nobody listens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from fedlab import allowlist, events, serde
from fedlab import messages as m

_TENSOR_TEXT: dict[tuple, tuple[str, str]] = {}  # (dtype, shape) -> ("tensor", "int64[5]")


def describe(obj: Any) -> tuple[str, str]:
    """A short (kind, summary) of a stored object, for events and views."""
    if type(obj) is torch.Tensor:  # the common case, cached: a watched loop pays a lookup
        key = (obj.dtype, obj.shape)
        text = _TENSOR_TEXT.get(key)
        if text is None:
            if len(_TENSOR_TEXT) > 4096:
                _TENSOR_TEXT.clear()
            name = serde.DTYPE_NAMES.get(obj.dtype, obj.dtype)
            text = _TENSOR_TEXT[key] = ("tensor", f"{name}{list(obj.shape)}")
        return text
    child = getattr(obj, "child", None)
    if child is not None and hasattr(child, "id_at_location"):
        return "pointer", f"-> {child.location_id}:{child.id_at_location}"
    if isinstance(obj, torch.Tensor):
        return "tensor", f"{serde.DTYPE_NAMES.get(obj.dtype, obj.dtype)}{list(obj.shape)}"
    return type(obj).__name__, ""


def summary(msg: Any) -> tuple[str, str, tuple[int, ...]]:
    """A message's kind, a one-line summary and the object ids it names."""
    kind = m.KINDS.get(type(msg)) or type(msg).__name__
    if isinstance(msg, m.RunOp):
        ids = tuple(a.id for a in _refs(msg.args) + _refs(list(msg.kwargs.values())))
        return kind, allowlist.short(msg.op), ids
    if isinstance(msg, m.RunPlan):
        steps = serde.decode(msg.steps) if isinstance(msg.steps, bytes) else ()
        ops = sum(1 for s in steps if isinstance(s, m.RunOp)) if isinstance(steps, tuple) else 0
        return kind, f"plan {msg.name} ({ops} ops)", tuple(r.id for r in _refs(msg.inputs))
    if isinstance(msg, m.SendObject):
        obj = msg.obj
        if isinstance(obj, m.PointerRef):
            return kind, f"pointer -> {obj.location}:{obj.id_at_location}", ()
        return kind, describe(obj)[1], ()
    if isinstance(msg, (m.Fetch, m.Delete, m.RemoteGet)):
        return kind, f"id {msg.id}", (msg.id,)
    if isinstance(msg, m.Move):
        return kind, f"id {msg.id} -> {msg.dest}", (msg.id,)
    if isinstance(msg, m.Reply):
        v = msg.value
        if isinstance(v, torch.Tensor):
            return kind, describe(v)[1], ()
        if isinstance(v, m.PointerRef):
            return kind, f"pointer -> {v.location}:{v.id_at_location}", ()
        if isinstance(v, m.Stored):
            return kind, f"stored {v.id}", (v.id,)
        if isinstance(v, tuple) and v and all(isinstance(s, m.Stored) for s in v):
            return kind, "stored " + ", ".join(str(s.id) for s in v), tuple(s.id for s in v)
        if isinstance(v, int) and not isinstance(v, bool):
            return kind, f"id {v}", (v,)
        return kind, "", ()
    if isinstance(msg, m.ErrorReply):
        return kind, msg.kind, ()
    return kind, "", ()


def _refs(values: Iterable) -> list[m.ObjRef]:
    found: list[m.ObjRef] = []
    for v in values:
        if isinstance(v, m.ObjRef):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            found.extend(_refs(v))
        elif isinstance(v, dict):
            found.extend(_refs(v.values()))
    return found


events.describe_message = summary
events.describe_object = describe
