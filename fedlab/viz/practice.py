"""Practice inside the lessons: ``practice.check("task")`` says what is right and what is missing.

A lesson's "Your turn" cell leaves ``...`` for the student to replace; the check cell
below it reads the notebook's variables (and peeks at the workers' stores, sending no
message and changing nothing) and answers at once, in a sentence per step, stopping at
the first step that is not done yet. Nothing is graded: the graded exercises are in
``exercises/`` (``sy.check``). The tasks themselves are in ``fedlab.viz.tasks``
(``tasks_secure``: lessons 16-20).
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass, field
from typing import Any

from fedlab.viz import tasks, tasks_secure  # noqa: F401  (they register the lessons' tasks)
from fedlab.viz.steps import TASKS, Namespace, NotYet, Step


@dataclass
class Feedback:
    """What a check found: one sentence per step; ``passed`` when every step is done."""

    task: str
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every step of the task is done."""
        return bool(self.steps) and all(ok for ok, _ in self.steps)

    def __repr__(self) -> str:
        lines = [f"{'✓' if ok else '✗'} {text}" for ok, text in self.steps]
        end = (
            "Well done: every step is right."
            if self.passed
            else "Not yet: fix the ✗ and run again."
        )
        return "\n".join([*lines, end])

    def _repr_html_(self) -> str:
        items = "".join(
            f"<li style='color:{'#1a7f37' if ok else '#cf222e'};list-style:none'>"
            f"{'✓' if ok else '✗'} <span style='color:inherit'>{html.escape(text)}</span></li>"
            for ok, text in self.steps
        )
        end = (
            "<b style='color:#1a7f37'>Well done: every step is right.</b>"
            if self.passed
            else "<b style='color:#cf222e'>Not yet:</b> fix the ✗ and run again."
        )
        return (
            "<div class='fedlab-practice' style='text-align:left;border-left:4px solid "
            f"{'#1a7f37' if self.passed else '#cf222e'};padding:4px 10px'>"
            f"<ul style='margin:0;padding:0'>{items}</ul><div>{end}</div></div>"
        )


def check(name: str, namespace: dict[str, Any] | None = None) -> Feedback:
    """Check the lesson task ``name`` against the notebook's variables (the caller's)."""

    if name not in TASKS:
        raise KeyError(f"there is no practice task {name!r}; the tasks are: {', '.join(TASKS)}")
    if namespace is None:  # a notebook's cell: its globals; a function: its locals too
        caller = sys._getframe(1)
        namespace = {**caller.f_globals, **caller.f_locals}
    ns = Namespace(namespace)
    feedback = Feedback(name)
    try:
        for ok, text in TASKS[name](ns):
            feedback.steps.append((ok, text))
            if not ok:
                break
    except NotYet as e:
        feedback.steps.append((False, str(e)))
    return feedback


__all__ = ["Feedback", "check"]
