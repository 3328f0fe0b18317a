"""Log-likelihoods for Kaldi decoders: log posterior - log prior per output frame, and the priors.

A hybrid decoder (`latgen-faster-mapped`, `decode-faster-mapped`) wants scaled likelihoods
p(x|s) ∝ p(s|x) / p(s): `asrkit decode --output loglikes` writes log p(s|x) - log p(s) as float
matrices (rows = model output frames, columns = output dimension). The prior p(s) comes from class
counts: of frame labels in training alignments (`priors_from_alignments`, what Kaldi's
`ali_train_pdf.counts` holds) or of the model's own posteriors summed over training data
(`priors_from_posteriors`). Counts are stored as a Kaldi vector (`[ c0 c1 ... ]`). A decode job's
`LoglikesOutput` writes the log-likelihoods of its utterances as a Kaldi ark/scp.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import kaldiio
import numpy as np
import torch

from asrkit.data.dataset import batch_loader
from asrkit.data.sampler import inference_batches
from asrkit.errors import AsrkitError, ConfigError, FormatError
from asrkit.fileio import atomic_write_text
from asrkit.kaldi.table import iter_table
from asrkit.kaldi.writer import ArkScpWriter
from asrkit.models.modelfile import ModelMeta, load_model, open_data, read_model_meta

# Kaldi nnet1's PdfPrior: a class whose prior is below the floor gets prior 1e10, i.e. its
# log-likelihood is lowered by ~23 and the decoder practically never picks it.
PRIOR_FLOOR = 1e-10
FLOORED_PRIOR = 1e10


def read_priors(path: str | os.PathLike) -> np.ndarray:
    """Read class counts (or probabilities) from a Kaldi vector file.

    Accepts the text form `[ 12 0 345 ]` (as `vector-sum --binary=false` writes it; line breaks
    allowed, an optional leading key as in `ark,t:` output), bare numbers, or a binary Kaldi vector
    (`FV`/`DV`, no key).

    Returns:
        (dim,) float64.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a vector, a non-number, a negative value, or all zeros.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\0B"):
        try:
            vec = np.asarray(kaldiio.load_mat(str(path)), dtype=np.float64)
        except Exception as e:  # kaldiio raises several kinds on bad data
            raise FormatError(path, f"not a binary Kaldi vector ({type(e).__name__}: {e})") from None
        if vec.ndim != 1:
            raise FormatError(path, f"expected a vector of counts, found a matrix of shape {vec.shape}")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(path, "neither a text nor a binary Kaldi vector") from None
        body, first_line = text, 1
        if "[" in text:
            open_at, close_at = text.index("["), text.rfind("]")
            if close_at < open_at:
                raise FormatError(path, "'[' without a closing ']'")
            if len(text[:open_at].split()) > 1:
                raise FormatError(path, "expected '[ counts ]' or '<key> [ counts ]'", 1)
            body, first_line = text[open_at + 1 : close_at], 1 + text[:open_at].count("\n")
        values = []
        for lineno, line in enumerate(body.split("\n"), start=first_line):
            for tok in line.split():
                try:
                    values.append(float(tok))
                except ValueError:
                    raise FormatError(path, f"'{tok}' is not a number", lineno) from None
        vec = np.asarray(values, dtype=np.float64)
    if vec.size == 0:
        raise FormatError(path, "empty vector of counts")
    if not np.isfinite(vec).all() or (vec < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(vec) | (vec < 0))[0])
        raise FormatError(path, f"count {bad} is {vec[bad]}; counts must be finite and >= 0")
    if vec.sum() <= 0:
        raise FormatError(path, "all counts are zero")
    return vec


def write_priors(path: str | os.PathLike, counts: np.ndarray) -> None:
    """Write counts as a Kaldi text vector `[ c0 c1 ... ]` (what `read_priors` and Kaldi read), atomically."""
    counts = np.asarray(counts, dtype=np.float64)
    atomic_write_text(path, "[ " + " ".join(f"{c:.10g}" for c in counts) + " ]\n")


def log_priors_from_counts(counts: np.ndarray, floor: float = PRIOR_FLOOR) -> np.ndarray:
    """log p(s) from counts: normalised, and classes below `floor` set to log(1e10) (Kaldi nnet1).

    Returns:
        (dim,) float32.
    """
    counts = np.asarray(counts, dtype=np.float64)
    priors = counts / counts.sum()
    priors = np.where(priors < floor, FLOORED_PRIOR, priors)
    return np.log(priors).astype(np.float32)


def check_prior_dim(counts: np.ndarray, meta: ModelMeta, source, languages=None) -> None:
    """Raise ConfigError unless the priors have one entry per model output of each language decoded.

    Args:
        counts: (dim,) counts.
        meta: the model file's metadata (its `vocab_sizes`).
        source: where the counts came from (for the message).
        languages: the languages that will be decoded (default: all of the model's).
    """
    sizes = dict(meta.vocab_sizes)
    if not sizes:
        return
    if "all" in sizes and len(sizes) == 1:
        langs = ["all"]
    else:
        langs = [lang for lang in (languages or sizes) if lang in sizes] or list(sizes)
    for lang in langs:
        if sizes[lang] != len(counts):
            raise ConfigError(f"priors {source} have dimension {len(counts)} but the model has {sizes[lang]} "
                              f"outputs for language '{lang}'")


def priors_from_alignments(rspecifier: str, dim: int) -> np.ndarray:
    """Count frame labels in alignments (Kaldi `analyze-counts` / `ali_train_pdf.counts`).

    Args:
        rspecifier: a table of int vectors of class ids (e.g. pdf-ids): `ark:gunzip -c ali.1.gz|`,
            `ark:ali.ark`, `scp:ali.scp`; a path ending in .gz/.ark is read as an archive.
        dim: number of classes (the model's output dimension).

    Returns:
        (dim,) float64 counts.

    Raises:
        AsrkitError: a label outside [0, dim) (naming the utterance), or no alignment at all.
    """
    if not rspecifier.startswith(("ark:", "ark,", "scp:", "scp,")):
        if rspecifier.endswith(".gz"):
            rspecifier = f"ark:gunzip -c {rspecifier}|"
        else:
            rspecifier = ("scp:" if rspecifier.endswith(".scp") else "ark:") + rspecifier
    counts = np.zeros(dim, dtype=np.float64)
    num = 0
    for key, ali in iter_table(rspecifier):
        ali = np.asarray(ali)
        if ali.ndim != 1 or ali.dtype.kind not in "iu":
            raise AsrkitError(f"{rspecifier}: utterance '{key}' is not an integer vector of frame labels")
        if ali.size and (ali.min() < 0 or ali.max() >= dim):
            bad = int(ali.max() if ali.max() >= dim else ali.min())
            raise AsrkitError(f"{rspecifier}: utterance '{key}' has label {bad}, outside the model's {dim} outputs")
        counts += np.bincount(ali, minlength=dim)[:dim]
        num += 1
    if num == 0:
        raise AsrkitError(f"{rspecifier}: no alignments")
    return counts


def priors_from_posteriors(model, data_dir: str | os.PathLike, *, meta: ModelMeta | None = None, lang: str = "auto",
                           device: str = "cpu", batch_frames: int = 20_000) -> np.ndarray:
    """Sum the model's frame posteriors over a data dir (soft class counts, the nnet3 way of
    estimating priors when no alignment is at hand).

    Args:
        model: a model file path, or a loaded AsrModel (then `meta` gives its CMVN settings; without
            it the data dir's own cmvn.scp, means only).
        data_dir: usually (a subset of) the training data: feats.scp, cmvn.scp, utt2lang.
        meta: the model file's metadata (needed with a loaded model).
        lang: "auto" (utt2lang) or one language for every utterance. All utterances must use
            heads of one output dimension.
        device: where to run the model.
        batch_frames: padded input frames per batch.

    Returns:
        (dim,) float64 summed posteriors (their total is the number of output frames).

    Raises:
        ConfigError: the languages of the data have output layers of different sizes.
    """
    if isinstance(model, (str, os.PathLike)):
        model, meta = load_model(model, device)
    if meta is None:  # a loaded model without its file: plain per-speaker CMVN, as the data dir has it
        meta = ModelMeta.for_model(model, objective=None)
    dataset = open_data(Path(data_dir), meta, lang)
    counts = None
    with torch.inference_mode():
        for batch in batch_loader(dataset, inference_batches(dataset.utts, batch_frames)):
            logits, out_lens = model(batch.feats.to(device), batch.feat_lens.to(device), batch.lang)
            post = logits.float().softmax(-1)
            mask = (torch.arange(post.shape[1], device=post.device)[None, :] < out_lens[:, None]).unsqueeze(-1)
            batch_sum = (post * mask).sum(dim=(0, 1)).double().cpu().numpy()
            if counts is None:
                counts = batch_sum
            elif counts.shape != batch_sum.shape:
                raise ConfigError(f"utterance '{batch.keys[0]}' (language '{batch.lang}') has {batch_sum.shape[0]} "
                                  f"outputs, others {counts.shape[0]}: priors need one output dimension (use --lang)")
            else:
                counts += batch_sum
    if counts is None or not math.isfinite(float(counts.sum())):
        raise AsrkitError(f"{data_dir}: no frames to estimate priors from")
    return counts


def make_priors_file(model_path: str | os.PathLike, out_path: str | os.PathLike, *, alignments: str | None = None,
                     data_dir: str | os.PathLike | None = None, lang: str = "auto", device: str = "cpu") -> Path:
    """Write the class counts of alignments or of the model's posteriors on a data dir to `out_path`.

    Exactly one of `alignments` (an rspecifier of frame labels) and `data_dir` must be given. The
    output dimension is the model's (one dimension for every language).

    Returns:
        `out_path`.

    Raises:
        ConfigError: neither or both sources, or a model whose languages differ in output size.
    """
    if (alignments is None) == (data_dir is None):
        raise ConfigError("give exactly one source of priors: alignments or a data dir")
    if alignments is not None:
        sizes = set(read_model_meta(model_path).vocab_sizes.values())
        if len(sizes) != 1:
            raise ConfigError(f"{model_path}: output sizes differ between languages ({sorted(sizes)}); "
                              "priors from alignments need one output dimension")
        counts = priors_from_alignments(alignments, sizes.pop())
    else:
        counts = priors_from_posteriors(model_path, data_dir, lang=lang, device=device)
    write_priors(out_path, counts)
    return Path(out_path)


class LoglikesOutput:
    """What a decode job writes with `--output loglikes`: per utterance, log posterior - log prior
    (rows = model output frames, columns = output dimension) into the job's ark/scp; `finish`
    renames them into place, `abort` leaves nothing."""

    def __init__(self, ark: Path, scp: Path, *, log_priors: tuple[float, ...] | None, prior_source: str,
                 device: torch.device, final_ark: Path | None = None):
        scp.parent.mkdir(parents=True, exist_ok=True)
        self.writer = ArkScpWriter(ark, scp, final_ark=final_ark)  # final_ark: see ArkScpWriter
        self.log_priors = torch.tensor(log_priors, device=device) if log_priors is not None else None
        self.prior_source = prior_source

    def add_batch(self, model, feats, feat_lens, lang: str, keys: list[str]) -> None:
        """Write one batch: `feats (B, T, D)`, `feat_lens (B,)`, B keys.

        Raises:
            ConfigError: priors whose dimension is not the model's output dimension for `lang`.
        """
        logits, out_lens = model(feats, feat_lens, lang)  # (B, T', V), (B,)
        if self.log_priors is not None and self.log_priors.shape[0] != logits.shape[-1]:
            raise ConfigError(f"priors ({self.prior_source}) have {self.log_priors.shape[0]} entries but the "
                              f"model has {logits.shape[-1]} outputs for language '{lang}' "
                              f"(utterance '{keys[0]}')")
        loglikes = logits.float().log_softmax(-1)
        if self.log_priors is not None:
            loglikes = loglikes - self.log_priors
        loglikes, out_lens = loglikes.cpu().numpy(), out_lens.cpu().tolist()
        for i, key in enumerate(keys):
            self.writer.write(key, np.ascontiguousarray(loglikes[i, : out_lens[i]]))

    def finish(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
