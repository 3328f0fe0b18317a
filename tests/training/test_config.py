"""Training configs: defaults, YAML + --set overrides, unknown keys and bad values fail at start."""

from __future__ import annotations

import pytest

from asrkit.errors import ConfigError
from asrkit.training.config import DEFAULTS, load_config


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\nmodel:\n  encoder: {type: dnn, hidden_dims: [32]}\n")
    conf = load_config(path, ["optim.lr=5e-4", "training.epochs=2", "data.lang_sampling=balanced"])
    assert conf["optim"]["lr"] == 5e-4 and isinstance(conf["optim"]["lr"], float)
    assert conf["training"]["epochs"] == 2
    assert conf["model"]["encoder"] == {"type": "dnn", "hidden_dims": [32]}  # type change drops old keys
    assert conf["scheduler"] == DEFAULTS["scheduler"]


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'"),
    ("data.lang_sampling=sometimes", "choose one of proportional, balanced, temperature"),
    ("training.epochs=0", "must be a positive number"),
    ("training.epochs=many", "must be a number"),
    ("objective.type=ce", "needs 'objective.targets'"),
    ("noequals", "expected key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_config(path)
    path.write_text("traning:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown config key 'traning'"):
        load_config(path)
