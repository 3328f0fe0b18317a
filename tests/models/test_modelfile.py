"""Tests for asrkit/models/modelfile.py: the model-file format and its typed metadata (ModelMeta)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.errors import ConfigError
from asrkit.models import build_model
from asrkit.models.modelfile import (
    CmvnSettings,
    ModelMeta,
    load_model,
    make_model_file,
    read_model_file,
    read_model_meta,
)

CONF = {"encoder": {"type": "dnn", "hidden_dims": [8], "context": 1}, "head": {"type": "mtl"}}
STATS = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 4.0]]


def _model():
    torch.manual_seed(0)
    return build_model(CONF, feat_dim=3, vocab_sizes={"de": 5, "en": 6})


def _version1_file(model) -> dict:
    """A model file exactly as the trainer of asrkit 0.1.0 (model file version 1) wrote it, by hand."""
    return {"format": "asrkit-model", "version": 1, "model_conf": model.conf, "feat_dim": 3,
            "vocab_sizes": {"de": 5, "en": 6}, "languages": ["de", "en"], "frame_subsampling": 1,
            "objective": "ctc", "cmvn": {"norm_vars": True, "global_stats": STATS},
            "features": {"type": "fbank", "options": {"num-mel-bins": "3"}}, "tokens": None,
            "train": {"step": 7, "epoch": 1, "best_valid_loss": 2.5},
            "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}


def test_a_version1_file_reads_into_typed_fields_and_writes_back_the_same_dict(tmp_path):
    model = _model()
    obj = _version1_file(model)
    torch.save(obj, tmp_path / "final.pt")
    loaded, meta = load_model(tmp_path / "final.pt")
    assert not loaded.training and isinstance(meta, ModelMeta)
    assert meta.feat_dim == 3 and meta.languages == ["de", "en"] and meta.vocab_sizes == {"de": 5, "en": 6}
    assert meta.objective == "ctc" and meta.frame_subsampling == 1 and meta.tokens is None
    assert meta.cmvn.norm_vars is True
    np.testing.assert_array_equal(meta.cmvn.global_cmvn(), np.array(STATS))
    assert meta.features["options"] == {"num-mel-bins": "3"} and meta.train["step"] == 7
    rewritten = make_model_file(loaded, meta=meta)
    assert [k for k in rewritten if k != "state_dict"] == [k for k in obj if k != "state_dict"]
    assert {k: v for k, v in rewritten.items() if k != "state_dict"} == {k: v for k, v in obj.items()
                                                                         if k != "state_dict"}
    assert all(torch.equal(rewritten["state_dict"][k], v) for k, v in obj["state_dict"].items())


def test_optional_entries_default_and_unknown_keys_are_kept(tmp_path):
    model = _model()
    # A minimal file (no languages, cmvn, objective...): the readers used to disagree on what a
    # missing `cmvn` meant (decode: no variance normalisation; dump-posteriors: a KeyError).
    obj = {"format": "asrkit-model", "version": 1, "model_conf": model.conf, "feat_dim": 3,
           "vocab_sizes": {"de": 5, "en": 6}, "future_key": {"x": 1}, "state_dict": model.state_dict()}
    torch.save(obj, tmp_path / "min.pt")
    meta = read_model_meta(tmp_path / "min.pt")
    assert meta.cmvn == CmvnSettings(norm_vars=False, global_stats=None) and meta.cmvn.global_cmvn() is None
    assert meta.languages == ["de", "en"] and meta.objective is None and meta.tokenizers() == {}
    assert meta.extra == {"future_key": {"x": 1}} and meta.to_dict()["future_key"] == {"x": 1}


def test_missing_or_bad_required_keys_name_the_file_and_key(tmp_path):
    obj = _version1_file(_model())
    del obj["feat_dim"]
    torch.save(obj, tmp_path / "a.pt")
    with pytest.raises(ConfigError, match=r"a\.pt: the model file has no 'feat_dim'"):
        read_model_meta(tmp_path / "a.pt")
    obj = _version1_file(_model())
    obj["vocab_sizes"] = [5, 6]
    torch.save(obj, tmp_path / "b.pt")
    with pytest.raises(ConfigError, match=r"b\.pt: the model file's 'vocab_sizes' is list, not Mapping"):
        load_model(tmp_path / "b.pt")
    obj = _version1_file(_model())
    obj["state_dict"].pop(next(iter(obj["state_dict"])))
    torch.save(obj, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"c\.pt: model file does not match its architecture"):
        load_model(tmp_path / "c.pt")


def test_languages_a_model_accepts(tmp_path):
    meta = ModelMeta.for_model(_model(), objective="ctc")
    assert meta.accepts("de") and not meta.accepts("fr")
    assert meta.only_language is None and meta.default_language() is None and meta.default_language("fr") == "fr"
    linear = build_model({"encoder": CONF["encoder"], "head": {"type": "linear"}}, feat_dim=3, vocab_sizes={"all": 4})
    any_lang = ModelMeta.for_model(linear, objective="ctc")
    assert any_lang.accepts("fr") and any_lang.only_language == "all" and any_lang.default_language() == "all"


def test_a_checkpoint_is_read_as_the_model_file_inside_it(tmp_path):
    model = _model()
    file = make_model_file(model, meta=ModelMeta.for_model(model, objective="ctc"))
    torch.save({"model": file, "optimizer": {}, "state": {"step": 1}}, tmp_path / "checkpoint-00000001.pt")
    assert read_model_file(tmp_path / "checkpoint-00000001.pt")["objective"] == "ctc"
    assert read_model_meta(tmp_path / "checkpoint-00000001.pt").frame_subsampling == 1
