"""Training configs: defaults, YAML files + --set overrides, unknown keys and bad values fail at start."""

from __future__ import annotations

import pytest
import yaml

from asrkit.errors import ConfigError
from asrkit.training.config import SchedulerConfig, load_config, same_config, save_config
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
    ("optim.lrr=1", r"--set optim.lrr=1: optim: unknown option\(s\) 'lrr' \(known: name, lr, "),
    ("data.lang_sampling=sometimes", "expected one of proportional, balanced, temperature, got 'sometimes'"),
    ("training.epochs=0", "training.epochs: expected a positive integer, got 0"),
    ("training.epochs=many", "training.epochs: expected a positive integer, got 'many'"),
    ("objective.type=ce", "needs 'objective.targets'"),
    ("noequals", "expected key=value"),
    ("model.encoder.hiden_dim=3", r"model.encoder: unknown option\(s\) 'hiden_dim' for type 'conformer'"),
    ("data.specaugment={time_masks: 2}", r"data.specaugment: unknown option\(s\) 'time_masks'"),
    ("training.ema={decy: 0.9}", r"training.ema: unknown option\(s\) 'decy' \(known: decay, start_step\)"),
    ("training.ema={decay: 1.0}", r"training.ema.decay: expected a number in \[0, 1\), got 1.0"),
    ("objective.mix={type: ctc, weight: 2}", r"objective.mix.weight: expected a number in \[0, 1\], got 2"),
    ("objective.type=rnnt", "objective 'rnnt' needs a transducer"),
    ("training.max_steps=-1", "training.max_steps: expected a positive integer or null, got -1"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("opts, message", [
    (["training.strategy=bmuf", "training.strategy_opts={momentum: 0.5}"],
     r"training.strategy_opts: unknown option\(s\) 'momentum' for strategy 'bmuf'"),
    (["training.strategy=bmuf", "training.strategy_opts={block_momentum: 1.0}"],
     r"training.strategy_opts.block_momentum: expected a number in \[0, 1\) or null, got 1.0"),
    (["training.strategy=gossip", "training.strategy_opts={ring: star}"],
     "training.strategy_opts.ring: expected one of fixed, shuffled, got 'star'"),
    (["training.strategy_opts={neighbours: 1}"], r"unknown option\(s\) 'neighbours' for strategy 'allreduce'"),
])
def test_bad_strategy_options_name_the_key(opts, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, opts)


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_config(path)
    path.write_text("traning:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown section\(s\) 'traning' \(known: model, objective"):
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
