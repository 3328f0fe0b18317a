"""Datasets: features (with CMVN) from data dirs and targets from text, alignments or soft targets.

`AsrDataset` indexes the utterances of one or more data dirs and loads one utterance at a time;
`collate` pads a batch; `BatchLoader` runs a DataLoader over an epoch's batch list (each worker
loads whole batches, so the order and contents never depend on the number of workers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asrkit.data.sampler import UttInfo
from asrkit.data.targets import open_alignments, open_soft_targets
from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.kaldi.cmvn import apply_cmvn
from asrkit.kaldi.table import load_table_scp
from asrkit.kaldi.textio import read_table
from asrkit.text.tokenizer import UNK_ID

log = logging.getLogger("asrkit.data")


@dataclass
class Example:
    """One loaded utterance.

    feats: (T, D) float32 after CMVN; targets: {kind: array} with "text" token ids (S,) int64,
    "ali" frame labels (T',) int64, "post" soft targets (T', V) float32; lang: language tag.
    """

    key: str
    lang: str
    feats: np.ndarray
    targets: dict[str, np.ndarray]


def _check_same_dim(dims: dict[Path, int], feats_scp: Path, feats) -> None:
    """Record the feature dimension of a data dir (its first utterance) in `dims`; raise if it
    differs from an earlier dir's, naming both (else the batches fail deep in collate)."""
    if len(feats) == 0:
        return
    first = next(iter(feats.keys()))
    mat = np.asarray(feats[first])
    dim = int(mat.shape[1]) if mat.ndim == 2 else -1
    for other, other_dim in dims.items():
        if other_dim != dim:
            raise DataDirError(f"{feats_scp}: features of dimension {dim}, but {other} has dimension {other_dim}: "
                               f"the data dirs of one model need the same feature options")
    dims[feats_scp] = dim


def _read_num_frames(d: Path, feats) -> dict[str, int]:
    path = d / "utt2num_frames"
    if path.is_file():
        table = read_table(path, num_fields=2)
        try:
            return {k: int(v) for k, v in table.items()}
        except ValueError:
            raise DataDirError(f"{path}: frame counts must be integers") from None
    log.warning("%s: no utt2num_frames; reading every feature matrix to get lengths", d)
    return {k: int(feats[k].shape[0]) for k in feats}


class AsrDataset:
    """The utterances of some data dirs, with their features and targets.

    Args:
        data_dirs: data dirs with feats.scp (and cmvn.scp + utt2spk for CMVN, utt2lang, text).
        global_cmvn: `(2, dim + 1)` CMVN stats applied to every utterance instead of the dirs'
            per-speaker `cmvn.scp` (a model trained with global CMVN: `kaldi.cmvn.training_cmvn`).
        target_kinds: any of "text" (token ids by each language's tokenizer), "ali" (int frame
            labels), "post" (soft-target matrices); empty for features only. An utterance without
            every target is skipped.
        lang_dir: a LangDir, needed for "text".
        targets: {"ali": rspecifier, "post": scp path} for the table-based kinds.
        norm_vars: CMVN also normalises variances.
        default_lang: language of utterances when a data dir has no utt2lang.
        lang: the language of every utterance (utt2lang is not read), e.g. `asrkit decode --lang`.
        min_frames, max_utt_frames: utterances outside this range are skipped (and counted).
        expected_feat_dim: the model's input dimension; `load_feats` rejects an utterance of another.

    Raises:
        DataDirError / FileNotFoundError: missing feats.scp, duplicate utterance ids across dirs,
            an utterance with no language.
    """

    def __init__(self, data_dirs: Sequence[str | os.PathLike], *, target_kinds: Sequence[str] = ("text",),
                 lang_dir=None, targets: dict[str, str] | None = None, norm_vars: bool = False,
                 default_lang: str | None = None, min_frames: int = 1, max_utt_frames: int | None = None,
                 expected_feat_dim: int | None = None, global_cmvn: np.ndarray | None = None,
                 lang: str | None = None):
        self.data_dirs = [Path(d) for d in data_dirs]
        self.target_kinds = tuple(target_kinds)
        targets = dict(targets or {})
        self.lang_dir = lang_dir
        self.norm_vars = norm_vars
        self.global_cmvn = global_cmvn
        self.expected_feat_dim = expected_feat_dim
        self._feats: dict[str, object] = {}   # key -> lazy table holding it
        self._cmvn: dict[str, tuple[object, str, Path]] = {}  # key -> (cmvn table, speaker, cmvn.scp)
        self.text: dict[str, str] = {}
        self.utt_lang: dict[str, str] = {}
        infos: list[UttInfo] = []
        skipped = {"too short": 0, "too long": 0, "no target": 0}
        first_skipped: dict[str, str] = {}
        dims: dict[Path, int] = {}
        for d in self.data_dirs:
            feats_scp = d / "feats.scp"
            if not feats_scp.is_file():
                raise FileNotFoundError(2, "no features; run `asrkit make-feats` first", str(feats_scp))
            feats = load_table_scp(feats_scp)
            _check_same_dim(dims, feats_scp, feats)
            num_frames = _read_num_frames(d, feats)
            has_utt2lang = lang is None and (d / "utt2lang").is_file()
            utt2lang = read_table(d / "utt2lang", num_fields=2) if has_utt2lang else None
            if utt2lang is None and default_lang is None and lang is None:
                raise DataDirError(f"{d}/utt2lang: missing, and the model has several languages; "
                                   "add utt2lang (one language tag per utterance)")
            if "text" in self.target_kinds and not (d / "text").is_file():
                raise FileNotFoundError(2, "no transcripts", str(d / "text"))
            text = read_table(d / "text") if "text" in self.target_kinds else {}
            cmvn = None
            utt2spk = None
            if global_cmvn is None and (d / "cmvn.scp").is_file():
                cmvn = load_table_scp(d / "cmvn.scp")
                utt2spk = read_table(d / "utt2spk", num_fields=2)
            for key in feats.keys():
                if key in self._feats:
                    raise DataDirError(f"{d}/feats.scp: utterance '{key}' is also in another training data dir")
                utt_lang = lang or (utt2lang.get(key) if utt2lang is not None else default_lang)
                if utt_lang is None:
                    raise DataDirError(f"{d}/utt2lang: no language for utterance '{key}'")
                if key not in num_frames:
                    raise DataDirError(f"{d}/utt2num_frames: no entry for utterance '{key}'")
                n = num_frames[key]
                if n < min_frames:
                    skipped["too short"] += 1
                    first_skipped.setdefault("too short", key)
                    continue
                if max_utt_frames and n > max_utt_frames:
                    skipped["too long"] += 1
                    first_skipped.setdefault("too long", key)
                    continue
                if "text" in self.target_kinds:
                    if key not in text:
                        skipped["no target"] += 1
                        first_skipped.setdefault("no target", key)
                        continue
                    self.text[key] = text[key]
                self._feats[key] = feats
                if cmvn is not None:
                    spk = utt2spk.get(key)
                    if spk is None:
                        raise DataDirError(f"{d}/utt2spk: no speaker for utterance '{key}'")
                    self._cmvn[key] = (cmvn, spk, d / "cmvn.scp")
                self.utt_lang[key] = utt_lang
                infos.append(UttInfo(key, utt_lang, n))
        self.tables: dict[str, object] = {}
        for kind in ("ali", "post"):
            if kind not in self.target_kinds:
                continue
            if not targets.get(kind):
                raise ConfigError(f"the objective needs {'alignments' if kind == 'ali' else 'soft targets'} "
                                  "(objective.targets)")
            table = self._load_targets(kind, targets[kind])
            kept = [u for u in infos if u.key in table]
            skipped["no target"] += len(infos) - len(kept)
            if len(kept) < len(infos):
                first_skipped.setdefault("no target", next(u.key for u in infos if u.key not in table))
            if not kept:
                raise DataDirError(f"{targets[kind]}: none of the {len(infos)} utterances has a target "
                                   f"(first utterance: '{infos[0].key if infos else '-'}')")
            infos = kept
            self.tables[kind] = table
        for reason, n in skipped.items():
            if n:
                log.warning("skipped %d utterance(s): %s (first: '%s')", n, reason, first_skipped[reason])
        if not infos:
            raise DataDirError(f"no usable utterances in {', '.join(map(str, self.data_dirs))}")
        self.utts = infos
        self.index = {u.key: u for u in infos}
        if "text" in self.target_kinds:
            self._check_languages()
            self._check_transcripts()

    @staticmethod
    def _load_targets(kind: str, rspec: str):
        if kind == "ali":
            return open_alignments(rspec)
        # Soft targets: float-matrix tables, or Kaldi Posterior archives (top-k) expanded to dense rows.
        return open_soft_targets(rspec)

    def _check_languages(self) -> None:
        if self.lang_dir is None:
            raise ConfigError("training on text needs a lang dir (--lang)")
        missing = sorted(set(self.utt_lang.values()) - set(self.lang_dir.languages))
        if missing:
            first = next(k for k, v in self.utt_lang.items() if v == missing[0])
            raise ConfigError(f"language '{missing[0]}' (utterance '{first}') is not in lang dir "
                              f"{self.lang_dir.path} (it has: {', '.join(self.lang_dir.languages)})")

    def _check_transcripts(self) -> None:
        """Warn about transcripts that train badly: empty ones (CTC learns them as all blank) and
        words or characters the language's token set has never seen (they become <unk>, id 1)."""
        empty = [u.key for u in self.utts if not self.text[u.key].strip()]
        if empty:
            log.warning("%d utterance(s) with an empty transcript (first: '%s'); they are trained as silence",
                        len(empty), empty[0])
        unk_utts, unk_tokens, total = [], 0, 0
        for u in self.utts:
            ids = self.lang_dir.tokenizer(u.lang).encode(self.text[u.key])
            n = sum(1 for i in ids if i == UNK_ID)
            total += len(ids)
            if n:
                unk_utts.append(u.key)
                unk_tokens += n
        if unk_utts:
            log.warning("%d of %d target tokens are <unk> in %d utterance(s) (first: '%s'): words or characters "
                        "that the token sets of %s lack (out-of-vocabulary words with word tokens, or a lang dir "
                        "made from other text)", unk_tokens, total, len(unk_utts), unk_utts[0], self.lang_dir.path)

    @property
    def languages(self) -> list[str]:
        return sorted(set(self.utt_lang.values()))

    def feat_dim(self) -> int:
        return int(self.load_feats(self.utts[0].key).shape[1])

    def load_feats(self, key: str) -> np.ndarray:
        """Features of an utterance with CMVN applied: (T, D) float32."""
        # A copy: arrays read from an ark may be read-only views, which torch.from_numpy warns about.
        feats = np.array(self._feats[key][key], dtype=np.float32)
        if self.expected_feat_dim is not None and (feats.ndim != 2 or feats.shape[1] != self.expected_feat_dim):
            raise AsrkitError(f"utterance '{key}': features of shape {feats.shape} do not fit the model, which "
                              f"expects dimension {self.expected_feat_dim} (made with other feature options?)")
        if self.global_cmvn is not None:
            try:
                feats = apply_cmvn(feats, self.global_cmvn, norm_vars=self.norm_vars)
            except AsrkitError as e:
                raise AsrkitError(f"utterance '{key}': the model's global CMVN stats: {e}") from None
        elif key in self._cmvn:
            table, spk, scp = self._cmvn[key]
            try:
                stats = table[spk]
            except KeyError:
                raise DataDirError(f"{scp}: no statistics for speaker '{spk}' (utterance '{key}')") from None
            try:
                feats = apply_cmvn(feats, stats, norm_vars=self.norm_vars)
            except AsrkitError as e:
                # Stats of other features (e.g. compute-cmvn before a make-feats with other options).
                raise AsrkitError(f"{scp}: speaker '{spk}' (utterance '{key}'): {e}; re-run `asrkit compute-cmvn "
                                  f"{scp.parent}`") from None
        if not np.isfinite(feats).all():
            raise AsrkitError(f"utterance '{key}': features contain NaN or Inf")
        return feats

    def load(self, key: str) -> Example:
        """Load one utterance's features and target."""
        feats = self.load_feats(key)
        lang = self.utt_lang[key]
        targets: dict[str, np.ndarray] = {}
        if "text" in self.target_kinds:
            targets["text"] = np.asarray(self.lang_dir.tokenizer(lang).encode(self.text[key]), dtype=np.int64)
        if "ali" in self.target_kinds:
            targets["ali"] = self.tables["ali"][key]
        if "post" in self.target_kinds:
            # A copy: rows read from an ark may be read-only views, which torch.from_numpy warns about.
            targets["post"] = np.array(self.tables["post"][key], dtype=np.float32)
        return Example(key, lang, feats, targets)


@dataclass
class Batch:
    """A padded batch.

    keys: utterance ids; langs: their languages (`lang` is the batch's one language or None);
    feats (B, T, D) float32; feat_lens (B,) int64; targets: {kind: (padded, lens (B,) int64)} with
    "text" (B, S) int64 token ids padded with 0, "ali" (B, T') int64 frame labels padded with -100,
    "post" (B, T', V) float32 soft targets padded with 0.
    """

    keys: list[str]
    langs: list[str]
    feats: torch.Tensor
    feat_lens: torch.Tensor
    targets: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def lang(self) -> str | None:
        return self.langs[0] if len(set(self.langs)) == 1 else None

    def to(self, device) -> Batch:
        return self._apply(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (DataLoader's pin_memory calls this), so that `to(cuda)`
        copies asynchronously."""
        return self._apply(lambda t: t.pin_memory())

    def _apply(self, move) -> Batch:
        return Batch(self.keys, self.langs, move(self.feats), move(self.feat_lens),
                     {k: (move(v), move(n)) for k, (v, n) in self.targets.items()})


def collate(examples: Sequence[Example]) -> Batch:
    """Pad examples into a Batch (see Batch for the shapes)."""
    lens = torch.tensor([e.feats.shape[0] for e in examples], dtype=torch.int64)
    dim = examples[0].feats.shape[1]
    feats = torch.zeros(len(examples), int(lens.max()), dim, dtype=torch.float32)
    for i, e in enumerate(examples):
        feats[i, : e.feats.shape[0]] = torch.from_numpy(e.feats)
    targets = {}
    for kind in examples[0].targets:
        target_lens = torch.tensor([len(e.targets[kind]) for e in examples], dtype=torch.int64)
        longest = max(1, int(target_lens.max()))
        if kind == "post":
            dims = {e.targets[kind].shape[1] for e in examples}
            if len(dims) > 1:
                raise AsrkitError(f"soft targets of one batch have different dimensions {sorted(dims)} "
                                  f"(utterances {', '.join(e.key for e in examples[:3])} ...)")
            padded = torch.zeros(len(examples), longest, dims.pop(), dtype=torch.float32)
        else:
            padded = torch.full((len(examples), longest), -100 if kind == "ali" else 0, dtype=torch.int64)
        for i, e in enumerate(examples):
            if len(e.targets[kind]):
                padded[i, : len(e.targets[kind])] = torch.from_numpy(np.asarray(e.targets[kind]))
        targets[kind] = (padded, target_lens)
    return Batch([e.key for e in examples], [e.lang for e in examples], feats, lens, targets)


class _BatchListDataset(torch.utils.data.Dataset):
    def __init__(self, dataset: AsrDataset, batches: list[list[str]]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return collate([self.dataset.load(k) for k in self.batches[i]])


def batch_loader(dataset: AsrDataset, batches: list[list[str]], *, num_workers: int = 0, pin_memory: bool = False):
    """Iterate padded Batches of a batch list in order (workers load whole batches; with
    `pin_memory`, in page-locked memory for asynchronous copies to a GPU)."""
    ds = _BatchListDataset(dataset, batches)
    # An own generator: a DataLoader otherwise draws its worker seed from the global RNG, and a resumed
    # run (which creates its loader mid-epoch) would then see different dropout/SpecAugment noise.
    return torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers,
                                       persistent_workers=False, prefetch_factor=2 if num_workers else None,
                                       pin_memory=pin_memory, generator=torch.Generator())
