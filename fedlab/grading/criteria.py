"""The pieces exercises are graded with: criteria, the context they read, and privacy helpers.

A criterion reads three things, never the student's printed output: the notebook's
variables, the workers' stores (peeked at directly, so checking sends no message and
changes nothing), and the message log of ``recorder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from fedlab import registry
from fedlab.grading.recorder import Entry, Recorder
from fedlab.grading.report import Report, Result
from fedlab.wrapper import is_pointer


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
class Exercise:
    """One exercise: its name (as in ``sy.check(name)``), title and criteria."""

    name: str
    title: str
    criteria: tuple[Criterion, ...]

    def grade(self, ns: dict[str, Any], rec: Recorder | None) -> Report:
        """Run every criterion against the notebook namespace ``ns`` and the log ``rec``."""
        ctx = Context(self.name, ns, rec)
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
    """What a criterion may look at: variables, stores and the message log."""

    def __init__(self, exercise: str, ns: dict[str, Any], rec: Recorder | None) -> None:
        self.exercise = exercise
        self.ns = ns
        self.rec = rec

    def var(self, name: str) -> Any:
        """The notebook variable ``name``, or a failure that says which cell to run."""
        if name not in self.ns:
            raise Failed(f"there is no variable `{name}` yet: run the cell that defines it")
        return self.ns[name]

    @property
    def recorder(self) -> Recorder:
        """The log of this exercise; fails when the first cell did not start recording."""
        rec = self.rec
        if rec is None or rec.exercise != self.exercise or not rec.recording:
            raise Failed(
                f"the message log is not recording for {self.exercise!r}: run the exercise's "
                "first cell (it calls start(...)), then your cells again"
            )
        return rec

    @property
    def log(self) -> list[Entry]:
        """The messages recorded since the exercise's first cell ran."""
        return self.recorder.log

    def store(self, worker_id: str) -> dict[int, Any]:
        """The object store of an in-process worker (read only, by convention)."""
        try:
            return registry.get_worker(worker_id).objects()
        except Exception:
            raise Failed(f"there is no worker {worker_id!r}: run the first cell") from None


def location_of(x: Any) -> str:
    """Where the values of ``x`` live: a worker id for a pointer, ``me`` for a local tensor."""
    return x.child.location_id if is_pointer(x) else "me"


def value_of(x: Any, depth: int = 5) -> torch.Tensor | None:
    """The actual values behind ``x`` (following pointer chains), without sending a message."""
    while is_pointer(x) and depth > 0:
        ptr = x.child
        if ptr.id_at_location is None or ptr.generation != registry.current_generation:
            return None
        try:
            x = registry.get_worker(ptr.location_id).objects().get(ptr.id_at_location)
        except Exception:
            return None
        depth -= 1
    return x.detach() if isinstance(x, torch.Tensor) and not is_pointer(x) else None


def same_values(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """True when ``a`` and ``b`` hold exactly the same numbers (any shape, any dtype)."""
    if a is None or b is None or a.numel() != b.numel() or a.numel() == 0:
        return False
    return torch.equal(a.detach().reshape(-1).double(), b.detach().reshape(-1).double())


def carriers(
    log: Iterable[Entry],
    secrets: dict[str, torch.Tensor],
    *,
    sender: str | None = None,
    receiver: str | None = None,
) -> list[str]:
    """Sentences naming each message that carried one of ``secrets``' values.

    ``sender`` keeps messages *from* that worker to any other one; ``receiver`` keeps
    messages *to* that worker. A value that travels inside the same worker is no leak.
    """
    found = []
    for e in log:
        if e.tensor is None or e.sender == e.receiver:
            continue
        if sender is not None and e.sender != sender:
            continue
        if receiver is not None and e.receiver != receiver:
            continue
        for name, secret in secrets.items():
            if same_values(e.tensor, secret):
                found.append(f"{name} travelled in {e.describe()}")
    return found


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
