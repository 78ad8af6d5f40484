"""The live panel in a real browser: JupyterLab from the project's venv, driven by chromium.

A student's notebook: one cell displays ``sy.watch(bob)``; later cells send a tensor,
``del`` it, and send another. The panel, displayed once, must follow along: the
tensor appears, is marked deleted with its reason, then disappears. Nothing else may
cover it: JupyterLab runs with the settings ``make lab`` gives it, so it never asks
about Jupyter news. Screenshots are saved in test-output/panel-browser/ to look at.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import launch, require_chromium, scratch_notebook
from tests.support.lab import ROOT, free_port, lab_command, running

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OUT = ROOT / "test-output" / "panel-browser"
CELLS = [
    "import torch\nimport fedlab as sy\n\nhook = sy.TorchHook(torch)\n"
    'bob = sy.VirtualWorker(hook, id="bob")\nalice = sy.VirtualWorker(hook, id="alice")\n'
    "sy.watch(bob, alice)",
    "x = torch.tensor([1, 2, 3]).send(bob)",
    "del x",
    "y = torch.tensor([7.5, 8.5]).send(alice)",
]
LIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


@pytest.fixture
def notebook() -> Iterator[Path]:
    """The student's notebook, in a fresh folder that JupyterLab serves."""
    with scratch_notebook(OUT, "watch-bob.ipynb", CELLS) as path:
        yield path


@pytest.fixture
def page(notebook: Path) -> Iterator:
    """A chromium page with the notebook open in JupyterLab and its kernel idle."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    port = free_port()
    python = Path(sys.executable)
    cmd = lab_command(python, port, root=notebook.parent)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        cmd.append("--allow-root")
    with running(cmd, port, OUT / "lab.log", timeout=180) as base, sync_playwright() as p:
        browser = launch(p)
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 820})
            pg.goto(f"{base}/lab/tree/{notebook.name}", timeout=120_000)
            pg.locator(f"{LIVE} .jp-Cell").first.wait_for(timeout=120_000)
            accept_kernel_dialog(pg)
            idle = pg.locator(f'{LIVE} [data-status="idle"]')
            idle.first.wait_for(state="attached", timeout=120_000)
            yield pg
        finally:
            browser.close()


def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to use: take the proposed one (Python 3)."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        button.wait_for(timeout=8_000)
    except Exception:  # no dialog this time
        return
    button.click()


def run_cell(page, index: int) -> None:
    """Run cell ``index`` with Shift+Enter and wait until its prompt shows a number."""
    cell = page.locator(f"{LIVE} .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=120_000
    )


def wait_row(page, ref: str, state: str | None) -> None:
    """Wait until the panel's row for ``ref`` is in ``state`` (None: gone)."""
    script = (
        "([ref, state]) => { const r = document.querySelector("
        '`.jupyter-widgets .fedlab-panel [data-ref="${ref}"]`);'
        " return state === null ? r === null"
        " : r !== null && r.classList.contains(`fedlab-${state}`); }"
    )
    page.wait_for_function(script, arg=[ref, state], timeout=60_000)


def test_panel_follows_send_and_del_without_redisplay(page) -> None:
    try:
        _follow(page)
    except Exception:
        page.screenshot(path=OUT / "failure.png")  # to see what the student would have seen
        raise


def _follow(page) -> None:
    run_cell(page, 0)
    panel = page.locator(f"{LIVE} .jp-Cell").nth(0).locator(".jupyter-widgets .fedlab-panel")
    panel.wait_for(timeout=60_000)
    assert "bob" in panel.inner_text() and "alice" in panel.inner_text()
    assert "empty" in panel.inner_text()

    run_cell(page, 1)  # x = ....send(bob): the panel of cell 0 shows bob's tensor
    wait_row(page, "bob:1", "new")
    row = panel.locator('[data-ref="bob:1"]')
    assert "1, 2, 3" in row.inner_text() and "int64[3]" in row.inner_text()
    page.screenshot(path=OUT / "panel-after-send.png")

    run_cell(page, 2)  # del x: marked deleted, with the reason
    wait_row(page, "bob:1", "deleted")
    assert "pointer me:1 died" in panel.locator('[data-ref="bob:1"]').inner_text()
    page.screenshot(path=OUT / "panel-after-del.png")

    run_cell(page, 3)  # the next update: the deleted tensor is gone, alice's is new
    wait_row(page, "alice:1", "new")
    wait_row(page, "bob:1", None)
    assert page.locator(f"{LIVE} .jupyter-widgets .fedlab-panel").count() == 1  # never re-displayed
    panel.screenshot(path=OUT / "panel.png")
    page.screenshot(path=OUT / "panel-final.png")
    assert_no_news_toast(page)


def assert_no_news_toast(page) -> None:
    """JupyterLab, set up as ``make lab`` sets it up, never asked about Jupyter news."""
    # The setting first: without it the question comes a moment after the page loads,
    # and an assertion made too early would pass by luck.
    script = f"async () => (await (await fetch('/lab/api/settings/{NOTIFICATION}')).json())"
    schema = page.evaluate(script)["schema"]["properties"]
    assert schema["fetchNews"]["default"] == "false", (
        "JupyterLab would ask about Jupyter news: its settings come from the Makefile "
        "(make .venv/share/jupyter/lab/settings/overrides.json, part of make lab and make test)"
    )
    assert schema["checkForUpdates"]["default"] is False
    # Then what the student sees, seconds after the page loaded: no toast asking.
    toasts = page.locator(".jp-Notification-Toast-default")
    assert toasts.filter(has_text="Jupyter news").count() == 0, toasts.all_inner_texts()
