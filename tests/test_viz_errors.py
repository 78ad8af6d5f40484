"""fedlab's errors in a notebook show the student's lines and the message, not fedlab's frames.

Run in a real kernel (nbclient), as a student's notebook runs.
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path

import nbformat
import pytest
import torch

import fedlab as sy
from fedlab.viz.errors import student_frames

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run(cells: list[str]) -> list[nbformat.NotebookNode]:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in cells]
    for cell in nb.cells[1:]:
        cell.metadata["tags"] = ["raises-exception"]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    return nb.cells


def _error(cell: nbformat.NotebookNode) -> tuple[str, str]:
    (out,) = [o for o in cell.outputs if o.output_type == "error"]
    return out.ename, ANSI.sub("", "\n".join(out.traceback))


@pytest.mark.slow
def test_fedlab_errors_show_the_students_lines_and_the_message_only():
    setup = (
        "import torch\nimport fedlab as sy\nhook = sy.TorchHook(torch)\n"
        "bob = sy.VirtualWorker(hook, id='bob')\nx = torch.tensor([1.0, 2.0]).send(bob)"
    )
    nested = "def add_one(t):\n    return t + torch.ones(2)\n\nadd_one(x)"
    cells = _run([setup, "x.item()", nested, "x + torch.ones(3).send(bob)", "1 / 0"])
    item, mixed, remote, plain = (_error(c) for c in cells[1:])

    assert item[0] == "RemoteValueError"
    assert "----> 1 x.item()" in item[1]
    assert (
        item[1]
        .rstrip()
        .endswith(
            "not here. Bring the tensor back first with .get(), then call .item() on what it gives."
        )
    )
    # both of the student's frames, the call and the function, and nothing else
    assert mixed[0] == "TensorsNotCollocatedException"
    assert "----> 4 add_one(x)" in mixed[1] and "----> 2     return t + torch.ones(2)" in mixed[1]
    assert remote[0] == "RemoteRuntimeError" and "on bob:" in remote[1]
    for _, text in (item, mixed, remote):
        assert "File " not in text, text  # no frame from a file: only cells
        assert "skipping hidden" not in text
        assert str(ROOT) not in text and "site-packages" not in text
        assert len(text.splitlines()) < 20
    # an error that is not fedlab's is shown exactly as IPython always shows it
    assert plain[0] == "ZeroDivisionError" and "----> 1 1 / 0" in plain[1]


def test_student_frames_keep_only_code_outside_fedlab_and_installed_packages(bob):
    x = torch.tensor([1.0]).send(bob)
    try:
        x.item()
    except sy.exceptions.FedlabError:
        tb = sys.exc_info()[2]
    full = [f.filename for f in traceback.extract_tb(tb)]
    kept = [f.filename for f in traceback.extract_tb(student_frames(tb))]
    assert any("fedlab" in name for name in full[1:])  # the error came from fedlab's code
    assert kept == [__file__]  # only this test's frame remains


def test_import_fedlab_registers_nothing_without_a_running_shell():
    from fedlab.viz.errors import register

    assert register() is False  # pytest runs no IPython shell
