from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from tests.compose import compose_config, group_options
from training.config import ConfigError, validate

GROUPS = ["model", "data", "optimizer", "ham", "schedule", "trainer", "logger"]


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if (group, option) == ("data", "imagefolder"):
        overrides.append("data.root=/some/imagenet")
    cfg = compose_config(overrides)
    validate(cfg)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes_and_validates(experiment):
    cfg = compose_config([f"+experiment={experiment}"])
    validate(cfg)


def test_default_is_fashion_mnist_small_cnn_with_sgd_and_ham():
    cfg = compose_config()
    assert (cfg.data.name, cfg.model.name, cfg.optimizer.name, cfg.ham.enabled) == ("fashion_mnist", "lenet5", "sgd", True)


@pytest.mark.parametrize(
    "override,key",
    [
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("model.name=resnet1000", "model.name"),
        ("ham.sign=after", "ham.sign"),
        ("trainer.label_smoothing=1.5", "trainer.label_smoothing"),
        ("optimizer.momentum=1.0", "optimizer.momentum"),
        ("logger.wandb.mode=sometimes", "logger.wandb.mode"),
        ("data.train_subset=0", "data.train_subset"),
    ],
)
def test_invalid_values_name_the_key(override, key):
    cfg = compose_config([override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_wrong_type_fails_at_composition():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["trainer.epochs=ten"])
    assert isinstance(info.value.__cause__, ValidationError)
    assert "trainer.epochs" in str(info.value.__cause__)


def test_unknown_group_option_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config(["model=resnet1000"])


def test_unknown_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose_config(["trainer.epoch=3"])
