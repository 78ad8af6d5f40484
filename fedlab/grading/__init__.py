"""Graded exercises: ``start`` makes the workers and the log, ``check`` grades the notebook.

The grader checks *privacy* as well as results, from what travelled between workers:
"the training data never left bob" means no object derived from bob's data left bob
except what the exercise allows (``provenance``). ``fedlab grade`` (``fedlab.grading.cli``)
runs the same checks on a folder of submissions, with the workers in a process it owns.
"""

from __future__ import annotations

from fedlab.grading.exercises import EXERCISES
from fedlab.grading.notebook import check, mark, start
from fedlab.grading.report import Report, Result

__all__ = ["EXERCISES", "Report", "Result", "check", "mark", "start"]
