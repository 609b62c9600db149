"""The README and the docs pages: their Python examples run as written, and their prose lines stay
short enough to read in a terminal (tables and code blocks aside)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.doc_examples import IN_RUN_DIRECTORY, PAGES, REPO, STANDALONE
#: the longest prose line allowed (the issue's "about 120 characters")
LONGEST = 120


def test_the_readme_and_the_docs_have_examples():
    assert sum(page.name == "README.md" and page.parent == REPO for page, _ in STANDALONE) >= 1
    assert sum(page.parent.name == "docs" for page, _ in STANDALONE) >= 1
    # the one that needs a finished run's directory (tests/test_export.py runs it there)
    assert [page.name for page, _ in IN_RUN_DIRECTORY] == ["training.md"]


@pytest.mark.parametrize("index", range(len(STANDALONE)))
def test_every_example_runs_outside_the_checkout(index, tmp_path):
    """As a user's own file runs it: in another directory, without the checkout on the path (only
    what ``make setup`` installed), so an import that works only inside the checkout fails here."""
    page, code = STANDALONE[index]
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{page.relative_to(REPO)} example {index}:\n{result.stderr[-3000:]}"


def prose_lines_too_long(text: str) -> list[str]:
    """The lines longer than :data:`LONGEST` outside code blocks and table rows."""
    long, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith("|") and len(line) > LONGEST:
            long.append(line)
    return long


def test_the_line_check_skips_code_and_tables_only():
    text = "\n".join(["x" * 121, "```", "y" * 200, "```", "| " + "z" * 200, "w" * 120])
    assert prose_lines_too_long(text) == ["x" * 121]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_prose_line_is_longer_than_120_characters(page):
    assert prose_lines_too_long(page.read_text()) == []


def test_the_readme_is_a_landing_page_that_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in PAGES[1:]:
        assert f"]({page.relative_to(REPO)})" in readme, f"the README does not link {page.relative_to(REPO)}"
    assert readme.index("## Layout") < readme.index("## Quick start")  # the layout near the top
