"""What a panel knows: the watched stores, kept up to date from the core's events.

The model reads each store once when it opens; after that only events change it.
Marks are relative to an *epoch* (in a notebook: one cell): objects stored during
the epoch are ``new``, objects removed during it stay listed as ``deleted`` with
their reason, and ``end_epoch()`` drops both marks. The local worker's pointers are
not in any store (students hold them in variables), so its column lists the live
pointers it owns (``sy.live_pointers()``), compared with the previous epoch.

Events arrive by the thousand in a loop (about six per ``send``), while the views
are painted a few times a second. So an event only updates a few counters and dicts,
and everything the views show (entries, texts, previews, marks) is worked out when
they are painted, from what is live and the last few deleted objects.
"""

from __future__ import annotations

import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fedlab import events, pointer, serde, worker

KEEP_DELETED = 3  # per worker: the loop of the GC lesson would otherwise list 999 ghosts
KEEP_GONE = 4096  # releases remembered before those no view asks about are forgotten


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


_TEXTS: dict[tuple[Any, Any], str] = {}  # (dtype, shape) -> "float32[5]"


def tensor_text(dtype: torch.dtype, shape: tuple[int, ...]) -> str:
    """What ``worker.describe`` says of a plain tensor with this dtype and shape."""
    key = (dtype, shape)
    text = _TEXTS.get(key)
    if text is None:
        try:  # the core's own words, from a tensor without storage
            text = worker.describe(torch.empty(shape, dtype=dtype, device="meta"))[1]
        except Exception:  # a dtype the meta device lacks: describe's own formula
            text = f"{serde.DTYPE_NAMES.get(dtype, dtype)}{list(shape)}"
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        _TEXTS[key] = text
    return text


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


def _local_store(worker_id: str) -> dict[int, Any] | None:
    """The store of an in-process worker (None for a worker in another process)."""
    try:
        w = worker.get_worker(worker_id)
    except Exception:
        return None
    store = vars(w).get("_objects")  # a worker process's store is a remote snapshot: skip
    return store if isinstance(store, dict) else None


def _nothing() -> None:
    pass


class _Column:
    """What the model keeps of one watched worker's store."""

    __slots__ = ("dead", "deleted", "deleted_before", "in_process", "live")

    def __init__(self, in_process: bool) -> None:
        # id -> (epoch, dtype, shape) for a plain tensor of an in-process worker (read from
        # the store when painted), else (epoch, Entry, None). Never the object itself: a
        # pointer kept alive here would not cascade its delete along a chain.
        self.live: dict[int, tuple[int, Any, Any]] = {}
        self.dead: deque[tuple[int, tuple[int, Any, Any], str]] = deque(maxlen=KEEP_DELETED)
        self.in_process = in_process
        self.deleted = 0  # objects deleted, ever
        self.deleted_before = 0  # ... before this epoch


class StoreModel:
    """The stores of ``worker_ids`` with new/deleted marks and message counters."""

    def __init__(self, worker_ids: list[str]) -> None:
        self.ids = list(worker_ids)
        self.local = local_id()
        self.local_watched = self.local in self.ids
        self.epoch = 0
        self._cols = {w: _Column(_local_store(w) is not None) for w in self.ids}
        self._gone: dict[tuple[str, int], str] = {}  # what the local worker freed, and how
        # A loop frees a pointer per iteration, but views ask only about the pointers held
        # when the epoch began (their reasons) and one dying right now (inside its __del__,
        # a paint must not list it): the last delete or fetch is kept, not every one.
        self._last: list[events.MessageEvent | None] = [None]
        self.held: dict[int, Entry] = {}  # the local worker's pointers at the epoch start
        self._held_ids: set[int] = set()  # the ids at their locations
        # sender -> receiver -> [messages, bytes, sent by the watched local worker]: plain
        # dicts, whose ``[]`` is the interpreter's fastest lookup (a subclass's is not).
        self._senders: dict[str, dict[str, list]] = {}
        self._handle = self.listener()

    def load(self) -> None:
        """Read every watched store once (the initial state); later, events only."""
        for w in self.ids:
            try:
                objects = dict(worker.get_worker(w)._objects)
            except Exception:  # a worker in another process: its events will fill it in
                continue
            live = self._cols[w].live
            live.clear()
            for k, v in sorted(objects.items()):
                live[k] = (-1, entry_for(w, k, v), None)  # -1: from before the first epoch
        if self.local in self._cols:
            self._hold(held_pointers(self.local, set()))

    # -- events ----------------------------------------------------------------
    def handle(self, e: Any) -> None:
        """Apply one event from ``sy.subscribe``."""
        self._handle(e)

    def listener(
        self, due: list[float] | None = None, tick: Callable[[], None] | None = None
    ) -> Callable[[Any], None]:
        """A ``sy.subscribe`` callback; ``tick()`` follows messages sent at ``due[0]`` or later."""
        # (``due[0]`` is a ``time.perf_counter()`` time, which the caller moves after a paint.)
        # The hot path of a watched loop: one call per event, a few dict operations and
        # int additions each, with every name bound once here rather than looked up.
        cols_get = self._cols.get
        senders = self._senders
        gone = self._gone
        last = self._last
        held_ids = self._held_ids
        model = self
        message, stored, deleted = events.MessageEvent, events.ObjectStored, events.ObjectDeleted
        cleared, plain = events.StoreCleared, torch.Tensor
        clock = time.perf_counter
        stamped = hasattr(message, "time")  # else read the clock
        when = due if due is not None else [math.inf]
        paint = tick if tick is not None else _nothing

        def on_event(e: Any) -> None:
            t = type(e)
            if t is message:
                try:
                    counts = senders[e.sender][e.receiver]
                except KeyError:  # the first message between these two workers
                    counts = model._counter(e.sender, e.receiver)
                counts[0] += 1
                counts[1] += e.nbytes
                if counts[2]:  # sent by the local worker, watched: why its pointers go
                    kind = e.kind
                    if kind == "delete":
                        last[0] = e  # its payload names an id, never holds an object
                        if held_ids and getattr(e.payload, "id", None) in held_ids:
                            model._release(e)
                    elif kind == "fetch":  # rarer: and another pointer may name the same id
                        last[0] = e
                        model._release(e, always=True)
                    elif kind == "send":  # a pointer sent on: the receiver's owns it now
                        ref = getattr(e.payload, "obj", None)
                        if type(ref) is not plain and hasattr(ref, "id_at_location"):
                            gone[(ref.location, ref.id_at_location)] = f"sent to {e.receiver}"
                            if len(gone) > KEEP_GONE:
                                model._forget_gone()
                # Paint only after messages: in a worker of this process every store and
                # delete happens while a message is handled, and its reply comes last. A
                # message carries the perf_counter time it was sent: no clock call per event.
                if (e.time if stamped else clock()) >= when[0]:
                    paint()
            elif t is stored:
                c = cols_get(e.worker)
                if c is not None:
                    obj = e.obj
                    if type(obj) is plain and c.in_process:  # the usual case: no describing
                        c.live[e.id] = (model.epoch, obj.dtype, obj.shape)
                    else:
                        entry = entry_for(e.worker, e.id, obj, e.kind, e.summary)
                        c.live[e.id] = (model.epoch, entry, None)
            elif t is deleted:
                c = cols_get(e.worker)
                if c is not None:
                    rec = c.live.pop(e.id, None)
                    if rec is not None:
                        c.dead.append((e.id, rec, e.reason))
                        c.deleted += 1
            elif t is cleared:
                c = cols_get(e.worker)
                if c is not None:
                    for i in e.ids:
                        model._delete(c, i, e.reason)
                if clock() >= when[0]:
                    paint()

        return on_event

    def _counter(self, sender: str, receiver: str) -> list:
        by_local = self.local_watched and sender == self.local
        return self._senders.setdefault(sender, {}).setdefault(receiver, [0, 0, by_local])

    @property
    def gone(self) -> dict[tuple[str, int], str]:
        """How the local worker's pointers stopped owning their objects, by (worker, id)."""
        gone = dict(self._gone)
        e = self._last[0]
        if e is not None:  # the last delete or fetch: its pointer may be dying right now
            gone.setdefault(*self._why(e))
        return gone

    @staticmethod
    def _why(e: events.MessageEvent) -> tuple[tuple[str, int], str]:
        how = "pointer died" if e.kind == "delete" else "get"
        return (e.receiver, getattr(e.payload, "id", None)), how

    def _release(self, e: events.MessageEvent, always: bool = False) -> None:
        """Remember a delete or fetch that frees a pointer held when the epoch began."""
        key, how = self._why(e)
        if always or f"{key[0]}:{key[1]}" in {h.target for h in self.held.values()}:
            self._gone[key] = how
            if len(self._gone) > KEEP_GONE:
                self._forget_gone()

    def _forget_gone(self) -> None:
        """Keep only what a view can ask about: live pointers and those held before."""
        asked = {f"{p.location_id}:{p.id_at_location}" for p in pointer.live_pointers()}
        asked.update(h.target for h in self.held.values())
        for key in [k for k in self._gone if f"{k[0]}:{k[1]}" not in asked]:
            del self._gone[key]

    def _hold(self, held: dict[int, Entry]) -> None:
        self.held = held
        self._held_ids.clear()
        for h in held.values():
            i = (h.target or "").rpartition(":")[2]
            self._held_ids.add(int(i) if i.isdigit() else -1)

    @staticmethod
    def _delete(c: _Column, obj_id: int, reason: str) -> None:
        rec = c.live.pop(obj_id, None)
        if rec is not None:
            c.dead.append((obj_id, rec, reason))
            c.deleted += 1

    def end_epoch(self) -> None:
        """Forget the deleted objects and clear the ``new`` marks (a cell has finished)."""
        self.epoch += 1
        for c in self._cols.values():
            c.dead.clear()
            c.deleted_before = c.deleted
        if self.local in self._cols:
            self._hold(held_pointers(self.local, set(self.gone)))
        self._gone.clear()
        self._last[0] = None

    # -- what the views show ------------------------------------------------------
    def version(self) -> int:
        """A number that grows with every event that changes what the views show."""
        # Every message counts, even between workers not watched (as it always has); a
        # store adds one live object, a delete takes one and adds two deleted.
        messages = sum(c[0] for sent in self._senders.values() for c in sent.values())
        return messages + sum(len(c.live) + 2 * c.deleted for c in self._cols.values())

    def counts(self, w: str) -> tuple[int, int, int, int]:
        """Worker ``w``'s messages in, bytes in, messages out and bytes out."""
        m_in = b_in = m_out = b_out = 0
        for sender, sent in self._senders.items():
            for receiver, (m, b, _) in sent.items():
                if receiver == w:
                    m_in, b_in = m_in + m, b_in + b
                if sender == w:
                    m_out, b_out = m_out + m, b_out + b
        return m_in, b_in, m_out, b_out

    def stored_count(self, w: str) -> int:
        """How many objects worker ``w``'s store holds."""
        return len(self._cols[w].live)

    def hidden(self, w: str) -> int:
        """How many objects deleted this epoch are no longer listed."""
        c = self._cols[w]
        return c.deleted - c.deleted_before - len(self._dead(c))

    @staticmethod
    def _dead(c: _Column) -> list[tuple[int, tuple, str]]:
        """The deleted objects to list: the last few, once per id, none that is live again."""
        # (An id is used again only after ``sy.reset()``: list its latest object alone.)
        seen = set(c.live)
        rows = []
        for row in reversed(c.dead):
            if row[0] not in seen:
                seen.add(row[0])
                rows.append(row)
        return rows

    def _entry(self, w: str, i: int, rec: tuple, reason: str | None, store: Any) -> Entry:
        epoch, a, b = rec
        if type(a) is Entry:
            e = Entry(a.ref, a.kind, a.shape, a.target, a.obj if reason is None else None)
        else:  # a plain tensor: its preview comes from the store, which holds it while live
            e = Entry(f"{w}:{i}", "tensor", tensor_text(a, b))
            if reason is None and store is not None:
                e.obj = _weak(store.get(i))
        e.new = epoch == self.epoch
        e.reason = reason
        return e

    def _store_rows(self, w: str) -> list[Entry]:
        c = self._cols[w]
        live = c.live
        store = _local_store(w) if c.in_process else None
        rows = [(i, self._entry(w, i, rec, None, store)) for i, rec in live.items()]
        rows += [(i, self._entry(w, i, rec, why, None)) for i, rec, why in self._dead(c)]
        rows.sort(key=lambda row: row[0])
        return [e for _, e in rows]

    def entries(self, w: str) -> list[Entry]:
        """The entries of worker ``w`` in display order (held pointers first, then by id)."""
        rows = self._store_rows(w)
        if w != self.local:
            return rows
        gone = self.gone
        now = held_pointers(w, set(gone))
        shown: list[Entry] = []
        for pid in sorted(set(now) | set(self.held)):
            e = now.get(pid)
            before = self.held.get(pid)
            if e is None:  # held at the epoch start, gone now
                assert before is not None
                loc, _, i = (before.target or "").partition(":")
                how = gone.get((loc, int(i) if i.isdigit() else -1), "released")
                e = Entry(before.ref, before.kind, before.shape, before.target)
                e.reason = how
            else:
                e.new = before is None or before.target != e.target
            shown.append(e)
        return shown + rows
