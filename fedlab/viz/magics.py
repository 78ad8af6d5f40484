"""``%load_ext fedlab``: the ``%fedlab`` line magic and the ``%%fedlab`` cell magic.

``%fedlab watch [workers...]``, ``%fedlab why bob:1``, ``%fedlab draw [names...]``,
``%fedlab check NAME`` and ``%%fedlab trace`` (run the cell, show its messages).
"""

from __future__ import annotations

import shlex
from typing import Any

USAGE = """usage:
  %fedlab watch [worker ...]    live panel of the workers' stores (all if none named)
  %fedlab why WORKER:ID         who keeps a remote object alive (e.g. %fedlab why bob:1)
  %fedlab forget                clear the output history (Out, _) that keeps pointers alive
  %fedlab draw [pointer ...]    pointer graph of the named pointers (all if none named)
  %fedlab check NAME            check an exercise
  %%fedlab trace                run the cell and show every message it sent"""


def _error(text: str) -> Exception:
    from IPython.core.error import UsageError

    return UsageError(f"{text}\n{USAGE}")


def fedlab_magic(shell: Any, line: str, cell: str | None = None) -> Any:
    """Run one ``%fedlab`` / ``%%fedlab`` command in ``shell``."""
    from IPython.display import display

    import fedlab.viz as viz

    words = shlex.split(line)
    if not words:
        raise _error("%fedlab needs a command.")
    command, args = words[0], words[1:]
    if cell is not None:
        if command != "trace":
            raise _error(f"%%fedlab {command} is not a cell command; only %%fedlab trace is.")
        with viz.trace() as t:
            shell.run_cell(cell)
        display(t)
        display(t.draw())
        return None
    if command == "trace":
        raise _error("trace runs a whole cell: put %%fedlab trace on the cell's first line.")
    if command == "watch":
        return viz.watch(*args)
    if command == "why":
        if len(args) != 1:
            raise _error("%fedlab why takes one object, like bob:1 or a pointer variable x.")
        target = args[0]
        if ":" not in target:  # a variable name: explain that pointer
            if target not in shell.user_ns:
                raise _error(f"there is no variable called {target!r}.")
            target = shell.user_ns[target]
        return viz.explain(target, namespace=shell.user_ns)
    if command == "forget":
        from fedlab.viz.explain import forget_outputs

        n = forget_outputs(shell)
        print(f"forgot {n} output{'s' * (n != 1)}: pointers shown only there are freed")
        return None
    if command == "draw":
        missing = [a for a in args if a not in shell.user_ns]
        if missing:
            raise _error(f"no variable called {missing[0]!r}.")
        return viz.draw(*(shell.user_ns[a] for a in args))
    if command == "check":
        if len(args) != 1:
            raise _error("%fedlab check takes one exercise name, like %fedlab check fedavg.")
        try:
            from fedlab.grading import check
        except ImportError as e:
            raise _error(
                f"checking exercises needs fedlab.grading, which is not available ({e})."
            ) from None
        import inspect

        # the exercise is graded in the notebook's variables, not in this function's
        if "namespace" in inspect.signature(check).parameters:
            return check(args[0], namespace=shell.user_ns)
        return check(args[0])
    raise _error(f"unknown command {command!r}.")


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%fedlab`` and ``%%fedlab`` (called by ``%load_ext fedlab``)."""

    def line_or_cell(line: str, cell: str | None = None) -> Any:
        return fedlab_magic(ipython, line, cell)

    line_or_cell.__doc__ = USAGE
    ipython.register_magic_function(line_or_cell, "line_cell", "fedlab")
