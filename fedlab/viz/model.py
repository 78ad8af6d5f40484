"""What a panel knows: the watched stores, kept up to date from the core's events.

The model reads each store once when it opens; after that only events change it.
Marks are relative to an *epoch* (in a notebook: one cell): objects stored during
the epoch are ``new``, objects removed during it stay listed as ``deleted`` with
their reason, and ``end_epoch()`` drops both marks. The local worker's pointers are
not in any store (students hold them in variables), so its column lists the live
pointers it owns (``sy.live_pointers()``), compared with the previous epoch.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from fedlab import events, pointer, worker

KEEP_DELETED = 3  # per worker: the loop of the GC lesson would otherwise list 999 ghosts


@dataclass(slots=True)
class Entry:
    """One stored object (or a pointer ``me`` holds) as the views show it."""

    ref: str  # "bob:1"
    kind: str  # "tensor" or "pointer"
    shape: str  # dtype and shape: "int64[3]"
    target: str | None = None  # "alice:2" for a pointer
    obj: Any = None  # a weak reference: the view must never keep an object alive
    new: bool = False
    reason: str | None = None  # set once deleted

    def value(self) -> Any:
        """The object if it is still alive, else None."""
        return self.obj() if self.obj is not None else None


def _weak(obj: Any) -> Any:
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def _shape(p: Any) -> str:
    return f"{str(p.dtype).replace('torch.', '')}{list(p.shape)}"


def entry_for(worker_id: str, obj_id: int, obj: Any, kind: str = "", summary: str = "") -> Entry:
    """An entry for ``obj`` stored as ``worker_id:obj_id`` (``kind``/``summary`` as in events)."""
    if not kind:
        kind, summary = worker.describe(obj)
    ref = f"{worker_id}:{obj_id}"
    if kind == "tensor":  # the event's summary is already "float32[5]": no work per event
        return Entry(ref, kind, summary, None, _weak(obj))
    child = getattr(obj, "__dict__", {}).get("child")
    if kind == "pointer" and child is not None:
        return Entry(ref, kind, _shape(child), summary.removeprefix("-> "), _weak(obj))
    return Entry(ref, kind, summary, None, _weak(obj))


def local_id() -> str | None:
    """The local worker's id (``me``), or None before torch is hooked."""
    from fedlab import hook

    try:
        return hook.local_worker().id
    except RuntimeError:
        return None


def held_pointers(owner_id: str, dead: set[tuple[str, int]]) -> dict[int, Entry]:
    """The live pointers that ``owner_id`` holds outside its store, by pointer id."""
    found: dict[int, Entry] = {}
    for p in pointer.live_pointers():
        if p.owner.id != owner_id or p.generation != worker.current_generation:
            continue
        if (p.location_id, p.id_at_location) in dead:  # dying right now (inside its __del__)
            continue
        found[p.id] = Entry(
            f"{owner_id}:{p.id}", "pointer", _shape(p), f"{p.location_id}:{p.id_at_location}",
            weakref.ref(p),
        )  # fmt: skip
    return found


class StoreModel:
    """The stores of ``worker_ids`` with new/deleted marks and message counters."""

    def __init__(self, worker_ids: list[str]) -> None:
        self.ids = list(worker_ids)
        self.local = local_id()
        self.local_watched = self.local in self.ids
        self.stores: dict[str, dict[int, Entry]] = {w: {} for w in self.ids}
        self.deleted: dict[str, deque[int]] = {w: deque() for w in self.ids}
        self.hidden: dict[str, int] = dict.fromkeys(self.ids, 0)  # deleted ones not listed
        # worker -> [messages in, bytes in, messages out, bytes out]
        self.counts: dict[str, list[int]] = {w: [0, 0, 0, 0] for w in self.ids}
        self.gone: dict[tuple[str, int], str] = {}  # what the local worker freed, and how
        self.held: dict[int, Entry] = {}  # the local worker's pointers at the epoch start
        self.changes = 0  # bumped by every event that alters what the views show

    def load(self) -> None:
        """Read every watched store once (the initial state); later, events only."""
        for w in self.ids:
            try:
                objects = dict(worker.get_worker(w)._objects)
            except Exception:  # a worker in another process: its events will fill it in
                continue
            self.stores[w] = {k: entry_for(w, k, v) for k, v in sorted(objects.items())}
        if self.local in self.stores:
            self.held = held_pointers(self.local, set())

    # -- events ----------------------------------------------------------------
    def handle(self, e: Any) -> None:
        """Apply one event from ``sy.subscribe``."""
        t = type(e)
        if t is events.MessageEvent:
            self._message(e)
        elif t is events.ObjectStored:
            store = self.stores.get(e.worker)
            if store is not None:
                entry = entry_for(e.worker, e.id, e.obj, e.kind, e.summary)
                entry.new = True
                store[e.id] = entry
                self.changes += 1
        elif t is events.ObjectDeleted:
            self._delete(e.worker, e.id, e.reason)
        elif t is events.StoreCleared:
            for i in e.ids:
                self._delete(e.worker, i, e.reason)

    def _message(self, e: events.MessageEvent) -> None:
        # The hottest path of a watched loop (four calls per send): keep it lean.
        counts = self.counts
        sender, nbytes = e.sender, e.nbytes
        c = counts.get(e.receiver)
        if c is not None:
            c[0] += 1
            c[1] += nbytes
        c = counts.get(sender)
        if c is not None:
            c[2] += 1
            c[3] += nbytes
            if sender == self.local and self.local_watched:
                self._note_release(e)
        self.changes += 1

    def _note_release(self, e: events.MessageEvent) -> None:
        """Remember why a pointer of the local worker stops owning its object."""
        if e.kind in ("delete", "fetch"):
            how = "get" if e.kind == "fetch" else "pointer died"
            self.gone[(e.receiver, getattr(e.payload, "id", None))] = how
        elif e.kind == "send":  # a pointer sent on: the receiver's pointer owns it now
            ref = getattr(e.payload, "obj", None)
            if hasattr(ref, "id_at_location"):
                self.gone[(ref.location, ref.id_at_location)] = f"sent to {e.receiver}"

    def _delete(self, w: str, obj_id: int, reason: str) -> None:
        store = self.stores.get(w)
        entry = store.get(obj_id) if store is not None else None
        if entry is None or entry.reason is not None:
            return
        entry.reason = reason
        entry.obj = None
        queue = self.deleted[w]
        queue.append(obj_id)
        if len(queue) > KEEP_DELETED:
            old = queue.popleft()
            store.pop(old, None)
            self.hidden[w] += 1
        self.changes += 1

    def end_epoch(self) -> None:
        """Forget the deleted objects and clear the ``new`` marks (a cell has finished)."""
        for w, store in self.stores.items():
            for i in [i for i, e in store.items() if e.reason is not None]:
                del store[i]
            for e in store.values():
                e.new = False
            self.deleted[w].clear()
            self.hidden[w] = 0
        if self.local in self.stores:
            self.held = held_pointers(self.local, set(self.gone))
        self.gone.clear()

    # -- what the views show ------------------------------------------------------
    def entries(self, w: str) -> list[Entry]:
        """The entries of worker ``w`` in display order (held pointers first, then by id)."""
        rows = sorted(self.stores[w].values(), key=lambda e: int(e.ref.rsplit(":", 1)[1]))
        if w != self.local:
            return rows
        now = held_pointers(w, set(self.gone))
        shown: list[Entry] = []
        for pid in sorted(set(now) | set(self.held)):
            e = now.get(pid)
            before = self.held.get(pid)
            if e is None:  # held at the epoch start, gone now
                assert before is not None
                loc, _, i = (before.target or "").partition(":")
                how = self.gone.get((loc, int(i) if i.isdigit() else -1), "released")
                e = Entry(before.ref, before.kind, before.shape, before.target)
                e.reason = how
            else:
                e.new = before is None or before.target != e.target
            shown.append(e)
        return shown + rows
