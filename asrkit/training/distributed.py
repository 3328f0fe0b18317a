"""Process groups and synchronisation strategies for training under torchrun.

A strategy decides how replicas stay in step: `allreduce` averages gradients every step (DDP);
the others let each worker step alone and synchronise parameters every K steps. The trainer calls
`wrap` once, `no_sync` during gradient accumulation, and `after_step` after each optimizer step;
`after_step` returns True when the replicas were just synchronised (the EMA updates then), and
`synchronize` at each epoch end and once at the end of training (so validation and `final.pt` see
one model). The strategies themselves, and `build_strategy`, live in asrkit.training.strategies.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asrkit.errors import AsrkitError

log = logging.getLogger("asrkit.train")


@dataclass
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str, timeout_s: float = 300) -> DistContext:
    """Join the process group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK); a no-op for one process.

    NCCL on GPUs, gloo on CPU. `timeout_s` bounds how long a collective waits for a dead rank.
    MASTER_ADDR/MASTER_PORT come from torchrun (or the caller's environment).

    Raises:
        AsrkitError: the rendezvous with the other processes failed or timed out.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        except (RuntimeError, dist.DistError) as e:
            raise AsrkitError(f"rank {rank}: could not join the {world} training processes within "
                              f"{timeout_s:g}s ({str(e).splitlines()[0]})") from None
    return DistContext(rank=rank, world_size=world, local_rank=local_rank)


class Strategy:
    """One process: nothing to synchronise."""

    name = "single"

    def __init__(self, ctx: DistContext, opts=None, *, sync_interval: int = 1, dist_timeout: float = 300.0,
                 seed: int = 0):
        """`opts`: the strategy's own options (`training.strategy_opts`, an asrkit.schema section);
        the keywords are the `training` values every strategy may read."""
        self.ctx, self.opts = ctx, opts
        self.sync_interval, self.dist_timeout, self.seed = int(sync_interval), float(dist_timeout), int(seed)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def no_sync(self, wrapped: torch.nn.Module):
        return contextlib.nullcontext()

    def after_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> bool:
        return True

    def synchronize(self, model: torch.nn.Module, step: int, final: bool = False) -> bool:
        """Bring replicas that drifted since the last sync together (epoch end, or `final`); True if it did."""
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def comm_seconds(self) -> float:
        return 0.0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DDP wrapper."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def is_comm_failure(error: BaseException) -> bool:
    """Whether an exception is a failed or timed-out collective (gloo reports plain RuntimeErrors)."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return any(mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed", "Timed out",
                                         "timed out"))


def all_reduce_sums(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Sum float statistics over ranks (identity for one process)."""
    if not ctx.distributed:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))
