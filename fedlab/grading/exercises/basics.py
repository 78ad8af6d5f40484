"""Exercises on pointers themselves: remote tensors, garbage collection, pointer chains."""

from __future__ import annotations

import torch

from fedlab.grading.criteria import (
    Context,
    Criterion,
    Exercise,
    Failed,
    Private,
    fetched_by_me,
    is_pointer,
    location_of,
    same_values,
    sent_from_me,
)

# -- 1. remote tensors ----------------------------------------------------------------
X = torch.tensor([1.0, 2, 3, 4, 5])
Y = torch.tensor([10.0, 20, 30, 40, 50])


def _sent(ctx: Context) -> str:
    log = ctx.log
    if not sent_from_me(log, "bob", X):
        raise Failed("the log shows no send of x's values from me to bob")
    if not sent_from_me(log, "alice", Y):
        raise Failed("the log shows no send of y's values from me to alice")
    return "x went to bob, y went to alice"


def _fetched(ctx: Context) -> str:
    log = ctx.log
    if not fetched_by_me(log, "bob", X):
        raise Failed("x's values never came back from bob with .get()")
    if not fetched_by_me(log, "alice", Y):
        raise Failed("y's values never came back from alice with .get()")
    return "both came back to me"


def _total(ctx: Context) -> str:
    total = ctx.var("total")
    if not isinstance(total, torch.Tensor) or is_pointer(total):
        raise Failed(f"`total` should be a tensor here on me, but it is on {location_of(total)}")
    if not same_values(total, X + Y):
        raise Failed("`total` is a local tensor, but it is not x + y")
    return "total is x + y"


def _nothing_left(ctx: Context) -> str:
    left = {w: sorted(ctx.store(w)) for w in ("bob", "alice") if ctx.store(w)}
    if left:
        where = "; ".join(f"{w} still holds ids {ids}" for w, ids in left.items())
        raise Failed(where)
    return "bob and alice hold nothing"


REMOTE_TENSORS = Exercise(
    "remote-tensors",
    "Remote tensors on two workers",
    (
        Criterion("x is sent to bob and y to alice", 1, _sent,
                  "x.send(worker) copies a tensor to a worker and gives you a pointer."),
        Criterion("both tensors come back with .get()", 1, _fetched,
                  "Call .get() on each pointer: it brings the values back and frees them there.",
                  requires=("x is sent to bob and y to alice",)),
        Criterion("total is x + y, added here on me", 1, _total,
                  "The two tensors live on different workers, so add them once both are back.",
                  requires=("both tensors come back with .get()",)),
        Criterion("nothing is left on bob or alice", 1, _nothing_left,
                  "Every .send() stores one object; .get() takes it away. Did you send twice?",
                  requires=("both tensors come back with .get()",)),
    ),
    workers=("bob", "alice"),
    reads=("total",),
)  # fmt: skip


# -- 4. garbage-collection detective ----------------------------------------------------


def _snapshot(ctx: Context) -> list[int]:
    snap = ctx.recorder.marks.get("given")
    if snap is None:
        raise Failed("run the given cells first (the last one ends with mark())")
    return sorted(snap.stores.get("bob", {}))


def _prediction(ctx: Context) -> str:
    actual = _snapshot(ctx)
    guess = ctx.var("left_on_bob")
    try:
        if isinstance(guess, (str, bytes)) or any(isinstance(i, bool) for i in guess):
            raise TypeError
        ids = sorted({int(i) for i in guess})
    except (TypeError, ValueError):
        raise Failed("`left_on_bob` should be a set of ids, like {1, 4}") from None
    if ids != actual:
        raise Failed(f"you predicted {set(ids) or '{}'}, which is not what bob held")
    return "right: those are exactly the objects bob held"


def _bob_empty(ctx: Context) -> str:
    _snapshot(ctx)
    left = sorted(ctx.store("bob"))
    if left:
        raise Failed(f"bob still holds {len(left)} object(s), ids {left}")
    return "bob holds nothing"


def _freed_by_gc(ctx: Context) -> str:
    rec = ctx.recorder
    if any(c.worker == "bob" for c in rec.cleared):
        raise Failed("bob's store was cleared; let the pointers go instead")
    bad = []
    for obj_id in _snapshot(ctx):
        reasons = [d.reason for d in rec.deleted if d.worker == "bob" and d.id == obj_id]
        if not reasons or "died" not in reasons[-1]:
            bad.append(f"bob:{obj_id} left by {reasons[-1] if reasons else 'an unknown way'}")
    if bad:
        raise Failed("; ".join(bad))
    return "every object was freed because its last pointer died"


GC_DETECTIVE = Exercise(
    "gc-detective",
    "Garbage-collection detective",
    (
        Criterion("prediction: the ids left on bob", 2, _prediction,
                  "Each send or operation stores a new object on bob (ids 1, 2, 3...). An object "
                  "stays while some pointer to it is reachable from your variables."),
        Criterion("the leak is fixed: bob holds nothing", 1, _bob_empty,
                  "Find every variable (or container) that still holds a pointer to bob."),
        Criterion("freed by dropping pointers, not by clearing bob", 1, _freed_by_gc,
                  "Don't call clear_objects() or .get(): drop the references (del, clear a list).",
                  requires=("the leak is fixed: bob holds nothing",)),
    ),
    workers=("bob",),
    reads=("left_on_bob",),
)  # fmt: skip


# -- 5. pointer chains -------------------------------------------------------------------
Z = torch.tensor([3.0, 1, 4, 1, 5])
SECRET = "x's values"


def _on_alice(ctx: Context) -> str:
    x = ctx.var("x")
    if not is_pointer(x):
        raise Failed(f"`x` should be a pointer to alice, but it is a tensor on {location_of(x)}")
    if location_of(x) != "alice":
        raise Failed(f"`x` points to {location_of(x)}, not alice")
    from fedlab.pointer import record_of

    held = ctx.store("alice").get(x.id)
    if record_of(held) is not None:
        raise Failed("alice holds only a pointer onward to bob: the data itself is not on alice")
    if not same_values(ctx.value_of(x), Z):
        raise Failed("alice holds a tensor, but not x's values")
    if not any(t.frm == "bob" and SECRET in t.obj.private for t in ctx.transfers):
        raise Failed("the values on alice never left bob: were they typed in again?")
    return "x points to its values on alice, which came from bob"


def _not_through_me(ctx: Context) -> str:
    leaks = ctx.leaks()
    if leaks:
        raise Failed(leaks[0])
    return "no message to me carried x's values"


def _nothing_behind(ctx: Context) -> str:
    problems = []
    if ctx.store("bob"):
        problems.append(f"bob still holds ids {sorted(ctx.store('bob'))}")
    if len(ctx.store("alice")) != 1:
        problems.append(f"alice holds {len(ctx.store('alice'))} objects, not just x")
    if problems:
        raise Failed("; ".join(problems))
    return "bob holds nothing; alice holds only x"


POINTER_CHAINS = Exercise(
    "pointer-chains",
    "Pointer chains",
    (
        Criterion("x points to its values on alice", 2, _on_alice,
                  "A pointer can tell its location to hand the object straight to another worker."),
        Criterion("the data never passed through me", 2, _not_through_me,
                  "x.get() followed by .send(alice) works, but the data visits you on the way.",
                  requires=("x points to its values on alice",)),
        Criterion("nothing is left behind on any worker", 1, _nothing_behind,
                  "A chain leaves a pointer in the middle; an extra copy stays until freed.",
                  requires=("x points to its values on alice",)),
    ),
    workers=("bob", "alice"),
    reads=("x",),
    private=(Private(SECRET, "bob", Z),),
    routes=(("bob", "alice"),),
)  # fmt: skip
