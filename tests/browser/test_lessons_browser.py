"""Every lesson, as a student meets it: opened in JupyterLab in chromium and run top to bottom.

For each lesson: it opens unmodified (nothing for JupyterLab to update, so closing it
never asks to save); *Run All Cells* runs it to the end; the only error outputs on the
page are those of cells tagged ``raises-exception``; no widget fails to display; and
where the lesson opens the live panel in the side area (``sy.watch(..., side=True)``)
the panel is there, showing the lesson's workers, and still in sight once the notebook
is scrolled to its end. The lessons run on copies, so the committed notebooks are never
saved over. Screenshots go to test-output/lessons-browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import launch, require_chromium
from tests.support.lab import ROOT, free_port, lab_command, running

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OUT = ROOT / "test-output" / "lessons-browser"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]-*.ipynb"))
LIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
ERROR = '[data-mime-type="application/vnd.jupyter.stderr"]'


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[str, Path]]:
    """A JupyterLab serving copies of the lessons (and the exercises they link to)."""
    require_chromium()
    served = OUT / "served"
    shutil.rmtree(served, ignore_errors=True)
    shutil.rmtree(OUT / "workspaces", ignore_errors=True)
    shutil.copytree(ROOT / "lessons", served / "lessons")
    shutil.copytree(ROOT / "exercises", served / "exercises")
    port = free_port()
    cmd = lab_command(Path(sys.executable), port, root=served)
    # Its own workspaces: a student's saved layout must not reopen other notebooks here.
    cmd.append(f"--LabApp.workspaces_dir={OUT / 'workspaces'}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        cmd.append("--allow-root")
    with running(cmd, port, OUT / "lab.log", timeout=180) as base:
        yield base, served


@pytest.fixture(scope="module")
def browser(lab) -> Iterator:
    """One headless chromium for all the lessons."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


def _shutdown_kernels(base: str) -> None:
    # Each lesson starts a kernel; stop it before the next one opens.
    with urllib.request.urlopen(f"{base}/api/kernels", timeout=10) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{base}/api/kernels/{k['id']}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()


def _run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _expected_errors(path: Path) -> tuple[set[int], int]:
    nb = nbformat.read(path, as_version=4)
    tagged = {i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])}
    return tagged, sum(c.cell_type == "code" for c in nb.cells)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.name[:2])
def test_lesson_runs_in_the_browser_with_the_panel_in_sight(lab, browser, lesson) -> None:
    base, _ = lab
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        _student_runs(page, base, lesson)
    except Exception:
        page.screenshot(path=OUT / f"failure-{lesson.stem[:2]}.png")
        raise
    finally:
        page.close()
        _shutdown_kernels(base)


def _student_runs(page, base: str, lesson: Path) -> None:
    # A fresh workspace per lesson (``?reset``): only this notebook is open.
    url = f"{base}/lab/workspaces/lesson-{lesson.stem[:2]}/tree/lessons/{lesson.name}?reset"
    page.goto(url, timeout=120_000)
    page.locator(f"{LIVE} .jp-Cell").first.wait_for(timeout=120_000)
    idle = f'{LIVE} [data-status="idle"]'
    # Either the kernel is ready, or JupyterLab asks which kernel to use: take Python 3.
    page.locator(f"{idle}, .jp-Dialog .jp-mod-accept").first.wait_for(
        state="attached", timeout=120_000
    )
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()
    page.locator(idle).first.wait_for(state="attached", timeout=120_000)
    page.wait_for_timeout(1_500)  # what JupyterLab updates on connecting, it has updated now
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), "opened as modified"

    tagged, n_code = _expected_errors(lesson)
    _run_all(page)
    # A fresh kernel numbers the cells it runs 1, 2, ...: the last code cell gets n_code.
    page.wait_for_function(
        "([live, n]) => { const p = document.querySelectorAll("
        "`${live} .jp-CodeCell .jp-InputArea-prompt`);"
        " return p.length > 0 && p[p.length - 1].textContent.includes(`[${n}]`); }",
        arg=[LIVE, n_code],
        timeout=240_000,
    )
    page.locator(f'{LIVE} [data-status="idle"]').first.wait_for(state="attached", timeout=60_000)

    cells = page.locator(f"{LIVE} .jp-Cell")
    errors = {i for i in range(cells.count()) if cells.nth(i).locator(ERROR).count()}
    assert errors == tagged, f"error outputs in cells {sorted(errors)}, expected {sorted(tagged)}"
    text = page.locator(LIVE).inner_text()
    for bad in ("Error displaying widget", "model not found"):
        assert bad not in text, bad

    source = (ROOT / "tools" / "lessons" / f"{lesson.stem}.py").read_text()
    if "side=True" in source:
        side = page.locator(".jupyterlab-sidecar .fedlab-panel").first
        side.wait_for(timeout=30_000)
        assert page.locator(".jupyterlab-sidecar").count() == 1, "one side panel, not a pile"
        page.locator(f"{LIVE} .jp-Cell").last.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        box, area = side.bounding_box(), page.locator(".jupyterlab-sidecar").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 40
        assert 0 <= box["y"] < 900, box  # in sight, with the notebook scrolled to its end
        assert box["x"] + box["width"] <= area["x"] + area["width"] + 1, (box, area)  # not cut
        assert "bob" in side.inner_text()
    page.screenshot(path=OUT / f"{lesson.stem[:2]}-end.png")
