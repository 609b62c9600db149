"""Committed results rewritten only from what they were made of: a command that regenerates a table from
run records reads the records strictly and does not replace a committed result with less.

* :func:`strict_runs`: the runs of records folders; a folder that does not exist, or a record that
  cannot be read (truncated, a metric that is not a finite number, not a regular file), stops the
  command naming it, where a lenient read would drop it and change the table's seeds and p-values.
* :func:`write_result`: the new text goes to a file only if it holds no more ``not run`` rows or
  ``missing`` cells and no fewer seeds than the committed one (``(n=5)`` and ``5/5`` counted), unless the caller allows
  fewer (``--allow-fewer``); each file is reported as rewritten or unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

from analysis import runs as R

#: seeds as the tables state them: ``(n=5)`` in a cell, ``5/5`` (treated/baseline) in a verdict's row
SEEDS = re.compile(r"\(n=(\d+)\)|\| (\d+)/(\d+) \|")
#: what a table says where a result is absent: a verdict's row, a comparison's cell
ABSENT = ("not run", "missing")


class FewerResults(Exception):
    """A regeneration would lose results (the message says which file and how to allow it)."""


def strict_runs(folders: list[Path], allow_fewer: bool = False) -> list[R.Run]:
    """Every run of the records ``folders``; a missing folder (unless ``allow_fewer``) or an unreadable
    record is :class:`FewerResults`."""
    missing = [f for f in folders if not f.is_dir()]
    if missing and not allow_fewer:
        raise FewerResults(f"{missing[0]} does not exist: the table would lose every result read from it; restore the records "
                           f"(git checkout -- {missing[0]}), or pass --allow-fewer to write the table from what there is")
    runs = R.from_disk([f for f in folders if f.is_dir()])
    bad = [r for r in runs if r.status == "unreadable"]
    if bad:
        raise FewerResults(f"{len(bad)} record(s) cannot be read, so the table would be made without them: "
                           + "; ".join(r.error for r in bad[:3]) + ("; ..." if len(bad) > 3 else "")
                           + " (restore them from git, or train them again)")
    return runs


def seeds_in(text: str) -> int:
    """The seeds a table's text states, summed over its cells."""
    return sum(int(a) if a else int(b) + int(c) for a, b, c in SEEDS.findall(text))


def check_result(path: Path, text: str, allow_fewer: bool = False) -> str | None:
    """The committed text of ``path`` (None: none yet), after checking that ``text`` would not replace it
    with less (more ``not run`` rows or ``missing`` cells, fewer seeds): :class:`FewerResults` unless
    ``allow_fewer``."""
    old = path.read_bytes().decode() if path.is_file() else None  # as written (a CSV's \r\n kept)
    if old is not None and not allow_fewer:
        for absent in ABSENT:
            if text.count(absent) > old.count(absent):
                raise FewerResults(f"{path} would get {text.count(absent) - old.count(absent)} more '{absent}' row(s) or cell(s) than it "
                                   f"has: its records are missing; restore them, or pass --allow-fewer to write it anyway")
        if seeds_in(text) < seeds_in(old):
            raise FewerResults(f"{path} would state {seeds_in(text)} seeds where it states {seeds_in(old)}: records are missing; "
                               f"restore them, or pass --allow-fewer to write it anyway")
    return old


def write_result(path: Path, text: str, allow_fewer: bool = False) -> bool:
    """Write ``text`` to ``path`` once :func:`check_result` allows it; prints whether the file was
    rewritten and returns whether it changed."""
    if check_result(path, text, allow_fewer) == text:
        print(f"unchanged: {path}")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"rewrote: {path}")
    return True
