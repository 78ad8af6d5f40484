"""What a panel knows: the watched stores, kept up to date from the core's events.

The model reads each store once when it opens; after that only events change it.
Marks are relative to an *epoch* (in a notebook: one cell): objects stored during
the epoch are ``new``, objects removed during it stay listed as ``deleted`` with
their reason, and ``end_epoch()`` drops both marks. The local worker's pointers are
not in any store (students hold them in variables), so its column lists the live
pointers it owns (``sy.live_pointers()``), compared with the previous epoch.

Events arrive by the thousand in a loop (four per ``send`` in lesson 7's: the store,
the send, the delete of the previous tensor, the delete message), while the views are
painted a few times a second. So an event only updates a few counters and dicts, and
everything the views show (entries, texts, previews, marks) is worked out when they are
painted, from what is live and the last few deleted objects. A plain tensor stored in
a worker of this process is read in that worker's store when painted (nothing of it is
kept here); one that was deleted is described from its ``ObjectDeleted`` event, in its
last moment. The model never keeps an object alive (a chain's delete still cascades, a
freed tensor is freed).
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

from fedlab import events, pointer, registry, serde

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
            text = events.describe(torch.empty(shape, dtype=dtype, device="meta"))[1]
        except Exception:  # a dtype the meta device lacks: describe's own formula
            text = f"{serde.DTYPE_NAMES.get(dtype, dtype)}{list(shape)}"
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        _TEXTS[key] = text
    return text


def entry_for(worker_id: str, obj_id: int, obj: Any, kind: str = "", summary: str = "") -> Entry:
    """An entry for ``obj`` stored as ``worker_id:obj_id`` (``kind``/``summary`` as in events)."""
    if not kind:
        kind, summary = events.describe(obj)
    ref = f"{worker_id}:{obj_id}"
    if kind == "tensor":  # the event's summary is already "float32[5]": no work per event
        return Entry(ref, kind, summary, None, _weak(obj))
    child = pointer.record_of(obj)
    if kind == "pointer" and child is not None:
        return Entry(ref, kind, _shape(child), summary.removeprefix("-> "), _weak(obj))
    return Entry(ref, kind, summary, None, _weak(obj))


def local_id() -> str | None:
    """The local worker's id (``me``), or None before torch is hooked."""
    try:
        return registry.local_worker().id
    except RuntimeError:
        return None


def held_pointers(owner_id: str, dead: set[tuple[str, int]]) -> dict[int, Entry]:
    """The live pointers that ``owner_id`` holds outside its store, by pointer id."""
    found: dict[int, Entry] = {}
    for p in pointer.live_pointers():
        if p.owner.id != owner_id or p.generation != registry.current_generation:
            continue
        if (p.location_id, p.id_at_location) in dead:  # dying right now (inside its __del__)
            continue
        found[p.id] = Entry(
            f"{owner_id}:{p.id}", "pointer", _shape(p), f"{p.location_id}:{p.id_at_location}",
            weakref.ref(p),
        )  # fmt: skip
    return found


def _store_of(worker_id: str) -> Any:
    """``worker_id``'s store if it is in this process (asked once, when a panel opens)."""
    try:
        w = registry.get_worker(worker_id)
    except Exception:
        return None
    # A worker process's proxy has no store here: the objects its events carry are copies.
    return None if hasattr(w, "actor") else w.objects()


def _nothing() -> None:
    pass


# A live object: (epoch stored, None for a plain tensor in a store of this process, read
# there when painted, or an Entry). Never the object: a pointer kept alive here would not
# cascade its delete.
_Live = tuple[int, Any]
# A deleted one: (id, epoch stored, Entry or a tensor's dtype, its shape, reason).
_Dead = tuple[int, int, Any, Any, str]


class _Column:
    """What the model keeps of one watched worker's store."""

    __slots__ = ("dead", "deleted", "deleted_before", "live", "store")

    def __init__(self, worker_id: str) -> None:
        self.store = _store_of(worker_id)  # read-only; None: a worker in another process
        self.live: dict[int, _Live] = {}
        self.dead: deque[_Dead] = deque(maxlen=KEEP_DELETED)
        self.deleted = 0  # objects deleted, ever
        self.deleted_before = 0  # ... before this epoch


class StoreModel:
    """The stores of ``worker_ids`` with new/deleted marks and message counters."""

    def __init__(self, worker_ids: list[str]) -> None:
        self.ids = list(worker_ids)
        self.local = local_id()
        self.local_watched = self.local in self.ids
        self.epoch = 0
        self._fresh = [(0, None)]  # what a plain tensor stored now is listed as
        self._cols = {w: _Column(w) for w in self.ids}
        self._gone: dict[tuple[str, int], str] = {}  # what the local worker freed, and how
        # A loop frees a pointer per iteration, but views ask only about the pointers held
        # when the epoch began (their reasons) and one dying right now (inside its __del__,
        # a paint must not list it): the last delete or fetch is kept, not every one.
        self._last: list[Any] = [None]  # the exchange being painted after
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
                objects = dict(registry.get_worker(w).objects())
            except Exception:  # a worker in another process: its events will fill it in
                continue
            live = self._cols[w].live
            live.clear()
            for k, v in sorted(objects.items()):
                live[k] = (-1, entry_for(w, k, v))  # -1: from before the first epoch
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
        return self.handlers(due, tick)[0]

    def handlers(
        self, due: list[float] | None = None, tick: Callable[[], None] | None = None
    ) -> tuple[Callable[[Any], None], None]:
        """The ``listener`` callback (and None: kept for the callers' shape)."""
        # (``due[0]`` is a ``time.perf_counter()`` time, which the caller moves after a paint.)
        # The hot path of a watched loop: one call per event, a few dict operations and
        # int additions each, with every name bound once here rather than looked up.
        # Nothing may raise: the core calls these in a student's loop.
        cols_get = self._cols.get
        senders = self._senders
        gone = self._gone
        last = self._last
        held_ids = self._held_ids
        model = self
        plain = torch.Tensor
        fresh = self._fresh  # ``(epoch, None)``, made once an epoch: a loop allocates nothing
        when = due if due is not None else [math.inf]
        paint = tick if tick is not None else _nothing

        message, stored, deleted = events.Exchange, events.ObjectStored, events.ObjectDeleted
        cleared, clock = events.StoreCleared, time.perf_counter
        freeing = frozenset(("delete", "fetch", "forward"))  # why a pointer stops owning

        def forget(c: _Column, obj_id: int, reason: str, obj: Any) -> None:
            # ``obj``: what was stored, in its last moment (from the event)
            rec = c.live.pop(obj_id, None)
            if rec is None:
                return
            c.deleted += 1
            shown = rec[1]
            if shown is not None:  # an Entry
                c.dead.append((obj_id, rec[0], shown, None, reason))
            elif isinstance(obj, torch.Tensor):  # its last moment: read it now
                c.dead.append((obj_id, rec[0], obj.dtype, obj.shape, reason))
            else:  # nothing left to describe
                c.dead.append((obj_id, rec[0], None, None, reason))

        def on_event(e: Any) -> None:
            # One function, one call per event: a watched loop publishes ~4 per iteration.
            try:
                t = type(e)
                if t is message:  # a message and its reply
                    try:
                        counts = senders[e.sender][e.receiver]
                    except KeyError:  # the first message between these two workers
                        counts = model._counter(e.sender, e.receiver)
                    counts[0] += 1  # (each message has a reply: one count for both)
                    counts[1] += e.nbytes
                    counts[2] += e.reply_nbytes
                    kind = e.kind
                    if kind in freeing and counts[3]:  # the watched local worker's pointers
                        if kind == "delete":
                            if held_ids and getattr(e.payload, "id", None) in held_ids:
                                model._release(e)
                        elif kind == "fetch":  # rarer: and another pointer may name the id
                            model._release(e, always=True)
                        elif kind == "forward":  # a pointer sent on: dest holds it now
                            dest = getattr(e.payload, "dest", e.receiver)
                            gone[(e.receiver, getattr(e.payload, "id", None))] = f"sent to {dest}"
                            if len(gone) > KEEP_GONE:
                                model._forget_gone()
                    # Paint only after messages: in a worker of this process every store
                    # and delete happens while a message is handled, before its reply comes
                    # back. It comes with the time it was sent: no clock call here.
                    if e.time >= when[0]:
                        # (A delete's paint runs inside the dying pointer's ``__del__``: the
                        # views must not list it. Kept for the paint only: holding on to
                        # every exchange would cost the loop more than this branch.)
                        last[0] = e
                        paint()
                        last[0] = None
                elif t is stored:
                    c = cols_get(e.worker)
                    if c is not None:
                        obj = e.obj
                        if type(obj) is plain and c.store is not None:  # usual: no describing
                            c.live[e.id] = fresh[0]
                        else:  # as the event describes it (a copy as its original)
                            c.live[e.id] = (model.epoch, entry_for(e.worker, e.id, obj, e.kind,
                                                                   e.summary))  # fmt: skip
                elif t is deleted:
                    c = cols_get(e.worker)
                    if c is not None:
                        forget(c, e.id, e.reason, e.obj)
                elif t is cleared:
                    c = cols_get(e.worker)
                    if c is not None:
                        for i, obj in zip(e.ids, e.objs):
                            forget(c, i, e.reason, obj)
                    if clock() >= when[0]:
                        paint()
            except Exception:  # nothing may raise: the core calls this in a student's loop
                pass

        return on_event, None

    def _counter(self, sender: str, receiver: str) -> list:
        """[messages, their bytes, their replies' bytes, sent by the watched local worker]."""
        by_local = self.local_watched and sender == self.local
        return self._senders.setdefault(sender, {}).setdefault(receiver, [0, 0, 0, by_local])

    @property
    def gone(self) -> dict[tuple[str, int], str]:
        """How the local worker's pointers stopped owning their objects, by (worker, id)."""
        gone = dict(self._gone)
        last = self._last[0]
        if last is not None and last.kind in ("delete", "fetch"):  # its pointer may be dying
            gone.setdefault(*self._why(last))
        return gone

    @staticmethod
    def _why(last: events.Exchange) -> tuple[tuple[str, int], str]:
        how = "pointer died" if last.kind == "delete" else "get"
        return (last.receiver, getattr(last.payload, "id", None)), how

    def _release(self, last: events.Exchange, always: bool = False) -> None:
        """Remember a delete or fetch that frees a pointer held when the epoch began."""
        key, how = self._why(last)
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

    def end_epoch(self) -> None:
        """Forget the deleted objects and clear the ``new`` marks (a cell has finished)."""
        self.epoch += 1
        self._fresh[0] = (self.epoch, None)
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
        # Every exchange counts, even between workers not watched (as it always has); a
        # store adds one live object, a delete takes one and adds two deleted.
        messages = sum(c[0] for sent in self._senders.values() for c in sent.values())
        return messages + sum(len(c.live) + 2 * c.deleted for c in self._cols.values())

    def counts(self, w: str) -> tuple[int, int, int, int]:
        """Worker ``w``'s messages in, bytes in, messages out and bytes out."""
        m_in = b_in = m_out = b_out = 0
        for sender, sent in self._senders.items():
            for receiver, (m, there, back, _) in sent.items():
                if receiver == w:  # its messages in, and its replies out
                    m_in, b_in, m_out, b_out = m_in + m, b_in + there, m_out + m, b_out + back
                if sender == w:
                    m_out, b_out, m_in, b_in = m_out + m, b_out + there, m_in + m, b_in + back
        return m_in, b_in, m_out, b_out

    def stored_count(self, w: str) -> int:
        """How many objects worker ``w``'s store holds."""
        return len(self._cols[w].live)

    def hidden(self, w: str) -> int:
        """How many objects deleted this epoch are no longer listed."""
        c = self._cols[w]
        return c.deleted - c.deleted_before - len(self._dead(c))

    @staticmethod
    def _dead(c: _Column) -> list[_Dead]:
        """The deleted objects to list: the last few, once per id, none that is live again."""
        # (An id is used again only after ``sy.reset()``: list its latest object alone.)
        seen = set(c.live)
        rows = []
        for row in reversed(c.dead):
            if row[0] not in seen:
                seen.add(row[0])
                rows.append(row)
        return rows

    def _entry(
        self, w: str, i: int, epoch: int, shown: Any, shape: Any, reason: str | None
    ) -> Entry:
        if type(shown) is Entry:
            a = shown
            e = Entry(a.ref, a.kind, a.shape, a.target, a.obj if reason is None else None)
        elif shape is None and reason is None:  # a live plain tensor: read in its store now
            obj = self._cols[w].store.get(i)
            text = tensor_text(obj.dtype, obj.shape) if isinstance(obj, torch.Tensor) else ""
            e = Entry(f"{w}:{i}", "tensor", text, None, _weak(obj))
        else:  # a deleted plain tensor: its dtype and shape, read when it was deleted
            text = tensor_text(shown, shape) if shown is not None else ""
            e = Entry(f"{w}:{i}", "tensor", text)
        e.new = epoch == self.epoch
        e.reason = reason
        return e

    def _store_rows(self, w: str) -> list[Entry]:
        c = self._cols[w]
        rows = [(i, self._entry(w, i, t, shown, None, None)) for i, (t, shown) in c.live.items()]
        rows += [(r[0], self._entry(w, *r)) for r in self._dead(c)]
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
