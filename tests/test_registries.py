"""One owner per list of names: the config's allowed values are the components' registries, and
a component's own argument check reaches the user as a ConfigError naming the key."""

from __future__ import annotations

import re

import pytest

from ham import HAM
from sparse import METHODS
from sparse.distributions import DISTRIBUTIONS
from sparse.rigl import RigL
from tests.compose import compose_config, group_options
from training.config import ConfigError, validate
from training.data import DATASETS
from training.models import MODELS
from training.optim import OPTIMIZERS
from training.schedule import SCHEDULES


def allowed_values(override: str) -> list[str]:
    """The allowed values that validate() lists for a bad value."""
    with pytest.raises(ConfigError) as info:
        validate(compose_config([override]))
    found = re.search(r"allowed values: (.*)$", str(info.value))
    assert found, str(info.value)
    return found.group(1).split(", ")


@pytest.mark.parametrize("key,registry", [("model.name", MODELS), ("data.name", DATASETS), ("optimizer.name", OPTIMIZERS),
                                          ("schedule.name", SCHEDULES), ("sparsity.method", METHODS)])
def test_the_configs_allowed_names_are_the_registrys_keys(key, registry):
    assert allowed_values(f"{key}=no_such_name") == list(registry)


@pytest.mark.parametrize("group,registry", [("sparsity", METHODS), ("schedule", SCHEDULES), ("optimizer", OPTIMIZERS)])
def test_every_registered_name_has_its_config_group_option(group, registry):
    assert sorted(registry) == group_options(group)


def test_a_methods_own_rule_is_the_one_the_config_applies():
    with pytest.raises(ValueError, match=r"^delta_t=0 is not valid: it must be >= 1$"):
        RigL(target=0.9, delta_t=0)
    with pytest.raises(ConfigError, match=r"^sparsity\.rigl_delta_t=0 is not valid: it must be >= 1$"):
        validate(compose_config(["sparsity=rigl", "sparsity.rigl_delta_t=0"]))
    with pytest.raises(ConfigError, match=r"^sparsity\.distribution='ring' is not valid: it must be one of erk, uniform$"):
        validate(compose_config(["sparsity=random", "sparsity.distribution=ring"]))
    assert list(DISTRIBUTIONS) == ["erk", "uniform"]


def test_hams_own_check_names_the_ham_key():
    with pytest.raises(ValueError, match=r"^clamp=0 is not valid"):
        HAM.check_arguments(clamp=0)
    with pytest.raises(ConfigError, match=r"^ham\.clamp=0\.0 is not valid: it must be > 0$"):
        validate(compose_config(["ham.clamp=0"]))


def test_sign_in_is_allowed_with_the_methods_that_take_it():
    takes = [name for name, method in METHODS.items() if "sign_in" in method.arguments()]
    assert takes == ["random", "acdc", "rigl"]
    with pytest.raises(ConfigError, match=r"sparsity\.sign_in=True is not valid: it must be false unless sparsity\.method is random, acdc or rigl"):
        validate(compose_config(["sparsity=pilot", "sparsity.pilot_alpha=1", "sparsity.sign_in=true"]))


def test_validate_does_not_change_the_config():
    cfg = compose_config(["+experiment=str_ham", "setting=small"])
    before = cfg.sparsity.str_weight_decay
    validate(cfg)
    assert before is None and cfg.sparsity.str_weight_decay is None
