"""BMUF's block update on hand-computed numbers (one gloo process, so the worker mean is the model).

Each block the "workers" move the single weight by +1 from where the block started. With η = 0.5,
ζ = 1 the block gradient is always 1 and the filtered update Δ goes 1, 1.5, 1.75 (→ ζ / (1 − η) = 2):
- classical block momentum: the model after each sync is 1, 2.5, 4.25;
- Nesterov: the next block starts at the look-ahead θ + ηΔ, and the block gradient is measured from
  there (CNTK's BlockMomentumSGD): 1.5, 3.75, 6.375. Measuring it from the non-look-ahead point
  instead counts ηΔ twice and diverges (1.5, 4, ...), the bug this test guards against.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from asrkit.training.distributed import DistContext
from asrkit.training.strategies import Bmuf, BmufOptions


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    yield DistContext(rank=0, world_size=1)
    dist.destroy_process_group()


def _blocks(ctx, opts: dict, n: int = 3):
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    strategy = Bmuf(ctx, BmufOptions(**{"block_momentum": 0.5, "block_lr": 1.0, **opts}), sync_interval=1)
    strategy.wrap(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.weight.grad = torch.ones_like(model.weight)
    opt.step()  # creates the momentum buffer
    positions, buffers = [], []
    with torch.no_grad():
        model.weight.zero_()
    for step in range(1, n + 1):
        with torch.no_grad():
            model.weight.add_(1.0)  # the block's local progress
        assert strategy.after_step(model, opt, step)
        positions.append(float(model.weight.detach()))
        buffers.append(float(opt.state[model.weight]["momentum_buffer"].abs().sum()))
    return positions, buffers


def test_classical_block_momentum(one_process_group):
    positions, buffers = _blocks(one_process_group, {"nesterov": False})
    assert positions == pytest.approx([1.0, 2.5, 4.25])
    assert buffers == [0.0, 0.0, 0.0]  # reset_momentum defaults to true, as in CNTK


def test_nesterov_block_momentum_measures_the_block_from_the_look_ahead_point(one_process_group):
    positions, _ = _blocks(one_process_group, {"nesterov": True})
    assert positions == pytest.approx([1.5, 3.75, 6.375])


def test_block_momentum_zero_is_model_averaging_and_momentum_can_be_kept(one_process_group):
    positions, buffers = _blocks(one_process_group, {"block_momentum": 0.0, "reset_momentum": False})
    assert positions == pytest.approx([1.0, 2.0, 3.0])
    assert all(b > 0 for b in buffers)


def test_adam_first_moment_is_reset_second_kept(one_process_group):
    model = torch.nn.Linear(2, 1)
    strategy = Bmuf(one_process_group, sync_interval=2)
    strategy.wrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    for step in (1, 2):
        model(torch.ones(3, 2)).sum().backward()
        opt.step()
        opt.zero_grad()
        synced = strategy.after_step(model, opt, step)
    assert synced
    for state in opt.state.values():
        assert float(state["exp_avg"].abs().sum()) == 0.0
        assert float(state["exp_avg_sq"].abs().sum()) > 0.0
        assert float(state["step"]) == 2.0
