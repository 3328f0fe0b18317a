"""The trainer on tiny learnable data: CTC/MTL/LRMF, CE and KL objectives, exact resume, checks at start."""

from __future__ import annotations

import json
import re

import kaldiio
import numpy as np
import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.models.modelfile import load_model, read_model_file, read_model_meta
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training

# data.max_padding=null: the toy utterances (6-40 frames) would otherwise make batches of a few
# utterances, and the learning and resume checks below are tuned to batches filled to max_frames.
DNN = ["model.encoder={type: dnn, hidden_dims: [48, 48], context: 2}", "data.max_frames=250",
       "data.max_padding=null", "training.log_interval=2", "optim.lr=5e-3", "scheduler.warmup_steps=5"]


def _train(tmp_path, toy_data, name, extra=(), epochs=3, **kw):
    train_dir, valid_dir = toy_data
    lang = tmp_path / "lang"
    if not lang.exists():
        make_lang_dir([train_dir], lang, token_type="char")
    conf = load_config(None, [*DNN, f"training.epochs={epochs}", *extra])
    out = tmp_path / name
    final = run_training(conf, train_dirs=[train_dir], valid_dirs=[valid_dir], lang_dir=str(lang), out_dir=out, **kw)
    return out, final


def _valid_losses(out):
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    return [r["valid_loss"] for r in rows if "valid_loss" in r]


def test_mtl_ctc_learns_and_writes_experiment_dir(tmp_path, toy_data):
    out, final = _train(tmp_path, toy_data, "mtl", epochs=4)
    losses = _valid_losses(out)
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    for name in ("config.yaml", "cmd", "log/train.log", "best.pt", "final.pt"):
        assert (out / name).exists(), name
    log = (out / "log" / "train.log").read_text()
    assert "parameters: encoder" in log
    assert re.search(r"batches per epoch per process \(padding \d+\.\d%\)", log)
    assert re.search(r"step \d+: loss .* frames/s, padding \d+\.\d%, input stall \d+\.\d%", log)
    rows = [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "frames_per_s" in r]
    assert steps and all(r["padding_ratio"] >= 0.0 and 0.0 <= r["input_stall"] < 1.0 for r in steps)
    model, meta = load_model(final)
    assert meta.languages == ["de", "en"] and meta.objective == "ctc"
    toks = meta.tokenizers()
    assert toks["en"].decode(toks["en"].encode("abc")) == "abc"
    feats = torch.randn(1, 30, 12)
    logits, lens = model(feats, torch.tensor([30]), "de")
    assert logits.shape == (1, 30, meta.vocab_sizes["de"])


def test_same_config_rerun_skips_and_other_run_needs_flag(tmp_path, toy_data):
    out, final = _train(tmp_path, toy_data, "run", epochs=1)
    stamp = final.stat().st_mtime_ns
    _train(tmp_path, toy_data, "run", epochs=1)
    assert final.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="--resume .* --overwrite"):
        _train(tmp_path, toy_data, "run", epochs=2)


def _weights(path):
    return read_model_file(path)["state_dict"]


def test_resume_mid_epoch_is_bit_identical(tmp_path, toy_data):
    # One schedule for all three runs (by default max_steps would also set its length).
    extra = ["data.specaugment={num_freq_masks: 1, freq_mask_width: 3, num_time_masks: 1, time_mask_width: 5}",
             "model.encoder={type: dnn, hidden_dims: [48, 48], context: 2, dropout: 0.2}", "scheduler.total_steps=16"]
    straight, _ = _train(tmp_path, toy_data, "straight", [*extra, "training.max_steps=10"], epochs=4)
    part, _ = _train(tmp_path, toy_data, "part", [*extra, "training.max_steps=5"], epochs=4)
    # The toy data makes 4 batches per epoch: step 5 is the first batch of the second epoch.
    resumed, _ = _train(tmp_path, toy_data, "part", [*extra, "training.max_steps=10"], epochs=4, resume=True)
    a, b = _weights(straight / "final.pt"), _weights(resumed / "final.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _metrics(out):
    import json

    return [json.loads(line) for line in (out / "log" / "metrics.jsonl").read_text().splitlines()]


def test_max_steps_is_the_length_of_the_run(tmp_path, toy_data):
    # The toy data makes 4 batches per epoch: 6 steps take a second epoch, whatever training.epochs says.
    extra = ["training.max_steps=6", "training.log_interval=1", "scheduler.warmup_steps=0", "optim.lr=1e-2"]
    out, final = _train(tmp_path, toy_data, "steps", extra, epochs=1)
    steps = [r for r in _metrics(out) if "lr" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert read_model_meta(final).train["step"] == 6 and read_model_meta(final).train["epoch"] == 1
    # ... and the schedule's length: the cosine decay reaches min_lr_ratio (0.05) at step 6.
    assert steps[-1]["lr"] == pytest.approx(1e-2 * 0.05)
    # A finished run resumed with the same max_steps takes no further step.
    _train(tmp_path, toy_data, "steps", extra, epochs=1, resume=True)
    assert read_model_meta(final).train["step"] == 6


def test_lrmf_reports_reduction(tmp_path, toy_data):
    out, _ = _train(tmp_path, toy_data, "lrmf", ["model.head={type: lrmf, rank: 8}"], epochs=1)
    log = (out / "log" / "train.log").read_text()
    assert "reduction_percent" in log


def test_language_missing_from_lang_dir(tmp_path, toy_data):
    train_dir, valid_dir = toy_data
    make_lang_dir([valid_dir], tmp_path / "lang_en", token_type="char")
    (train_dir / "utt2lang").write_text((train_dir / "utt2lang").read_text().replace(" de\n", " xx\n"))
    conf = load_config(None, DNN)
    with pytest.raises(ConfigError, match="language 'xx' .* is not in lang dir"):
        run_training(conf, train_dirs=[train_dir], lang_dir=str(tmp_path / "lang_en"), out_dir=tmp_path / "e")


def _frame_targets(data_dir, path, kind, num_classes=5):
    """Alignment (int vectors) or soft targets (float matrices) with as many frames as the features."""
    feats = dict(kaldiio.load_scp(str(data_dir / "feats.scp")))
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as w:
        for k in sorted(feats):
            n = feats[k].shape[0]
            labels = (np.arange(n) // 4 + len(k)) % num_classes  # a learnable function of position
            if kind == "ali":
                w(k, labels.astype(np.int32))
            else:
                post = np.full((n, num_classes), 0.05, dtype=np.float32)
                post[np.arange(n), labels] += 1 - 0.05 * num_classes
                w(k, post + rng.uniform(0, 1e-3, post.shape).astype(np.float32) * 0)
    return f"{path}.scp"


@pytest.mark.parametrize("kind", ["ce", "kl"])
def test_frame_level_objectives_train(tmp_path, toy_data, kind):
    train_dir, valid_dir = toy_data
    tr = _frame_targets(train_dir, tmp_path / "tr", "ali" if kind == "ce" else "post")
    va = _frame_targets(valid_dir, tmp_path / "va", "ali" if kind == "ce" else "post")
    conf = load_config(None, [*DNN, "training.epochs=3", f"objective.type={kind}", f"objective.targets={tr}",
                              f"objective.valid_targets={va}", "model.head={type: linear}"])
    out = tmp_path / kind
    run_training(conf, train_dirs=[train_dir], valid_dirs=[valid_dir], lang_dir=None, out_dir=out)
    losses = _valid_losses(out)
    assert losses[-1] < losses[0]
    assert read_model_file(out / "final.pt")["vocab_sizes"] == {"de": 5, "en": 5}


def test_alignment_length_mismatch_names_utterance(tmp_path, toy_data):
    train_dir, _ = toy_data
    feats = dict(kaldiio.load_scp(str(train_dir / "feats.scp")))
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/ali.ark,{tmp_path}/ali.scp") as w:
        for k in sorted(feats):
            w(k, np.zeros(feats[k].shape[0] // 3, dtype=np.int32))
    conf = load_config(None, [*DNN, "objective.type=ce", f"objective.targets={tmp_path}/ali.scp",
                              "model.head={type: linear, num_classes: 4}"])
    with pytest.raises(AsrkitError, match=r"utterance '.*': the targets have \d+ frames but the model outputs"):
        run_training(conf, train_dirs=[train_dir], lang_dir=None, out_dir=tmp_path / "bad")


def test_lrmf_svd_init_from_mtl_at_full_rank_keeps_the_outputs(tmp_path, toy_data):
    out, final = _train(tmp_path, toy_data, "mtl_src", epochs=1)
    mtl, meta = load_model(final)
    rank = 22  # min(total vocabulary 2 x 11, hidden 48): full rank, so the SVD factorisation is exact
    conf = load_config(None, [*DNN, "training.epochs=1", "training.max_steps=1", "optim.lr=1e-12",
                              f"model.head={{type: lrmf, rank: {rank}}}", f"training.init_from={final}",
                              "training.init_lrmf_svd=true", "scheduler.name=constant"])
    train_dir, valid_dir = toy_data
    lrmf_final = run_training(conf, train_dirs=[train_dir], lang_dir=str(tmp_path / "lang"), out_dir=tmp_path / "lrmf")
    lrmf, _ = load_model(lrmf_final)
    mtl.eval()
    lrmf.eval()
    feats = torch.randn(2, 25, 12)
    with torch.no_grad():
        a, _ = mtl(feats, torch.tensor([25, 20]), "en")
        b, _ = lrmf(feats, torch.tensor([25, 20]), "en")
    assert torch.allclose(a, b, atol=1e-3)


def test_init_from_a_model_with_other_feature_dim_fails_at_start(tmp_path, toy_data):
    out, final = _train(tmp_path, toy_data, "src", epochs=1)
    obj = read_model_file(final)
    obj["feat_dim"] = 40
    bad = tmp_path / "bad.pt"
    torch.save(obj, bad)
    with pytest.raises(ConfigError, match="takes 40-dim features but the training data has 12-dim"):
        _train(tmp_path, toy_data, "tr", [f"training.init_from={bad}"], epochs=1)


def test_global_cmvn_is_recorded_and_applied_by_decode(tmp_path, toy_data):
    from asrkit.features.cmvn import compute_cmvn
    from asrkit.kaldi.cmvn import apply_cmvn, training_cmvn
    from asrkit.models.modelfile import open_data

    train_dir, valid_dir = toy_data
    for d in (train_dir, valid_dir):
        (d / "cmvn.scp").unlink()
        (d / "cmvn.ark").unlink()
    compute_cmvn(train_dir, global_stats=True)
    stats = training_cmvn([train_dir])
    assert stats.shape == (2, 13) and stats[0, -1] == sum(
        int(line.split()[1]) for line in (train_dir / "utt2num_frames").read_text().splitlines())
    out, final = _train(tmp_path, toy_data, "global", epochs=1)
    meta = read_model_meta(final)
    np.testing.assert_array_equal(meta.cmvn.global_cmvn(), stats)
    # Decoding the validation dir (no CMVN files of its own) applies the training stats.
    dataset = open_data(valid_dir, meta)
    key = dataset.utts[0].key
    raw = kaldiio.load_scp(str(valid_dir / "feats.scp"))[key]
    np.testing.assert_array_equal(dataset.load_feats(key), apply_cmvn(np.asarray(raw, dtype=np.float32), stats))
    # Dirs that disagree (one per speaker, one global) are refused, naming both.
    other = tmp_path / "other"
    other.mkdir()
    (other / "cmvn.scp").write_text("")
    with pytest.raises(DataDirError, match=r"training data dirs differ in CMVN \(.*: global, .*other: per-speaker\)"):
        training_cmvn([train_dir, other])


def test_mixed_language_batches_need_one_output_layer(tmp_path, toy_data, monkeypatch):
    import asrkit.training.trainer as T

    train_dir, valid_dir = toy_data
    make_lang_dir([train_dir], tmp_path / "joint", token_type="char", joint=True)
    mixed = ["data.language_homogeneous=false", "data.max_frames=400"]
    seen = []
    real = T.compute_loss

    def spy(model, batch, *args, **kw):
        seen.append(len(set(batch.langs)))
        return real(model, batch, *args, **kw)

    monkeypatch.setattr(T, "compute_loss", spy)
    conf = load_config(None, [*DNN, "training.epochs=2", "model.head={type: linear}", *mixed])
    final = run_training(conf, train_dirs=[train_dir], valid_dirs=[valid_dir], lang_dir=str(tmp_path / "joint"),
                         out_dir=tmp_path / "mixed")
    assert max(seen) == 2  # batches did mix en and de
    sizes = read_model_file(final)["vocab_sizes"]
    assert sorted(sizes) == ["de", "en"] and len(set(sizes.values())) == 1  # one joint token set
    losses = _valid_losses(tmp_path / "mixed")
    assert losses[-1] < losses[0]
    # Per-language (mtl) heads take mixed batches for CTC: each utterance through its own layer.
    make_lang_dir([train_dir], tmp_path / "lang_mtl", token_type="char")
    seen.clear()
    conf = load_config(None, [*DNN, "training.epochs=2", "model.head={type: mtl}", *mixed])
    final = run_training(conf, train_dirs=[train_dir], valid_dirs=[valid_dir], lang_dir=str(tmp_path / "lang_mtl"),
                         out_dir=tmp_path / "mixed_mtl")
    assert max(seen) == 2
    losses = _valid_losses(tmp_path / "mixed_mtl")
    assert losses[-1] < losses[0]
    # ... and the mixed batch's loss is the utterance-weighted mean of its languages' own losses.
    from asrkit.data.dataset import AsrDataset, collate
    from asrkit.text.tokenizer import LangDir
    from asrkit.training.objectives import build_objective
    from asrkit.training.trainer import compute_loss

    model, _ = load_model(final)
    model.eval()
    ds = AsrDataset([train_dir], lang_dir=LangDir.load(tmp_path / "lang_mtl"))
    keys = [u.key for u in ds.utts if ds.utt_lang[u.key] == "en"][:2] + \
        [u.key for u in ds.utts if ds.utt_lang[u.key] == "de"][:3]
    objective = build_objective(conf.objective)
    with torch.no_grad():
        mixed_loss, stats = compute_loss(model, collate([ds.load(k) for k in keys]), objective)
        parts = [compute_loss(model, collate([ds.load(k) for k in ks]), objective)[0] * len(ks)
                 for ks in (keys[:2], keys[2:])]
    assert stats["normaliser"] == 5.0
    torch.testing.assert_close(mixed_loss, sum(parts) / 5, rtol=1e-5, atol=1e-5)
    # Frame targets over per-language heads cannot mix languages: refused up front, saying why.
    ali = tmp_path / "ali.txt"
    ali.write_text("".join(f"{u.key} 0\n" for u in ds.utts))
    conf = load_config(None, [*DNN, "training.epochs=1", "model.head={type: mtl}", "objective.type=ce",
                              f"objective.targets=ark,t:{ali}", *mixed])
    with pytest.raises(ConfigError, match="data.language_homogeneous: false with a 'mtl' head .* works for "
                                          "objective ctc only, not 'ce'"):
        run_training(conf, train_dirs=[train_dir], lang_dir=str(tmp_path / "lang_mtl"), out_dir=tmp_path / "bad")


def test_ctc_targets_longer_than_the_output_are_refused_or_counted(tmp_path, toy_data):
    # Issue 21: with characters and x4 subsampling, 6% of the spoken digits had more tokens than
    # output frames; zero_infinity zeroed their loss and nothing said so. The toy letters last 3-5
    # frames each, so a DNN keeping one frame in 4 cannot align many.

    from asrkit.models.ctc import count_unalignable
    from asrkit.text.tokenizer import LangDir

    sub4 = ["model.encoder={type: dnn, hidden_dims: [48, 48], context: 2, subsample: 4}"]
    with pytest.raises(ConfigError, match=r"training data: \d+ of 32 utterances \(\d+\.\d%\) have more target tokens "
                                          r"than the model's output frames at x4 subsampling \(first: '.*' needs \d+ "
                                          r"output frames, the model gives it \d+\).*model.encoder.subsampling=2"):
        _train(tmp_path, toy_data, "sub4", extra=sub4)
    lang = LangDir.load(tmp_path / "lang")
    nums = dict(line.split() for line in (toy_data[0] / "utt2num_frames").read_text().splitlines())
    utts = [(k, int(nums[k]), lang.tokenizer("en" if k.startswith("en") else "de").encode(t))
            for k, t in (line.split(" ", 1) for line in (toy_data[0] / "text").read_text().splitlines())]
    expected = count_unalignable(utts, lambda n: (n + 3) // 4)
    assert 0 < expected.lost < 32
    out, _ = _train(tmp_path, toy_data, "sub4_allowed", extra=[*sub4, "objective.max_unalignable=1"], epochs=2)
    messages = [line.split("] ", 1)[1] for line in (out / "log" / "train.log").read_text().splitlines()
                if " WARNING [" in line]
    assert any(m.startswith(f"training data: {expected.lost} of 32 utterances") for m in messages)
    assert any(m.startswith("validation data: ") for m in messages)
    for epoch in (1, 2):  # and again at the end of every epoch, counted from the batches
        assert any(m.startswith(f"epoch {epoch}: {expected.lost} of 32 utterances") for m in messages), messages
    with pytest.raises(ConfigError, match=r"objective.max_unalignable: expected a number in \[0, 1\], got 2"):
        load_config(None, ["objective.max_unalignable=2"])
