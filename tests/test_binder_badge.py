"""The README's Binder badge opens JupyterLab on the course's entry notebook."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "lessons/00-index.ipynb"  # the notebook Binder opens (DESIGN.md, `make lab`)
# The one form of the link; the lead replaces OWNER/REPO with the GitHub repository.
BADGE = (
    "[![Binder](https://mybinder.org/badge_logo.svg)]"
    f"(https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/{ENTRY})"
)
LINK = re.compile(r"\(\s*(https://mybinder\.org/v2/[^)\s]+)\s*\)")
# A GitHub owner (letters, digits, single hyphens) and repository name.
GH_PATH = re.compile(r"/v2/gh/[A-Za-z0-9](?:-?[A-Za-z0-9])*/[A-Za-z0-9._-]+/main")


def badge_links(markdown: str) -> list[str]:
    """Every mybinder.org launch link in a markdown text."""
    return LINK.findall(markdown)


def lab_path(link: str) -> str:
    """The JupyterLab URL path a Binder link opens, checking the link's form first."""
    url = urlsplit(link)
    assert (url.scheme, url.netloc) == ("https", "mybinder.org"), link
    assert GH_PATH.fullmatch(url.path), f"expected /v2/gh/OWNER/REPO/main, got {url.path}"
    query = parse_qs(url.query)
    assert list(query) == ["urlpath"] and len(query["urlpath"]) == 1, link
    return "/" + query["urlpath"][0]


def readme_lab_path() -> str:
    """The lab path of the README's badge, or of BADGE while the README has none."""
    readme = ROOT / "README.md"
    links = badge_links(readme.read_text()) if readme.exists() else []
    return lab_path((links or badge_links(BADGE))[0])


def test_badge_form_opens_the_entry_notebook() -> None:
    """The badge launches the main branch in JupyterLab at lessons/00-index.ipynb."""
    assert lab_path(badge_links(BADGE)[0]) == f"/lab/tree/{ENTRY}"


@pytest.mark.parametrize(
    "bad",
    [
        "https://mybinder.org/v2/gh/OWNER/REPO/main?filepath=lessons/00-index.ipynb",
        "https://mybinder.org/v2/gh/OWNER/REPO/HEAD?urlpath=lab/tree/lessons/00-index.ipynb",
        "https://mybinder.org/v2/gh/OWNER/main?urlpath=lab/tree/lessons/00-index.ipynb",
        "http://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/lessons/00-index.ipynb",
    ],
)
def test_malformed_links_are_refused(bad: str) -> None:
    """The form check rejects the classic-notebook filepath form, other refs and hosts."""
    with pytest.raises(AssertionError):
        assert lab_path(bad) == f"/lab/tree/{ENTRY}"


def test_readme_badge() -> None:
    """The README's badge (when the README has one) has the same form and target."""
    readme = ROOT / "README.md"
    links = badge_links(readme.read_text()) if readme.exists() else []
    if not links:
        pytest.skip("README.md has no Binder badge yet (its 'Run it on Binder' section)")
    for link in links:
        assert lab_path(link) == f"/lab/tree/{ENTRY}", link
    lessons = list((ROOT / "lessons").glob("*.ipynb"))
    if lessons:  # once the course exists, the badge must open a notebook that exists
        assert (ROOT / ENTRY).exists(), f"the badge opens {ENTRY}, which is missing"
