"""Packaging: an installed checkout shadows no other distribution, requirements are ranges with the
verified versions in constraints.txt, every declared dependency is used, scripts do not import the
tests, and the licence and citation files are there."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: distribution name -> the module it is imported as (or used through)
IMPORT_NAMES = {
    "torch": "torch", "torchvision": "torchvision", "hydra-core": "hydra", "omegaconf": "omegaconf", "timm": "timm",
    "wandb": "wandb", "tqdm": "tqdm", "matplotlib": "matplotlib", "numpy": "numpy", "safetensors": "safetensors",
    "pytest": "pytest", "ffcv": "ffcv", "filelock": "filelock", "lightning": "lightning",
}
#: declared but not imported by name, and why
USED_OTHERWISE = {
    "pytest-xdist": "pytest's -n option (Makefile's test target)",
    "hydra-submitit-launcher": "hydra/launcher=submitit_slurm|submitit_local (configs/hydra/launcher)",
    "numba": "FFCV's compiled pipeline (pinned: FFCV 1.0.2 builds against it)",
    "opencv-python": "FFCV's image decoding (pinned with FFCV)",
}


def _requirements() -> list[str]:
    project = PYPROJECT["project"]
    return project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _imported_modules() -> set[str]:
    modules: set[str] = set()
    for path in REPO.glob("**/*.py"):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_the_add_ons_need_only_a_torch_range_and_constraints_pin_every_dependency():
    assert PYPROJECT["project"]["dependencies"] == ["torch>=2.3"]
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[name.lower()] = version
    for requirement in _requirements():
        assert "==" not in requirement, f"pyproject.toml pins {requirement}: pins belong in constraints.txt"
        assert _name(requirement) in pins, f"{_name(requirement)} has no verified version in constraints.txt"
    installed = {name: importlib.metadata.version(name) for name in pins if _installed(name)}
    assert installed == {name: pins[name] for name in installed}, "the environment differs from constraints.txt"


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def test_every_declared_dependency_is_used_and_pandas_is_gone():
    imported = _imported_modules()
    for requirement in _requirements():
        name = _name(requirement)
        if name in USED_OTHERWISE:
            continue
        assert name in IMPORT_NAMES, f"{name}: say how it is used (IMPORT_NAMES or USED_OTHERWISE)"
        assert IMPORT_NAMES[name] in imported, f"{name} is declared but never imported"
    assert "pandas" not in {_name(r) for r in _requirements()} and "pandas" not in imported
    assert "-n" in (REPO / "Makefile").read_text()  # pytest-xdist is used


def test_scripts_do_not_import_the_tests():
    for path in [*REPO.glob("scripts/*.py"), *REPO.glob("benchmarks/*.py"), REPO / "train.py"]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "tests" or n.startswith("tests.") for n in names), f"{path.name} imports from tests/"


def test_licence_and_citation():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert PYPROJECT["project"]["license"] == "MIT"
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    paper = citation["preferred-citation"]
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert paper["title"] == "Hyperbolic Aware Minimization: Implicit Bias for Sparsity" and paper["year"] == 2026
    assert [a["family-names"] for a in paper["authors"]] == ["Jacobs", "Gadhikar", "Rubio-Madrigal", "Burkholz"]
    assert any("2506.02630" in i["value"] for i in paper["identifiers"])


@pytest.fixture(scope="module")
def throwaway_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with PyPI's ``sparse`` installed (from the package registry), which
    sees this environment's torch through a .pth file (a second torch would take minutes and GBs)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "outer_torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "sparse"], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.skip(f"PyPI's sparse could not be installed (no package registry?): {installed.stderr[-500:]}")
    return python


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_an_installed_checkout_shadows_no_other_distribution(throwaway_venv, tmp_path, editable):
    python = throwaway_venv
    subprocess.run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "ham-sparse"], capture_output=True)
    source = REPO
    if not editable:  # built from a copy: setuptools builds in the source tree and would leave build/ here
        source = tmp_path / "checkout"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "ham", "sparse", "networks"):
            copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
            copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    command = [python, "-m", "pip", "install", "--quiet", "--no-deps", *(["-e"] if editable else []), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    probe = """
import importlib.util, json, torch
spec = lambda name: importlib.util.find_spec(name)
import sparse                                   # PyPI's, not ours
from ham_sparse.ham import HAM                  # ours, under the one namespaced name
from ham_sparse.sparse import RigL, build_method
from ham_sparse.networks import cnn_small       # what an exported model.json's constructor names
p = torch.nn.Parameter(torch.ones(2, 2)); p.grad = torch.zeros(2, 2)
HAM(torch.optim.SGD([p], lr=0.1), alpha=1.0, beta=1.0).step()
print(json.dumps({"sparse": sparse.__file__, "has_COO": hasattr(sparse, "COO"),
                  "ham": spec("ham") and spec("ham").origin, "training": spec("training") is not None,
                  "analysis": spec("analysis") is not None, "networks": spec("networks") is not None,
                  "cnn_small": sum(q.numel() for q in cnn_small(1, 28, 10).parameters()), "ham_sparse.ham": spec("ham_sparse.ham").origin,
                  "step": p[0, 0].item()}))
"""
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    assert "site-packages" in found["sparse"] and found["has_COO"]
    assert found["ham"] is None and not found["training"] and not found["analysis"] and not found["networks"]
    assert found["cnn_small"] == 24_058  # the count in cnn_small's docstring, checked by hand in test_config
    assert found["ham_sparse.ham"].startswith(str(REPO) if editable else str(python.parent.parent))
    assert found["step"] == pytest.approx(0.904837, abs=1e-6)  # exp(-0.1): the add-on works installed
    # the README's first example, as a user of the installed add-on runs it
    readme = (REPO / "README.md").read_text()
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "from ham_sparse.ham import HAM" in example
    result = subprocess.run([python, "-c", example], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "final training loss" in result.stdout, result.stderr[-2000:]


def test_the_installed_packages_need_only_torch(tmp_path):
    """ham_sparse.ham, .sparse and .networks import nothing but torch and the standard library (timm
    and torchvision only inside the functions that use them): in a process where, once torch has
    loaded (with what it needs), every other module refuses to load, each imports and works."""
    probe = """
import importlib.abc, sys
import torch
class OnlyTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in sys.stdlib_module_names and top not in ("torch", "ham_sparse", "_distutils_hack") and not top.startswith("__editable__"):
            raise ImportError(f"{name} is not torch")
sys.meta_path.insert(0, OnlyTorch())
from ham_sparse.ham import HAM, SAM, SignFlips, density
from ham_sparse.sparse import build_method
from ham_sparse import networks
for name in ("lenet300_100", "lenet5", "cnn", "cnn_small", "resnet20"):
    getattr(networks, name)(1, 28, 10)(torch.zeros(2, 1, 28, 28))
try:
    import omegaconf
except ImportError:
    print("refused")
"""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused"  # the guard works: omegaconf, installed here, did not load
