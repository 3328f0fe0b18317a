"""`asrkit train`: the orchestration of one training run, in small functions tests can call.

The entry point `run_training` reads data, builds the model, optimizer and schedule, and loops
over epochs; the work is in `build_*`, `compute_loss`, `train_epoch`, `validate` and the
checkpoint helpers. One process or many (torchrun): the synchronisation strategy is a pluggable
object (asrkit.training.distributed) that the loop calls around each step.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asrkit.data.dataset import AsrDataset, Batch, batch_loader
from asrkit.data.features_info import feature_settings
from asrkit.data.sampler import BatchPlan, inference_batches, padding_ratio
from asrkit.errors import AsrkitError, ConfigError
from asrkit.fileio import atomic_write_text, dir_lock
from asrkit.logutil import check_device, command_line, setup_logging, versions
from asrkit.models.build import build_model, lrmf_model_from_mtl
from asrkit.models.ctc import UnalignableCount, ctc_greedy, edit_distance
from asrkit.models.heads import LinearHead
from asrkit.models.modelfile import (
    CmvnSettings,
    ModelMeta,
    TokenSets,
    atomic_torch_save,
    make_model_file,
    model_from_file,
    read_model_file,
)
from asrkit.models.pathways import build_pathway_hook
from asrkit.models.specaugment import SpecAugment
from asrkit.text.tokenizer import LangDir
from asrkit.training import checkpoint as ckpt
from asrkit.training.config import TrainConfig, same_config, save_config
from asrkit.training.distributed import (
    DistContext,
    Strategy,
    all_reduce_sums,
    init_distributed,
    is_comm_failure,
    unwrap,
)
from asrkit.training.ema import ModelEma, build_ema
from asrkit.training.inputs import build_datasets, vocab_sizes_for
from asrkit.training.metrics import InputTimer, MetricsLog
from asrkit.training.objectives import build_objective, check_ctc_lengths, objective_loss
from asrkit.training.schedule import build_scheduler, scaled_lr
from asrkit.training.strategies import build_strategy

log = logging.getLogger("asrkit.train")


@dataclass
class TrainState:
    """Where the run is: optimizer steps taken, epoch, next batch of the epoch, best validation loss."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_valid_loss: float = math.inf
    history: list[dict] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """`training.device` as a torch device (auto: cuda when there is one)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device is cuda but no CUDA device is available")
    return torch.device(check_device(name))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_training_model(conf: TrainConfig, *, feat_dim: int, vocab_sizes: dict[str, int], device: torch.device):
    """Build the model from config; with `training.init_from`, load every parameter whose name and shape match."""
    model = build_model(conf.model, feat_dim=feat_dim, vocab_sizes=vocab_sizes)
    init = conf.training.init_from
    if init:
        src = read_model_file(init)
        if int(src.get("feat_dim", feat_dim)) != feat_dim:
            raise ConfigError(f"{init}: the model takes {src['feat_dim']}-dim features but the training data has "
                              f"{feat_dim}-dim features (make them with the same make-feats options)")
        weights = _svd_initialised(src, conf.model.head, init) if conf.training.init_lrmf_svd else src["state_dict"]
        own = model.state_dict()
        loaded, skipped = [], []
        for k, v in weights.items():
            if k in own and own[k].shape == v.shape:
                own[k] = v
                loaded.append(k)
            else:
                skipped.append(k)
        model.load_state_dict(own)
        new = sorted(set(vocab_sizes) - set(src.get("vocab_sizes", {})))
        log.info("init from %s: %d tensors loaded, %d not used; new languages: %s", init, len(loaded),
                 len(skipped), ", ".join(new) or "none")
        # The encoder is what a transfer carries over; a model whose encoder matches nothing (other
        # layer sizes, another encoder type) is from an incompatible config, even if a bias happens to fit.
        if not any(k.startswith("encoder.") for k in loaded):
            mismatch = next((f"; e.g. '{k}' is {tuple(v.shape)} there, {tuple(own[k].shape)} here"
                             for k, v in weights.items() if k in own), "")
            raise ConfigError(f"{init}: no encoder parameter matches this model (different architecture?){mismatch}")
    if conf.training.freeze != "none":
        model.freeze(conf.training.freeze)
    return model.to(device)


def _svd_initialised(src: dict, head, init: str) -> dict[str, torch.Tensor]:
    """The weights of the init model file with its mtl head replaced by an lrmf head from an SVD of the
    mtl output layers ("Multi-lingual speech recognition with low-rank multi-task DNNs"), at the
    configured rank (`head`: the config's head section)."""
    if head.type != "lrmf":
        raise ConfigError("training.init_lrmf_svd needs model.head.type lrmf")
    mtl, _ = model_from_file(src, init)
    lrmf = lrmf_model_from_mtl(mtl, head.rank)
    log.info("init from %s: lrmf head (rank %d) from an SVD of its mtl output layers", init, head.rank)
    return lrmf.state_dict()


def build_optimizer(conf: TrainConfig, model: torch.nn.Module, *, world_size: int = 1) -> torch.optim.Optimizer:
    o = conf.optim
    lr = scaled_lr(o.lr, o.lr_scaling, world_size, conf.training.accum_grad)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("every parameter is frozen: nothing to train")
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)


def autocast_context(conf: TrainConfig, device: torch.device):
    amp = conf.training.amp
    if device.type == "cuda" and amp in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if amp == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_meta(conf: TrainConfig, model, *, lang_dir, train_dirs, state: TrainState | None = None,
               global_cmvn: np.ndarray | None = None) -> ModelMeta:
    """What a model file records besides the weights, so later stages need only `--model`.
    `global_cmvn`: the training set's global CMVN stats (`AsrDataset.global_cmvn`), which later
    stages then apply to every utterance."""
    per_speaker = global_cmvn is None and all((Path(d) / "cmvn.scp").is_file() for d in train_dirs)
    cmvn = CmvnSettings(conf.data.norm_vars, None if global_cmvn is None else global_cmvn.tolist(),
                        per_speaker=per_speaker)
    train = {"step": state.step, "epoch": state.epoch, "best_valid_loss": state.best_valid_loss} if state else None
    return ModelMeta.for_model(model, objective=conf.objective.type, cmvn=cmvn,
                               features=feature_settings(train_dirs[0]) if train_dirs else None,
                               tokens=TokenSets.from_lang_dir(lang_dir) if lang_dir is not None else None, train=train)


def check_mixed_batches(conf: TrainConfig, model) -> None:
    """`data.language_homogeneous: false` (batches that mix languages) works with one output layer
    for every language (a linear head over a joint token set, `asrkit make-lang --joint`, as ESPnet's
    and icefall's multilingual recipes), or with per-language (mtl/lrmf) heads for a plain CTC
    objective: each utterance goes through its language's layer, the logits padded with -inf. Not
    with a transducer (per-language predictor embeddings), frame targets (ce/kl) over per-language
    heads, or pathway training (a mask per batch).

    Raises:
        ConfigError: a setup that cannot take mixed batches, naming why.
    """
    if conf.data.language_homogeneous:
        return
    obj = conf.objective
    if not isinstance(_plain(model).head, LinearHead) and (obj.type != "ctc" or obj.mix):
        raise ConfigError(f"data.language_homogeneous: false with a '{conf.model.head.type}' head "
                          f"(one output layer per language) works for objective ctc only, not "
                          f"'{obj.type}'{' with a mix' if obj.mix else ''}; use a linear head over a "
                          "joint token set (asrkit make-lang --joint) or keep batches language-homogeneous")
    if conf.training.pathways:
        raise ConfigError("data.language_homogeneous: false cannot be used with training.pathways "
                          "(each batch runs with one language's mask)")


def _plain(model):
    return model.module if hasattr(model, "module") else model


def compute_loss(model, batch: Batch, objective, subsampling: int | None = None) -> tuple[torch.Tensor, dict]:
    """Forward a batch and return (loss, stats) for the objective. A batch that mixes languages
    (`check_mixed_batches` says which setups allow it) goes through one output layer for all (a
    linear head), or for CTC through each utterance's own layer (`AsrModel.forward` with a list).

    A transducer computes its own loss from the token targets: `model(feats, feat_lens, lang,
    tokens=..., token_lens=...) -> (loss, normaliser)` (its forward calls `transducer_loss`).
    """
    lang = batch.lang
    if lang is None:
        if isinstance(_plain(model).head, LinearHead):
            lang = batch.langs[0]  # its one output layer serves every language
        elif objective is not None and objective.main.type == "ctc" and not objective.mix:
            lang = batch.langs
        else:
            raise AsrkitError("a batch mixes languages; set data.language_homogeneous: true")
    if objective is None:
        tokens, token_lens = batch.targets["text"]
        # Through forward (which calls transducer_loss), so that a DDP wrapper syncs the gradients.
        loss, norm = model(batch.feats, batch.feat_lens, lang, tokens=tokens, token_lens=token_lens)
        return loss, {"loss": float(loss.detach()), "normaliser": float(norm)}
    logits, out_lens = model(batch.feats, batch.feat_lens, lang)
    return objective_loss(objective, logits.float(), out_lens, batch.targets, batch.keys, subsampling)


def _num_frames(batch: Batch) -> int:
    return int(batch.feat_lens.sum())


@torch.no_grad()
def validate(model, dataset: AsrDataset, conf: TrainConfig, device: torch.device, ctx=None) -> dict:
    """Validation loss (mean per the objective's normaliser) and, for CTC, the token error rate."""
    ctx = ctx or DistContext()
    objective = build_objective(conf.objective)
    was_training = model.training
    model.eval()
    batches = inference_batches(dataset.utts, conf.data.max_frames, conf.data.max_utts)
    batches = batches[ctx.rank::ctx.world_size]
    sums = {"loss": 0.0, "count": 0.0, "errors": 0.0, "tokens": 0.0}
    for batch in batch_loader(dataset, batches, num_workers=0):
        batch = batch.to(device)
        if objective is None:  # transducer: loss only
            with autocast_context(conf, device):
                loss, stats = compute_loss(model, batch, None)
            sums["loss"] += float(loss) * stats["normaliser"]
            sums["count"] += stats["normaliser"]
            continue
        with autocast_context(conf, device):
            logits, out_lens = model(batch.feats, batch.feat_lens, batch.lang)
        loss, stats = objective_loss(objective, logits.float(), out_lens, batch.targets, batch.keys)
        sums["loss"] += float(loss) * stats["normaliser"]
        sums["count"] += stats["normaliser"]
        if "ctc" in (obj.type for obj in (objective.main, objective.mix) if obj is not None):
            tokens, token_lens = batch.targets["text"]
            for hyp, ref, n in zip(ctc_greedy(logits, out_lens), tokens.cpu().tolist(), token_lens.tolist()):
                sums["errors"] += edit_distance(ref[:n], hyp)
                sums["tokens"] += n
    sums = all_reduce_sums(sums, ctx)
    model.train(was_training)
    out = {"valid_loss": sums["loss"] / max(sums["count"], 1e-9)}
    if sums["tokens"]:
        out["valid_ter"] = 100.0 * sums["errors"] / sums["tokens"]
    return out


def find_latest_checkpoint(out_dir: Path, rank: int = 0, world_size: int = 1) -> Path | None:
    """This rank's file of the newest checkpoint that every rank finished writing (None if there is none)."""
    ckpts = ckpt.list_checkpoints(out_dir / "checkpoints")
    for latest in reversed(ckpts):
        # A job killed while saving can leave rank 0's file without the others': skip that step.
        if all(latest.with_name(latest.stem + f".rank{r}.pt").exists() for r in range(1, world_size)):
            return latest.with_name(latest.stem + f".rank{rank}.pt") if rank else latest
    return None


def _log_param_counts(model) -> None:
    counts = model.param_counts()
    parts = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.1f}" for k, v in counts.items())
    log.info("parameters: %s", parts)


@dataclass
class Run:
    """What the epochs of one training run work with, built once by `run_training`."""

    conf: TrainConfig
    model: torch.nn.Module    # the plain model
    wrapped: torch.nn.Module  # the model as the strategy runs it (DDP, or the model itself)
    dataset: AsrDataset
    plan: BatchPlan
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    strategy: Strategy
    ctx: DistContext
    out_dir: Path
    meta: Callable[[TrainState], ModelMeta]  # the model file's metadata (it records the training state)
    ema: ModelEma | None = None
    specaug: SpecAugment | None = None
    hooks: list = field(default_factory=list)
    metrics: MetricsLog | None = None


def run_training(conf: TrainConfig, *, train_dirs, valid_dirs=(), lang_dir: str | None,
                 out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                 command: str | None = None) -> Path:
    """Train a model as configured; returns the path of `final.pt`.

    Every input (lang dir, data dirs, targets, the model, a --resume config) is checked before
    `out_dir` is written; the main process holds `out_dir`'s lock (`asrkit.fileio.dir_lock`).

    Raises:
        ConfigError: bad config, an existing run without --resume, a --resume with a changed config,
            data that does not fit the model, or another train writing `out_dir`.
    """
    out_dir = Path(out_dir)
    main = int(os.environ.get("RANK", "0")) == 0
    with dir_lock(out_dir, "train", ConfigError) if main else contextlib.nullcontext():
        return _run_training(conf, train_dirs=train_dirs, valid_dirs=valid_dirs, lang_dir=lang_dir, out_dir=out_dir,
                             resume=resume, overwrite=overwrite, command=command)


def _run_training(conf: TrainConfig, *, train_dirs, valid_dirs, lang_dir: str | None, out_dir: Path, resume: bool,
                  overwrite: bool, command: str | None) -> Path:
    tconf = conf.training
    device = resolve_device(tconf.device)
    ctx = init_distributed(device.type, tconf.dist_timeout)
    if ctx.distributed and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    # Until the inputs are checked the log is held in memory; it goes to log/train.log once the
    # exp dir is written.
    setup_logging(stderr=ctx.is_main)
    held = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1)
    logging.getLogger("asrkit").addHandler(held)
    log.info("%s", command or command_line())
    log.info("%s; device %s; rank %d of %d", versions(), device, ctx.rank, ctx.world_size)

    final = out_dir / "final.pt"
    latest = find_latest_checkpoint(out_dir, ctx.rank, ctx.world_size)
    if not resume and not overwrite:
        if final.exists() and (out_dir / "config.yaml").exists() and same_config(out_dir / "config.yaml", conf):
            log.info("%s exists with the same config: nothing to do (--overwrite to retrain)", final)
            return final
        if latest is not None or final.exists():
            raise ConfigError(f"{out_dir} holds an earlier run; use --resume to continue it or --overwrite to start over")
    if resume:
        ckpt.check_resume_config(conf.to_dict(), out_dir / "config.yaml")
        if latest is None:
            log.warning("--resume: no checkpoint in %s; starting from scratch", out_dir / "checkpoints")

    seed_everything(tconf.seed + ctx.rank)
    lang = LangDir.load(lang_dir) if lang_dir else None
    train_ds, valid_ds = build_datasets(conf, train_dirs, valid_dirs, lang)
    vocab_sizes = vocab_sizes_for(conf, lang, train_ds)
    model = build_training_model(conf, feat_dim=train_ds.feat_dim(), vocab_sizes=vocab_sizes, device=device)
    check_mixed_batches(conf, model)
    # The inputs are good: now the exp dir is written.
    log_file = out_dir / "log" / ("train.log" if ctx.is_main else f"train.rank{ctx.rank}.log")
    logging.getLogger("asrkit").removeHandler(held)  # so that setup_logging does not close it
    setup_logging(log_file, stderr=ctx.is_main)
    held.setTarget(logging.getLogger("asrkit").handlers[-1])
    held.close()  # flushes the held records into the log file
    (out_dir / "checkpoints").mkdir(exist_ok=True)
    if overwrite and ctx.is_main:
        ckpt.prune_checkpoints(out_dir / "checkpoints", keep_last=0)
        (out_dir / "log" / "metrics.jsonl").unlink(missing_ok=True)
        latest = None
    if ctx.is_main:
        save_config(conf, out_dir / "config.yaml")
        atomic_write_text(out_dir / "cmd", (command or command_line()) + "\n")
    _log_param_counts(model)
    check_ctc_lengths(conf.objective, model, train_ds, valid_ds)
    dconf = conf.data
    plan = BatchPlan(train_ds.utts, max_frames=dconf.max_frames, max_utts=dconf.max_utts,
                     lang_sampling=dconf.lang_sampling, lang_alpha=dconf.lang_alpha,
                     homogeneous=dconf.language_homogeneous, shuffle=dconf.shuffle,
                     seed=tconf.seed, rank=ctx.rank, world_size=ctx.world_size, max_padding=dconf.max_padding)
    steps_per_epoch = math.ceil(plan.num_batches(0) / tconf.accum_grad)
    total_steps = tconf.max_steps or tconf.epochs * steps_per_epoch
    padding = padding_ratio(plan.epoch_batches(0), {u.key: u.num_frames for u in train_ds.utts})
    log.info("%d training utterances in %d languages (%s); %d batches per epoch per process (padding %.1f%%); "
             "%d steps planned", len(train_ds.utts), len(train_ds.languages),
             ", ".join(f"{k} {v:.2f}" for k, v in plan.lang_probs.items()), plan.num_batches(0), 100 * padding,
             total_steps)
    optimizer = build_optimizer(conf, model, world_size=ctx.world_size)
    scheduler = build_scheduler(optimizer, conf.scheduler, total_steps)
    ema = build_ema(tconf.ema, model)
    run = Run(conf, model, model, train_ds, plan, device, optimizer, scheduler, build_strategy(conf, ctx), ctx,
              out_dir, meta=lambda state: model_meta(conf, model, lang_dir=lang, train_dirs=train_dirs, state=state,
                                                     global_cmvn=train_ds.global_cmvn),
              ema=ema, specaug=SpecAugment(dconf.specaugment) if dconf.specaugment is not None else None,
              hooks=build_hooks(conf, model))
    state = TrainState()
    if resume and latest is not None:
        state = _restore(latest, run)
        log.info("resumed from %s: step %d, epoch %d, batch %d", latest, state.step, state.epoch, state.batch_in_epoch)
    run.wrapped = run.strategy.wrap(model)
    run.metrics = MetricsLog(out_dir, enabled=ctx.is_main)
    try:
        _train_epochs(run, state, valid_ds)
    except RuntimeError as e:
        _raise_if_comm_failure(e, ctx, tconf.dist_timeout)
        raise
    finally:
        run.metrics.close()
    if ctx.is_main:
        atomic_torch_save(make_model_file(unwrap(model), meta=run.meta(state)), final)
        if run.ema is not None:
            atomic_torch_save(make_model_file(model, meta=run.meta(state), state_dict=run.ema.model_state_dict()),
                              out_dir / "ema.pt")
        log.info("wrote %s%s", final, " and ema.pt" if run.ema is not None else "")
    if ctx.distributed:
        torch.distributed.barrier()
    return final


def run_finished(tconf, state: TrainState) -> bool:
    """Whether the run is done: `max_steps` optimizer steps when set (however many epochs that
    takes), else `epochs` passes over the data. `tconf`: the config's `training` section."""
    if tconf.max_steps:
        return state.step >= tconf.max_steps
    return state.epoch >= tconf.epochs


def _train_epochs(run: Run, state: TrainState, valid_ds: AsrDataset | None) -> None:
    """Epochs until `run_finished`: each trained, validated and checkpointed; then the last synchronisation."""
    model, strategy, ema, ctx = run.model, run.strategy, run.ema, run.ctx
    while not run_finished(run.conf.training, state):
        stopped = train_epoch(run, state)
        # Local-SGD replicas drift between syncs: at an epoch end, validate and checkpoint one model.
        # (Not when max_steps stopped mid-epoch: the checkpoint keeps each rank's replica, so a
        # resumed run goes on exactly as an uninterrupted one.)
        if not stopped:
            if strategy.synchronize(model, state.step) and ema is not None:
                ema.update(model, state.step)
            state.epoch += 1
            state.batch_in_epoch = 0
        results = validate(model, valid_ds, run.conf, run.device, ctx) if valid_ds is not None else {}
        if ema is not None and valid_ds is not None:
            results["valid_loss_ema"] = validate(ema.averaged.module, valid_ds, run.conf, run.device, ctx)["valid_loss"]
        if results:
            log.info("epoch %d: %s", state.epoch, ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
            run.metrics.write(state.step, {"epoch": state.epoch, **results})
        state.history.append({"epoch": state.epoch, "step": state.step, **results})
        if results and results["valid_loss"] < state.best_valid_loss:
            state.best_valid_loss = results["valid_loss"]
            if ctx.is_main:
                atomic_torch_save(make_model_file(model, meta=run.meta(state)), run.out_dir / "best.pt")
        save_checkpoint(run, state)
    strategy.synchronize(model, state.step, final=True)


def _raise_if_comm_failure(e: RuntimeError, ctx, timeout_s: float) -> None:
    """Turn a collective that failed because another rank died or timed out into one clear AsrkitError."""
    if ctx.distributed and is_comm_failure(e):
        raise AsrkitError(f"rank {ctx.rank}: communication with the other training processes failed: another "
                          f"process died or did not answer within training.dist_timeout={timeout_s:g}s "
                          f"({str(e).splitlines()[0]})") from None


def train_epoch(run: Run, state: TrainState) -> bool:
    """Train from the state's position to the end of the epoch; returns True if max_steps stopped it.

    `run.hooks` are objects with any of `before_forward(model, batch)`, `after_backward(model, batch)`,
    `before_step(model, optimizer, batch)` and `after_step(model, optimizer, batch)` (e.g. the
    language pathway masks of asrkit.models.pathways); each is called when present.
    """
    tconf, model, wrapped, strategy, optimizer = run.conf.training, run.model, run.wrapped, run.strategy, run.optimizer
    accum = tconf.accum_grad
    objective = build_objective(run.conf.objective)
    batches = run.plan.epoch_batches(state.epoch)
    start = state.batch_in_epoch
    loader = InputTimer(batch_loader(run.dataset, batches[start:], num_workers=run.conf.data.num_workers,
                                     pin_memory=run.device.type == "cuda"))
    progress = _progress(len(batches), start, run.ctx, tconf.progress, desc=f"epoch {state.epoch + 1}")
    window = _new_window(strategy, loader)
    lost, stopped = UnalignableCount(), False
    wrapped.train()
    for i, batch in enumerate(loader, start=start):
        window["padded"] += batch.feats.shape[0] * batch.feats.shape[1]
        batch = batch.to(run.device)
        if run.specaug is not None:
            batch.feats = run.specaug(batch.feats, batch.feat_lens)
        last_of_step = (i + 1) % accum == 0 or i + 1 == len(batches)
        _call(run.hooks, "before_forward", model, batch)
        with (contextlib.nullcontext() if last_of_step else strategy.no_sync(wrapped)):
            with autocast_context(run.conf, run.device):
                loss, stats = compute_loss(wrapped, batch, objective, model.frame_subsampling)
            (loss / accum).backward()
        _call(run.hooks, "after_backward", model, batch)
        window["loss"] += float(loss.detach()) * stats["normaliser"]
        window["count"] += stats["normaliser"]
        lost.lost, lost.total = lost.lost + int(stats.get("unalignable", 0)), lost.total + len(batch.keys)
        window["frames"] += _num_frames(batch)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{float(loss.detach()):.3g}",
                                 frames_per_s=f"{window['frames'] / max(time.perf_counter() - window['time'], 1e-9):.0f}",
                                 refresh=False)
        if not last_of_step:
            continue
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tconf.grad_clip or math.inf)
        if torch.isfinite(grad_norm):
            _call(run.hooks, "before_step", model, optimizer, batch)
            optimizer.step()
            _call(run.hooks, "after_step", model, optimizer, batch)
        else:
            log.warning("step %d: gradient norm is %s; update skipped (utterances %s ...)", state.step + 1,
                        float(grad_norm), ", ".join(batch.keys[:3]))
        optimizer.zero_grad(set_to_none=True)
        run.scheduler.step()
        state.step += 1
        state.batch_in_epoch = i + 1
        synced = strategy.after_step(model, optimizer, state.step)
        if run.ema is not None and synced:
            run.ema.update(model, state.step)
        if state.step % tconf.log_interval == 0 or state.batch_in_epoch == len(batches):
            elapsed = max(time.perf_counter() - window["time"], 1e-9)
            values = {"epoch": state.epoch, "loss": window["loss"] / max(window["count"], 1e-9),
                      "lr": run.scheduler.get_last_lr()[0], "frames_per_s": window["frames"] / elapsed,
                      "grad_norm": float(grad_norm)}
            values["padding_ratio"] = window["padded"] / max(window["frames"], 1) - 1.0
            values["input_stall"] = (loader.wait_seconds - window["wait"]) / elapsed
            if strategy.comm_seconds():
                values["comm_s"] = strategy.comm_seconds()
                values["comm_share"] = (values["comm_s"] - window["comm"]) / elapsed
            log.info("epoch %d step %d: loss %.4f, lr %.3g, %.0f frames/s, padding %.1f%%, input stall %.1f%%",
                     state.epoch + 1, state.step, values["loss"], values["lr"], values["frames_per_s"],
                     100 * values["padding_ratio"], 100 * values["input_stall"])
            run.metrics.write(state.step, values)
            window = _new_window(strategy, loader)
        if tconf.save_interval and state.step % tconf.save_interval == 0:
            save_checkpoint(run, state)
        if tconf.max_steps and state.step >= tconf.max_steps:
            stopped = True
            break
    if progress is not None:
        progress.close()
    if lost.lost:  # the start-up check accepted them (objective.max_unalignable); say so every epoch
        log.warning("epoch %d: %s; their CTC loss is 0", state.epoch + 1, lost.describe(model.frame_subsampling))
    return stopped


def _new_window(strategy, loader: InputTimer) -> dict:
    """The running sums of one logging interval."""
    return {"loss": 0.0, "count": 0.0, "frames": 0, "padded": 0, "time": time.perf_counter(),
            "comm": strategy.comm_seconds(), "wait": loader.wait_seconds}


def _call(hooks, name: str, *args) -> None:
    for hook in hooks:
        fn = getattr(hook, name, None)
        if fn is not None:
            fn(*args)


def build_hooks(conf: TrainConfig, model) -> list:
    """Training hooks the config asks for (language pathway masks: `training.pathways`)."""
    if not conf.training.pathways:
        return []
    return [build_pathway_hook(conf.training.pathways, model)]


def _progress(total: int, start: int, ctx, mode: str, desc: str):
    if not ctx.is_main or mode == "none" or (mode == "auto" and not sys.stderr.isatty()):
        return None
    return tqdm(total=total, initial=start, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def save_checkpoint(run: Run, state: TrainState) -> None:
    """Write a checkpoint (every rank its own file when distributed) and keep the newest `keep_last`."""
    name = ckpt.checkpoint_name(state.step, run.ctx.rank)
    payload = {"model": make_model_file(run.model, meta=run.meta(state)), "optimizer": run.optimizer.state_dict(),
               "scheduler": run.scheduler.state_dict(), "ema": run.ema.state_dict() if run.ema is not None else None,
               "strategy": run.strategy.state_dict(), "state": asdict(state), "rng": ckpt.rng_state(),
               "world_size": run.ctx.world_size}
    atomic_torch_save(payload, run.out_dir / "checkpoints" / name)
    if run.ctx.distributed:  # every rank has written this step before rank 0 removes older ones
        torch.distributed.barrier()
    if run.ctx.is_main:
        ckpt.prune_checkpoints(run.out_dir / "checkpoints", max(1, run.conf.training.keep_last))


def _restore(path: Path, run: Run) -> TrainState:
    payload = ckpt.load_checkpoint(path)
    if payload.get("world_size", 1) != run.ctx.world_size:
        raise ConfigError(f"{path}: written by {payload.get('world_size', 1)} processes; resume with the same number "
                          f"(now {run.ctx.world_size})")
    run.model.load_state_dict(payload["model"]["state_dict"])
    run.optimizer.load_state_dict(payload["optimizer"])
    run.scheduler.load_state_dict(payload["scheduler"])
    if run.ema is not None and payload.get("ema") is not None:
        run.ema.load_state_dict(payload["ema"])
    run.strategy.load_state_dict(payload.get("strategy") or {})
    ckpt.set_rng_state(payload["rng"])
    return TrainState(**payload["state"])
