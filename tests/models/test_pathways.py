"""Tests for asrkit/models/pathways.py: masked forward, masked gradients, untouched weights and state."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models import build_model
from asrkit.models.masks import save_masks
from asrkit.models.modelfile import read_model_file
from asrkit.models.pathways import PathwayHook, build_pathway_hook
from asrkit.pruning.masks import magnitude_mask, prunable_parameters
from asrkit.text.tokenizer import make_lang_dir
from asrkit.training.config import load_config
from asrkit.training.trainer import run_training
from tests.training.conftest import make_toy_data_dir

DNN = {"encoder": {"type": "dnn", "hidden_dims": [16, 16], "context": 1}, "head": {"type": "mtl"}}


def _setup(seed=0):
    torch.manual_seed(seed)
    model = build_model(DNN, feat_dim=4, vocab_sizes={"en": 5, "de": 6})
    params = prunable_parameters(model)
    gen = torch.Generator().manual_seed(seed)
    # Random scores give two different masks of 50% that overlap by about a quarter.
    masks = {lang: magnitude_mask({n: torch.rand(p.shape, generator=gen) for n, p in params.items()}, 0.5)
             for lang in ("en", "de")}
    for lang, other in (("en", "de"), ("de", "en")):
        masks[lang]["head.outputs." + other + ".weight"][:] = False
    return model, masks


def _step(model, hook, optimizer, langs, seed):
    """One optimizer step over micro-batches of the given languages, with the trainer's call order."""
    gen = torch.Generator().manual_seed(seed)
    for lang in langs:
        batch = SimpleNamespace(lang=lang)
        hook.before_forward(model, batch)
        logits, _ = model(torch.randn(2, 5, 4, generator=gen), torch.tensor([5, 4]), lang)
        (logits.pow(2).mean() - logits[..., 0].mean()).backward()
        hook.after_backward(model, batch)
    hook.before_step(model, optimizer, batch)
    optimizer.step()
    hook.after_step(model, optimizer, batch)
    optimizer.zero_grad(set_to_none=True)


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_batch_of_one_language_changes_nothing_outside_its_mask():
    model, masks = _setup()
    hook = PathwayHook(model, masks)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.5)
    union = hook.union
    for n in union:  # the weights outside every mask were zeroed at start
        assert not model.get_parameter(n)[~union[n]].any()
    _step(model, hook, opt, ["en"], seed=1)  # gives Adam moments everywhere in m_en
    before = _snapshot(model)
    state_before = {n: opt.state[model.get_parameter(n)]["exp_avg"].clone() for n in union
                    if opt.state.get(model.get_parameter(n))}
    _step(model, hook, opt, ["de"], seed=2)
    after = _snapshot(model)
    for n, m in masks["de"].items():
        assert torch.equal(after[n][~m], before[n][~m]), n  # momentum and weight decay moved nothing outside
        if n in state_before:
            exp_avg = opt.state[model.get_parameter(n)]["exp_avg"]
            assert torch.equal(exp_avg[~m], state_before[n][~m]), n  # optimizer state untouched outside
        assert not after[n][~union[n]].any()
    inside = sum(int((after[n][m] != before[n][m]).sum()) for n, m in masks["de"].items())
    assert inside > 0.9 * sum(int(m.sum()) for m in masks["de"].values())
    # Parameters outside the masks (biases) are shared and trained by every language.
    assert not torch.equal(after["encoder.layers.0.bias"], before["encoder.layers.0.bias"])


def test_shared_weight_is_updated_by_both_languages():
    model, masks = _setup()
    hook = PathwayHook(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    name = "encoder.layers.0.weight"
    shared = masks["en"][name] & masks["de"][name]
    only_en = masks["en"][name] & ~masks["de"][name]
    assert shared.any() and only_en.any()
    for i, lang in enumerate(["en", "de", "de"]):
        before = model.get_parameter(name).detach().clone()
        _step(model, hook, opt, [lang], seed=10 + i)
        after = model.get_parameter(name).detach()
        assert (after[shared] != before[shared]).float().mean() > 0.9, lang
        if lang == "de":  # SGD momentum from the en step must not move en-only weights
            assert torch.equal(after[only_en], before[only_en])


def test_forward_runs_with_the_masked_weights_and_gradient_is_masked():
    model, masks = _setup()
    hook = PathwayHook(model, masks)
    feats, lens = torch.randn(1, 5, 4), torch.tensor([5])
    dense = _snapshot(model)
    with torch.no_grad():
        for n, m in masks["de"].items():
            model.get_parameter(n).mul_(m)
        expected, _ = model(feats, lens, "de")
        for n, v in dense.items():
            model.get_parameter(n).copy_(v)
    batch = SimpleNamespace(lang="de")
    hook.before_forward(model, batch)
    logits, _ = model(feats, lens, "de")
    assert torch.equal(logits, expected)
    logits.sum().backward()
    hook.after_backward(model, batch)
    for n, m in masks["de"].items():
        p = model.get_parameter(n)
        assert torch.equal(p.detach(), dense[n])  # the true weights are back after backward
        if p.grad is None:  # the other language's output layer
            assert n == "head.outputs.en.weight" and not m.any()
        else:
            assert not p.grad[~m].any() and p.grad[m].abs().sum() > 0


def test_accumulating_two_languages_masks_each_batch():
    model, masks = _setup()
    hook = PathwayHook(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = _snapshot(model)
    _step(model, hook, opt, ["en", "de"], seed=3)
    after = _snapshot(model)
    for n in masks["en"]:
        either = masks["en"][n] | masks["de"][n]
        assert torch.equal(after[n][~either], before[n][~either])
        assert (after[n][either] != before[n][either]).any()


def test_errors(tmp_path):
    model, masks = _setup()
    hook = PathwayHook(model, masks)
    with pytest.raises(AsrkitError, match="language 'fr' has no mask in masks"):
        hook.before_forward(model, SimpleNamespace(lang="fr"))
    with pytest.raises(AsrkitError, match="language-homogeneous"):
        hook.before_forward(model, SimpleNamespace(lang=None))
    bad = {"en": {n: m for n, m in masks["en"].items() if "head" not in n}}
    bad["en"]["encoder.layers.0.weight"] = torch.ones(3, 3, dtype=torch.bool)
    save_masks(tmp_path / "masks", bad)
    with pytest.raises(ConfigError, match="en.pt: parameter 'encoder.layers.0.weight' has shape"):
        build_pathway_hook(str(tmp_path / "masks"), model)
    with pytest.raises(ConfigError, match="masks folder"):
        build_pathway_hook(3, model)


def test_trainer_keeps_weights_outside_the_masks_zero(tmp_path):
    train_dir = make_toy_data_dir(tmp_path, "train", utts_per_lang=8, seed=1)
    make_lang_dir([train_dir], tmp_path / "lang", token_type="char")
    conf = load_config(None, ["model.encoder={type: dnn, hidden_dims: [24, 24], context: 1}", "data.max_frames=250",
                              "training.epochs=1", "training.ema={decay: 0.9}", "optim.lr=0.01"])
    dense = run_training(conf, train_dirs=[train_dir], lang_dir=str(tmp_path / "lang"), out_dir=tmp_path / "dense")
    weights = read_model_file(dense)["state_dict"]
    model = build_model(read_model_file(dense)["model_conf"], feat_dim=12,
                        vocab_sizes=read_model_file(dense)["vocab_sizes"])
    model.load_state_dict(weights)
    params = prunable_parameters(model)
    gen = torch.Generator().manual_seed(0)
    masks = {lang: magnitude_mask({n: torch.rand(p.shape, generator=gen) for n, p in params.items()}, 0.6)
             for lang in ("en", "de")}
    save_masks(tmp_path / "masks", masks)
    conf = load_config(None, ["model.encoder={type: dnn, hidden_dims: [24, 24], context: 1}", "data.max_frames=250",
                              "training.epochs=2", "training.ema={decay: 0.9}", "optim.lr=0.01",
                              f"training.init_from={dense}", f"training.pathways={tmp_path / 'masks'}"])
    out = tmp_path / "pathways"
    final = run_training(conf, train_dirs=[train_dir], lang_dir=str(tmp_path / "lang"), out_dir=out)
    for path in (final, out / "ema.pt"):
        trained = read_model_file(path)["state_dict"]
        for n in params:
            union = masks["en"][n] | masks["de"][n]
            assert not trained[n][~union].any(), (path.name, n)
            assert (trained[n][union] != weights[n][union]).float().mean() > 0.5
