"""Model files (`final.pt`, `ema.pt`, `best.pt`, averaged and exported models) and their typed metadata.

A model file is one `torch.save`d dict: `format` "asrkit-model", `version` 1, the metadata keys that
`ModelMeta` reads (architecture, feature dimension, languages, CMVN and feature settings, token sets,
...; docs/formats.md lists them) and `state_dict`, the weights on the CPU. It describes itself, so
decode, dump-posteriors and prune need only `--model`. Every file is written to a temporary name in
the same folder and renamed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asrkit.data.dataset import AsrDataset
from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import named_write_error, tmp_path_for
from asrkit.models.asr_model import AsrModel
from asrkit.models.build import build_model
from asrkit.models.heads import ANY_LANGUAGE
from asrkit.text.tokenizer import Tokenizer

MODEL_FORMAT = "asrkit-model"
MODEL_VERSION = 1


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = tmp_path_for(path)
    try:
        try:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
        except RuntimeError as e:
            # torch's zip writer turns a failed write (disk full) into a RuntimeError whose context
            # holds the OSError; report that, naming the file, instead of a traceback.
            if isinstance(e.__context__, OSError):
                raise named_write_error(e.__context__, path) from None
            raise
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class CmvnSettings:
    """How the model's input features were normalised (Kaldi's apply-cmvn).

    norm_vars: variances too. global_stats: the training set's global `(2, dim + 1)` stats as two
    lists (`compute-cmvn --global`), applied to every utterance of every later stage; None: each
    data dir's per-speaker `cmvn.scp` (or no CMVN where a dir has none). per_speaker: the training
    dirs had `cmvn.scp`, so a dir without one would be decoded on features the model never saw
    (None: a model file from before this was recorded).
    """

    norm_vars: bool = False
    global_stats: list | None = None
    per_speaker: bool | None = None

    def global_cmvn(self) -> np.ndarray | None:
        """The global stats as a `(2, dim + 1)` float64 array, or None."""
        return None if self.global_stats is None else np.asarray(self.global_stats, dtype=np.float64)

    def to_dict(self) -> dict:
        out: dict = {"norm_vars": bool(self.norm_vars)}
        if self.global_stats is not None:
            out["global_stats"] = self.global_stats
        if self.per_speaker is not None:
            out["per_speaker"] = bool(self.per_speaker)
        return out

    def check_data_dir(self, data_dir: str | os.PathLike) -> None:
        """Refuse a data dir without `cmvn.scp` for a model trained with per-speaker CMVN.

        Raises:
            DataDirError: naming the missing file and the command that makes it.
        """
        if self.per_speaker and not (Path(data_dir) / "cmvn.scp").is_file():
            raise DataDirError(f"{Path(data_dir) / 'cmvn.scp'}: missing, and the model was trained with "
                               f"per-speaker CMVN (its hypotheses would be garbage); run `asrkit compute-cmvn "
                               f"{data_dir}` first")


@dataclass(frozen=True)
class TokenSets:
    """The sentencepiece token sets of the lang dir a model was trained with.

    token_type: "bpe", "char", ...; lang2set: `{language: token set name}`; models: `{token set name:
    sentencepiece model bytes}`.
    """

    token_type: str
    lang2set: dict[str, str]
    models: dict[str, bytes]

    @classmethod
    def from_lang_dir(cls, lang_dir) -> TokenSets:
        """From an asrkit.text.tokenizer.LangDir."""
        return cls(lang_dir.token_type, dict(lang_dir.lang2set),
                   {name: tok.model_proto for name, tok in lang_dir.token_sets.items()})

    def tokenizers(self) -> dict[str, Tokenizer]:
        """`{language: Tokenizer}` (languages that share a token set share one Tokenizer)."""
        sets = {name: Tokenizer(proto, name=name) for name, proto in self.models.items()}
        return {lang: sets[name] for lang, name in self.lang2set.items()}

    def to_dict(self) -> dict:
        return {"token_type": self.token_type, "lang2set": dict(self.lang2set), "models": dict(self.models)}


# Keys of a version-1 model file besides the metadata, and the metadata keys in the order they are written.
_FILE_KEYS = ("format", "version", "state_dict")
_META_KEYS = ("model_conf", "feat_dim", "vocab_sizes", "languages", "frame_subsampling", "objective", "cmvn",
              "features", "tokens", "train", "averaged_from", "pathways", "exported")
# Written only when set (the trainer never writes them; average-checkpoints, prune, export do).
_OPTIONAL_KEYS = ("train", "averaged_from", "pathways", "exported")


@dataclass(frozen=True)
class ModelMeta:
    """What a model file records besides its weights.

    Attributes:
        model_conf: the resolved `model` config (asrkit.models.build.build_model builds it again).
        feat_dim: input feature dimension.
        vocab_sizes: `{language: output size}` in the head's order (`{"all": V}` for a linear head
            that serves any language tag).
        languages: the model's languages, in order.
        frame_subsampling: input frames per output frame (None in files that do not record it).
        objective: "ctc", "ce", "kl" or "rnnt" (None where not recorded).
        cmvn: how features were normalised.
        features: `{"type": "fbank"|"mfcc", "options": {kaldi option: value}}` of the training data
            (asrkit.data.features_info), or None.
        tokens: the token sets (None for a model trained without a lang dir, ce/kl).
        train: `{step, epoch, best_valid_loss}` when written by the trainer.
        averaged_from: the files `average-checkpoints` averaged.
        pathways: `{method, target_sparsity, masks: {language: packed mask}}` from `asrkit prune`.
        exported: what `asrkit export` kept (`{lang, from, method, kept_params, params}`).
        extra: keys this version of asrkit does not know, kept as they are.
    """

    model_conf: dict
    feat_dim: int
    vocab_sizes: dict[str, int]
    languages: list[str]
    frame_subsampling: int | None = None
    objective: str | None = None
    cmvn: CmvnSettings = CmvnSettings()
    features: dict | None = None
    tokens: TokenSets | None = None
    train: dict | None = None
    averaged_from: list[str] | None = None
    pathways: dict | None = None
    exported: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: AsrModel, *, objective: str | None, cmvn: CmvnSettings = CmvnSettings(),
                  features: dict | None = None, tokens: TokenSets | None = None, train: dict | None = None,
                  pathways: dict | None = None) -> ModelMeta:
        """The metadata of a model being written: architecture, sizes and languages from the model itself."""
        return cls(model_conf=model.conf, feat_dim=int(model.feat_dim), vocab_sizes=dict(model.vocab_sizes),
                   languages=list(model.languages), frame_subsampling=int(model.frame_subsampling),
                   objective=objective, cmvn=cmvn, features=features, tokens=tokens, train=train, pathways=pathways)

    @classmethod
    def from_dict(cls, obj: Mapping, where: str | os.PathLike = "model file") -> ModelMeta:
        """Read the metadata of a model-file dict (a file written by any version-1 asrkit).

        Raises:
            ConfigError: a required key is missing or of the wrong kind (naming `where` and the key).
        """
        for key, kind in (("model_conf", Mapping), ("feat_dim", int), ("vocab_sizes", Mapping)):
            if key not in obj:
                raise ConfigError(f"{where}: the model file has no '{key}'")
            if not isinstance(obj[key], kind) or isinstance(obj[key], bool):
                raise ConfigError(f"{where}: the model file's '{key}' is {type(obj[key]).__name__}, "
                                  f"not {kind.__name__}")
        cmvn = obj.get("cmvn") or {}
        tokens = obj.get("tokens")
        vocab_sizes = {str(k): int(v) for k, v in obj["vocab_sizes"].items()}
        try:
            return cls(
                model_conf=dict(obj["model_conf"]), feat_dim=int(obj["feat_dim"]), vocab_sizes=vocab_sizes,
                languages=list(obj.get("languages") or vocab_sizes),
                frame_subsampling=None if obj.get("frame_subsampling") is None else int(obj["frame_subsampling"]),
                objective=obj.get("objective"),
                cmvn=CmvnSettings(bool(cmvn.get("norm_vars")), cmvn.get("global_stats"),
                                  None if cmvn.get("per_speaker") is None else bool(cmvn["per_speaker"])),
                features=obj.get("features"),
                tokens=TokenSets(tokens["token_type"], dict(tokens["lang2set"]), dict(tokens["models"]))
                if tokens else None,
                train=obj.get("train"), averaged_from=obj.get("averaged_from"), pathways=obj.get("pathways"),
                exported=obj.get("exported"),
                extra={k: v for k, v in obj.items() if k not in _META_KEYS and k not in _FILE_KEYS})
        except (KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"{where}: bad model file metadata ({type(e).__name__}: {e})") from None

    def to_dict(self) -> dict:
        """The metadata as a model file stores it (the inverse of `from_dict` for what asrkit writes)."""
        out = {"model_conf": self.model_conf, "feat_dim": self.feat_dim, "vocab_sizes": dict(self.vocab_sizes),
               "languages": list(self.languages), "frame_subsampling": self.frame_subsampling,
               "objective": self.objective, "cmvn": self.cmvn.to_dict(), "features": self.features,
               "tokens": self.tokens.to_dict() if self.tokens is not None else None}
        for key in _OPTIONAL_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.extra)
        return out

    @property
    def only_language(self) -> str | None:
        """The model's language when it has exactly one, else None."""
        return self.languages[0] if len(self.languages) == 1 else None

    def default_language(self, lang: str = "auto") -> str | None:
        """The language of utterances without utt2lang: `lang` (e.g. `--lang`), or the model's only one."""
        return lang if lang != "auto" else self.only_language

    def accepts(self, lang: str) -> bool:
        """Whether the model can take utterances of `lang` (a linear head made for `{"all": V}` takes
        every tag; text still needs that tag's token set)."""
        if lang in self.languages:
            return True
        return ANY_LANGUAGE in self.languages and (self.tokens is None or lang in self.tokens.lang2set)

    def tokenizers(self) -> dict[str, Tokenizer]:
        """`{language: Tokenizer}` from the embedded token sets (empty without them)."""
        return self.tokens.tokenizers() if self.tokens is not None else {}


def make_model_file(model, *, meta: ModelMeta, state_dict: dict | None = None) -> dict:
    """The dict saved as a model file: format tag, metadata, weights (on CPU; `state_dict` instead of
    the model's own, e.g. the EMA weights)."""
    sd = state_dict if state_dict is not None else model.state_dict()
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, **meta.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in sd.items()}}


def read_model_file(path: str | os.PathLike) -> dict:
    """Load a model file's dict (from a training checkpoint, the model file inside it).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not an asrkit model file, or from a newer format version.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a model file (e.g. {path / 'final.pt'})")
    if not path.is_file():
        raise FileNotFoundError(2, "no such model file", str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(f"{path}: not a readable model file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if isinstance(obj, dict) and "model" in obj and "optimizer" in obj and isinstance(obj["model"], dict) \
            and obj["model"].get("format") == MODEL_FORMAT:
        obj = obj["model"]  # a training checkpoint carries a model file inside
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{path}: not an asrkit model file")
    if obj.get("version", 0) > MODEL_VERSION:
        raise ConfigError(f"{path}: model file version {obj['version']} is newer than this asrkit supports")
    return obj


def read_model_meta(path: str | os.PathLike) -> ModelMeta:
    """The metadata of a model file (or training checkpoint), without building the model.

    Raises:
        FileNotFoundError / ConfigError: as `read_model_file`, or bad metadata.
    """
    return ModelMeta.from_dict(read_model_file(path), path)


def model_from_file(obj: dict, where: str | os.PathLike) -> tuple[AsrModel, ModelMeta]:
    """The model a model-file dict describes, with its weights (on the CPU, in train mode), and its metadata.

    Raises:
        ConfigError: bad metadata, or weights that do not fit the file's own architecture.
    """
    meta = ModelMeta.from_dict(obj, where)
    try:
        model = build_model(meta.model_conf, feat_dim=meta.feat_dim, vocab_sizes=meta.vocab_sizes)
        model.load_state_dict(obj["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise ConfigError(f"{where}: model file does not match its architecture ({str(e).splitlines()[0][:200]})") from None
    return model, meta


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[AsrModel, ModelMeta]:
    """Rebuild a model from a model file: returns (model in eval mode on `device`, its metadata).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: not a model file, or its weights do not fit its own architecture.
    """
    model, meta = model_from_file(read_model_file(path), path)
    return model.to(device).eval(), meta


def open_data(data_dir: str | os.PathLike, meta: ModelMeta, lang: str = "auto") -> AsrDataset:
    """A data dir's features as the model takes them: CMVN as in its training (global stats it
    recorded, else the dir's per-speaker cmvn.scp), its feature dimension checked, no targets.

    `lang` other than "auto" is the language of every utterance; with "auto", utt2lang, or without
    one the model's only language.

    Raises:
        DataDirError: no cmvn.scp for a model trained with per-speaker CMVN; see AsrDataset.
    """
    meta.cmvn.check_data_dir(data_dir)
    return AsrDataset([data_dir], target_kinds=(), norm_vars=meta.cmvn.norm_vars,
                      default_lang=meta.default_language(lang), expected_feat_dim=meta.feat_dim,
                      global_cmvn=meta.cmvn.global_cmvn(), lang=None if lang == "auto" else lang)


def average_state_dicts(state_dicts: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors (integer buffers taken from the last)."""
    if not state_dicts:
        raise ConfigError("no checkpoints to average")
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], start=1):
        if list(sd) != keys:
            raise ConfigError(f"checkpoint {i + 1} has different parameters from the first; cannot average")
    out = {}
    for k in keys:
        if state_dicts[0][k].is_floating_point():
            acc = torch.zeros_like(state_dicts[0][k], dtype=torch.float64)
            for sd in state_dicts:
                acc += sd[k].to(torch.float64)
            out[k] = (acc / len(state_dicts)).to(state_dicts[0][k].dtype)
        else:
            out[k] = state_dicts[-1][k].clone()
    return out


def average_model_files(paths: list[str | os.PathLike], out: str | os.PathLike) -> dict:
    """Average the weights of model files / checkpoints of one architecture into a model file
    (the metadata of the last, plus `averaged_from`)."""
    objs = [read_model_file(p) for p in paths]
    for p, o in zip(paths[1:], objs[1:]):
        if o["model_conf"] != objs[0]["model_conf"]:
            raise ConfigError(f"{p}: a different architecture from {paths[0]}; cannot average")
    avg = dict(objs[-1])
    avg["state_dict"] = average_state_dicts([o["state_dict"] for o in objs])
    avg["averaged_from"] = [str(p) for p in paths]
    atomic_torch_save(avg, out)
    return avg
