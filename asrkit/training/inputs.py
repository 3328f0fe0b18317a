"""What a training run reads: the training and validation datasets with the targets the objective
needs, and the output size of each language."""

from __future__ import annotations

import logging

import numpy as np

from asrkit.data.dataset import AsrDataset
from asrkit.kaldi.cmvn import training_cmvn
from asrkit.training.config import TrainConfig

log = logging.getLogger("asrkit.train")


def target_kinds(conf: TrainConfig) -> list[str]:
    """Which targets the objective (and its mix) reads: "text", "ali", "post"."""
    kinds = {"ctc": ["text"], "rnnt": ["text"], "ce": ["ali"], "kl": ["post"]}[conf.objective.type]
    mix = conf.objective.mix
    if mix is not None:
        kinds = kinds + [{"ctc": "text", "ce": "ali"}[mix.type]]
    return list(dict.fromkeys(kinds))


def target_tables(conf: TrainConfig, valid: bool = False) -> dict[str, str]:
    """{"ali"|"post": rspecifier} for the objective's table targets (train or validation data)."""
    obj = conf.objective
    main = obj.valid_targets if valid else obj.targets
    tables = {}
    if obj.type in ("ce", "kl") and main:
        tables["ali" if obj.type == "ce" else "post"] = main
    if obj.mix is not None and obj.mix.type == "ce":
        tables["ali"] = obj.mix.valid_targets if valid else obj.mix.targets
    return tables


def build_datasets(conf: TrainConfig, train_dirs, valid_dirs, lang_dir) -> tuple[AsrDataset, AsrDataset | None]:
    """The training and (optional) validation datasets."""
    kinds = target_kinds(conf)
    default_lang = lang_dir.languages[0] if lang_dir is not None and len(lang_dir.languages) == 1 else None
    global_cmvn = training_cmvn(train_dirs)
    if global_cmvn is not None:
        log.info("CMVN: global stats of the training dirs (cmvn.ark, %d frames), for validation too",
                 int(global_cmvn[0, -1]))
    common = dict(target_kinds=kinds, lang_dir=lang_dir, norm_vars=conf.data.norm_vars,
                  default_lang=default_lang or ("all" if lang_dir is None else None),
                  min_frames=conf.data.min_frames, global_cmvn=global_cmvn)
    train = AsrDataset(train_dirs, targets=target_tables(conf), max_utt_frames=conf.data.max_utt_frames, **common)
    valid = None
    if valid_dirs:
        valid_tables = target_tables(conf, valid=True)
        if any(k in ("ali", "post") for k in kinds) and set(valid_tables) != {k for k in kinds if k != "text"}:
            log.warning("no validation targets for objective %s (objective.valid_targets): validation skipped",
                        conf.objective.type)
        else:
            valid = AsrDataset(valid_dirs, targets=valid_tables, **common)
    return train, valid


def vocab_sizes_for(conf: TrainConfig, lang_dir, train: AsrDataset) -> dict[str, int]:
    """Output size per language: from the lang dir's token sets, or for ce/kl without tokens from the targets."""
    if lang_dir is not None:
        sizes = lang_dir.vocab_sizes()
        return {lang: sizes[lang] for lang in sorted(set(train.languages) | set(lang_dir.languages)) if lang in sizes}
    n = conf.model.head.num_classes
    if n is None:
        first = train.utts[0].key
        if "post" in train.tables:
            n = int(np.asarray(train.tables["post"][first]).shape[1])
        else:
            n = int(max(int(v.max()) for v in train.tables["ali"].values())) + 1
        log.info("output dimension %d taken from the targets (set model.head.num_classes to fix it)", n)
    return {lang: int(n) for lang in train.languages}
