"""Features: Kaldi-exact fbank/MFCC (torchaudio.compliance.kaldi), batched on CPU or GPU, and CMVN stats.

Names are imported from their modules on first use, so `import asrkit.features` stays light:
`from asrkit.features import compute_features, apply_cmvn` works. CMVN itself (the stats, and
applying them when features are loaded) is asrkit.kaldi.cmvn, below every stage.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FeatureOptions": "asrkit.features.kaldi_feats", "load_feature_options": "asrkit.features.kaldi_feats",
    "read_kaldi_conf": "asrkit.features.kaldi_feats", "compute_features": "asrkit.features.kaldi_feats",
    "BatchedFeatureExtractor": "asrkit.features.batched",
    "compute_cmvn": "asrkit.features.cmvn",
    "apply_cmvn": "asrkit.kaldi.cmvn", "compute_cmvn_stats": "asrkit.kaldi.cmvn", "read_cmvn_stats": "asrkit.kaldi.cmvn",
    "make_feats": "asrkit.features.make_feats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'asrkit.features' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
