"""fedlab's errors in a notebook: the student's own lines and fedlab's message, nothing else.

A student who writes ``z.item()`` on a pointer needs to see that line and the sentence
that says what to do. IPython would also show the frames of fedlab and torch between
the two (with this machine's absolute paths): forty lines of someone else's code before
the one that helps. IPython lets a package handle its own exceptions
(``shell.set_custom_exc``); fedlab's handler keeps the frames of the student's code
(notebook cells and their own files) and formats them as IPython always does, so the
error reads like any other, only shorter. ``%debug`` still sees the whole traceback.

Registered when fedlab is imported in a running IPython (``fedlab/__init__.py``), never
importing IPython itself.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import types
from typing import Any

import fedlab
from fedlab.exceptions import FedlabError

# Code that is not the student's: fedlab itself, the standard library and every
# installed package (torch, IPython, ipykernel...).
_INTERNAL = tuple(
    os.path.normcase(os.path.realpath(p)) + os.sep
    for p in {
        os.path.dirname(fedlab.__file__),
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    }
)


def _is_student(frame: types.FrameType) -> bool:
    if frame.f_locals.get("__tracebackhide__") or frame.f_globals.get("__tracebackhide__"):
        return False
    filename = frame.f_code.co_filename
    if filename.startswith("<"):  # code typed at a prompt or made with exec()
        return True
    return not os.path.normcase(os.path.realpath(filename)).startswith(_INTERNAL)


def student_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """A new traceback with only the frames of the student's code, in the same order."""
    kept = []
    while tb is not None:
        if _is_student(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    head = None
    for t in reversed(kept):
        head = types.TracebackType(head, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return head


def show(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """IPython's custom exception handler for fedlab's errors (``shell.set_custom_exc``)."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %debug
    short = student_frames(tb)
    if short is None:  # raised outside any code of the student's: show it all
        short = tb
    # The chain (an error "during handling of" another) would bring the internals back.
    saved = value.__cause__, value.__context__, value.__suppress_context__
    value.__cause__, value.__context__, value.__suppress_context__ = None, None, True
    try:
        stb = shell.InteractiveTB.structured_traceback(etype, value, short, tb_offset=0)
    finally:
        value.__cause__, value.__context__, value.__suppress_context__ = saved
    shell._showtraceback(etype, value, stb)


def register(shell: Any = None) -> bool:
    """Show fedlab's errors briefly in the running IPython shell; True if registered.

    A shell that already handles other exceptions its own way is left as it is.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        get = getattr(ipython, "get_ipython", None)
        shell = get() if get is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    current = tuple(getattr(shell, "custom_exceptions", ()) or ())
    if current and current != (FedlabError,):
        return False
    shell.set_custom_exc((FedlabError,), show)
    return True


__all__ = ["register", "show", "student_frames"]
