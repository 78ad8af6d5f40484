"""``sy.watch(..., side=True)``: the live panel also in JupyterLab's side area (a sidecar).

In a real kernel (nbclient): the cell's own output is the usual panel, with nothing
added; a sidecar widget titled after the workers holds the same live view; watching the
same workers again closes the old sidecar instead of piling up side panels, and keeps
the side area showing the new panel even when it is watched without ``side``. Whether
JupyterLab shows it pinned while the notebook scrolls is checked in the browser
(tests/browser/test_lessons_browser.py).
"""

from __future__ import annotations

import nbformat
import pytest

import fedlab as sy

STATE = "application/vnd.jupyter.widget-state+json"


def _run(cells: list[str]) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in cells]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    return nb


def _sidecars(nb: nbformat.NotebookNode) -> list[dict]:
    models = nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    return [m["state"] for m in models.values() if m["model_name"] == "SidecarModel"]


@pytest.mark.slow
def test_side_panel_in_a_kernel_adds_a_sidecar_and_nothing_to_the_cell():
    setup = (
        "import torch\nimport fedlab as sy\nhook = sy.TorchHook(torch)\n"
        "bob = sy.VirtualWorker(hook, id='bob')\nalice = sy.VirtualWorker(hook, id='alice')"
    )
    nb = _run([setup, "sy.watch(bob, alice, side=True)", "x = torch.ones(2).send(bob)"])
    (out,) = nb.cells[1].outputs  # one output: the panel, as without side=True
    assert out.data["text/plain"].startswith("fedlab panel: bob, alice")
    assert "application/vnd.jupyter.widget-view+json" in out.data
    (side,) = _sidecars(nb)
    assert side["title"] == "fedlab: bob, alice"
    (shown,) = side["outputs"]  # a compact view of the same panel, live like the cell's
    view = shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    models = nb.metadata["widgets"][STATE]["state"]
    assert view != out.data["application/vnd.jupyter.widget-view+json"]["model_id"]
    page = models[view]["state"]["value"]
    assert "watching bob, alice" in page and "flex-direction:column" in page
    assert 'data-ref="bob:1"' in page  # painted when the next cell sent bob a tensor


@pytest.mark.slow
def test_watching_again_closes_the_old_sidecar():
    setup = "import torch\nimport fedlab as sy\nhook = sy.TorchHook(torch)\n"
    setup += "bob = sy.VirtualWorker(hook, id='bob')"
    first = "p = sy.watch(bob, side=True)\nold = p._side"
    again = (
        "q = sy.watch(bob, side=True)\n"
        "print(old.comm is None, p._side is None, q._side is not None)"
    )
    nb = _run([setup, first, again])
    assert nb.cells[2].outputs[0].text.strip() == "True True True"


@pytest.mark.slow
def test_watching_again_without_side_keeps_the_panel_in_the_side_area():
    setup = "import torch\nimport fedlab as sy\nhook = sy.TorchHook(torch)\n"
    setup += "bob = sy.VirtualWorker(hook, id='bob')\nalice = sy.VirtualWorker(hook, id='alice')"
    first = "p = sy.watch(bob, alice, side=True)\nold = p._side"
    again = "q = sy.watch(bob, alice)\nprint(old.comm is None, q._side is not None)\nq"
    other = "r = sy.watch(alice)\nprint(r._side is None)\nx = torch.ones(2).send(bob)"
    nb = _run([setup, first, again, other])
    assert nb.cells[2].outputs[0].text.strip() == "True True"  # one side panel: the new one
    assert nb.cells[3].outputs[0].text.strip() == "True"  # other workers: inline only
    side = _sidecars(nb)[-1]  # the one opened last, by the watch without side=True
    (shown,) = side["outputs"]
    models = nb.metadata["widgets"][STATE]["state"]
    page = models[shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]]
    assert 'data-ref="bob:1"' in page["state"]["value"]  # live: painted after the send


def test_without_a_notebook_side_does_nothing(bob):
    panel = sy.watch(bob, side=True)
    try:
        assert panel.open_side() is False  # plain Python: no side area to open
        assert repr(panel).startswith("fedlab panel: bob")
    finally:
        panel.close()
