"""Data for the models: datasets over Kaldi data dirs, length-bucketed batching, training targets.

`dataset` loads features (with CMVN) and targets per utterance and pads batches; `sampler` plans
language-homogeneous batches per epoch; `targets` reads alignments and soft targets;
`features_info` reads the feature settings make-feats recorded. Training, decoding and
distillation all read their data through this package.
"""
