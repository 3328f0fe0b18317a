"""The EMA model: closed-form average of a known weight sequence, start_step, buffers, resume, config errors."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.training.ema import EmaConfig, ModelEma, build_ema


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("running", torch.zeros(2))


def _set(model: Net, value: float) -> None:
    with torch.no_grad():
        for t in (model.lin.weight, model.lin.bias, model.running):
            t.fill_(value)


def test_ema_equals_closed_form_on_a_known_sequence():
    decay, start = 0.8, 2
    model = Net()
    ema = ModelEma(model, decay=decay, start_step=start)
    values = [0.5, -1.0, 2.0, 3.0, 0.25, 4.0]  # the weights after steps 1..6
    for step, v in enumerate(values, start=1):
        _set(model, v)
        ema.update(model, step)
    # Up to start_step the EMA copies the model; after it, e_n = d e_{n-1} + (1 - d) w_n, so
    # e_6 = d^4 w_2 + (1 - d) * sum_{k=3..6} d^(6-k) w_k.
    n = len(values)
    expected = decay ** (n - start) * values[start - 1]
    expected += (1 - decay) * sum(decay ** (n - k) * values[k - 1] for k in range(start + 1, n + 1))
    state = ema.model_state_dict()
    for key in ("lin.weight", "lin.bias", "running"):
        torch.testing.assert_close(state[key], torch.full_like(state[key], expected), rtol=1e-6, atol=1e-7)
    assert expected == pytest.approx(1.0192, abs=1e-6)  # -0.4096 + 0.2 * 7.144, worked by hand
    # The model being trained is untouched by the EMA (nothing flows back).
    assert float(model.lin.weight[0, 0].detach()) == values[-1]


def test_ema_copies_until_start_step_and_resumes_exactly():
    model = Net()
    ema = ModelEma(model, decay=0.5, start_step=3)
    for step, v in enumerate([1.0, 2.0, 3.0], start=1):
        _set(model, v)
        ema.update(model, step)
        assert float(ema.model_state_dict()["lin.bias"][0]) == v
    saved = ema.state_dict()
    other = ModelEma(Net(), decay=0.5, start_step=3)
    other.load_state_dict(saved)
    for e in (ema, other):
        _set(model, 5.0)
        e.update(model, 4)
    assert float(ema.model_state_dict()["lin.bias"][0]) == float(other.model_state_dict()["lin.bias"][0]) == 4.0


def test_build_ema_checks_its_keys():
    assert build_ema(None, Net()) is None
    assert build_ema({"decay": 0.99}, Net()).decay == 0.99
    assert build_ema(EmaConfig(decay=0.5, start_step=3), Net()).start_step == 3
    assert build_ema({}, Net()) is None  # `training.ema: {}` is off, as before the typed config (issue 16)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in training.ema: decy"):
        build_ema({"decy": 0.9}, Net())
    with pytest.raises(ConfigError, match=r"training.ema.decay must be in \[0, 1\), not 1.0"):
        build_ema({"decay": 1.0}, Net())
    with pytest.raises(ConfigError, match=r"training.ema.decay must be in \[0, 1\), not 1.0"):
        ModelEma(Net(), decay=1.0)
