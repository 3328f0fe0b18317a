"""What a decode reads: a data dir's features as the model was trained on them, in batches, with
each utterance's language checked against the model and its duration for the real-time factor.

Used by the decode driver and jobs (asrkit.decoding.decoder) and by priors estimated from a model's
posteriors (asrkit.decoding.loglikes).
"""

from __future__ import annotations

from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.features.cmvn import model_cmvn
from asrkit.kaldi.textio import read_table
from asrkit.models.heads import ANY_LANGUAGE
from asrkit.training.data import AsrDataset
from asrkit.training.features_info import feature_settings
from asrkit.training.sampler import BatchPlan, UttInfo

DEFAULT_FRAME_SHIFT_MS = 10.0


def open_data(data_dir: Path, meta: dict, lang: str = "auto") -> AsrDataset:
    """An AsrDataset over a data dir's features (CMVN as the model was trained), with languages.

    `lang` other than "auto" sets the language of every utterance.
    """
    dataset = AsrDataset([data_dir], target_kinds=(), norm_vars=bool((meta.get("cmvn") or {}).get("norm_vars")),
                         default_lang=default_language(meta, lang), expected_feat_dim=meta.get("feat_dim"),
                         global_cmvn=model_cmvn(meta))
    if lang != "auto":
        dataset.utt_lang = {u.key: lang for u in dataset.utts}
        dataset.utts = [UttInfo(u.key, lang, u.num_frames) for u in dataset.utts]
        dataset.index = {u.key: u for u in dataset.utts}
    return dataset


def plan_batches(dataset: AsrDataset, batch_frames: int) -> list[list[str]]:
    """Length-bucketed, language-homogeneous batches (a fixed order: the same every run)."""
    plan = BatchPlan(dataset.utts, max_frames=batch_frames, shuffle=False, homogeneous=True, seed=0)
    return plan.global_batches(0)


def audio_seconds(data_dir: Path, dataset: AsrDataset, meta: dict) -> dict[str, float]:
    """Seconds of audio per utterance: utt2dur, else frames x the feature frame shift."""
    path = data_dir / "utt2dur"
    if path.is_file():
        durs = read_table(path, num_fields=2)
        try:
            return {u.key: float(durs[u.key]) for u in dataset.utts if u.key in durs}
        except ValueError:
            raise DataDirError(f"{path}: durations must be numbers") from None
    options = (meta.get("features") or {}).get("options") or {}
    shift = float(options.get("frame-shift", DEFAULT_FRAME_SHIFT_MS))
    return {u.key: u.num_frames * shift / 1000.0 for u in dataset.utts}


def warn_feature_mismatch(data_dir: Path, meta: dict, log) -> None:
    """Warn when the data's features were made with other settings than the model's training data."""
    trained = meta.get("features")
    here = feature_settings(data_dir)
    if trained and here and trained != here:
        log.warning("features of %s were made with other settings than the model's training data "
                    "(%s vs %s)", data_dir, here, trained)


# ------------------------------------------------------------------------------------------------
# Languages
# ------------------------------------------------------------------------------------------------

def model_languages(meta: dict) -> list[str]:
    return list(meta.get("languages") or meta.get("vocab_sizes") or [])


def _accepts(meta: dict, lang: str) -> bool:
    langs = model_languages(meta)
    if lang in langs:
        return True
    # A linear head made for {"all": V} serves every tag; text still needs that tag's tokenizer.
    return ANY_LANGUAGE in langs and (not meta.get("tokens") or lang in meta["tokens"]["lang2set"])


def default_language(meta: dict, lang: str) -> str | None:
    """The language of utterances without utt2lang: --lang, or the model's only language."""
    if lang != "auto":
        return lang
    langs = model_languages(meta)
    return langs[0] if len(langs) == 1 else None


def check_languages(data_dir: Path, meta: dict, lang: str, model_path: Path) -> dict[str, int]:
    """Check that the model has every utterance's language; returns `{lang: utterances}`.

    Raises:
        DataDirError: an utterance in a language the model does not have, or no utt2lang for a
            model with several languages.
    """
    langs = model_languages(meta)
    keys = list(read_table(data_dir / "feats.scp"))
    if lang != "auto":
        if not _accepts(meta, lang):
            raise DataDirError(f"--lang {lang}: model {model_path} has no language '{lang}' "
                               f"(its languages: {', '.join(langs)})")
        return {lang: len(keys)}
    utt2lang_path = data_dir / "utt2lang"
    if not utt2lang_path.is_file():
        only = default_language(meta, lang)
        if only is None:
            raise DataDirError(f"{utt2lang_path}: missing, and model {model_path} has several languages "
                               f"({', '.join(langs)}); add utt2lang or pass --lang")
        return {only: len(keys)}
    utt2lang = read_table(utt2lang_path, num_fields=2)
    counts: dict[str, int] = {}
    for key in keys:
        tag = utt2lang.get(key)
        if tag is None:
            raise DataDirError(f"{utt2lang_path}: no language for utterance '{key}'")
        if tag not in counts and not _accepts(meta, tag):
            raise DataDirError(f"utterance '{key}' is in language '{tag}' ({utt2lang_path}), which model "
                               f"{model_path} does not have (its languages: {', '.join(langs)})")
        counts[tag] = counts.get(tag, 0) + 1
    return counts


__all__ = ["DEFAULT_FRAME_SHIFT_MS", "audio_seconds", "check_languages", "default_language", "model_languages",
           "open_data", "plan_batches", "warn_feature_mismatch"]
