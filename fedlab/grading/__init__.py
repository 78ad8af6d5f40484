"""Graded exercises: ``start`` records the message log, ``check`` grades the notebook.

The grader checks *privacy* as well as results, from what travelled between workers:
"the training data never left bob" means no message from bob carried its values.
``fedlab grade`` (``fedlab.grading.cli``) runs the same checks on a folder of submissions.
"""

from __future__ import annotations

from fedlab.grading.check import check
from fedlab.grading.exercises import EXERCISES
from fedlab.grading.recorder import mark, start
from fedlab.grading.report import Report, Result

__all__ = ["EXERCISES", "Report", "Result", "check", "mark", "start"]
