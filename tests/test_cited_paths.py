"""Every file path that the README, the docs pages, results/README.md, the configs and the code cite
exists in the repository, and every cited section of docs/methods.md is there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXTENSIONS = "py|md|yaml|yml|json|jsonl|sh|txt|toml|cff|csv|png|svg|cfg"
#: a relative path with at least one folder, not part of a longer path, URL, variable or placeholder
PATH = re.compile(rf"(?<![\w/.$<{{-])((?:\.\./)?(?:[A-Za-z0-9_\-]+/)+[A-Za-z0-9_\-.]*\.(?:{EXTENSIONS}))(?![\w/])")
SECTION = re.compile(r"docs/methods\.md §(\d+)")
#: cited as outputs that only a GPU machine writes (scripts/gpu_check.sh has not run on one yet)
WRITTEN_ON_A_GPU = {"results/gpu_check.md", "results/train_step_gpu.md",
                    # the ImageNet calibration files, written by `paper_tables.py calibrate` on a cluster
                    "calibration/imagenet.yaml", "calibration/imagenet_str.yaml"}


def _citing_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "results" / "README.md", REPO / "train.py", REPO / "Makefile", *REPO.glob(".ci/*"),
             *REPO.glob("docs/**/*.md"), *REPO.glob("configs/**/*.yaml")]
    for folder in ("ham", "sparse", "networks", "training", "analysis", "scripts", "benchmarks", "tests"):
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".sh")]
    return [f for f in files if f.name != "test_cited_paths.py"]  # this file's examples are not citations


def cited_paths(text: str) -> set[str]:
    return set(PATH.findall(text))


def test_the_path_pattern_finds_paths_and_skips_urls_and_placeholders():
    text = ("see `results/ham_grid.md`, configs/ham/small.yaml; https://github.com/x/y/blob/main/a.py; "
            "$OUT/x.md; <run>/summary.json; /tmp/abs/path.py; ../shared/reference/SPEC.md")
    assert cited_paths(text) == {"results/ham_grid.md", "configs/ham/small.yaml", "../shared/reference/SPEC.md"}


def test_every_cited_path_exists():
    missing = []
    for path in _citing_files():
        for cited in cited_paths(path.read_text()):
            # from the repository's root, or (results/README.md's own files) from the citing file's folder
            if cited not in WRITTEN_ON_A_GPU and not (REPO / cited).exists() and not (path.parent / cited).exists():
                missing.append(f"{path.relative_to(REPO)} cites {cited}")
    assert not missing, "\n".join(missing)


def test_no_file_cites_the_reference_outside_the_repository():
    for path in _citing_files():
        assert "SPEC.md" not in path.read_text(), f"{path.relative_to(REPO)} cites SPEC.md (use docs/methods.md)"


def test_every_cited_section_of_the_method_reference_exists():
    sections = set(re.findall(r"^## §(\d+) ", (REPO / "docs" / "methods.md").read_text(), flags=re.M))
    assert sections == {str(n) for n in range(1, 11)}
    for path in _citing_files():
        for number in SECTION.findall(path.read_text()):
            assert number in sections, f"{path.relative_to(REPO)} cites docs/methods.md §{number}, which does not exist"
