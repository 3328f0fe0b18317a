"""Training configs: defaults, YAML files + --set overrides, unknown keys and bad values fail at start."""

from __future__ import annotations

import pytest
import yaml

from asrkit.errors import ConfigError
from asrkit.models.specaugment import SpecAugmentConfig
from asrkit.training.config import SchedulerConfig, load_config, same_config, save_config
from asrkit.training.ema import EmaConfig
from asrkit.training.strategies import BmufOptions


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\nmodel:\n  encoder: {type: dnn, hidden_dims: [32]}\n")
    conf = load_config(path, ["optim.lr=5e-4", "training.epochs=2", "data.lang_sampling=balanced"])
    assert conf.optim.lr == 5e-4 and isinstance(conf.optim.lr, float)
    assert conf.training.epochs == 2
    assert conf.model.encoder.type == "dnn" and conf.model.encoder.hidden_dims == [32]
    assert conf.model.encoder.context == 5  # a new type starts from its own defaults
    assert conf.model.head.type == "mtl"    # the trainer's default head
    assert conf.scheduler == SchedulerConfig()


def test_later_configs_override_earlier_ones(tmp_path):
    base, preset = tmp_path / "base.yaml", tmp_path / "preset.yaml"
    base.write_text("model:\n  encoder: {type: conformer, d_model: 144, num_layers: 4}\n  head: {type: lrmf, rank: 64}\n"
                    "optim: {lr: 2.0e-3}\ntraining: {epochs: 30}\n")
    preset.write_text("model:\n  encoder: {d_model: 96}\n  head: {rank: 28}\ntraining: {epochs: 20}\n")
    conf = load_config([base, preset], ["training.epochs=5"])
    enc = conf.model.encoder
    assert (enc.type, enc.d_model, enc.num_layers, enc.subsampling_channels) == ("conformer", 96, 4, 96)
    assert (conf.model.head.type, conf.model.head.rank) == ("lrmf", 28)
    assert conf.optim.lr == 2e-3 and conf.training.epochs == 5


def test_a_new_strategy_drops_the_old_strategys_options():
    conf = load_config(None, ["training.strategy=bmuf", "training.strategy_opts={block_lr: 0.5}"])
    assert conf.training.strategy_opts == BmufOptions(block_lr=0.5)
    conf = load_config(None, ["training.strategy=gossip"], base=conf.to_dict())
    assert conf.training.strategy_opts.type == "gossip" and conf.training.strategy_opts.neighbours == 1


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'"),
    ("objective.foo=1", r"unknown config key 'objective.foo' \(known keys here: max_unalignable, mix, "),
    ("data.lang_sampling=sometimes", "choose one of proportional, balanced, temperature"),
    ("training.epochs=0", "must be a positive number"),
    ("training.epochs=many", "must be a number"),
    ("objective.type=ce", "needs 'objective.targets'"),
    ("noequals", "expected key=value"),
    ("model.encoder.hiden_dim=3", r"model.encoder: unknown option\(s\) 'hiden_dim' for type 'conformer'"),
    ("data.specaugment={time_masks: 2}", r"data.specaugment: unknown option\(s\) 'time_masks'"),
    ("training.ema={decy: 0.9}", r"unknown key\(s\) in training.ema: decy \(known: decay, start_step\)"),
    ("training.ema={decay: 1.0}", r"training.ema.decay must be in \[0, 1\), not 1.0"),
    ("objective.mix={type: ctc, weight: 2}", r"objective.mix.weight: expected a number in \[0, 1\], got 2"),
    ("objective.type=rnnt", "objective 'rnnt' needs a transducer"),
    ("training.max_steps=-1", "training.max_steps: expected a positive integer or null, got -1"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("opts, message", [
    (["training.strategy=bmuf", "training.strategy_opts={momentum: 0.5}"], "momentum not used by strategy 'bmuf'"),
    (["training.strategy=bmuf", "training.strategy_opts={block_momentum: 1.0}"], "block_momentum must be in"),
    (["training.strategy=gossip", "training.strategy_opts={ring: star}"], "ring must be fixed or shuffled"),
    (["training.strategy_opts={neighbours: 1}"], "neighbours not used by strategy 'allreduce'"),
])
def test_bad_strategy_options_name_the_key(opts, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, opts)


def test_strategy_options_are_checked_in_a_one_process_run():
    """Bug fix (issue 16): before the typed config, `training.strategy_opts` was a free-form mapping
    that only the strategy itself checked, and a single process builds no strategy, so a typo there
    (`neighbors` for gossip's `neighbours`) was silently ignored until the same config ran on
    several processes. Now every config is checked when it is read, whatever the process count."""
    with pytest.raises(ConfigError, match=r"training.strategy_opts: neighbors not used by strategy 'gossip' "
                                          r"\(known: neighbours, ring\)"):
        load_config(None, ["training.strategy=gossip", "training.strategy_opts={neighbors: 2}"])
    conf = load_config(None, ["training.strategy=gossip", "training.strategy_opts={neighbours: 2}"])
    assert conf.training.strategy_opts.neighbours == 2


def test_error_wording_is_the_one_users_had():
    """The sections declared in asrkit.schema keep the sentences their older checks said (issue 16:
    no change a user could see): the whole message, not only the part the tests above match."""
    def message(overrides):
        with pytest.raises(ConfigError) as e:
            load_config(None, overrides)
        return str(e.value)

    assert message(["optim.lrr=1"]) == ("--set optim.lrr=1: unknown config key 'optim.lrr' (known keys here: betas, "
                                        "eps, lr, lr_scaling, momentum, name, nesterov, weight_decay)")
    assert message(["data.lang_sampling=sometimes"]) == ("config 'data.lang_sampling' is 'sometimes'; choose one of "
                                                         "proportional, balanced, temperature")
    assert message(["training.epochs=0"]) == "config 'training.epochs' must be a positive number, not 0"
    assert message(["optim.lr=-1e-3"]) == "config 'optim.lr' must be a positive number, not -0.001"
    assert message(["training.epochs=many"]) == "config key 'training.epochs' must be a number, not 'many'"
    assert message(["model.encoder.type=tdnn"]) == ("--set model.encoder.type=tdnn: model.encoder.type: unknown type "
                                                    "'tdnn' (choose from dnn, lstm, conformer, emformer)")
    assert message(["training.ema={decy: 0.9}"]) == ("--set training.ema={decy: 0.9}: unknown key(s) in training.ema: "
                                                     "decy (known: decay, start_step)")
    assert message(["training.strategy=bmuf", "training.strategy_opts={momentum: 0.5}"]) == (
        "--set training.strategy_opts={momentum: 0.5}: training.strategy_opts: momentum not used by strategy 'bmuf' "
        "(known: block_lr, block_momentum, nesterov, reset_momentum)")
    # Checks the older code did not make are worded the schema's way.
    assert message(["training.epochs=1.5"]) == "training.epochs: expected a positive integer, got 1.5"


def test_a_ce_mix_without_alignments_is_refused_when_the_config_is_read():
    """Bug fix (issue 16): before the typed config, `objective.mix: {type: ce, weight: w}` without
    `targets` passed load_config; `asrkit train` then created the exp dir, wrote config.yaml and cmd,
    and only the dataset refused it, with "the objective needs alignments (objective.targets)". That
    named the wrong key: with a ctc main objective `objective.targets` is never read, so following
    the advice changed nothing. Now the config is refused when read, naming the mix's own key."""
    mix = "objective.mix={type: ce, weight: 0.5}"
    for extra in ([], ["objective.targets=ali.scp"]):
        with pytest.raises(ConfigError, match=r"^objective.mix: type ce needs 'targets' \(an alignment rspecifier"):
            load_config(None, [mix, *extra])
    conf = load_config(None, ["objective.mix={type: ce, weight: 0.5, targets: ali.scp}"])
    assert conf.objective.mix.targets == "ali.scp"


@pytest.mark.parametrize("empty", ["{}", "null", None])
@pytest.mark.parametrize("section, key, on", [
    ("training", "ema", ("{start_step: 5}", EmaConfig(start_step=5))),
    ("data", "specaugment", ("{fill: mean}", SpecAugmentConfig(fill="mean"))),
])
def test_an_empty_ema_or_specaugment_section_is_off(tmp_path, empty, section, key, on):
    """`training.ema: {}` means no EMA and `data.specaugment: {}` no SpecAugment, as before the typed
    config (issue 16); any option given turns the feature on, the others taking their defaults."""
    path = tmp_path / "c.yaml"
    path.write_text("" if empty is None else f"{section}:\n  {key}: {empty}\n")  # None: not in the file
    conf = load_config(path)
    assert getattr(getattr(conf, section), key) is None and conf.to_dict()[section][key] is None
    assert getattr(getattr(load_config(path, [f"{section}.{key}={on[0]}"]), section), key) == on[1]
    assert getattr(getattr(load_config(None, [f"{section}.{key}={{}}"]), section), key) is None


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_config(path)
    path.write_text("traning:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown config key 'traning'"):
        load_config(path)


def test_unknown_key_names_the_layer_that_brought_it(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("model:\n  encoder: {type: dnn}\n")
    second.write_text("model:\n  encoder: {d_model: 96}\n")  # a conformer option, but the encoder is a dnn
    with pytest.raises(ConfigError, match=r"b\.yaml: model.encoder: unknown option\(s\) 'd_model' for type 'dnn'"):
        load_config([first, second])


def test_saved_config_reads_back_the_same(tmp_path):
    conf = load_config(None, ["model.encoder={type: dnn, num_layers: 2, hidden_dim: 8}", "training.ema={decay: 0.9}",
                              "data.specaugment={fill: mean}", "objective.mix={type: ctc, weight: 0.2}",
                              "objective.type=kl", "objective.targets=post.scp"])
    save_config(conf, tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["model"]["encoder"]["hidden_dims"] == [8, 8] and saved["training"]["ema"] == {"decay": 0.9,
                                                                                              "start_step": 0}
    assert load_config(base=saved) == conf
    assert same_config(tmp_path / "config.yaml", conf)
    assert not same_config(tmp_path / "config.yaml", load_config(None, ["training.epochs=3"]))
    (tmp_path / "config.yaml").write_text("training: {epochs: 0}\n")
    assert not same_config(tmp_path / "config.yaml", conf)
