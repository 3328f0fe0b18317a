"""Data-parallel synchronisation strategies for several processes: allreduce, model-averaging, bmuf, gossip.

`allreduce` is PyTorch's DDP (gradients averaged every step). The others let every worker step
alone and mix parameters every K = `training.sync_interval` optimizer steps: `model-averaging`
(local SGD, PyTorch's `model_averaging.utils.average_parameters`), `bmuf` (block momentum over the
averaged block update) and `gossip` (each worker averages with its ring neighbours by point-to-point
messages, no global collective). `build_strategy(conf, ctx)` picks the configured one; each
strategy's options (`training.strategy_opts`) are a section of its own below.
"""

from __future__ import annotations

import abc
import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.algorithms.model_averaging import utils as ma_utils
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from asrkit.errors import AsrkitError, ConfigError
from asrkit.schema import (
    BOOL,
    OPTIONS_WORDING,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Kind,
    OneOf,
    Section,
    one_of,
    option,
    optional,
)
from asrkit.training.distributed import DistContext, Strategy


@dataclass
class AllReduceOptions(Section):
    wording = OPTIONS_WORDING
    type = "allreduce"
    find_unused_parameters: bool | str = option("auto", Kind("auto, true or false",
                                                              lambda v: v == "auto" or isinstance(v, bool),
                                                              rule="auto, true or false"))
    bucket_cap_mb: float | None = option(None, optional(POSITIVE), omit_none=True)
    time_comm: bool = option(False, BOOL)


@dataclass
class ModelAveragingOptions(Section):
    wording = OPTIONS_WORDING
    type = "model-averaging"


@dataclass
class BmufOptions(Section):
    wording = OPTIONS_WORDING
    type = "bmuf"
    block_momentum: float | None = option(None, optional(PROBABILITY))  # η; null: 1 - 1/N for N processes
    block_lr: float = option(1.0, POSITIVE)                               # ζ
    nesterov: bool = option(False, BOOL)
    reset_momentum: bool = option(True, BOOL)


@dataclass
class GossipOptions(Section):
    wording = OPTIONS_WORDING
    type = "gossip"
    ring: str = option("fixed", one_of("fixed", "shuffled"))
    neighbours: int = option(1, POSITIVE_INT)


# `training.strategy_opts`: the options of the strategy `training.strategy` names.
STRATEGY_OPTIONS = OneOf((AllReduceOptions, ModelAveragingOptions, BmufOptions, GossipOptions),
                         default="allreduce", selected_by="strategy")


def build_strategy(conf, ctx: DistContext) -> Strategy:
    """The configured strategy for this job (a single process always gets the no-op one).

    `conf`: the training config (asrkit.training.config.TrainConfig); its `training` section names
    the strategy and holds its options.
    """
    if not ctx.distributed:
        return Strategy(ctx)
    t = conf.training
    classes = {c.name: c for c in (AllReduce, ModelAveraging, Bmuf, Gossip)}
    return classes[t.strategy](ctx, t.strategy_opts, sync_interval=t.sync_interval, dist_timeout=t.dist_timeout,
                               seed=t.seed)


class _Timed:
    """Adds up the wall time of communication and turns a failed collective into a clear error."""

    def __init__(self, ctx: DistContext, what: str, timeout_s: float):
        self.ctx, self.what, self.timeout_s = ctx, what, timeout_s
        self.seconds = 0.0

    @contextlib.contextmanager
    def __call__(self, step: int):
        t0 = time.perf_counter()
        try:
            yield
        except (RuntimeError, dist.DistError) as e:  # gloo raises RuntimeError, NCCL DistBackendError
            raise AsrkitError(
                f"rank {self.ctx.rank}: {self.what} at step {step} failed: another process died or did not "
                f"answer within training.dist_timeout={self.timeout_s:g}s ({str(e).splitlines()[0]})") from None
        finally:
            self.seconds += time.perf_counter() - t0


def _float_buffers(model: torch.nn.Module) -> list[torch.Tensor]:
    # BatchNorm running statistics are averaged with the weights; integer counters are left alone.
    return [b for b in model.buffers() if b.is_floating_point()]


def _trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    # Frozen parameters never change, so they never need synchronising.
    return [p for p in model.parameters() if p.requires_grad]


def broadcast_model(model: torch.nn.Module, src: int = 0) -> None:
    """Give every rank rank `src`'s parameters and buffers (ranks seed differently, so they start apart)."""
    with torch.no_grad():
        for t in model.state_dict().values():
            dist.broadcast(t, src)


class _LocalSgd(Strategy, metaclass=abc.ABCMeta):
    """Workers step alone; parameters are mixed every `sync_interval` steps and at epoch ends."""

    name = "local-sgd"

    def __init__(self, ctx: DistContext, opts=None, **settings):
        super().__init__(ctx, opts, **settings)
        self.interval = self.sync_interval
        if self.interval < 1:
            raise ConfigError(f"training.sync_interval must be >= 1, not {self.interval}")
        self.timer = _Timed(ctx, f"{self.name} synchronisation", self.dist_timeout)
        self.resumed = False
        self.last_sync_step = 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        # A resumed run restored each rank's own replica (they may differ between syncs): keep them.
        if not self.resumed:
            with self.timer(0):
                broadcast_model(model)
        self._setup(model)
        return model

    def _setup(self, model: torch.nn.Module) -> None:
        pass

    def after_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> bool:
        if step % self.interval:
            return False
        with self.timer(step):
            self._sync(model, step)
        self.last_sync_step = step
        return True

    def synchronize(self, model: torch.nn.Module, step: int, final: bool = False) -> bool:
        if self.last_sync_step == step:
            return False
        with self.timer(step):
            self._sync(model, step)
        self.last_sync_step = step
        return True

    @abc.abstractmethod
    def _sync(self, model: torch.nn.Module, step: int) -> None:
        """Bring the replicas together (each local-SGD strategy its own way)."""

    def state_dict(self) -> dict:
        return {"last_sync_step": self.last_sync_step}

    def load_state_dict(self, state: dict) -> None:
        self.resumed = True
        self.last_sync_step = int(state.get("last_sync_step", 0))

    def comm_seconds(self) -> float:
        return self.timer.seconds


class ModelAveraging(_LocalSgd):
    """Local SGD: every K steps each parameter (and float buffer) becomes the mean over all ranks.

    Uses `torch.distributed.algorithms.model_averaging.utils.average_parameters` (one flattened
    all-reduce). Not its `PeriodicModelAverager`: that skips parameters whose `.grad` is None, which
    after `zero_grad(set_to_none=True)` is all of them, and would leave an MTL head that was trained
    earlier in the period but idle at the sync step un-averaged.
    """

    name = "model-averaging"

    def _sync(self, model: torch.nn.Module, step: int) -> None:
        with torch.no_grad():
            ma_utils.average_parameters(iter(_trainable(model) + _float_buffers(model)), None)


class Bmuf(_LocalSgd):
    """Block-wise model update filtering (Chen & Huo, 2016) every K steps.

    With θ_0 the point the workers started the block from and θ̄ their mean at its end:
    G = θ̄ − θ_0; Δ ← η Δ + ζ G; θ_g = θ_0 + Δ; the next block starts from θ_g, or from the
    look-ahead θ_g + η Δ with Nesterov (the block gradient is always measured from where the
    workers started, as in CNTK's BlockMomentumSGD). η = 0, ζ = 1 is plain model averaging.
    Options (`training.strategy_opts`): `block_momentum` η (default 1 − 1/N), `block_lr` ζ
    (default 1), `nesterov` (default false), `reset_momentum` (default true: zero the local
    optimizer's momentum — SGD's buffer, Adam's first moment — after each sync, as CNTK does by
    default, so that the local optimizer does not keep pushing along the step the block momentum
    already took). θ_0 and Δ are the same on every rank and are saved in the checkpoint for resume.
    """

    name = "bmuf"

    def __init__(self, ctx: DistContext, opts: BmufOptions | None = None, **settings):
        super().__init__(ctx, opts or BmufOptions(), **settings)
        momentum = self.opts.block_momentum
        self.block_momentum = 1.0 - 1.0 / ctx.world_size if momentum is None else float(momentum)
        self.block_lr = float(self.opts.block_lr)
        self.nesterov, self.reset_momentum = self.opts.nesterov, self.opts.reset_momentum
        self.optimizer: torch.optim.Optimizer | None = None
        self.global_params: torch.Tensor | None = None  # θ_0 of the next block, flat (num_params,)
        self.delta: torch.Tensor | None = None          # Δ, flat (num_params,)
        self._loaded: dict = {}

    def _setup(self, model: torch.nn.Module) -> None:
        params = _trainable(model)
        flat = parameters_to_vector(params).detach()
        if self._loaded.get("global_params") is not None:
            self.global_params = self._loaded["global_params"].to(flat.device, flat.dtype)
            self.delta = self._loaded["delta"].to(flat.device, flat.dtype)
            if self.global_params.shape != flat.shape:
                raise ConfigError(f"bmuf state in the checkpoint has {self.global_params.numel()} parameters, "
                                  f"the model {flat.numel()}")
        else:
            self.global_params = flat.clone()
            self.delta = torch.zeros_like(flat)

    def _sync(self, model: torch.nn.Module, step: int) -> None:
        params = _trainable(model)
        with torch.no_grad():
            mean = parameters_to_vector(params).detach().clone()
            dist.all_reduce(mean)
            mean /= self.ctx.world_size
            buffers = _float_buffers(model)
            if buffers:
                ma_utils.average_parameters(iter(buffers), None)
            block_grad = mean - self.global_params
            self.delta.mul_(self.block_momentum).add_(block_grad, alpha=self.block_lr)
            self.global_params.add_(self.delta)
            if self.nesterov:
                self.global_params.add_(self.delta, alpha=self.block_momentum)
            # A copy: vector_to_parameters makes the parameters views of it, and the optimizer
            # must not write into θ_0.
            vector_to_parameters(self.global_params.clone(), params)
            if self.reset_momentum and self.optimizer is not None:
                reset_optimizer_momentum(self.optimizer)

    def after_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> bool:
        self.optimizer = optimizer
        return super().after_step(model, optimizer, step)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.global_params is not None:
            state.update(global_params=self.global_params.cpu().clone(), delta=self.delta.cpu().clone())
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._loaded = dict(state)


def reset_optimizer_momentum(optimizer: torch.optim.Optimizer) -> None:
    """Zero the first-moment state of `optimizer` (SGD's `momentum_buffer`, Adam's `exp_avg`);
    Adam's second moment and step count are kept, so its step size stays calibrated."""
    for state in optimizer.state.values():
        for key in ("momentum_buffer", "exp_avg"):
            buf = state.get(key)
            if isinstance(buf, torch.Tensor):
                buf.zero_()


def ring_peers(rank: int, order: list[int], neighbours: int) -> list[int]:
    """The ranks `rank` averages with: the `neighbours` nearest on each side of it in the ring `order`.

    Every rank has the same number of peers and the relation is symmetric, so the mixing matrix
    (1/(1+peers) on the peers and the diagonal) is doubly stochastic: the mean over ranks is kept.
    """
    n = len(order)
    pos = order.index(rank)
    peers = []
    for k in range(1, neighbours + 1):
        for q in (order[(pos - k) % n], order[(pos + k) % n]):
            if q != rank and q not in peers:
                peers.append(q)
    return sorted(peers)


class Gossip(_LocalSgd):
    """Decentralised averaging (the synchronous form of AD-PSGD): every K steps each worker replaces
    its parameters by the mean of its own and its ring neighbours', exchanged with point-to-point
    send/recv (`dist.batch_isend_irecv`), never a global all-reduce.

    Options: `ring` = fixed (rank order) | shuffled (a new ring at each sync, drawn from
    `training.seed` and the sync number, so every rank draws the same); `neighbours` per side
    (default 1). Replicas differ during training; at the end they are averaged once (all-reduce) so
    that `final.pt` is the consensus model.
    """

    name = "gossip"

    def __init__(self, ctx: DistContext, opts: GossipOptions | None = None, **settings):
        super().__init__(ctx, opts or GossipOptions(), **settings)
        self.ring, self.neighbours = self.opts.ring, self.opts.neighbours

    def ring_order(self, sync_index: int) -> list[int]:
        """The ring at sync number `sync_index` (the same list on every rank)."""
        if self.ring == "fixed":
            return list(range(self.ctx.world_size))
        rng = np.random.default_rng([self.seed, 7919, sync_index])
        return [int(r) for r in rng.permutation(self.ctx.world_size)]

    def _sync(self, model: torch.nn.Module, step: int) -> None:
        tensors = _trainable(model) + _float_buffers(model)
        peers = ring_peers(self.ctx.rank, self.ring_order(step // self.interval), self.neighbours)
        with torch.no_grad():
            mine = parameters_to_vector(tensors).detach().clone()
            received = [torch.empty_like(mine) for _ in peers]
            ops = [dist.P2POp(dist.isend, mine, q) for q in peers]
            ops += [dist.P2POp(dist.irecv, buf, q) for q, buf in zip(peers, received)]
            for work in dist.batch_isend_irecv(ops):
                work.wait()
            mixed = mine.clone()
            for buf in received:
                mixed += buf
            mixed /= 1 + len(peers)
            vector_to_parameters(mixed, tensors)

    def synchronize(self, model: torch.nn.Module, step: int, final: bool = False) -> bool:
        # Mid-run epoch ends stay decentralised; the end of training makes one consensus model.
        if not final:
            return False
        with self.timer(step):
            with torch.no_grad():
                ma_utils.average_parameters(iter(_trainable(model) + _float_buffers(model)), None)
        self.last_sync_step = step
        return True


class AllReduce(Strategy):
    """DistributedDataParallel: gradients averaged in the backward pass of every step.

    A language-homogeneous batch leaves the other languages' output layers (MTL heads, LRMF B_l)
    without a gradient, and which ones differs across ranks and steps, so `static_graph` cannot be
    used; DDP must look for unused parameters each step (`find_unused_parameters`). Option
    `find_unused_parameters`: auto (default: on when the model has more than one language) | true |
    false. `time_comm: true` replaces DDP's overlapped all-reduce by a blocking, timed one (for
    `comm_seconds` in benchmarks; slower). `bucket_cap_mb` is DDP's bucket size.
    """

    name = "allreduce"

    def __init__(self, ctx: DistContext, opts: AllReduceOptions | None = None, **settings):
        super().__init__(ctx, opts or AllReduceOptions(), **settings)
        self.timeout_s = self.dist_timeout
        self.comm = {"seconds": 0.0}

    def _find_unused(self, model: torch.nn.Module) -> bool:
        value = self.opts.find_unused_parameters
        if value == "auto":
            return len(getattr(model, "languages", []) or []) > 1
        return value

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel as DDP

        device = next(model.parameters()).device
        kwargs = {"find_unused_parameters": self._find_unused(model)}
        if self.opts.bucket_cap_mb is not None:
            kwargs["bucket_cap_mb"] = self.opts.bucket_cap_mb
        if device.type == "cuda":
            kwargs.update(device_ids=[device.index], output_device=device.index)
        try:
            wrapped = DDP(model, **kwargs)
        except (RuntimeError, dist.DistError) as e:
            raise AsrkitError(f"rank {self.ctx.rank}: DDP set-up failed: another process died or did not answer "
                              f"within training.dist_timeout={self.timeout_s:g}s ({str(e).splitlines()[0]})") from None
        if self.opts.time_comm:
            wrapped.register_comm_hook(self.comm, _timed_allreduce_hook)
        return wrapped

    def no_sync(self, wrapped: torch.nn.Module):
        return wrapped.no_sync()

    def comm_seconds(self) -> float:
        return self.comm["seconds"]


def _timed_allreduce_hook(state, bucket):
    """A DDP comm hook: blocking all-reduce of the bucket's mean, its wall time added to state["seconds"].

    `state` is a dict, `bucket` a dist.GradBucket; returns a completed torch.futures.Future of the
    averaged bucket. (No annotations: DDP checks them, and this module's postponed annotations
    would be strings.)
    """
    t0 = time.perf_counter()
    buf = bucket.buffer()
    buf.div_(dist.get_world_size())
    dist.all_reduce(buf)
    if buf.is_cuda:
        torch.cuda.synchronize(buf.device)
    state["seconds"] += time.perf_counter() - t0
    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(buf)
    return fut
