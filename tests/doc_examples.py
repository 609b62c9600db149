"""The Python examples of the README and the docs pages (```python blocks), for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "results" / "README.md"]
#: the first line of an example that needs a finished run's directory: tests/test_export.py runs it there
RUN_DIRECTORY_MARKER = "# in a finished run's directory"
EXAMPLES = [(page, code) for page in PAGES for code in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]
#: the examples that run anywhere (tests/test_readme.py runs them outside the checkout)
STANDALONE = [(page, code) for page, code in EXAMPLES if not code.startswith(RUN_DIRECTORY_MARKER)]
#: the examples that run in a finished run's directory
IN_RUN_DIRECTORY = [(page, code) for page, code in EXAMPLES if code.startswith(RUN_DIRECTORY_MARKER)]
