"""%load_ext fedlab and the %fedlab / %%fedlab magics, in a real IPython shell."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import sys

import pytest

from fedlab.viz import panel as panel_mod


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_cell("%load_ext fedlab")
    ip.run_cell(
        "import torch, fedlab as sy\n"
        "bob = sy.VirtualWorker(sy.local_worker.hook, id='bob')\n"
        "alice = sy.VirtualWorker(sy.local_worker.hook, id='alice')"
    )
    yield ip
    panel_mod.close_all()
    ip.reset(new_session=False)
    InteractiveShell.clear_instance()


def test_loading_the_extension_only_registers_magics():
    code = "import fedlab, sys; print(any(m.startswith('fedlab.viz') for m in sys.modules))"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_watch_and_why(shell):
    shell.run_cell("x = torch.tensor([1, 2]).send(bob)")
    panel = shell.run_cell("%fedlab watch bob").result
    assert isinstance(panel, panel_mod.Panel) and panel.workers == ["bob"]
    why = shell.run_cell("%fedlab why bob:1").result
    assert "held by: x" in repr(why)
    assert repr(shell.run_cell("%fedlab why x").result) == repr(why)


def test_post_run_cell_is_registered_once(shell):
    for _ in range(3):
        shell.run_cell("sy.watch(bob)")
    hooks = [f for f in shell.events.callbacks["post_run_cell"] if f is panel_mod._after_cell]
    assert len(hooks) == 1


def test_trace_cell_shows_table_and_diagram(shell, capsys):
    result = shell.run_cell("%%fedlab trace\ny = torch.tensor([1.0]).send(alice)\ny.move(bob)\n")
    assert result.error_in_exec is None
    out = capsys.readouterr().out
    assert "trace: 6 messages" in out and "alice  bob    send" in out
    assert "<sequence diagram: 6 messages between me, alice, bob>" in out


def test_draw_and_errors(shell):
    shell.run_cell("y = torch.tensor([1.0]).send(bob)")
    assert repr(shell.run_cell("%fedlab draw y").result) == "<pointer graph: 2 workers, 1 pointer>"
    for bad in ("%fedlab", "%fedlab fly", "%fedlab why", "%fedlab draw nothing", "%fedlab trace"):
        assert shell.run_cell(bad).error_in_exec is not None, bad


def test_check_calls_the_grader_lazily(shell, monkeypatch):
    import fedlab.grading

    seen = {}
    monkeypatch.setattr(
        fedlab.grading, "check", lambda name, namespace=None: seen.setdefault(name, namespace)
    )
    shell.run_cell("%fedlab check remote-tensors")
    assert seen["remote-tensors"] is shell.user_ns
    monkeypatch.setitem(sys.modules, "fedlab.grading", None)  # as if it were missing
    result = shell.run_cell("%fedlab check remote-tensors")
    assert "fedlab.grading" in str(result.error_in_exec)
