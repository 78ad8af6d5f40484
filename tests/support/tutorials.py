"""Running a tutorial's cells as a notebook would, for the PySyft tutorial tests."""

from __future__ import annotations

import ast
import contextlib
import io
import warnings
from typing import NamedTuple

import torch

import fedlab as sy


class Cell(NamedTuple):
    printed: str  # what the cell printed
    shown: str | None  # the repr a notebook shows for its last line's value (None: nothing)
    value: torch.Tensor | None  # that value, when it is a plain tensor (not a pointer)
    sent: list[str]  # the kinds of the messages it sent (replies and deletes left out)


def run_notebook(cells: list[str], ns: dict | None = None) -> tuple[dict, list[Cell]]:
    """Run the cells one by one in one namespace, as a notebook does; returns each Cell.

    A cell's last line, when it is an expression, is evaluated and shown as IPython shows
    it (its repr, unless it is None); unlike IPython, no output history keeps it alive.
    """
    ns = {"__name__": "__tutorial__"} if ns is None else ns
    out = []
    for i, cell in enumerate(cells):
        body = ast.parse(cell).body
        last = body.pop() if body and isinstance(body[-1], ast.Expr) else None
        printed, log = io.StringIO(), []
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.filterwarnings("ignore", "torch is already hooked")
            with sy.subscribe(log.append):
                exec(compile(ast.Module(body, []), f"<tutorial cell {i}>", "exec"), ns)
                value = None
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), f"<cell {i}>", "eval"), ns)
        kinds = [e.kind for e in sy.log.messages(log)]
        plain = isinstance(value, torch.Tensor) and not sy.is_pointer(value)
        shown = None if value is None else repr(value)
        out.append(Cell(printed.getvalue(), shown, value if plain else None,
                        [k for k in kinds if k not in ("reply", "delete")]))  # fmt: skip
        del value
    return ns, out
