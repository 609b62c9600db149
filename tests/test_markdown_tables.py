"""Every Markdown table the repository shows (README.md, docs/, results/) renders in its columns:
each row has as many cells as its header, counted as GitHub's Markdown splits them (a ``|`` ends a
cell unless it is escaped as ``\\|``, inside a code span too); and the tables the analysis writes
escape a ``|`` that a label holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import tables as T

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "results").rglob("*.md")])


def cell_count(row: str) -> int:
    """The cells of a table row as GitHub Flavored Markdown counts them: the text between unescaped
    pipes, without the optional leading and trailing one."""
    body = row.strip()
    bounds, escaped = [], False
    for i, char in enumerate(body):
        if char == "|" and not escaped:
            bounds.append(i)
        escaped = char == "\\" and not escaped
    count = len(bounds) + 1
    count -= bool(bounds and bounds[0] == 0)
    count -= bool(bounds and bounds[-1] == len(body) - 1 and len(body) > 1)
    return count


def shifted_rows(text: str) -> list[str]:
    """The rows (line number: cells vs header) whose cell count differs from their table's header."""
    bad, header = [], None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = None
            continue
        if header is None:
            header = cell_count(stripped)
        elif not (set(stripped) <= set("|-: ") and "-" in stripped) and cell_count(stripped) != header:
            bad.append(f"line {number}: {cell_count(stripped)} cells, header has {header}")
    return bad


def test_the_cell_count_follows_github_markdown():
    assert cell_count("| a | b |") == 2
    assert cell_count("a | b") == 2
    assert cell_count("| a \\| b | c |") == 2  # escaped: one cell
    assert cell_count("| `a | b` | c |") == 3  # a code span does not protect a pipe
    assert cell_count("| a | b \\\\| c |") == 3  # an escaped backslash before a pipe: the pipe splits
    assert shifted_rows("| x | y |\n|---|---|\n| 1 | 2 | 3 |\n| 1 | 2 |\n") == ["line 3: 3 cells, header has 2"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_table_row_has_its_headers_cell_count(page):
    assert shifted_rows(page.read_text()) == []


def test_a_label_with_a_pipe_stays_in_its_cell():
    rows = T.Rows([["baseline", "variant", "gain"], ["str", "ham.alpha=20 | str_weight_decay=0.002", "+1.0"]], above="A note.")
    text = T.markdown(rows)
    assert text.startswith("A note.\n\n")
    assert shifted_rows(text) == []
    assert "ham.alpha=20 \\| str_weight_decay=0.002" in text
