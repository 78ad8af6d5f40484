"""What a student sees after clicking the Binder badge, in a real (headless) browser.

JupyterLab runs from the environment binder/ builds (tests/test_binder_env.py) and
chromium opens the exact path of the README's badge. Screenshots are saved under
test-output/binder-browser/ to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import launch, require_chromium, scratch_notebook
from tests.support.lab import free_port, lab_command, running
from tests.test_binder_badge import readme_lab_path
from tests.test_binder_env import ROOT, binder_python, isolated_jupyter_env

# The first run builds Binder's environment (minutes); later runs reuse it.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]
OUT = ROOT / "test-output" / "binder-browser"
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the current tab

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
        command = lab_command(python, port)
        if os.geteuid() == 0:  # Binder runs Lab as an ordinary user; CI here is root
            command.append("--allow-root")
        with running(command, port, OUT / "lab.log", timeout=180) as base:
            yield base


@pytest.fixture
def page(lab: str, request: pytest.FixtureRequest) -> Iterator:
    """A fresh chromium page at a laptop's size; a failing test leaves a screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failures = request.session.testsfailed
        try:
            yield page
            # The test's own report is counted before its fixtures are torn down.
            if request.session.testsfailed > failures:
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=OUT / f"FAILED-{request.node.name}.png")
        finally:
            browser.close()


def open_notebook(page, url: str, name: str) -> None:
    """Open ``url`` and wait until ``name`` is the current tab and its kernel is idle."""
    page.goto(url, timeout=120_000)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    tab.filter(has_text=name).wait_for(timeout=120_000)
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for()
    # The kernel is started ("No Kernel" is gone from the toolbar) and idle.
    page.wait_for_function(
        """sel => {
            const nb = document.querySelector(sel);
            const name = nb && nb.querySelector('.jp-Toolbar-kernelName');
            const busy = nb && nb.querySelector('.jp-Notebook-ExecutionIndicator');
            return name && /Python/.test(name.textContent)
                && busy && busy.dataset.status === 'idle';
        }""",
        arg=NOTEBOOK,
        timeout=120_000,
    )


def run_cell(page, index: int) -> None:
    """Select cell ``index`` of the open notebook and run it as a student does (Shift+Enter)."""
    cell = page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    # Executed: the prompt shows a number, not "[ ]" or "[*]".
    prompt = cell.locator(".jp-InputArea-prompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=120_000
    )


def panel_text(page, index: int) -> str:
    """The text of the live widget in the output of cell ``index`` ('' while none)."""
    cell = page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)
    widget = cell.locator(".jp-OutputArea-output .jupyter-widgets")
    return widget.first.inner_text() if widget.count() else ""


def run_all(page) -> None:
    """Run > Run All Cells, as a student would from the menu."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    label.click()


def test_badge_opens_the_index_notebook(lab: str, page) -> None:
    """The badge's path opens lessons/00-index.ipynb; run, its panel is a live widget."""
    path = readme_lab_path()
    target = ROOT / path.removeprefix("/lab/tree/")
    if not target.exists():
        pytest.skip(f"{target.relative_to(ROOT)} does not exist yet")
    open_notebook(page, lab + path, target.name)
    cells = nbformat.read(target, as_version=4).cells
    first = cells[0].source.strip().splitlines()[0]
    assert first.lstrip("# ").strip() in page.locator(f"{NOTEBOOK} .jp-Notebook").inner_text()
    watching = [i for i, c in enumerate(cells) if "sy.watch(" in c.source]
    if watching:
        # Before running, the saved output is a static snapshot, not a widget.
        assert panel_text(page, watching[0]) == ""
        run_all(page)
        cell = page.locator(f"{NOTEBOOK} .jp-Cell").nth(watching[0])
        # sy.watch(..., side=True) pins the panel in JupyterLab's side area (sidecar),
        # where it stays in sight; otherwise it is the cell's output.
        side = "side=True" in cells[watching[0]].source
        where = (
            page.locator(".jupyterlab-sidecar .fedlab-panel")
            if side
            else cell.locator(".jp-OutputArea-output .jupyter-widgets")
        )
        where.first.wait_for(timeout=300_000)
        page.wait_for_function(  # the rest of the notebook has run too
            """sel => ![...document.querySelectorAll(sel + ' .jp-InputArea-prompt')]
                .some(p => /[*]/.test(p.textContent))""",
            arg=NOTEBOOK,
            timeout=300_000,
        )
        panel = where.first.inner_text()
        assert "bob" in panel, f"the live panel of cell {watching[0]} shows {panel!r}"
        if side:
            assert page.locator(".jupyterlab-sidecar").count() == 1, "one side panel, not a pile"
        cell.scroll_into_view_if_needed()  # for the screenshot
    # binder/postBuild's settings: no news pop-up over the first lesson.
    assert not page.get_by_text("Jupyter news").count()
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUT / "index.png")


@pytest.fixture
def panel_notebook() -> Iterator[Path]:
    """A small notebook in a temporary folder inside the repository (Lab serves the repo)."""
    with scratch_notebook(OUT, "live-panel.ipynb", PANEL_CELLS) as path:
        yield path


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
