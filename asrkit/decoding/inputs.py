"""What a decode checks about its input beyond what every stage reads through asrkit.models.modelfile
(`open_data`) and asrkit.data.sampler (`inference_batches`): each utterance's language against the
model, each utterance's duration for the real-time factor, and whether the features were made like
the model's training data.

Used by the decode driver and its jobs (asrkit.decoding.decoder).
"""

from __future__ import annotations

from pathlib import Path

from asrkit.data.dataset import AsrDataset
from asrkit.data.features_info import feature_differences, feature_settings
from asrkit.errors import DataDirError
from asrkit.kaldi.textio import read_table
from asrkit.models.ctc import UnalignableCount, count_unalignable
from asrkit.models.modelfile import ModelMeta

DEFAULT_FRAME_SHIFT_MS = 10.0


def check_languages(data_dir: Path, meta: ModelMeta, lang: str, model_path: Path) -> dict[str, int]:
    """Check that the model has every utterance's language; returns `{lang: utterances}`.

    Raises:
        DataDirError: an utterance in a language the model does not have, or no utt2lang for a
            model with several languages.
    """
    langs = meta.languages
    keys = list(read_table(data_dir / "feats.scp"))
    if lang != "auto":
        if not meta.accepts(lang):
            raise DataDirError(f"--lang {lang}: model {model_path} has no language '{lang}' "
                               f"(its languages: {', '.join(langs)})")
        return {lang: len(keys)}
    utt2lang_path = data_dir / "utt2lang"
    if not utt2lang_path.is_file():
        only = meta.default_language(lang)
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
        if tag not in counts and not meta.accepts(tag):
            raise DataDirError(f"utterance '{key}' is in language '{tag}' ({utt2lang_path}), which model "
                               f"{model_path} does not have (its languages: {', '.join(langs)})")
        counts[tag] = counts.get(tag, 0) + 1
    return counts


def audio_seconds(data_dir: Path, dataset: AsrDataset, meta: ModelMeta) -> dict[str, float]:
    """Seconds of audio per utterance: utt2dur, else frames x the feature frame shift."""
    path = data_dir / "utt2dur"
    if path.is_file():
        durs = read_table(path, num_fields=2)
        try:
            return {u.key: float(durs[u.key]) for u in dataset.utts if u.key in durs}
        except ValueError:
            raise DataDirError(f"{path}: durations must be numbers") from None
    options = (meta.features or {}).get("options") or {}
    shift = float(options.get("frame-shift", DEFAULT_FRAME_SHIFT_MS))
    return {u.key: u.num_frames * shift / 1000.0 for u in dataset.utts}


def count_unspellable(data_dir: Path, dataset: AsrDataset, meta: ModelMeta, model) -> UnalignableCount:
    """The utterances of a CTC decode whose reference (`data_dir/text`, when there is one) has more
    tokens than the model gives output frames: no CTC search can produce their reference, so their
    errors are the token unit's or the frame rate's, not the search's. Utterances without a
    reference are not counted."""
    path = data_dir / "text"
    tokenizers = meta.tokenizers()
    if not path.is_file() or not tokenizers:
        return UnalignableCount()
    text = read_table(path)
    default = next(iter(tokenizers.values()))
    utts = ((u.key, u.num_frames, tokenizers.get(u.lang, default).encode(text[u.key]))
            for u in dataset.utts if u.key in text)
    return count_unalignable(utts, model.output_lengths)


def warn_feature_mismatch(data_dir: Path, meta: ModelMeta, log) -> None:
    """Warn when the data's features were made with other settings than the model's training data."""
    trained = meta.features
    here = feature_settings(data_dir)
    differences = feature_differences(trained, here) if trained and here else []
    if differences:
        log.warning("features of %s were made with other settings than the model's training data (%s)",
                    data_dir, "; ".join(differences))


__all__ = ["DEFAULT_FRAME_SHIFT_MS", "audio_seconds", "check_languages", "count_unspellable", "warn_feature_mismatch"]
