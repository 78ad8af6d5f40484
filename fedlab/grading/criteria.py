"""The pieces exercises are graded with: criteria, the context they read, and privacy rules.

A criterion reads three things, never the student's printed output: the notebook's
*claims* (its variables as plain data, ``fedlab.grading.claims``), the workers' stores
(peeked at where the workers live, so checking sends no message and changes nothing),
and the message log with the provenance of every object (``recorder``, ``provenance``).

An exercise declares its workers, the variables it reads, its private data (by value:
what ``me`` sends with exactly those values becomes that private data on the worker) and
what may leave a worker (``Release``); every other transfer of an object derived from
private data, to ``me`` or along a route the exercise does not allow, is a privacy failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from fedlab.grading.claims import Model, Other, Pointer
from fedlab.grading.provenance import Obj, Transfer
from fedlab.grading.recorder import Entry, Recorder
from fedlab.grading.report import Report, Result


class Failed(Exception):
    """Raised by a criterion's test: the criterion fails with this message."""


@dataclass(frozen=True)
class Criterion:
    """A graded property of a solution: ``test(ctx)`` returns a message or raises ``Failed``."""

    name: str
    points: int
    test: Callable[[Context], str]
    hint: str
    requires: tuple[str, ...] = ()  # criteria that must pass first (privacy needs a solution)


@dataclass(frozen=True)
class Private:
    """Private data: ``name`` is what ``me`` sent to ``home`` with exactly ``value``'s values."""

    name: str
    home: str
    value: torch.Tensor


@dataclass(frozen=True)
class Release:
    """Something that may leave a worker for ``me``: ``allows(transfer, ctx)`` says if it is."""

    what: str
    allows: Callable[[Transfer, Context], bool]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its name (as in ``sy.check(name)``), title, criteria and privacy rules."""

    name: str
    title: str
    criteria: tuple[Criterion, ...]
    workers: tuple[str, ...] = ("bob",)
    reads: tuple[str, ...] = ()  # the notebook variables the checks read
    private: tuple[Private, ...] = ()
    releases: tuple[Release, ...] = ()  # what may reach me
    routes: tuple[tuple[str, str], ...] = ()  # (from, to): where private data may travel

    def classify(self, worker: str, t: torch.Tensor) -> str | None:
        """The name of the private data ``t`` holds exactly (sent to any worker), if any."""
        for p in self.private:
            if t.shape == p.value.shape and t.dtype == p.value.dtype and torch.equal(t, p.value):
                return p.name
        return None

    def grade(self, claims: dict[str, Any], rec: Recorder | None) -> Report:
        """Run every criterion against the notebook's ``claims`` and the log ``rec``."""
        ctx = Context(self, claims, rec)
        report = Report(self.name)
        passed: set[str] = set()
        for c in self.criteria:
            missing = [r for r in c.requires if r not in passed]
            if missing:
                msg = f"checked once this passes: {missing[0]}"
                report.results.append(Result(c.name, c.points, 0, msg, c.hint))
                continue
            try:
                message, score = c.test(ctx), c.points
                passed.add(c.name)
            except Failed as e:
                message, score = str(e), 0
            except Exception as e:  # a student's odd object must not crash the check
                message, score = f"the check could not run: {type(e).__name__}: {e}", 0
            report.results.append(Result(c.name, c.points, score, message, c.hint))
        return report


class Context:
    """What a criterion may look at: claims, stores, the message log and provenance."""

    def __init__(self, exercise: Exercise, claims: dict[str, Any], rec: Recorder | None) -> None:
        self.exercise = exercise
        self.claims = claims
        self.rec = rec

    def var(self, name: str) -> Any:
        """The notebook variable ``name`` (as a claim), or a failure that says what to run."""
        if name not in self.claims:
            raise Failed(f"there is no variable `{name}` yet: run the cell that defines it")
        return self.claims[name]

    @property
    def recorder(self) -> Recorder:
        """The log of this exercise; fails when the first cell did not start recording."""
        rec = self.rec
        if rec is None or rec.exercise != self.exercise.name or not rec.recording:
            raise Failed(
                f"the message log is not recording for {self.exercise.name!r}: run the "
                "exercise's first cell (it calls start(...)), then your cells again"
            )
        return rec

    @property
    def log(self) -> list[Entry]:
        """The messages recorded since the exercise's first cell ran."""
        return self.recorder.log

    @property
    def transfers(self) -> list[Transfer]:
        """Every object that left a worker, in order."""
        return self.recorder.tracker.transfers

    def obj(self, worker: str, obj_id: int) -> Obj | None:
        """What provenance knows of the live object ``obj_id`` on ``worker``."""
        return self.recorder.tracker.get(worker, obj_id)

    def store(self, worker_id: str) -> dict[int, Any]:
        """The object store of one of the exercise's workers (read only, by convention)."""
        from fedlab import registry

        try:
            w = registry.get_worker(worker_id)
        except Exception:
            raise Failed(f"there is no worker {worker_id!r}: run the first cell") from None
        if hasattr(w, "session") or hasattr(w, "actor"):  # (a handle on another process)
            raise Failed(f"{worker_id} does not live where the checks run")
        return dict(w.objects())

    def value_of(self, x: Any, depth: int = 5) -> torch.Tensor | None:
        """The values behind a claim (following pointers stored on workers), no message sent."""
        from fedlab.pointer import record_of

        if isinstance(x, torch.Tensor):
            return x.detach()
        while isinstance(x, Pointer) and depth > 0:
            try:
                x = self.store(x.location).get(x.id)
            except Failed:
                return None
            if record_of(x) is not None:  # (a stored pointer: the chain goes on)
                x = Pointer(record_of(x).location_id, record_of(x).id_at_location)
            depth -= 1
        return x.detach() if isinstance(x, torch.Tensor) and record_of(x) is None else None

    def entry(self, index: int) -> str:
        """The log's description of message ``index``."""
        log = self.log
        return log[index].describe() if 0 <= index < len(log) else f"message {index}"

    def leaks(self) -> list[str]:
        """A sentence for each transfer of private data that the exercise does not allow."""
        ex, found = self.exercise, []
        for t in self.transfers:
            private = t.obj.private
            if not private:
                continue
            names = " and ".join(sorted(private))
            if t.to == "me":
                if any(r.allows(t, self) for r in ex.releases):
                    continue
                allowed = "; only " + ", ".join(r.what for r in ex.releases) if ex.releases else ""
                found.append(
                    f"an object derived from {names} reached me in {self.entry(t.index)}"
                    f"{allowed} may leave {t.frm}"
                )
            elif (t.frm, t.to) not in ex.routes:
                found.append(f"{names} went from {t.frm} to {t.to} in {self.entry(t.index)}")
        return found


# -- claims and values -------------------------------------------------------------------------
def is_pointer(x: Any) -> bool:
    """True for a pointer claim."""
    return isinstance(x, Pointer)


def location_of(x: Any) -> str:
    """Where the values of a claim live: a worker id for a pointer, ``me`` for a tensor."""
    if isinstance(x, Pointer):
        return x.location
    if isinstance(x, torch.Tensor):
        return "me"
    return f"nowhere (it is a {kind_of(x)}, not a tensor)"


def kind_of(x: Any) -> str:
    """A claim's type, in words."""
    if isinstance(x, Other):
        return x.type
    if isinstance(x, Model):
        return "model"
    return type(x).__name__


def same_values(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """True when ``a`` and ``b`` hold exactly the same numbers (any shape, any dtype)."""
    if a is None or b is None or not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return False
    if a.numel() != b.numel() or a.numel() == 0:
        return False
    return torch.equal(a.detach().reshape(-1).double(), b.detach().reshape(-1).double())


def sent_from_me(log: Iterable[Entry], to: str, value: torch.Tensor) -> bool:
    """True when ``me`` sent a tensor equal to ``value`` to worker ``to``."""
    return any(
        e.kind == "send" and e.sender == "me" and e.receiver == to and same_values(e.tensor, value)
        for e in log
    )


def fetched_by_me(log: Iterable[Entry], frm: str, value: torch.Tensor) -> bool:
    """True when a ``.get()`` brought a tensor equal to ``value`` from ``frm`` to ``me``."""
    return any(
        e.kind == "reply" and e.request == "fetch" and e.sender == frm and e.receiver == "me"
        and same_values(e.tensor, value)
        for e in log
    )  # fmt: skip


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """The mean squared error, as a plain float."""
    return float(((pred.detach().reshape(target.shape) - target) ** 2).mean())


# -- what may leave a worker -------------------------------------------------------------------
def _is_loss(t: Transfer, ctx: Context) -> bool:
    # A number computed with the model (something me sent that is not private data).
    v = t.value
    return v is not None and v.numel() == 1 and any(o.startswith("sent@") for o in t.obj.origins)


def _is_trained(t: Transfer, ctx: Context) -> bool:
    # An object me sent that was not private data: a model's parameter, trained where it went.
    born = t.obj.born
    return born.what == "born-sent" and f"sent@{born.index}" in t.obj.origins


LOSS = Release("the loss (one number computed with the model)", _is_loss)
TRAINED = Release("the parameters you sent, trained there", _is_trained)


def training_steps(obj: Obj) -> tuple[int, int, list[str]]:
    """How an object was trained: (steps in plan messages, steps op by op, other changes)."""
    planned = by_ops = 0
    other: list[str] = []
    for step in obj.history[1:]:
        if step.what == "plan":
            planned += step.trainings
        elif step.what == "backward":
            by_ops += 1
        elif step.what == "op":
            other.append(f"{step.op} (message {step.index})")
    return planned, by_ops, other


def foreign_sources(obj: Obj, own: set[str]) -> list[int]:
    """Messages in which me sent something (not in ``own``) that ``obj``'s values depend on."""
    return sorted(int(o[5:]) for o in obj.origins if o.startswith("sent@") and o not in own)
