"""Helpers for the distillation tests: an (untrained) teacher model file."""

from __future__ import annotations

VOCAB = {"de": 5, "en": 7}


def teacher_file(tmp_path, encoder=None, vocab=VOCAB, name="teacher.pt", feat_dim=12):
    """An (untrained) teacher model file with the metadata the trainer writes for a CTC model."""
    import torch  # here: tests/test_jobs.py imports this module into light pool workers

    from asrkit.models import build_model
    from asrkit.models.modelfile import ModelMeta, atomic_torch_save, make_model_file

    torch.manual_seed(0)
    encoder = encoder or {"type": "lstm", "hidden_dim": 8, "num_layers": 1}
    model = build_model({"encoder": encoder, "head": {"type": "mtl"}}, feat_dim=feat_dim, vocab_sizes=vocab)
    meta = ModelMeta.for_model(model, objective="ctc")
    atomic_torch_save(make_model_file(model, meta=meta), tmp_path / name)
    return tmp_path / name
