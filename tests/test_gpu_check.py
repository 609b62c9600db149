"""The GPU check on a bare machine, proved here without a GPU: a throw-away virtual environment
sees only PyTorch, torchvision, numpy, Pillow and safetensors (and what they require; a bare GPU
machine has these, with timm and Lightning) plus this repository's add-ons installed as a package.
There, ``benchmarks/gpu_check.py --device cpu --quick`` runs tier A with nothing else imported,
tier B with Hydra and OmegaConf from the wheels that ``scripts/gpu_wheels.sh`` downloads (for this
Python), and reports tier C (FFCV) as skipped; the wheel folder stays under 64 MiB."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests import launch

pytestmark = pytest.mark.slow  # end-to-end: train.py and the check in real processes

REPO = Path(__file__).resolve().parent.parent
#: what a bare GPU machine has that the check may use (their own requirements come along)
MACHINE = ("torch", "torchvision", "numpy", "pillow", "safetensors")
#: what it does not have, and the check must not need outside tier B's wheels
ABSENT = ("hydra", "omegaconf", "wandb", "submitit", "ffcv", "yaml", "tqdm", "matplotlib", "timm")


def requirements(name: str, seen: set[str]) -> set[str]:
    """``name`` and every distribution it requires (no extras), recursively."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return seen
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:  # an optional platform dependency not installed here
        return seen
    seen.add(key)
    for requirement in dist.requires or []:
        if "extra ==" in requirement:
            continue
        marker = requirement.split(";", 1)[1] if ";" in requirement else None
        if marker and "platform_system" in marker and "Linux" not in marker and "==" in marker:
            continue
        requirements(re.split(r"[<>=!~\[; (]", requirement.strip(), maxsplit=1)[0], seen)
    return seen


def top_level_entries(dist: importlib.metadata.Distribution) -> set[str]:
    """The site-packages entries a distribution installed (packages, modules, .libs folders, its dist-info)."""
    entries = set()
    for file in dist.files or []:
        first = Path(str(file)).parts[0]
        if first != ".." and not first.endswith(".pth") and first != "__pycache__":
            entries.add(first)
    return entries


@pytest.fixture(scope="module")
def bare_machine(tmp_path_factory) -> Path:
    """The Python of a virtual environment that sees only :data:`MACHINE` (symbolic links to this
    environment's copies) and ham_sparse installed from a copy of the checkout."""
    root = tmp_path_factory.mktemp("bare")
    site_dir = root / "machine-site"
    site_dir.mkdir()
    outer = Path(sysconfig.get_paths()["purelib"])
    names: set[str] = set()
    for name in MACHINE:
        requirements(name, names)
    for name in names:
        for entry in top_level_entries(importlib.metadata.distribution(name)):
            if (outer / entry).exists() and not (site_dir / entry).exists():
                (site_dir / entry).symlink_to(outer / entry)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    check=True, capture_output=True, text=True).stdout.strip())
    (venv_site / "bare_machine.pth").write_text(f"{site_dir}\n")
    checkout = root / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "ham", "sparse", "networks"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, checkout / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
                                str(venv_site), str(checkout)], capture_output=True, text=True, cwd=root)
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = f"import importlib.util; print([m for m in {ABSENT!r} if importlib.util.find_spec(m)])"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=root).stdout.strip() == "[]"
    return python


def test_the_check_runs_tier_a_on_torch_alone_tier_b_on_the_carried_wheels_and_skips_ffcv(bare_machine, tmp_path):
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheels = tmp_path / "wheels"
    made = subprocess.run(["bash", str(REPO / "scripts" / "gpu_wheels.sh"), str(wheels), version], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    if made.returncode != 0 and "No matching distribution" in made.stderr + made.stdout:
        pytest.skip(f"the package registry is not reachable: {made.stderr[-300:]}")
    assert made.returncode == 0, made.stderr[-2000:]
    size = sum(p.stat().st_size for p in wheels.iterdir())
    assert size < 64 * 2 ** 20 and f"{len(list(wheels.iterdir()))} wheels" in made.stdout
    assert {p.name.split("-")[0].lower() for p in wheels.iterdir()} == {"hydra_core", "omegaconf", "pyyaml", "tqdm", "packaging",
                                                                       "antlr4_python3_runtime"}
    report = tmp_path / "gpu_check.md"
    result = subprocess.run([bare_machine, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--wheels",
                             str(wheels), "--output", str(report)], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    text = report.read_text() if report.exists() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:] + text[-3000:]
    assert "Result: passed (tiers A and B must pass; A: passed, B: passed, C: skipped)" in text
    assert "## Tier C: FFCV — skipped" in text and "FFCV is not importable here (ModuleNotFoundError: No module named 'ffcv')" in text
    # tier A imported nothing but the machine's packages and the installed add-ons
    imported = re.search(r"Imported besides the standard library: (.*) \(HAM from (.*)\)\.", text)
    assert imported, text[:3000]
    modules = set(imported.group(1).split(", "))
    assert "ham_sparse" in modules and not modules & {"ham", "sparse", "training", "analysis", *ABSENT}
    assert "/checkout" not in imported.group(2) and "site-packages" in imported.group(2)  # the installed copy
    assert "| default: chunked per tensor |" in text and "0 in the 4 after them (0 expected)" in text
    assert "| RiGL + SGD + HAM |" in text and "| SAM + HAM |" in text
    # tier B trained with the wheels (this environment has no Hydra of its own) and ran torchrun
    assert "train.py (Hydra and OmegaConf from the carried wheels)" in text
    assert "torchrun over 1 process(es) (gloo, no GPU: a world of one" in text and "world size in summary.json: 1" in text


def test_tier_c_trains_through_ffcv_where_it_is_installed(tmp_path):
    """This environment has FFCV (make setup): tier C writes its .beton files and trains through them."""
    report = tmp_path / "gpu_check.md"
    result = launch.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--tiers", "C",
                         "--output", str(report)], env=launch.environment(), capture_output=True, text=True, cwd=tmp_path, timeout=600)
    text = report.read_text()
    assert result.returncode == 0, text[-3000:]
    assert "## Tier C: FFCV — passed" in text and "FFCV + resnet20 + HAM (train.py): 2 epochs of 10 steps" in text
    assert "## Tier A" not in text and "## Tier B" not in text
