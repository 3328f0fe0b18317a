"""Acoustic models: encoders (dnn, lstm, conformer, emformer), output heads (linear, mtl, lrmf), the
RNN-T, SpecAugment, language masks and pathways, and the self-describing model file (`modelfile`).

`build_model(model_conf, feat_dim=..., vocab_sizes=...)` is the entry point; importing this package
imports torch.
"""

from asrkit.models.asr_model import AsrModel
from asrkit.models.build import build_model, lrmf_model_from_mtl, model_config_defaults

__all__ = ["AsrModel", "build_model", "lrmf_model_from_mtl", "model_config_defaults"]
