"""How long the planning tools take to answer, against ``python -c "import torch"`` measured beside
them (the same machine, the commands interleaved, each repeated; the median of each and its ratio):

* ``scripts/paper_tables.py --help``: no torch, no Hydra composition (target: at most 0.5x);
* ``scripts/paper_tables.py table4 --dry-run`` with the composition cache warm (target: at most 1.5x),
  and cold (an empty ``HAM_COMPOSE_CACHE`` each time: every one of the 13 cells composed by Hydra);
* ``scripts/paper_tables.py oneshot --setting small --dry-run``.

    python benchmarks/tool_startup.py [--repeats 7] [--output results/tool_startup.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOL = [sys.executable, str(REPO / "scripts" / "paper_tables.py")]
#: name -> (command, whether the composition cache starts empty)
COMMANDS = {
    'python -c "import torch"': ([sys.executable, "-c", "import torch"], False),
    "paper_tables.py --help": ([*TOOL, "--help"], False),
    "paper_tables.py table4 --dry-run (cache warm)": ([*TOOL, "table4", "--dry-run"], False),
    "paper_tables.py table4 --dry-run (cache cold)": ([*TOOL, "table4", "--dry-run"], True),
    "paper_tables.py oneshot --setting small --dry-run": ([*TOOL, "oneshot", "--setting", "small", "--dry-run"], False),
}
TARGETS = {"paper_tables.py --help": 0.5, "paper_tables.py table4 --dry-run (cache warm)": 1.5}


def seconds(command: list[str], cold: bool, cache: Path, sweep: Path) -> float:
    env = dict(os.environ)
    if cold:
        env["HAM_COMPOSE_CACHE"] = tempfile.mkdtemp(dir=cache)
    else:
        env["HAM_COMPOSE_CACHE"] = str(cache / "warm")
    extra = ["--sweep-dir", str(sweep)] if "--dry-run" in command else []
    start = time.perf_counter()
    subprocess.run(command + extra, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=REPO / "results" / "tool_startup.md")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        cache, sweep = Path(tmp) / "cache", Path(tmp) / "sweep"
        cache.mkdir()
        for name, (command, cold) in COMMANDS.items():  # once unmeasured: the warm cache filled, files in the page cache
            seconds(command, cold, cache, sweep)
        for _ in range(args.repeats):
            for name, (command, cold) in COMMANDS.items():
                times[name].append(seconds(command, cold, cache, sweep))
    base = statistics.median(times['python -c "import torch"'])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    lines = ["# How long the planning tools take to answer", "",
             f"Measured by `python benchmarks/tool_startup.py --repeats {args.repeats}` on {os.cpu_count()} CPU cores ({cpu}), "
             f"{time.strftime('%Y-%m-%d')}: each command {args.repeats} times, interleaved, after one unmeasured round; wall-clock "
             "seconds, the median and the range; the ratio is the median against the median of `python -c \"import torch\"` "
             "measured beside it. `cache cold`: an empty composition cache (training/compose_cache.py) each time.", "",
             "| command | median s | range s | × import torch | target |", "|---|---:|---:|---:|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        target = f"≤ {TARGETS[name]:g}×: {'met' if median / base <= TARGETS[name] else 'NOT met'}" if name in TARGETS else ""
        lines.append(f"| `{name}` | {median:.2f} | {min(values):.2f} – {max(values):.2f} | {median / base:.2f} | {target} |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
