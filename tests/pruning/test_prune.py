"""Tests for asrkit/pruning/prune.py and asrkit/cli/prune.py: schedules, the three methods, stats, export."""

from __future__ import annotations

import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.masks import load_masks, masks_from_meta
from asrkit.models.modelfile import load_model, read_model_file, read_model_meta
from asrkit.models.pathways import build_decode_hook
from asrkit.pruning.prune import PruneOptions, prune, sparsity_schedule
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training
from tests.pruning.conftest import FINE_TUNING
from tests.training.conftest import make_toy_data_dir

FAST = ("data.max_frames=300", "training.log_interval=50", "training.progress=none")


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """A small dense multilingual CTC model (mtl head) and its training data."""
    root = tmp_path_factory.mktemp("dense")
    train = make_toy_data_dir(root, "train", utts_per_lang=8, seed=1)
    make_lang_dir([train], root / "lang", token_type="char")
    conf = load_config(None, ["model.encoder={type: dnn, hidden_dims: [32, 32], context: 1}", "model.head={type: mtl}",
                              "training.epochs=2", "optim.lr=5e-3", *FAST])
    final = run_training(conf, train_dirs=[train], lang_dir=str(root / "lang"), out_dir=root / "exp")
    return final, train


def test_sparsity_schedules():
    assert sparsity_schedule(0.75, 2, "imp") == pytest.approx([0.5, 0.75])
    assert sparsity_schedule(0.8, 2, "cubic") == pytest.approx([0.7, 0.8])
    assert sparsity_schedule(0.5, 1, "imp") == [0.5]
    with pytest.raises(ConfigError, match="--sparsity must be in"):
        sparsity_schedule(1.0, 2)
    with pytest.raises(ConfigError, match="unknown schedule"):
        sparsity_schedule(0.5, 2, "linear")


def _prunable_weights(path):
    sd = read_model_file(path)["state_dict"]
    return {n: sd[n] for n in masks_from_meta(read_model_meta(path))["en"]}


def test_agnostic_one_mask_for_all_languages(tmp_path, dense):
    model, train = dense
    res = prune("agnostic", model, [train], tmp_path / "ag",
                PruneOptions(sparsity=0.6, rounds=2, steps_per_round=2, scope="global", overrides=FAST),
                fine_tuning=FINE_TUNING)
    masks, infos = load_masks(res.masks_dir)
    assert sorted(masks) == ["de", "en"]
    assert all(torch.equal(masks["de"][n], masks["en"][n]) for n in masks["en"])
    kept = sum(int(m.sum()) for m in masks["en"].values())
    total = sum(m.numel() for m in masks["en"].values())
    assert kept == total - round(0.6 * total) and infos["en"]["sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert (tmp_path / "ag" / "rounds" / "round2" / "final.pt").is_file()
    weights = _prunable_weights(res.models["all"])
    assert all(not w[~masks["en"][n]].any() for n, w in weights.items())
    assert sum(int((w != 0).sum()) for w in weights.values()) == kept  # fine-tuned weights inside are non-zero


def test_mono_then_pathways_from_its_masks(tmp_path, dense, asrkit_cli):
    model, train = dense
    mono = prune("mono", model, [train], tmp_path / "mono",
                 PruneOptions(sparsity=0.5, rounds=1, steps_per_round=3, overrides=FAST), fine_tuning=FINE_TUNING)
    masks, infos = load_masks(mono.masks_dir)
    assert sorted(mono.models) == ["de", "en"]
    assert not masks["en"]["head.outputs.de.weight"].any()  # a language's mask keeps nothing only others use
    assert infos["en"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert infos["en"]["foreign"] == ["head.outputs.de.bias", "head.outputs.de.weight"]
    en_model, meta = load_model(mono.models["en"])
    assert list(masks_from_meta(meta)) == ["en"]

    res = prune("pathways", model, [train], tmp_path / "pw",
                PruneOptions(sparsity=0.5, joint_steps=4, masks_from=str(tmp_path / "mono"), overrides=FAST),
                fine_tuning=FINE_TUNING)
    pw_masks, _ = load_masks(res.masks_dir)
    assert all(torch.equal(pw_masks[lang][n], masks[lang][n]) for lang in masks for n in masks[lang])
    final_meta = read_model_meta(res.models["all"])
    assert final_meta.pathways["method"] == "pathways"
    weights = _prunable_weights(res.models["all"])
    for n, w in weights.items():
        assert not w[~(masks["en"][n] | masks["de"][n])].any(), n

    stats = asrkit_cli("prune-stats", str(tmp_path / "pw"))
    assert stats.returncode == 0, stats.stderr
    out = stats.stdout
    assert "method pathways, target sparsity 0.50, layer ranking" in out
    assert "overlap (IoU)" in out and "encoder.layers.0.weight" in out
    en_line = next(line for line in out.splitlines() if line.startswith("en "))
    assert "50.00%" in en_line
    union_line = next(line for line in out.splitlines() if line.startswith("union"))
    assert float(union_line.split()[1].rstrip("%")) < 50.0  # two different masks keep more together

    exported = tmp_path / "en.pt"
    proc = asrkit_cli("export", "--model", str(res.models["all"]), "--lang", "en", "--out", str(exported))
    assert proc.returncode == 0, proc.stderr
    assert "language en" in proc.stdout and "% sparse" in proc.stdout
    small, small_meta = load_model(exported)
    assert small_meta.languages == ["en"] and list(small_meta.tokens.lang2set) == ["en"]
    full, full_meta = load_model(res.models["all"])
    hook = build_decode_hook(full, full_meta)
    feats, lens = torch.randn(1, 9, 12), torch.tensor([9])
    with torch.inference_mode():
        hook.before_batch(full, "en")
        expected, _ = full(feats, lens, "en")
        got, _ = small(feats, lens, "en")
    assert torch.allclose(got, expected)
    assert exported.stat().st_size < 0.8 * res.models["all"].stat().st_size
    with pytest.raises(AsrkitError, match="no pathway mask for language 'fr'"):
        hook.before_batch(full, "fr")
    bad = asrkit_cli("export", "--model", str(model), "--lang", "en", "--out", str(tmp_path / "x.pt"))
    assert bad.returncode == 1 and "no language masks (make the model with `asrkit prune`)" in bad.stderr


def test_prune_cli_reports_bad_options(tmp_path, dense, asrkit_cli):
    model, train = dense
    proc = asrkit_cli("prune", "--method", "pathways", "--model", str(model), "--sparsity", "1.5",
                      "--train-data", str(train), "--out-dir", str(tmp_path / "x"))
    assert proc.returncode == 1 and "asrkit prune: error: --sparsity must be in [0, 1), got 1.5" in proc.stderr
    proc = asrkit_cli("prune", "--method", "pathways", "--model", str(model), "--sparsity", "0.5",
                      "--train-data", str(train), "--out-dir", str(tmp_path / "y"), "--masks-from", str(tmp_path / "z"))
    assert proc.returncode == 1 and "no mask files" in proc.stderr


def test_export_of_a_transducer_drops_its_auxiliary_ctc_layer(tmp_path):
    from asrkit.models import build_model
    from asrkit.models.masks import pack_mask
    from asrkit.models.modelfile import ModelMeta, atomic_torch_save, make_model_file
    from asrkit.pruning.masks import magnitude_mask, prunable_parameters
    from asrkit.pruning.prune import export_language

    conf = {"encoder": {"type": "emformer", "d_model": 8, "num_layers": 1, "num_heads": 2, "ffn_dim": 8,
                        "segment_length": 2, "left_context": 2, "right_context": 1, "stride": 2, "dropout": 0.0},
            "head": {"type": "mtl"}, "predictor": {"embed_dim": 4, "hidden_dim": 6, "dropout": 0.0},
            "joiner": {"dim": 8}, "aux_ctc": {"weight": 0.3}}
    torch.manual_seed(0)
    model = build_model(conf, feat_dim=5, vocab_sizes={"en": 6, "de": 7}).eval()
    mask = magnitude_mask(prunable_parameters(model), 0.5)
    meta = ModelMeta.for_model(model, objective="rnnt",
                               pathways={"method": "pathways", "masks": {"en": pack_mask(mask), "de": pack_mask(mask)}})
    atomic_torch_save(make_model_file(model, meta=meta), tmp_path / "pw.pt")
    info = export_language(tmp_path / "pw.pt", "en", tmp_path / "en.pt")
    small, small_meta = load_model(tmp_path / "en.pt")
    assert small.ctc_head is None and "aux_ctc" not in small_meta.model_conf
    assert not any(k.startswith("ctc_head.") for k in read_model_file(tmp_path / "en.pt")["state_dict"])
    assert info["params"] == sum(p.numel() for p in small.parameters())
    with torch.no_grad():
        enc, _ = small.encode(torch.randn(1, 12, 5), torch.tensor([12]))
    assert enc.shape[-1] == 8
