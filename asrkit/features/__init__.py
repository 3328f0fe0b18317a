"""Features: Kaldi-exact fbank/MFCC (torchaudio.compliance.kaldi), batched on CPU or GPU, and CMVN.

Names are imported from their submodules on first use, so `import asrkit.features` stays light:
`from asrkit.features import compute_features, apply_cmvn` works.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FeatureOptions": "kaldi_feats", "load_feature_options": "kaldi_feats", "read_kaldi_conf": "kaldi_feats",
    "compute_features": "kaldi_feats",
    "BatchedFeatureExtractor": "batched",
    "apply_cmvn": "cmvn", "compute_cmvn": "cmvn", "compute_cmvn_stats": "cmvn", "read_cmvn_stats": "cmvn",
    "make_feats": "make_feats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'asrkit.features' has no attribute '{name}'")
    return getattr(importlib.import_module(f"asrkit.features.{_EXPORTS[name]}"), name)
