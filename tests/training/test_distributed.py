"""Synchronisation strategies with 2 gloo processes on CPU, and `asrkit train --nproc 2` end to end.

The strategy tests start two spawned processes once (a module fixture) that train a tiny
multi-head model under every strategy and save the weights; the tests compare them with each
other and with one process trained on the concatenated batches.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from asrkit.errors import AsrkitError
from asrkit.training.config import TrainConfig
from asrkit.training.distributed import DistContext
from asrkit.training.strategies import Gossip, GossipOptions, build_strategy, ring_peers

REPO = Path(__file__).resolve().parents[2]
STEPS = 6
LR = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyMtl(torch.nn.Module):
    """A shared layer and one output layer per language, like the MTL head: a batch uses one of them."""

    languages = ["a", "b", "c"]

    def __init__(self):
        super().__init__()
        self.shared = torch.nn.Linear(4, 8)
        self.heads = torch.nn.ModuleDict({lang: torch.nn.Linear(8, 3) for lang in self.languages})

    def forward(self, x, lang):
        return self.heads[lang](torch.tanh(self.shared(x)))


def _batch(step: int, rank: int):
    """Rank `rank`'s batch at `step`: (x (5, 4), y (5, 3), language). Ranks use different heads."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    lang = "a" if (rank == 0 or step % 3 == 0) else "b"
    return torch.randn(5, 4, generator=g), torch.randn(5, 3, generator=g), lang


def _loss(model, x, y, lang):
    return torch.nn.functional.mse_loss(model(x, lang), y)


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _train_strategy(ctx, name: str, interval: int, opts: dict, record_distance: bool = False):
    """Train TinyMtl for STEPS steps under a strategy.

    Returns (flat weights, [(distance before, after) after_step per step], seconds communicating).
    """
    torch.manual_seed(100 + ctx.rank)  # ranks start apart: the strategy must make them equal first
    model = TinyMtl()
    conf = {"training": {"strategy": name, "sync_interval": interval, "strategy_opts": opts, "seed": 3,
                         "dist_timeout": 20}}
    strategy = build_strategy(TrainConfig.read(conf, ""), ctx)
    wrapped = strategy.wrap(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    distances = []
    for step in range(1, STEPS + 1):
        x, y, lang = _batch(step, ctx.rank)
        _loss(wrapped, x, y, lang).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        before = _replica_distance(model) if record_distance else None
        strategy.after_step(model, opt, step)
        if record_distance:
            distances.append((before, _replica_distance(model)))
    return _flat(model), distances, strategy.comm_seconds()


def _replica_distance(model) -> float:
    """Euclidean distance between the two ranks' parameter vectors (a collective: call on both)."""
    import torch.distributed as dist

    mine = _flat(model)
    other = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(other, mine)
    return float((other[0] - other[1]).norm())


def _reference() -> torch.Tensor:
    """One process, the two ranks' batches of each step concatenated (mean of the two mean losses)."""
    torch.manual_seed(100)
    model = TinyMtl()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(1, STEPS + 1):
        losses = [_loss(model, *_batch(step, r)) for r in range(2)]
        (sum(losses) / 2).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return _flat(model)


def _strategies_worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    ctx = DistContext(rank=rank, world_size=2)
    results = {
        "allreduce": _train_strategy(ctx, "allreduce", 1, {})[0],
        "allreduce_timed": _train_strategy(ctx, "allreduce", 1, {"time_comm": True}),
        "ma_k1": _train_strategy(ctx, "model-averaging", 1, {})[0],
        "ma_k3": _train_strategy(ctx, "model-averaging", 3, {})[0],
        "bmuf_eta0_k3": _train_strategy(ctx, "bmuf", 3, {"block_momentum": 0.0, "block_lr": 1.0})[0],
        "bmuf_default_k3": _train_strategy(ctx, "bmuf", 3, {})[0],
    }
    weights, distances, _ = _train_strategy(ctx, "gossip", 2, {"ring": "shuffled"}, record_distance=True)
    results["gossip"], results["gossip_distances"] = weights, distances
    if rank == 0:
        results["reference"] = _reference()
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _run_workers(target, args_per_rank, timeout: float, first_only: bool = False):
    """Start one spawned process per rank and wait for them (or for rank 0 only); kill what is left."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for args in args_per_rank]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs[:1] if first_only else procs:
        p.join(max(0.1, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return [p.exitcode for p in procs]


@pytest.fixture(scope="module")
def strategy_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("strategies")
    port = _free_port()
    codes = _run_workers(_strategies_worker, [(r, port, str(out)) for r in range(2)], timeout=120)
    assert codes == [0, 0]
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def test_allreduce_two_ranks_equal_one_process_on_concatenated_batches(strategy_results):
    r0, r1 = strategy_results
    assert torch.equal(r0["allreduce"], r1["allreduce"])
    torch.testing.assert_close(r0["allreduce"], r0["reference"], rtol=1e-5, atol=1e-6)
    # The blocking, timed all-reduce of `time_comm` (for benchmarks) gives the same training.
    timed, _, seconds = r0["allreduce_timed"]
    torch.testing.assert_close(timed, r0["allreduce"], rtol=1e-6, atol=1e-7)
    assert seconds > 0
    # The head "c" (the last 27 numbers) is never used by any rank: it keeps rank 0's initial value,
    # which DDP broadcast to rank 1 (seeded differently).
    initial = _flat_initial()
    assert torch.equal(r1["allreduce"][-27:], initial[-27:])
    assert not torch.allclose(r1["allreduce"][:-27], initial[:-27], atol=1e-3)


def _flat_initial():
    torch.manual_seed(100)
    return _flat(TinyMtl())


def test_model_averaging_every_step_with_sgd_equals_allreduce(strategy_results):
    r0, r1 = strategy_results
    torch.testing.assert_close(r0["ma_k1"], r0["allreduce"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r1["ma_k1"], r0["ma_k1"], rtol=0, atol=0)
    # With K = 3 the replicas step alone for two steps: a different (but still common) model.
    assert torch.equal(r0["ma_k3"], r1["ma_k3"])
    assert float((r0["ma_k3"] - r0["ma_k1"]).abs().max()) > 1e-4


def test_bmuf_without_block_momentum_equals_model_averaging(strategy_results):
    r0, r1 = strategy_results
    torch.testing.assert_close(r0["bmuf_eta0_k3"], r0["ma_k3"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r1["bmuf_eta0_k3"], r0["bmuf_eta0_k3"], rtol=0, atol=0)
    # The default block momentum (1 - 1/N = 0.5) moves further along the block updates.
    assert float((r0["bmuf_default_k3"] - r0["ma_k3"]).abs().max()) > 1e-3


def test_gossip_drives_replicas_together(strategy_results):
    r0, r1 = strategy_results
    dists = r0["gossip_distances"]
    assert dists == r1["gossip_distances"]
    # Steps 1, 3, 5 are local: replicas drift apart; steps 2, 4, 6 mix them (with 2 ranks the
    # ring neighbour is the other rank, so the mix is the full average).
    for step, (before, after) in enumerate(dists, start=1):
        if step % 2:
            assert after == before and before > 0
        else:
            assert before > 1e-3 and after < 1e-6 * before
    assert torch.allclose(r0["gossip"], r1["gossip"], atol=1e-6)


def test_ring_peers_keep_the_mean_and_contract_four_replicas():
    world = 4
    mix = np.zeros((world, world))
    for r in range(world):
        peers = ring_peers(r, [0, 1, 2, 3], 1)
        assert peers == sorted({(r - 1) % world, (r + 1) % world})
        mix[r, [r, *peers]] = 1 / (1 + len(peers))
    np.testing.assert_allclose(mix.sum(0), 1)
    np.testing.assert_allclose(mix.sum(1), 1)
    x = np.random.default_rng(0).normal(size=(world, 5))
    y = mix @ x
    np.testing.assert_allclose(y.mean(0), x.mean(0))
    spread = lambda z: np.linalg.norm(z - z.mean(0))  # noqa: E731
    assert spread(y) < 0.6 * spread(x)
    assert ring_peers(0, [0, 1, 2, 3, 4, 5, 6], 2) == [1, 2, 5, 6]


def test_shuffled_ring_is_the_same_on_every_rank_and_changes_per_sync():
    rings = [Gossip(DistContext(rank=r, world_size=6), GossipOptions(ring="shuffled"), seed=5) for r in range(6)]
    orders = [g.ring_order(3) for g in rings]
    assert all(o == orders[0] for o in orders) and sorted(orders[0]) == list(range(6))
    assert len({tuple(rings[0].ring_order(i)) for i in range(10)}) > 1
    fixed = Gossip(DistContext(rank=0, world_size=6), GossipOptions(ring="fixed"))
    assert fixed.ring_order(4) == list(range(6))


def _stuck_peer_worker(rank: int, port: int, out_dir: str, mode: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=3))
    ctx = DistContext(rank=rank, world_size=2)
    conf = {"training": {"strategy": "model-averaging", "sync_interval": 1, "dist_timeout": 3}}
    strategy = build_strategy(TrainConfig.read(conf, ""), ctx)
    model = strategy.wrap(TinyMtl())
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    strategy.after_step(model, opt, 1)
    if rank == 1:
        if mode == "dies":
            os._exit(3)
        time.sleep(60)  # alive but silent: only the timeout can end rank 0's wait
        os._exit(0)
    t0 = time.monotonic()
    try:
        strategy.after_step(model, opt, 2)
        message = "no error"
    except AsrkitError as e:
        message = str(e)
    (Path(out_dir) / "rank0.json").write_text(json.dumps({"error": message, "seconds": time.monotonic() - t0}))
    os._exit(0)  # skip destroy_process_group, which would wait for the dead peer


@pytest.mark.slow  # two process groups waiting out their timeouts
@pytest.mark.parametrize("mode", ["dies", "hangs"])
def test_dead_or_silent_rank_ends_the_job_with_a_clear_error(tmp_path, mode):
    port = _free_port()
    t0 = time.monotonic()
    codes = _run_workers(_stuck_peer_worker, [(r, port, str(tmp_path), mode) for r in range(2)], timeout=30,
                         first_only=True)
    assert time.monotonic() - t0 < 30
    assert codes[0] == 0
    result = json.loads((tmp_path / "rank0.json").read_text())
    assert result["error"].startswith("rank 0: model-averaging synchronisation at step 2 failed: another process "
                                      "died or did not answer within training.dist_timeout=3s")
    assert result["seconds"] < 3 + 3


# ---- `asrkit train --nproc 2` end to end ------------------------------------------------------

TRAIN = ["--set", "model.encoder={type: dnn, hidden_dims: [32], context: 1}", "--set", "data.max_frames=120",
         "--set", "training.log_interval=2", "--set", "optim.lr=5e-3", "--set", "scheduler.warmup_steps=2",
         "--set", "training.ema={decay: 0.9}", "--set", "training.progress=none"]


@pytest.fixture(scope="module")
def toy_experiment(tmp_path_factory):
    from asrkit.text.tokenizer import make_lang_dir
    from tests.training.conftest import make_toy_data_dir

    root = tmp_path_factory.mktemp("dist_e2e")
    train = make_toy_data_dir(root, "train", utts_per_lang=8, seed=1)
    valid = make_toy_data_dir(root, "valid", utts_per_lang=2, seed=2)
    make_lang_dir([train], root / "lang", token_type="char")
    return root, train, valid


def _train_cmd(root, train, valid, out, *extra):
    return [sys.executable, "-m", "asrkit", "train", "--train-data", str(train), "--valid-data", str(valid),
            "--lang", str(root / "lang"), "--out-dir", str(out), "--nproc", "2", *TRAIN, *extra]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", **extra)
    return env


def _weights(path):
    from asrkit.models.modelfile import read_model_file

    return read_model_file(path)["state_dict"]


@pytest.mark.slow  # torchrun and two ranks, each importing torch
@pytest.mark.parametrize("strategy", ["allreduce", "model-averaging", "bmuf", "gossip"])
def test_train_nproc2_each_strategy_writes_final_and_ema(toy_experiment, strategy):
    root, train, valid = toy_experiment
    out = root / f"exp_{strategy}"
    proc = subprocess.run(_train_cmd(root, train, valid, out, "--set", f"training.strategy={strategy}",
                                     "--set", "training.sync_interval=2", "--set", "training.epochs=2"),
                          env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("final.pt", "ema.pt", "log/train.log", "log/train.rank1.log", "config.yaml"):
        assert (out / name).exists(), name
    assert "rank 1 of 2" in (out / "log" / "train.rank1.log").read_text()
    assert not list((out / "tensorboard").glob("*rank1*"))
    final, ema = _weights(out / "final.pt"), _weights(out / "ema.pt")
    assert final.keys() == ema.keys()
    assert any(not torch.equal(final[k], ema[k]) for k in final)
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts[-2:] == [ckpts[-2][:-len(".rank1.pt")] + ".pt", ckpts[-2]] or ckpts[-1].endswith(".rank1.pt")
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    assert [r["valid_loss"] for r in rows if "valid_loss" in r] and all("valid_loss_ema" in r for r in rows
                                                                         if "valid_loss" in r)


@pytest.mark.slow
def test_train_nproc2_resume_is_exact(toy_experiment):
    root, train, valid = toy_experiment
    common = ["--set", "training.strategy=bmuf", "--set", "training.sync_interval=3", "--set", "training.epochs=3",
              "--set", "training.save_interval=2", "--set", "scheduler.total_steps=12"]
    straight = subprocess.run(_train_cmd(root, train, valid, root / "straight", *common, "--set",
                                         "training.max_steps=8"), env=_env(), capture_output=True, text=True,
                              timeout=180)
    assert straight.returncode == 0, straight.stderr[-3000:]
    part = subprocess.run(_train_cmd(root, train, valid, root / "part", *common, "--set", "training.max_steps=5"),
                          env=_env(), capture_output=True, text=True, timeout=180)
    assert part.returncode == 0, part.stderr[-3000:]
    resumed = subprocess.run(_train_cmd(root, train, valid, root / "part", *common, "--set", "training.max_steps=8",
                                        "--resume"), env=_env(), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in (root / "part" / "log" / "train.rank1.log").read_text()
    for name in ("final.pt", "ema.pt"):
        a, b = _weights(root / "straight" / name), _weights(root / "part" / name)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=f"{name}: {k}")


def _ranks_of(marker: str) -> dict[int, int]:
    """{rank: pid} of the live processes whose environment holds MARKER (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"ASRKIT_TEST_MARKER={marker}".encode() in env:
            for item in env:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(entry.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find the rank process")
def test_train_nproc2_killed_rank_ends_the_job(toy_experiment):
    root, train, valid = toy_experiment
    out = root / "killed"
    marker = f"{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen(_train_cmd(root, train, valid, out, "--set", "training.epochs=500", "--set",
                                       "training.dist_timeout=20"),
                            env=_env(ASRKIT_TEST_MARKER=marker), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 90
        log1 = out / "log" / "train.rank1.log"
        while time.monotonic() < deadline and not (log1.exists() and "step" in log1.read_text()):
            time.sleep(0.2)
        ranks = _ranks_of(marker)
        assert 1 in ranks, "rank 1 never started training"
        os.kill(ranks[1], signal.SIGKILL)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=40)
        assert time.monotonic() - t0 < 40
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    # One error, last, with the rank that failed first and how (from torchrun's summary, whose
    # ChildFailedError traceback is not shown: issue 17 B).
    last = stderr.rstrip().splitlines()[-1]
    assert last.startswith("asrkit train: error: ") and sum("error:" in ln for ln in stderr.splitlines()) == 1
    assert "torchrun: rank 1 failed first: Signal 9 (SIGKILL)" in last, stderr
    assert "ChildFailedError" not in stderr and "Traceback" not in stderr
    assert not (out / "final.pt").exists()


def test_train_nproc2_user_error_is_one_line_once(toy_experiment, tmp_path):
    """Issue 17 B: an error every rank hits (here a missing lang dir) is printed once, as the last
    line, without torchrun's ChildFailedError traceback; nothing is written."""
    root, train, valid = toy_experiment
    cmd = _train_cmd(root, train, valid, tmp_path / "exp")
    cmd[cmd.index("--lang") + 1] = str(tmp_path / "nolang")
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert errors == [proc.stderr.rstrip().splitlines()[-1]], proc.stderr
    assert errors[0].startswith("asrkit train: error: ") and "nolang/lang.yaml: not a lang dir" in errors[0]
    assert "Traceback" not in proc.stderr and "ChildFailedError" not in proc.stderr
    assert not (tmp_path / "exp").exists()
