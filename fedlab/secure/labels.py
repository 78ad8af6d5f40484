"""Names for the objects the secure layer puts on workers, for the panel and the audit.

A share is a plain int64 tensor in a worker's store; on its own it looks like any
other tensor. This registry remembers, by (worker, id), what each one is: "share 1/2
of #3" (a shared secret), "beaver a 1/2" (part of a multiplication triple) or
"mask 2/2" (a truncation or comparison mask from the crypto provider). An entry holds
its pointer weakly and is valid only while that pointer still points there, so a
label never outlives its object (nor survives ``.get()``, ``move`` or ``sy.reset()``).
"""

from __future__ import annotations

import weakref
from typing import Any

_labels: dict[tuple[str, int], tuple[weakref.ref, str]] = {}


def _record(ptr: Any) -> Any:
    return ptr.__dict__.get("child") if hasattr(ptr, "__dict__") else None


def tag(ptr: Any, text: str) -> None:
    """Remember what the object behind the pointer ``ptr`` is."""
    rec = _record(ptr)
    if rec is None or getattr(rec, "id_at_location", None) is None:
        return
    if len(_labels) > 4096:
        _prune()
    _labels[(rec.location_id, rec.id_at_location)] = (weakref.ref(rec), text)


def label(worker_id: str, obj_id: int) -> str | None:
    """What the object ``worker_id:obj_id`` is, if the secure layer made it (else None)."""
    entry = _labels.get((worker_id, obj_id))
    if entry is None:
        return None
    rec = entry[0]()
    if rec is None or rec.location_id != worker_id or rec.id_at_location != obj_id:
        del _labels[(worker_id, obj_id)]
        return None
    return entry[1]


def _prune() -> None:
    for key in list(_labels):
        label(*key)


def register_shares(a: Any) -> None:
    """Label every share of a shared tensor: ``share i/n of #k``."""
    n = len(a.child)
    for i, ptr in enumerate(a.child.values(), 1):
        tag(ptr, f"share {i}/{n} of #{a.number}")


def register_parts(parts: dict[str, Any], what: str) -> None:
    """Label a crypto provider's parts for each party: ``beaver a 1/2``, ``mask 2/2``."""
    n = len(parts)
    for i, ptr in enumerate(parts.values(), 1):
        tag(ptr, f"{what} {i}/{n}")


def forget(a: Any) -> None:
    """Drop the labels of a shared tensor's shares (they were fetched)."""
    for key, (ref, _) in list(_labels.items()):
        rec = ref()
        if rec is None or any(_record(p) is rec for p in a.child.values()):
            _labels.pop(key, None)


def all_labels() -> dict[tuple[str, int], str]:
    """Every valid label, by (worker id, object id)."""
    out = {}
    for key in list(_labels):
        text = label(*key)
        if text is not None:
            out[key] = text
    return out
