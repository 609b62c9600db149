"""Every figure command runs on records (configs composed as train.py does, metrics made up here:
the plots are under test, not the numbers) and writes a non-empty PNG and an SVG; what a reader needs
is on the figure (legend, titles, std, reference, missing and diverged cells)."""

from __future__ import annotations

import json
import sys

import pytest
from omegaconf import OmegaConf

from tests import launch
from tests.compose import compose_config, prepare
from tests.e2e import REPO, env


def _record(folder, overrides, acc, sparsity=0.0, failed=False, name=None):
    cfg = compose_config(overrides)
    prepare(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    history = [{"epoch": e, "sign_flips": 1000 // e, "test_acc": acc} for e in range(1, 4)]
    record = {"config": config, "failed": True, "error": "diverged"} if failed else {
        "config": config, "test_acc": acc, "sparsity": sparsity, "epoch": 3, "history": history}
    path = folder / f"{name or cfg.name}_{cfg.trainer.seed}_{cfg.sparsity.target}_{cfg.ham.alpha}_{cfg.ham.beta}.json"
    path.write_text(json.dumps(record))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Composed once for the module (about 6 s) and only read by the tests."""
    folder = tmp_path_factory.mktemp("figures") / "records"
    folder.mkdir()
    for experiment in ("random", "random_signin", "random_ham", "rigl", "rigl_ham", "str", "str_ham"):
        for target in (0.8, 0.9, 0.95):
            for seed in (0, 1):
                _record(folder, [f"+experiment={experiment}", "setting=small", f"sparsity.target={target}", f"trainer.seed={seed}",
                                 "trainer.epochs=3"], 0.9 - target / 10 + seed / 100, target)
    for alpha in (5.0, 20.0, 200.0):
        for beta in (0.0, 1e-3):
            if (alpha, beta) == (20.0, 0.0):
                continue  # a missing cell
            for seed in (0, 1):
                _record(folder, ["+experiment=dense_ham", "setting=small", f"ham.alpha={alpha}", f"ham.beta={beta}", f"trainer.seed={seed}"],
                        0.89 + seed / 100, failed=alpha == 200.0, name=f"grid{alpha}_{beta}")
    for seed in (0, 1):  # the reference without HAM
        _record(folder, ["+experiment=dense", "setting=small", f"trainer.seed={seed}"], 0.885 + seed / 200)
    return folder


@pytest.mark.parametrize("figure", ["sign-flips", "accuracy-sparsity", "ham-grid"])
def test_figure_command_writes_a_png(records, tmp_path, figure):
    output = tmp_path / "out" / f"{figure}.png"
    result = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), figure, str(records), "--output", str(output)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 10_000
    assert output.with_suffix(".svg").read_text().lstrip().startswith("<?xml") and "<svg" in output.with_suffix(".svg").read_text()
    assert sorted(p.name for p in output.parent.iterdir()) == [f"{figure}.png", f"{figure}.svg"]


def test_figures_need_an_output_file_and_never_write_into_the_repository(records):
    result = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), "ham-grid", str(records)], cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--output" in result.stderr


def _figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("figures", REPO / "scripts" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _series(fig):
    """Each drawn series by its legend label: (panel title, line style, marker face filled, x, y)."""
    out = {}
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == labels  # the legend names every series drawn
        for handle, label in zip(handles, labels):
            line = handle.lines[0]
            out[label] = (ax.get_title(), line.get_linestyle(), line.get_markerfacecolor() != "white", list(line.get_xdata()),
                          list(line.get_ydata()))
    return out


def test_the_legend_tells_baseline_sign_in_and_ham_apart_and_the_title_names_model_data_and_what_is_absent(records):
    from analysis import runs as R

    fig = _figures().accuracy_sparsity(R.from_disk([records]))
    series = _series(fig)
    assert series["RiGL"][:3] == ("RiGL", "--", False) and series["RiGL + HAM"][:3] == ("RiGL", "-", True)
    assert series["Random PaI + Sign-In"][:3] == ("Random PaI", ":", False)
    assert series["STR + HAM"][0] == "STR, spred, PILoT"
    assert set(series) == {"Random PaI", "Random PaI + Sign-In", "Random PaI + HAM", "RiGL", "RiGL + HAM", "STR", "STR + HAM"}
    # one connected series per row across its three targets; x: the achieved sparsity, y: the mean over both seeds
    assert series["STR"][3] == pytest.approx([80, 90, 95]) and series["STR"][4] == pytest.approx([100 * (0.9 - t / 10 + 0.005) for t in (0.8, 0.9, 0.95)])
    title = fig._suptitle.get_text()
    assert "LeNet-300-100 on Fashion-MNIST, 3 epochs" in title and "dashed: baseline, dotted: + Sign-In, solid: + HAM" in title
    assert "no runs in the sources: AC/DC, AC/DC + Sign-In, AC/DC + HAM, RiGL + Sign-In, spred, PILoT" in title
    assert [ax.get_title() for ax in fig.axes] == ["Random PaI", "RiGL", "STR, spred, PILoT"]  # AC/DC has no runs: no panel


def test_runs_of_different_lengths_are_separate_series_named_by_their_length(records, tmp_path):
    """The same rows at 3 and 6 epochs: never joined into one line; each series says its length."""
    import shutil

    from analysis import runs as R

    folder = tmp_path / "records"
    shutil.copytree(records, folder)
    for target in (0.8, 0.9):
        _record(folder, ["+experiment=rigl", "setting=small", f"sparsity.target={target}", "trainer.epochs=6"], 0.7, target, name="rigl6")
    series = _series(_figures().accuracy_sparsity(R.from_disk([folder])))
    assert series["RiGL, 6 ep"][3] == pytest.approx([80, 90]) and series["RiGL, 6 ep"][4] == pytest.approx([70, 70])
    assert series["RiGL, 3 ep"][3] == pytest.approx([80, 90, 95])
    assert "RiGL" not in series


def test_variants_are_series_of_their_own_with_their_keys_in_the_legend(tmp_path):
    """rigl + HAM at α 10 and 40 (each differs from the small setting's α): two series, two markers, and
    the legend (in the SVG too) names each α."""
    from analysis import runs as R

    folder = tmp_path / "records"
    folder.mkdir()
    for alpha in (10.0, 40.0):
        for target in (0.8, 0.9):
            _record(folder, ["+experiment=rigl_ham", "setting=small", f"sparsity.target={target}", f"ham.alpha={alpha}"], 0.8, target,
                    name=f"rigl_ham_{alpha}")
    ax = _figures().accuracy_sparsity(R.from_disk([folder])).axes[0]
    handles, labels = ax.get_legend_handles_labels()
    assert sorted(labels) == ["RiGL + HAM [ham.alpha=10]", "RiGL + HAM [ham.alpha=40]"]
    assert len({h.lines[0].get_marker() for h in handles}) == 2
    output = tmp_path / "f.png"
    result = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), "accuracy-sparsity", str(folder), "--output", str(output)],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    svg = output.with_suffix(".svg").read_text()
    assert "ham.alpha=10" in svg and "ham.alpha=40" in svg


def test_a_ham_grid_of_two_recipes_is_refused_naming_the_difference_and_the_help_says_what_each_figure_takes(records, tmp_path):
    import shutil

    folder = tmp_path / "records"
    shutil.copytree(records, folder)
    _record(folder, ["+experiment=dense_ham", "setting=small", "ham.alpha=5.0", "trainer.batch_size=64"], 0.8, name="short")
    result = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), "ham-grid", str(folder), "--output", str(tmp_path / "g.png")],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "differ in more than ham.alpha and ham.beta (trainer.batch_size=" in result.stderr
    help_text = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), "--help"], cwd=REPO, env=env(),
                               capture_output=True, text=True, timeout=120).stdout
    assert "+sweep=ham_grid" in help_text and "random_signin" in help_text and "rigl_ham" in help_text


def test_the_ham_grid_shows_std_reference_missing_and_diverged_cells_on_a_noise_wide_scale(records):
    from analysis import runs as R

    figures = _figures()
    fig = figures.ham_grid(R.from_disk([records]))
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("diverged") == 2 and texts.count("missing") == 1
    # seeds at 89 % and 90 %: mean 89.50, sample std 0.71 (hand: sqrt(0.5))
    assert sum("89.50\n± 0.71\n(n=2)" == t for t in texts) == 3
    assert "without HAM 88.75 ± 0.35 (n=2)" in ax.get_title() and "LeNet-300-100 on Fashion-MNIST" in ax.get_title()
    norm = ax.images[0].norm
    assert norm.vmax >= 2 * 0.7071 - 1e-6 and norm.vmin <= -2 * 0.7071 + 1e-6  # a 0.75-point difference stays inside the noise band


def test_a_figure_without_its_runs_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    result = launch.run([sys.executable, str(REPO / "scripts" / "figures.py"), "sign-flips", str(tmp_path / "empty"),
                             "--output", str(tmp_path / "f.png")],
                            cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "no finished random/random_signin/random_ham runs" in result.stderr
