from __future__ import annotations

import pytest

from tests.compose import compose_config, group_options, prepare
from training.config import ConfigError
from training.presets import PRESET_KEYS

GROUPS = ["model", "data", "optimizer", "ham", "schedule", "trainer", "logger", "sparsity", "setting"]


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if (group, option) == ("data", "imagefolder"):
        overrides.append("data.root=/some/imagenet")
    if (group, option) in (("data", "imagefolder"), ("data", "ffcv_imagenet")):
        overrides.append("model=resnet18")  # progressive resizing needs a model that takes any size
    if (group, option) == ("model", "timm"):
        overrides.append("model.timm_name=resnet18")  # required: there is no default timm model
    if group == "sparsity" and option in PRESET_KEYS:  # outside a setting there are no presets: set the knob
        overrides.append(f"sparsity.{PRESET_KEYS[option]}=1e-3")
    cfg = compose_config(overrides)
    prepare(cfg)


@pytest.mark.parametrize(
    "override,message",
    [
        ("data.train_subset=100", "data.train_subset=100 is not valid: it must be null with data.name=ffcv_imagenet"),
        ("data.max_res=128", "data.max_res=128 is not valid: it must be >= data.min_res=160"),
        ("data.end_ramp_epoch=3", "data.end_ramp_epoch=3 is not valid: it must be >= data.start_ramp_epoch=74"),
        ("data.val_crop_ratio=1.5", "data.val_crop_ratio=1.5 is not valid"),
        ("data.std=[0.2,0,0.2]", "data.std=[0.2, 0.0, 0.2] is not valid: it must be > 0 per channel"),
        ("data.mean=[0.5,0.5]", "data.mean=[0.5, 0.5] is not valid: it must be three finite numbers"),
        ("data.order=shuffled", "data.order='shuffled' is not valid; allowed values: random, quasi_random"),
        ("data.order=quasi_random", "data.order='quasi_random' is not valid: it must be random unless data.os_cache=false"),
        ("data.num_classes=1", "data.num_classes=1 is not valid"),
        ("model=lenet5", "data.min_res=160 is not valid: it must be equal to data.max_res and data.val_res with model=lenet5"),
    ],
)
def test_bad_image_data_values_name_the_key(override, message):
    cfg = compose_config(["data=ffcv_imagenet", "model=resnet18", override])
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    assert message in str(info.value)


def test_num_classes_null_is_only_for_image_data():
    with pytest.raises(ConfigError, match="data.num_classes=None is not valid"):
        prepare(compose_config(["data.num_classes=null"]))


PAPER_EXPERIMENTS = [
    "dense", "dense_ham", "dense_sam", "dense_sam_ham", "random", "random_signin", "random_ham", "acdc",
    "acdc_signin", "acdc_ham", "rigl", "rigl_signin", "rigl_ham", "spred", "pilot", "str", "str_ham",
]
DENSE_ROWS = ["dense", "dense_ham", "dense_sam", "dense_sam_ham"]
#: Every cell of the paper's Tables 3 and 4: (experiment, sparsity.target or None, epochs on ImageNet)
TABLE_CELLS = (
    [(e, None, 100) for e in DENSE_ROWS] + [(f"{e}_200ep", None, 200) for e in DENSE_ROWS]
    + [(e, t, 100) for e in PAPER_EXPERIMENTS if e not in DENSE_ROWS for t in (0.8, 0.9, 0.95)]
)
#: ImageNet cells without a known STR preset (STR's published one is for 90 % without HAM): they stop
IMAGENET_WITHOUT_PRESET = {("str", 0.8), ("str", 0.95), ("str_ham", 0.8), ("str_ham", 0.9), ("str_ham", 0.95)}


def test_there_is_an_experiment_for_every_table_cell_family():
    assert {e for e, _, _ in TABLE_CELLS} <= set(group_options("experiment"))


@pytest.mark.parametrize("setting", ["imagenet", "small"])
@pytest.mark.parametrize("experiment,target,epochs", TABLE_CELLS, ids=[f"{e}-{t}" for e, t, _ in TABLE_CELLS])
def test_every_table_cell_is_one_experiment_that_validates(experiment, target, epochs, setting):
    overrides = [f"+experiment={experiment}"] + ([] if target is None else [f"sparsity.target={target}"])
    cfg = compose_config(overrides + ([] if setting == "imagenet" else ["setting=small"]))
    if setting == "imagenet" and (experiment, target) in IMAGENET_WITHOUT_PRESET:
        with pytest.raises(ConfigError, match=rf"sparsity\.target={target} is not valid for sparsity\.method=str"):
            prepare(cfg)
        return
    prepare(cfg)
    base = experiment.removesuffix("_200ep")
    assert cfg.name == experiment
    assert cfg.trainer.epochs == (epochs if setting == "imagenet" or epochs == 200 else 10)
    assert cfg.model.name == ("resnet50" if setting == "imagenet" else "lenet300_100")
    assert cfg.ham.enabled == base.endswith("_ham")
    assert cfg.ham.alpha == (200.0 if setting == "imagenet" else 50.0)  # small: the α rule's choice (test_small_claims checks it)
    assert cfg.optimizer.name == ("sam" if "_sam" in base else "sgd")
    assert cfg.sparsity.sign_in == base.endswith("_signin")
    method = base.removesuffix("_ham").removesuffix("_signin").removesuffix("_sam")
    assert cfg.sparsity.method == method
    if target is not None:
        assert cfg.sparsity.target == target
    if method in PRESET_KEYS:  # the knob that reaches the target was filled in from the setting's preset
        assert cfg.sparsity[PRESET_KEYS[method]] is not None


def test_str_runs_under_strs_own_recipe_on_imagenet_and_the_common_one_otherwise():
    cfg = compose_config(["+experiment=str"])
    prepare(cfg)
    assert (cfg.optimizer.lr, cfg.optimizer.lr_reference_batch, cfg.optimizer.momentum) == (0.256, 256, 0.875)
    assert (cfg.schedule.name, cfg.schedule.warmup_epochs, cfg.trainer.label_smoothing) == ("cosine", 5, 0.1)
    assert (cfg.sparsity.str_weight_decay, cfg.sparsity.str_s_init) == (2.25e-5, -3200)
    rigl = compose_config(["+experiment=rigl"])
    assert (rigl.optimizer.lr, rigl.schedule.name) == (1.7, "linear_ramp")


def test_str_preset_depends_on_ham_and_an_explicit_value_wins():
    plain, ham = (compose_config([f"+experiment={e}", "setting=small"]) for e in ("str", "str_ham"))
    prepare(plain)
    prepare(ham)
    assert plain.sparsity.str_weight_decay != ham.sparsity.str_weight_decay
    explicit = compose_config(["+experiment=str_ham", "setting=small", "sparsity.target=0.85", "sparsity.str_weight_decay=1e-3"])
    prepare(explicit)
    assert explicit.sparsity.str_weight_decay == 1e-3


@pytest.mark.parametrize("experiment,key", [("str", "str_weight_decay"), ("str_ham", "str_weight_decay"),
                                            ("pilot", "pilot_alpha"), ("spred", "spred_weight_decay")])
def test_a_target_without_a_preset_stops_with_the_targets_that_have_one(experiment, key):
    cfg = compose_config([f"+experiment={experiment}", "setting=small", "sparsity.target=0.85"])
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert message.startswith(f"sparsity.target=0.85 is not valid for sparsity.method={experiment.removesuffix('_ham')}")
    assert f"presets of sparsity.{key} for the targets 0.8, 0.9, 0.95" in message and f"set sparsity.{key} yourself" in message


def test_imagenet_recipe_scales_the_learning_rate_with_the_global_batch():
    from training.optim import peak_lr

    cfg = compose_config(["+experiment=dense"])
    assert peak_lr(cfg.optimizer, 4096) == pytest.approx(1.7)
    assert peak_lr(cfg.optimizer, 1024) == pytest.approx(0.425)


def test_sparsity_target_out_of_range_names_the_key():
    cfg = compose_config(["sparsity=rigl", "sparsity.target=1.0"])
    with pytest.raises(ConfigError, match=r"sparsity\.target"):
        prepare(cfg)


def test_sign_in_with_a_method_it_does_not_combine_with_is_rejected():
    cfg = compose_config(["sparsity=str", "sparsity.sign_in=true"])
    with pytest.raises(ConfigError, match=r"sparsity\.sign_in"):
        prepare(cfg)


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
        prepare(cfg)


def test_wrong_type_fails_at_composition_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^Error merging override trainer.epochs=ten: Value 'ten' of type 'str' could not be "
                                          r"converted to Integer$"):
        compose_config(["trainer.epochs=ten"])


def test_unknown_group_option_fails_at_composition():
    with pytest.raises(ConfigError, match=r"Could not find 'model/resnet1000'"):
        compose_config(["model=resnet1000"])


def test_unknown_key_fails_at_composition_naming_the_closest_key():
    with pytest.raises(ConfigError, match=r"^trainer.epoch is not a config key; did you mean trainer.epochs\?"):
        compose_config(["trainer.epoch=3"])
    with pytest.raises(ConfigError, match=r"^optimizer.zzz_qqq is not a config key \(python train.py --cfg job lists them\)$"):
        compose_config(["optimizer.zzz_qqq=3"])


def test_a_key_added_with_plus_is_refused_naming_the_closest_key():
    """Hydra's ``+key=value`` adds a key even to a structured config (and Hydra's own error for
    ``trainer.epoch=1`` suggests exactly that form); every key outside the schema is refused."""
    from omegaconf import OmegaConf

    for override, message in (("+trainer.epoch=1", r"^trainer.epoch is not a config key; did you mean trainer.epochs\? "),
                              ("+trainer.foo=1", r"^trainer.foo is not a config key \(python train.py --cfg job lists them\)$"),
                              ("+trainer.extra={a: 1}", r"^trainer.extra is not a config key "),
                              ("+zzz.yyy=2", r"^zzz is not a config key ")):
        with pytest.raises(ConfigError, match=message):
            compose_config([override])
    with pytest.raises(ConfigError, match=r"^these are not config keys: optimizer.weight_decya \(did you mean optimizer.weight_decay\?\), "
                                          r"ham.alhpa \(did you mean ham.alpha\?\) "):
        compose_config(["+optimizer.weight_decya=0", "+ham.alhpa=2"])
    cfg = compose_config([])  # what train.py gets from Hydra: prepare() is where it stops
    OmegaConf.update(cfg, "trainer.epoch", 1, force_add=True)
    with pytest.raises(ConfigError, match=r"^trainer.epoch is not a config key; did you mean trainer.epochs\?"):
        prepare(cfg)


def test_records_keep_values_from_the_environment_as_written(monkeypatch):
    """Text read with ${oc.env:...} (a token) stays as written, also where another key refers to it
    or it is part of a longer text; a value that reads as a number is recorded as that number."""
    from omegaconf import OmegaConf

    from training.records import recorded

    monkeypatch.setenv("HAM_TEST_TOKEN", "tok-5f3e9a")
    monkeypatch.setenv("HAM_TEST_SEED", "7")
    cfg = compose_config(["logger.wandb.group=${oc.env:HAM_TEST_TOKEN}", "logger.wandb.tags=[a-${oc.env:HAM_TEST_TOKEN}]",
                          "trainer.seed=${oc.env:HAM_TEST_SEED}", "logger.wandb.entity=${logger.wandb.group}"])
    assert OmegaConf.to_container(cfg, resolve=True)["logger"]["wandb"]["group"] == "tok-5f3e9a"  # what the run uses
    kept = recorded(cfg)
    assert "tok-5f3e9a" not in repr(kept)
    assert kept["logger"]["wandb"] | {"project": None} == {"group": "${oc.env:HAM_TEST_TOKEN}", "entity": "${oc.env:HAM_TEST_TOKEN}",
                                                           "tags": ["a-${oc.env:HAM_TEST_TOKEN}"], "mode": "offline", "project": None}
    assert kept["trainer"]["seed"] == 7 and kept["sparsity"]["seed"] == 7  # sparsity.seed: ${trainer.seed}
    assert kept["optimizer"] == OmegaConf.to_container(cfg.optimizer, resolve=True)  # the rest resolved as usual


def test_the_fingerprint_sees_text_from_the_environment_that_the_checkpoint_does_not_keep(monkeypatch, tmp_path):
    """A checkpoint keeps ``${oc.env:...}`` as written, yet a resume with another value of it is
    another configuration: the fingerprint hashes the resolved value, and the refusal names the key."""
    from training.checkpoint import CheckpointError, load_checkpoint, save_atomic
    from training.trajectory import trajectory_config, trajectory_fingerprint

    monkeypatch.setenv("HAM_TEST_OPTIMIZER", "sgd")
    first = compose_config(["optimizer.sam_base=${oc.env:HAM_TEST_OPTIMIZER}"])
    save_atomic({"config": trajectory_config(first), "fingerprint": trajectory_fingerprint(first)}, tmp_path / "checkpoint.pt")
    assert load_checkpoint(tmp_path / "checkpoint.pt", trajectory_config(first), trajectory_fingerprint(first))
    monkeypatch.setenv("HAM_TEST_OPTIMIZER", "adamw")
    second = compose_config(["optimizer.sam_base=${oc.env:HAM_TEST_OPTIMIZER}"])
    assert trajectory_config(second) == trajectory_config(first) and trajectory_config(first)["optimizer"]["sam_base"] == "${oc.env:HAM_TEST_OPTIMIZER}"
    with pytest.raises(CheckpointError, match=r"optimizer.sam_base=\$\{oc.env:HAM_TEST_OPTIMIZER\} \(a value read from the environment now differs\)"):
        load_checkpoint(tmp_path / "checkpoint.pt", trajectory_config(second), trajectory_fingerprint(second))


def test_str_weight_decay_preset_goes_to_the_weights_and_thresholds():
    import torch

    from training.methods import build_method
    from training.optim import build_optimizer

    cfg = compose_config(["+experiment=str_ham", "setting=small"])
    prepare(cfg)
    wd = cfg.sparsity.str_weight_decay
    assert wd is not None and wd != cfg.optimizer.weight_decay
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    method = build_method(cfg.sparsity)
    method.prepare(model)
    opt = build_optimizer(model, cfg, 0.1, method.decayed_parameters())
    groups = opt.param_groups
    assert [g["weight_decay"] for g in groups] == [wd, 0.0, wd]  # weights, biases, thresholds
    assert groups[2]["params"] == method.thresholds and groups[2]["ham_enabled"] is False
    plain = compose_config(["+experiment=rigl", "setting=small"])
    assert build_optimizer(model, plain, 0.1).param_groups[0]["weight_decay"] == 5e-4  # only STR uses it


@pytest.mark.parametrize(
    "override,message",
    [
        ("ham.alpha=nan", "ham.alpha=nan is not valid: it must be a finite number"),
        ("ham.beta=inf", "ham.beta=inf is not valid: it must be a finite number"),
        ("sparsity.str_s_init=-inf", "sparsity.str_s_init=-inf is not valid: it must be a finite number"),
        ("optimizer.lr=nan", "optimizer.lr=nan is not valid: it must be a finite number"),
        ("ham.alpha=-1", "ham.alpha=-1.0 is not valid: it must be >= 0"),
        ("optimizer.lr_reference_batch=0", "optimizer.lr_reference_batch=0 is not valid: it must be >= 1, or null"),
        ("optimizer.lr_reference_batch=-1", "optimizer.lr_reference_batch=-1 is not valid: it must be >= 1, or null"),
        ("trainer.max_steps_per_epoch=0", "trainer.max_steps_per_epoch=0 is not valid: it must be >= 1, or null"),
        ("trainer.max_steps_per_epoch=-1", "trainer.max_steps_per_epoch=-1 is not valid: it must be >= 1, or null"),
        ("trainer.eval_batch_size=0", "trainer.eval_batch_size=0 is not valid: it must be >= 1"),
        ("trainer.threads=-1", "trainer.threads=-1 is not valid: it must be >= 1, or null"),
        ("trainer.threads=0", "trainer.threads=0 is not valid: it must be >= 1, or null"),
        ("optimizer.betas=[0.9,1.5]", "optimizer.betas=[0.9, 1.5] is not valid: it must be two numbers in [0, 1)"),
        ("schedule.gamma=0", "schedule.gamma=0.0 is not valid: it must be in (0, 1]"),
        ("schedule.milestones=[-1]", "schedule.milestones=[-1.0] is not valid: it must be epochs >= 0"),
        ("sparsity.pilot_alpha=-1", "sparsity.pilot_alpha=-1.0 is not valid: it must be >= 0"),
        ("sparsity.pilot_init_constant=0", "sparsity.pilot_init_constant=0.0 is not valid: it must be > 0"),
        ("sparsity.mirror_lr_scale=2", "sparsity.mirror_lr_scale=2.0 is not valid: it must be 1 unless sparsity.method is pilot or spred"),
        ("sparsity.pilot_l1_floor=1.5", "sparsity.pilot_l1_floor=1.5 is not valid"),
        ("sparsity.spred_weight_decay=-1", "sparsity.spred_weight_decay=-1.0 is not valid: it must be >= 0"),
    ],
)
def test_non_finite_out_of_range_and_zero_for_unset_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        prepare(compose_config([override]))
    assert message in str(info.value)


def test_timm_without_a_model_name_is_refused_with_how_to_choose_one():
    """model=timm used to train timm's resnet18 without saying so (issue 16, item 13)."""
    with pytest.raises(ConfigError) as info:
        prepare(compose_config(["model=timm"]))
    message = str(info.value)
    assert message.startswith("model.timm_name=None is not valid") and "timm.list_models" in message


def test_an_unknown_timm_model_and_cuda_without_a_gpu_name_the_key():
    with pytest.raises(ConfigError, match=r"model.timm_name='no_such_net' is not valid: it must be a model timm knows"):
        prepare(compose_config(["model=timm", "model.timm_name=no_such_net"]))
    prepare(compose_config(["model=timm", "model.timm_name=resnet18"]))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.device='cuda' is not valid: it must be auto or cpu here"):
            prepare(compose_config(["trainer.device=cuda"]))


def test_presets_do_not_enter_the_fingerprint_but_the_knob_they_fill_does():
    from training.trajectory import fingerprint, trajectory_config

    def filled(*extra):
        cfg = compose_config(["+experiment=str", *extra])  # STR at 90 % on ImageNet: STR's published preset, presets.0
        prepare(cfg)
        return fingerprint(trajectory_config(cfg))

    base = filled()
    assert filled("sparsity.presets.1.value=1.0") == base  # spred's preset for 80 %: this STR run is unchanged
    assert filled("sparsity.calibration=/nowhere/calibration.yaml") == base  # where presets could come from: not the run
    assert filled("sparsity.presets.0.value=1.0") != base  # the preset this run uses


def test_wandb_names_groups_and_tags_say_what_a_run_is():
    from training.records import wandb_labels

    cfg = compose_config(["+experiment=rigl_signin", "sparsity.target=0.95", "trainer.seed=2", "logger.wandb.tags=[mine]"])
    name, group, tags = wandb_labels(cfg)
    assert (name, group) == ("rigl_signin imagenet 95% 100ep seed2", "rigl_signin imagenet 95% 100ep")  # the recipe's defaults
    assert tags == ["method:rigl", "signin:on", "ham:off", "optimizer:sgd", "sparsity:0.95", "setting:imagenet", "epochs:100", "mine"]
    name, group, tags = wandb_labels(compose_config(["+experiment=dense_sam_ham_200ep", "setting=small", "logger.wandb.group=g"]))
    assert (name, group) == ("dense_sam_ham_200ep small 200ep seed0", "g")
    assert tags[:7] == ["method:dense", "signin:off", "ham:on", "optimizer:sam", "sparsity:0", "setting:small", "epochs:200"]


def test_an_unknown_wandb_mode_in_the_environment_is_refused_with_the_allowed_values(monkeypatch):
    cfg = compose_config([])
    monkeypatch.setenv("WANDB_MODE", "offlne")
    with pytest.raises(ConfigError, match=r"WANDB_MODE='offlne' \(in the environment.*allowed values: online, offline, disabled, dryrun"):
        prepare(cfg)
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # one W&B itself accepts
    prepare(compose_config([]))


def test_a_key_added_to_the_schema_at_its_earlier_behaviour_keeps_the_fingerprint():
    """A checkpoint or summary written before sparsity.pilot_init_constant existed (no such key, m₀² − w₀² = 1)
    is the same trajectory as a config with the key at 1: it still resumes and counts as finished; another value is another run."""
    from training.trajectory import ADDED_KEYS, fingerprint, trajectory_config, without_non_trajectory_keys

    cfg = compose_config(["+experiment=pilot", "setting=small"])
    prepare(cfg)
    old = trajectory_config(cfg)
    for name in ("pilot_init_constant", "mirror_lr_scale"):  # a record from before these keys existed
        assert ADDED_KEYS[f"sparsity.{name}"] == 1.0
        old["sparsity"].pop(name, None)
    assert without_non_trajectory_keys(old) == trajectory_config(cfg) and fingerprint(old) == fingerprint(trajectory_config(cfg))
    other = compose_config(["+experiment=pilot", "setting=small", "sparsity.pilot_init_constant=0.1"])
    prepare(other)
    assert trajectory_config(other)["sparsity"]["pilot_init_constant"] == 0.1
    assert fingerprint(trajectory_config(other)) != fingerprint(old)
    # sign_in_weight_decay is off by default now; records from before it existed decayed m and w (true)
    signin = compose_config(["+experiment=random_signin", "setting=small"])
    assert trajectory_config(signin)["sparsity"]["sign_in_weight_decay"] is False


def test_cnn_small_has_batch_norm_after_every_convolution_and_its_hand_counted_size():
    import torch

    from networks import cnn_small

    model = cnn_small(1, 28, 10)
    layers = list(model)
    convs = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(isinstance(layers[i + 1], torch.nn.BatchNorm2d) for i in convs)
    # weights 1·16·9 + 16·32·9 + 32·64·9 + 64·10 = 23,824; BatchNorm 2·(16 + 32 + 64) = 224; the classifier's bias 10
    assert sum(p.numel() for p in model.parameters()) == 23_824 + 224 + 10
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_hams_settings_do_not_make_a_run_without_ham_another_run():
    """ham.alpha of a run with HAM off trains nothing: such runs resume, count as finished and are averaged
    whatever the setting's α; with HAM on, α is part of the run."""
    from omegaconf import OmegaConf

    from analysis.runs import Run
    from analysis.variants import split
    from training.trajectory import fingerprint, trajectory_config

    def filled(*overrides):
        cfg = compose_config(["setting=small", *overrides])
        prepare(cfg)
        return cfg

    dense = [filled("+experiment=dense", f"ham.alpha={a}") for a in (20, 50)]
    assert fingerprint(trajectory_config(dense[0])) == fingerprint(trajectory_config(dense[1]))
    assert trajectory_config(dense[0])["ham"] == {"enabled": False}
    with_ham = [filled("+experiment=dense_ham", f"ham.alpha={a}") for a in (20, 50)]
    assert fingerprint(trajectory_config(with_ham[0])) != fingerprint(trajectory_config(with_ham[1]))
    runs = [Run(str(i), OmegaConf.to_container(cfg, resolve=True), {"test_acc": 0.5}, "finished") for i, cfg in enumerate(dense + with_ham)]
    # the small setting's α is 50: that run is the recipe as configured, the other names its difference
    assert list(split(runs[:2])) == [""] and sorted(split(runs[2:])) == ["", "ham.alpha=20"]


def test_sign_ins_settings_do_not_make_a_run_without_sign_in_another_run():
    """Sign-In's period and its decay on m and w mean nothing without Sign-In: a random PaI run recorded
    before sparsity.sign_in_weight_decay existed (key absent: the old behaviour, true) and one recorded
    with the current default (false) are one experiment and one trajectory; with Sign-In they are two."""
    from omegaconf import OmegaConf

    from analysis.runs import Run
    from analysis.variants import split
    from training.trajectory import fingerprint, without_non_trajectory_keys

    def recorded_config(experiment: str, drop_decay_key: bool, period: float = 0.1) -> dict:
        cfg = compose_config(["setting=small", f"+experiment={experiment}", f"sparsity.sign_in_period={period}"])
        prepare(cfg)
        config = OmegaConf.to_container(cfg, resolve=True)
        if drop_decay_key:
            del config["sparsity"]["sign_in_weight_decay"]
        return config

    def runs(*configs: dict) -> list[Run]:
        return [Run(str(i), c, {"test_acc": 0.5}, "finished") for i, c in enumerate(configs)]

    plain = [recorded_config("random", True), recorded_config("random", False, period=0.5)]
    assert len({fingerprint(without_non_trajectory_keys(c)) for c in plain}) == 1
    assert "sign_in_period" not in without_non_trajectory_keys(plain[0])["sparsity"]
    assert list(split(runs(*plain))) == [""]
    signin = [recorded_config("random_signin", True), recorded_config("random_signin", False)]
    assert len({fingerprint(without_non_trajectory_keys(c)) for c in signin}) == 2
    assert sorted(split(runs(*signin))) == ["sparsity.sign_in_weight_decay=False", "sparsity.sign_in_weight_decay=True"]


def test_wandb_groups_are_table_cells_and_runs_compare_keeps_apart_never_share_one():
    """Five rigl_ham runs that compare.py keeps apart (α 10 and 40, full data for 2 epochs, a 2000-image
    subset for 1 epoch) and an ImageNet one: six groups, each the cell's position and the keys in which
    the run differs from its position's defaults, as compare.py labels the cell; the name adds the seed."""
    from omegaconf import OmegaConf

    from analysis.runs import Run
    from analysis.variants import split
    from training.records import wandb_labels

    variants = [["ham.alpha=10"], ["ham.alpha=40"], ["trainer.epochs=2"], ["data.train_subset=2000", "trainer.epochs=1"], []]
    configs = [compose_config(["+experiment=rigl_ham", "sparsity.target=0.9", "setting=small", *v]) for v in variants]
    configs.append(compose_config(["+experiment=rigl_ham", "sparsity.target=0.9"]))  # the ImageNet recipe
    for cfg in configs:
        prepare(cfg)
    labels = [wandb_labels(cfg) for cfg in configs]
    groups = [group for _, group, _ in labels]
    assert len(set(groups)) == 6, groups
    assert groups[0] == "rigl_ham small 90% 10ep [ham.alpha=10]"
    assert groups[2] == "rigl_ham small 90% 2ep"  # the run length is the position's own
    assert groups[3] == "rigl_ham small 90% 1ep [data.train_subset=2000]"
    assert groups[4] == "rigl_ham small 90% 10ep" and groups[5] == "rigl_ham imagenet 90% 100ep"
    assert all(name == f"{group} seed0" for (name, group, _) in labels)
    runs = [Run(str(i), OmegaConf.to_container(cfg, resolve=True), {"test_acc": 0.5}, "finished") for i, cfg in enumerate(configs[:5])]
    labels_by_length = {}  # compare.py splits the runs of one position (one run length)
    for run in runs:
        labels_by_length.setdefault(run.epochs, []).append(run)
    compare_labels = sorted(label for members in labels_by_length.values() for label in split(members))
    assert compare_labels == sorted(g.partition(" [")[2].rstrip("]") for g in groups[:5])
