"""Generated sections of Markdown files (the README, results/README.md): the text between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` is rewritten by the script that owns NAME."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, name: str, body: str) -> bool:
    """Put ``body`` between the file's ``NAME`` markers (both must be there, once each); whether the
    file changed."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"{path} must hold the markers {start} and {end} once each")
    head, rest = text.split(start)
    tail = rest.split(end)[1]
    new = f"{head}{start}\n{body.strip()}\n{end}{tail}"
    if new != text:
        path.write_text(new)
    return new != text
