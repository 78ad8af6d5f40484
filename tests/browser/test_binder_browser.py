"""What a student sees after clicking the Binder badge, in a real (headless) browser.

JupyterLab runs from the environment binder/ builds (tests/test_binder_env.py) and
chromium opens the exact path of the README's badge. Screenshots are saved under
test-output/binder-browser/ to look at.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import launch, require_chromium
from tests.support.lab import free_port, lab_command, running
from tests.test_binder_badge import readme_lab_path
from tests.test_binder_env import ROOT, binder_python, isolated_jupyter_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OUT = ROOT / "test-output" / "binder-browser"

# The live-panel check, as a student would type it: the panel is displayed by one
# cell and must change when a later cell sends another tensor to bob.
PANEL_CELLS = [
    "import torch\nimport fedlab as sy\n\nhook = sy.TorchHook(torch)\n"
    'bob = sy.VirtualWorker(hook, id="bob")\nx = torch.tensor([1, 2, 3]).send(bob)',
    "sy.watch(bob)",
    "y = torch.tensor([7, 8, 9]).send(bob)",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab from Binder's environment, serving the repository; its base URL."""
    require_chromium()
    python = binder_python()
    home = tmp_path_factory.mktemp("jupyter-home")
    with pytest.MonkeyPatch.context() as mp:
        # Binder's shell: the environment first on PATH, and no settings, kernels or
        # saved workspaces of this machine's user.
        for var, value in isolated_jupyter_env(python.parent.parent, home).items():
            mp.setenv(var, value)
        port = free_port()
        with running(lab_command(python, port), port, OUT / "lab.log", timeout=180) as base:
            yield base


@pytest.fixture
def page(lab: str) -> Iterator:
    """A fresh chromium page at a laptop's size."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def open_notebook(page, url: str, name: str) -> None:
    """Open ``url`` and wait until ``name`` is the current tab and its kernel is idle."""
    page.goto(url, timeout=120_000)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    tab.filter(has_text=name).wait_for(timeout=120_000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for()
    idle = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-status="idle"]')
    idle.first.wait_for(state="attached", timeout=120_000)


def run_cell(page, index: int) -> None:
    """Select cell ``index`` of the open notebook and run it as a student does (Shift+Enter)."""
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    # Executed: the prompt shows a number, not "[ ]" or "[*]".
    prompt = cell.locator(".jp-InputArea-prompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=120_000
    )


def panel_text(page, index: int) -> str:
    """The text of the live widget in the output of cell ``index`` ('' while none)."""
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index)
    widget = cell.locator(".jp-OutputArea-output .jupyter-widgets")
    return widget.first.inner_text() if widget.count() else ""


def test_badge_opens_the_index_notebook(lab: str, page) -> None:
    """The badge's path opens lessons/00-index.ipynb in JupyterLab with a running kernel."""
    path = readme_lab_path()
    target = ROOT / path.removeprefix("/lab/tree/")
    if not target.exists():
        pytest.skip(f"{target.relative_to(ROOT)} does not exist yet")
    open_notebook(page, lab + path, target.name)
    first = nbformat.read(target, as_version=4).cells[0].source.strip().splitlines()[0]
    body = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    assert first.lstrip("# ").strip() in body.inner_text()
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUT / "index.png")


@pytest.fixture
def panel_notebook() -> Iterator[Path]:
    """A small notebook in a temporary folder inside the repository (Lab serves the repo)."""
    OUT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="nb-", dir=OUT))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in PANEL_CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / "live-panel.ipynb"
    nbformat.write(nb, path)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


def test_live_panel_renders_and_updates(lab: str, page, panel_notebook: Path) -> None:
    """sy.watch(bob) draws a live widget that changes when a later cell sends to bob."""
    rel = panel_notebook.relative_to(ROOT).as_posix()
    open_notebook(page, f"{lab}/lab/tree/{rel}", panel_notebook.name)
    run_cell(page, 0)
    run_cell(page, 1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jupyter-widgets')]"
        ".some(w => w.textContent.includes('1, 2, 3'))",
        timeout=60_000,
    )
    before = panel_text(page, 1)
    assert "bob" in before and "1, 2, 3" in before and "7, 8, 9" not in before
    page.screenshot(path=OUT / "live-panel-before.png")
    run_cell(page, 2)
    # The same widget, in cell 2's output, is repainted by the kernel: it is live.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jupyter-widgets')]"
        ".some(w => w.textContent.includes('7, 8, 9'))",
        timeout=60_000,
    )
    after = panel_text(page, 1)
    assert "1, 2, 3" in after and "7, 8, 9" in after
    page.screenshot(path=OUT / "live-panel.png")
