"""`asrkit decode`: decode a data dir with a model file, in batches on a GPU or in N CPU jobs.

The driver (`decode_data_dir`) checks the model and the data, splits the data dir like Kaldi's
`split_data.sh` when `nj > 1`, runs one job per part (`run_job`), and merges the parts into
`DIR/text` (Kaldi text, C-sorted) or, with `output="loglikes"`, `DIR/loglikes.scp` over the jobs'
`DIR/loglikes.JOB.ark` (see asrkit.decoding.loglikes). Each job writes a run.pl-style log
(`DIR/log/decode.log` for one job, `DIR/log/decode.JOB.log` for several, beside the driver's own
`DIR/log/decode.log`) with its real-time factor. Every file is written atomically; a job whose
log ends with code 0 and records the same signature is not run again, and a finished decode
(`DIR/.done` holds its signature) is skipped, so a killed decode is finished by running it again.

Search backends
---------------
How a batch of features becomes token ids depends on the model type, and is a `SearchBackend`:

    class SearchBackend(Protocol):
        searches: tuple[str, ...]        # the --search values it offers, e.g. ("greedy", "beam")
        supports_streaming: bool         # whether it accepts streaming=True

        def decode_batch(self, model, feats, feat_lens, lang, search, beam, *, streaming=False)
                -> list[list[int]]: ...

`decode_batch` gets the loaded model (eval mode, on its device, called under
`torch.inference_mode()`), `feats (B, T, D)` float32 after CMVN on the model's device,
`feat_lens (B,)` int64 on the same device, the batch's one language tag, the search name and
the beam size, and returns B lists of token ids of that language's token set (blank removed,
token id 0 is blank in every token set); the driver turns them into words with the model's
sentencepiece model. A backend may also define `describe(model) -> list[str]`: lines the driver
writes into the log before decoding (a streaming model's chunk size and algorithmic latency).

`model_type(model, meta)` names the backend: "rnnt" for a transducer (the model file's objective
is "rnnt", or the model has `transducer_loss`), "ctc" otherwise. `BACKENDS` maps a name to
"module:attribute" of a class that is instantiated without arguments: "ctc" is `CtcSearch` here
(greedy and prefix beam search), "rnnt" is `asrkit.decoding.rnnt:RnntSearch` (greedy, beam and
streaming search for the Emformer transducer). `register_backend` adds or replaces one.

Language pathways: when a model file's metadata has a "pathways" entry, each job calls
`asrkit.models.pathways.build_decode_hook(model, meta)` once and the returned object's
`before_batch(model, lang)` before every batch (to apply the language's mask).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from asrkit.errors import AsrkitError, ConfigError, DataDirError
from asrkit.models.modelfile import ModelMeta

SEARCHES = ("greedy", "beam")
OUTPUTS = ("text", "loglikes")
# Padded input frames per batch: a few thousand keep a CPU's caches warm; a GPU wants many.
DEFAULT_BATCH_FRAMES = {"cpu": 20_000, "cuda": 400_000}
DEFAULT_FRAME_SHIFT_MS = 10.0
DONE_FILE = ".done"


# ------------------------------------------------------------------------------------------------
# Search backends
# ------------------------------------------------------------------------------------------------

@runtime_checkable
class SearchBackend(Protocol):
    """Turns a batch of features into token ids (see the module docstring for the contract)."""

    searches: tuple[str, ...]
    supports_streaming: bool

    def decode_batch(self, model, feats, feat_lens, lang: str, search: str, beam: int, *,
                     streaming: bool = False) -> list[list[int]]: ...


class CtcSearch:
    """CTC models (encoder + frame-level softmax over tokens with blank 0): greedy or prefix beam."""

    searches = SEARCHES
    supports_streaming = False

    def decode_batch(self, model, feats, feat_lens, lang: str, search: str, beam: int, *,
                     streaming: bool = False) -> list[list[int]]:
        """`feats (B, T, D)`, `feat_lens (B,)` -> B token-id lists (see the module docstring)."""
        from asrkit.decoding.ctc import ctc_prefix_beam_search
        from asrkit.models.ctc import ctc_greedy

        if streaming:
            raise ConfigError("streaming decoding needs a streaming (Emformer RNN-T) model; this is a CTC model")
        logits, out_lens = model(feats, feat_lens, lang)  # (B, T', V), (B,)
        if search == "greedy":
            return ctc_greedy(logits, out_lens, blank=0)
        if search == "beam":
            nbest = ctc_prefix_beam_search(logits.float().log_softmax(-1), out_lens, beam=beam, blank=0)
            return [hyps[0][0] for hyps in nbest]
        raise ConfigError(f"unknown search '{search}' for a CTC model (choose from {', '.join(self.searches)})")

    def describe(self, model) -> list[str]:
        return [f"CTC model, {model.frame_subsampling}x frame subsampling"]


BACKENDS: dict[str, str] = {
    "ctc": "asrkit.decoding.decoder:CtcSearch",
    "rnnt": "asrkit.decoding.rnnt:RnntSearch",
}


def register_backend(name: str, target: str) -> None:
    """Make `model_type` name `name` decode with `target` ("module:attribute" of a backend class)."""
    BACKENDS[name] = target


def model_type(model, meta: ModelMeta) -> str:
    """"rnnt" for a transducer model, "ctc" for a model with frame-level token outputs."""
    if meta.objective == "rnnt" or hasattr(model, "transducer_loss"):
        return "rnnt"
    return "ctc"


def search_backend(model, meta: ModelMeta) -> SearchBackend:
    """Instantiate the backend for a model (see `BACKENDS`).

    Raises:
        ConfigError: the backend's module is not available in this installation.
    """
    import importlib

    kind = model_type(model, meta)
    module_name, _, attr = BACKENDS[kind].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"no decoder for {kind} models in this installation ({BACKENDS[kind]} is missing)") from None
    return cls()


# ------------------------------------------------------------------------------------------------
# Options, jobs, results
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecodeOptions:
    """What a decode does besides which model and data: every field changes the signature."""

    search: str = "greedy"
    beam: int = 8
    lang: str = "auto"
    device: str = "cpu"
    batch_frames: int = 0  # 0: DEFAULT_BATCH_FRAMES of the device
    output: str = "text"
    streaming: bool = False
    priors: tuple[float, ...] | None = None  # loglikes: log priors (asrkit.decoding.loglikes)
    prior_source: str = ""


@dataclass(frozen=True)
class JobSpec:
    """One decode job: the (split) data dir it reads and the files it writes (picklable)."""

    job: int
    data_dir: Path
    model: Path
    out_dir: Path
    text: Path | None
    ark: Path | None
    scp: Path | None
    log: Path | None  # None: log into the driver's decode.log (one job)
    opts: DecodeOptions
    signature: str
    command: str
    threads: int = 0  # 0: leave torch's thread count alone


@dataclass
class JobResult:
    """What a job did: utterances, seconds of audio, seconds spent (model loading excluded)."""

    job: int
    num_utts: int = 0
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0


@dataclass
class DecodeResult:
    """What `decode_data_dir` did."""

    out_dir: Path
    output: Path  # DIR/text or DIR/loglikes.scp
    skipped: bool = False
    jobs_run: list[int] = field(default_factory=list)
    jobs_reused: list[int] = field(default_factory=list)
    num_utts: int = 0
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor of the jobs run now: seconds of decoding per second of audio."""
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------

def decode_data_dir(model_path: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    search: str = "greedy", beam: int = 8, lang: str = "auto", device: str = "cpu", nj: int = 1,
                    batch_frames: int = 0, output: str = "text", priors: str | os.PathLike | None = None,
                    streaming: bool = False, overwrite: bool = False, command: str | None = None) -> DecodeResult:
    """Decode every utterance of a data dir and write `out_dir/text` (or the log-likelihood ark/scp).

    Args:
        model_path: a model file (`final.pt`, `ema.pt`, `best.pt`, an averaged model, or a
            training checkpoint).
        data_dir: data dir with `feats.scp` (+ `cmvn.scp`/`utt2spk` for CMVN, `utt2lang` for the
            language of each utterance, `utt2dur` for the real-time factor).
        out_dir: the decode dir (created).
        search: "greedy" or "beam" (what the model's backend offers).
        beam: beam size for "beam".
        lang: "auto" (each utterance's `utt2lang`, or the model's only language) or a language
            tag used for every utterance.
        device: "cpu", "cuda" or "cuda:N".
        nj: parallel CPU jobs over `split_for_jobs(data_dir, nj)` (per speaker, or per utterance when there are fewer speakers than jobs).
        batch_frames: padded input frames per batch (0: 20000 on CPU, 400000 on a GPU).
        output: "text" (hypotheses) or "loglikes" (log posterior - log prior per output frame).
        priors: for loglikes, a Kaldi vector of class counts (`asrkit.decoding.loglikes.read_priors`);
            without it the log posteriors are written (priors all equal).
        streaming: decode chunk by chunk (streaming models only).
        overwrite: decode again even when a finished decode with the same signature exists.
        command: the command line recorded in the logs.

    Returns:
        a DecodeResult (with `skipped=True` when nothing had to be done).

    Raises:
        ConfigError: bad options; a model without token sets asked for text; --output loglikes
            with a transducer; priors whose dimension differs from the model output.
        DataDirError: no feats.scp; an utterance whose language the model does not have (naming
            the utterance, the language and the model's languages); no utt2lang for a
            multilingual model.
        AsrkitError: a job failed (the message names its log and the first error).
    """
    from asrkit.kaldi.datadir import split_for_jobs
    from asrkit.logutil import command_line, get_logger, job_log, versions
    from asrkit.models.modelfile import read_model_meta

    log = get_logger("decode")
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    command = command or command_line()
    from asrkit.logutil import check_device, pending_jobs

    device = check_device(device)
    if search not in SEARCHES:
        raise ConfigError(f"unknown search '{search}' (choose from {', '.join(SEARCHES)})")
    if beam < 1:
        raise ConfigError(f"--beam must be at least 1 (got {beam})")
    if output not in OUTPUTS:
        raise ConfigError(f"unknown output '{output}' (choose from {', '.join(OUTPUTS)})")
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1 (got {nj})")
    if nj > 1 and device != "cpu":
        raise ConfigError(f"--nj {nj} runs CPU jobs; on {device} use --nj 1 (batches use the whole GPU)")
    if batch_frames < 0:
        raise ConfigError(f"--batch-frames must be positive (got {batch_frames})")
    if not (data_dir / "feats.scp").is_file():
        raise FileNotFoundError(2, "no features; run `asrkit make-feats` first", str(data_dir / "feats.scp"))

    meta = read_model_meta(model_path)
    _check_model_for_output(meta, model_path, output)
    lang_counts = check_languages(data_dir, meta, lang, model_path)
    log_priors, prior_source = None, ""
    if output == "loglikes" and priors is not None:
        from asrkit.decoding.loglikes import check_prior_dim, log_priors_from_counts, read_priors

        counts = read_priors(priors)
        check_prior_dim(counts, meta, priors, languages=list(lang_counts))
        log_priors, prior_source = tuple(float(x) for x in log_priors_from_counts(counts)), str(priors)
    opts = DecodeOptions(search=search, beam=beam, lang=lang, device=device,
                         batch_frames=batch_frames or DEFAULT_BATCH_FRAMES["cpu" if device == "cpu" else "cuda"],
                         output=output, streaming=streaming, priors=log_priors, prior_source=prior_source)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "log").mkdir(exist_ok=True)
    final_output = out_dir / ("text" if output == "text" else "loglikes.scp")
    model_digest = file_digest(model_path)
    splits = split_for_jobs(data_dir, nj)
    specs = [_job_spec(job, part, model_path, out_dir, opts, model_digest, nj, command)
             for job, part in enumerate(splits, start=1)]
    signature = _hash_strings([f"nj={nj}", *(s.signature for s in specs)])
    result = DecodeResult(out_dir, final_output)
    if not overwrite and final_output.is_file() and _read_done(out_dir) == signature:
        log.info("decode: %s is already decoded with this model and these options: skipping "
                 "(--overwrite to decode again)", out_dir)
        result.skipped = True
        return result
    _remove_stale_temporaries(out_dir)
    (out_dir / DONE_FILE).unlink(missing_ok=True)

    with job_log(out_dir / "log" / "decode.log", command) as log:
        log.info("%s", versions())
        log.info("decode: model %s (sha256 %s), data %s, %s", model_path, model_digest[:16], data_dir,
                 _describe_opts(opts, nj))
        start = time.time()
        # One job has no part to reuse: it writes the final outputs directly.
        todo, result.jobs_reused = pending_jobs(specs, job_is_done, overwrite=overwrite or nj == 1, what="decode",
                                                logger=log)
        results, errors = _run_jobs(todo, nj)
        result.jobs_run = [s.job for s in todo]
        if errors:
            job, message = errors[0]
            where = specs[job - 1].log or out_dir / "log" / "decode.log"
            raise AsrkitError(f"{len(errors)} / {len(specs)} decode jobs failed, log is in {where}: {message}")
        for r in results:
            result.num_utts += r.num_utts
            result.audio_seconds += r.audio_seconds
        wall = time.time() - start
        # One job: its own decoding time (model loading excluded); several: the wall time of all.
        result.decode_seconds = results[0].decode_seconds if nj == 1 and results else wall
        _merge(specs, opts, final_output)
        (out_dir / "num_jobs").write_text(f"{nj}\n")
        if result.audio_seconds:
            log.info("decode: %d utterances, %.1f s of audio in %.2f s: real-time factor %.5f (%.0fx real time)",
                     result.num_utts, result.audio_seconds, result.decode_seconds, result.rtf,
                     1.0 / max(result.rtf, 1e-12))
        log.info("decode: wrote %s", final_output)
    from asrkit.fileio import atomic_write_text

    atomic_write_text(out_dir / DONE_FILE, signature + "\n")
    return result


def _check_model_for_output(meta: ModelMeta, model_path: Path, output: str) -> None:
    if output == "text" and meta.tokens is None:
        raise ConfigError(f"{model_path}: the model has no token sets (objective {meta.objective}); "
                          "it cannot write text: use --output loglikes and a Kaldi decoder")
    if output == "loglikes" and meta.objective == "rnnt":
        raise ConfigError(f"{model_path}: --output loglikes needs frame-level outputs; a transducer (rnnt) "
                          "model has none")


def check_languages(data_dir: Path, meta: ModelMeta, lang: str, model_path: Path) -> dict[str, int]:
    """Check that the model has every utterance's language; returns `{lang: utterances}`.

    Raises:
        DataDirError: an utterance in a language the model does not have, or no utt2lang for a
            model with several languages.
    """
    from asrkit.kaldi.textio import read_table

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


def _job_spec(job: int, part: Path, model_path: Path, out_dir: Path, opts: DecodeOptions, model_digest: str,
              nj: int, command: str) -> JobSpec:
    jobs_dir = out_dir / "jobs"
    text = ark = scp = None
    if opts.output == "text":
        text = jobs_dir / f"text.{job}"
    else:
        ark, scp = out_dir / f"loglikes.{job}.ark", jobs_dir / f"loglikes.{job}.scp"
    signature = job_signature(part, model_digest, opts)
    threads = 0 if nj == 1 else max(1, (os.cpu_count() or 1) // nj)
    return JobSpec(job=job, data_dir=part, model=model_path.resolve(), out_dir=out_dir, text=text, ark=ark, scp=scp,
                   log=None if nj == 1 else out_dir / "log" / f"decode.{job}.log", opts=opts,
                   signature=signature, command=command, threads=threads)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (the model's identity, whatever its name or time stamp)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hash_strings(parts: Sequence[str]) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def job_signature(data_dir: Path, model_digest: str, opts: DecodeOptions) -> str:
    """A digest of what a job's output depends on: the model, the options, the data dir's feature
    tables (and the size and time of the archives they point to), CMVN, speakers and languages."""
    h = hashlib.sha1()
    h.update(model_digest.encode())
    h.update(json.dumps(asdict(opts), sort_keys=True).encode())
    for name in ("feats.scp", "cmvn.scp", "utt2spk", "utt2lang"):
        path = data_dir / name
        h.update(f"\0{name}\0".encode())
        if path.is_file():
            data = path.read_bytes()
            h.update(data)
            if name.endswith(".scp"):
                for ark in sorted(_archives(data.decode("utf-8", "replace"))):
                    try:
                        st = os.stat(ark)
                        h.update(f"{ark}:{st.st_size}:{st.st_mtime_ns}".encode())
                    except OSError:
                        h.update(f"{ark}:missing".encode())
    return h.hexdigest()


def _archives(scp_text: str) -> set[str]:
    from asrkit.kaldi.table import split_offset, split_range

    arks = set()
    for line in scp_text.splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and not parts[1].rstrip().endswith("|"):
            arks.add(split_offset(split_range(parts[1].strip())[0])[0])
    return arks


def job_is_done(spec: JobSpec) -> bool:
    """True if a job's outputs exist, its log ended with code 0 and records the same signature."""
    outputs = [p for p in (spec.text, spec.ark, spec.scp) if p is not None]
    if spec.log is None or not spec.log.is_file() or not all(p.is_file() for p in outputs):
        return False
    from asrkit.logutil import job_log_finished

    return job_log_finished(spec.log, spec.signature)


def _read_done(out_dir: Path) -> str | None:
    path = out_dir / DONE_FILE
    return path.read_text().strip() if path.is_file() else None


def _remove_stale_temporaries(out_dir: Path) -> None:
    # A killed run (kill -9) leaves the temporary files of its atomic writers; they are ours alone.
    for folder in (out_dir, out_dir / "jobs"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _describe_opts(opts: DecodeOptions, nj: int) -> str:
    parts = [f"search {opts.search}"]
    if opts.search == "beam":
        parts.append(f"beam {opts.beam}")
    parts += [f"lang {opts.lang}", f"device {opts.device}", f"nj {nj}", f"batch-frames {opts.batch_frames}",
              f"output {opts.output}"]
    if opts.streaming:
        parts.append("streaming")
    if opts.prior_source:
        parts.append(f"priors {opts.prior_source}")
    return ", ".join(parts)


def _run_jobs(specs: list[JobSpec], nj: int) -> tuple[list[JobResult], list[tuple[int, str]]]:
    """Run jobs: in this process when nj == 1, else in `nj` spawned processes.

    Returns:
        the results of the jobs that finished, and `(job, error message)` of each that failed.
    """
    results: list[JobResult] = []
    errors: list[tuple[int, str]] = []
    if not specs:
        return results, errors
    if nj == 1:
        for spec in specs:
            results.append(run_job(spec))  # errors propagate: the driver's log records them
        return results, errors
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # torch and fork do not mix
    with cf.ProcessPoolExecutor(max_workers=min(nj, len(specs)), mp_context=ctx, initializer=_init_worker) as pool:
        futures = {pool.submit(_run_job_in_worker, spec): spec for spec in specs}
        for fut in cf.as_completed(futures):
            outcome = fut.result()
            if isinstance(outcome, str):
                errors.append((futures[fut].job, outcome))
            else:
                results.append(outcome)
    return sorted(results, key=lambda r: r.job), sorted(errors)


def _init_worker() -> None:
    from asrkit.logutil import setup_logging

    setup_logging(stderr=False)  # job logs only; the driver reports


def _run_job_in_worker(spec: JobSpec) -> JobResult | str:
    """Run a job in a pool worker; return its result, or its error message (user errors)."""
    try:
        return run_job(spec)
    except (AsrkitError, OSError) as e:
        return " ".join(str(e).split("\n"))


def _merge(specs: list[JobSpec], opts: DecodeOptions, final_output: Path) -> None:
    from asrkit.kaldi.table import merge_scp
    from asrkit.kaldi.textio import read_table, write_table

    if opts.output == "loglikes":
        merge_scp([s.scp for s in specs], final_output)
        return
    merged: dict[str, str] = {}
    for spec in specs:
        part = read_table(spec.text)
        clash = next((k for k in part if k in merged), None)
        if clash is not None:
            raise AsrkitError(f"{spec.text}: utterance '{clash}' was decoded by two jobs")
        merged.update(part)
    write_table(final_output, merged, sort=True)


# ------------------------------------------------------------------------------------------------
# One job
# ------------------------------------------------------------------------------------------------

def audio_seconds(data_dir: Path, dataset, meta: ModelMeta) -> dict[str, float]:
    """Seconds of audio per utterance: utt2dur, else frames x the feature frame shift."""
    from asrkit.kaldi.textio import read_table

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


def build_hooks(model, meta: ModelMeta) -> list:
    """Per-batch hooks a model file asks for (language pathway masks)."""
    from asrkit.models.pathways import build_decode_hook

    if not meta.pathways:
        return []
    return [build_decode_hook(model, meta)]


def run_job(spec: JobSpec, progress: bool | None = None) -> JobResult:
    """Decode one (split) data dir and write its part of the output, with a run.pl-style log.

    Returns:
        a JobResult.

    Raises:
        DataDirError / FormatError: bad data dir files or features (naming the utterance).
        ConfigError: a search the model's backend does not offer.
    """
    import contextlib
    import logging

    from asrkit.logutil import get_logger, job_log, versions

    if spec.log is None:
        return _decode_job(spec, get_logger("decode"), progress)
    if get_logger().getEffectiveLevel() > logging.INFO:
        get_logger().setLevel(logging.INFO)  # the job log always gets its progress lines
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(job_log(spec.log, f"{spec.command}  # job {spec.job}"))
        log.info("%s", versions())
        return _decode_job(spec, log, progress=False)


def _decode_job(spec: JobSpec, log, progress: bool | None) -> JobResult:
    import torch

    saved_threads = torch.get_num_threads()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        return _decode_job_body(spec, log, progress)
    finally:
        torch.set_num_threads(saved_threads)  # an in-process job must not change the caller's setting


def _decode_job_body(spec: JobSpec, log, progress: bool | None) -> JobResult:
    import torch
    from tqdm import tqdm

    from asrkit.data.sampler import inference_batches
    from asrkit.models.modelfile import load_model, open_data

    opts = spec.opts
    log.info("job %d: %s -> %s", spec.job, spec.data_dir, spec.text or spec.scp)
    log.info("job signature %s", spec.signature)
    device = torch.device(opts.device)
    model, meta = load_model(spec.model, device)
    _warn_feature_mismatch(spec.data_dir, meta, log)
    dataset = open_data(spec.data_dir, meta, opts.lang)
    batches = inference_batches(dataset.utts, opts.batch_frames)
    seconds = audio_seconds(spec.data_dir, dataset, meta)
    hooks = build_hooks(model, meta)
    backend = None
    tokenizers = {}
    if opts.output == "text":
        backend = search_backend(model, meta)
        if opts.search not in backend.searches:
            raise ConfigError(f"search '{opts.search}' is not available for this model "
                              f"(choose from {', '.join(backend.searches)})")
        if opts.streaming and not backend.supports_streaming:
            raise ConfigError("--streaming: this model cannot be decoded in streaming mode")
        for line in getattr(backend, "describe", lambda m: [])(model):
            log.info("%s", line)
        tokenizers = meta.tokenizers()
    result = JobResult(spec.job, num_utts=len(dataset.utts),
                       audio_seconds=sum(seconds.get(u.key, 0.0) for u in dataset.utts))
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(dataset.utts), unit="utt", desc="decode", disable=not show, file=sys.stderr)
    hyps: dict[str, str] = {}
    writer = None
    if opts.output == "loglikes":
        import numpy as np

        from asrkit.kaldi.table import ArkScpWriter

        spec.scp.parent.mkdir(parents=True, exist_ok=True)
        writer = ArkScpWriter(spec.ark, spec.scp)
        log_priors = torch.tensor(opts.priors, device=device) if opts.priors is not None else None
    else:
        spec.text.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    next_report = start + 30.0
    done = 0
    from asrkit.data.dataset import batch_loader

    loader = batch_loader(dataset, batches, num_workers=2 if device.type == "cuda" else 0)
    try:
        with torch.inference_mode():
            for batch in loader:
                lang = batch.lang
                feats = batch.feats.to(device, non_blocking=True)
                feat_lens = batch.feat_lens.to(device, non_blocking=True)
                for hook in hooks:
                    hook.before_batch(model, lang)
                if writer is not None:
                    logits, out_lens = model(feats, feat_lens, lang)
                    if log_priors is not None and log_priors.shape[0] != logits.shape[-1]:
                        raise ConfigError(f"priors ({opts.prior_source}) have {log_priors.shape[0]} entries but the "
                                          f"model has {logits.shape[-1]} outputs for language '{lang}' "
                                          f"(utterance '{batch.keys[0]}')")
                    loglikes = logits.float().log_softmax(-1)
                    if log_priors is not None:
                        loglikes = loglikes - log_priors
                    loglikes, out_lens = loglikes.cpu().numpy(), out_lens.cpu().tolist()
                    for i, key in enumerate(batch.keys):
                        writer.write(key, np.ascontiguousarray(loglikes[i, : out_lens[i]]))
                else:
                    ids = backend.decode_batch(model, feats, feat_lens, lang, opts.search, opts.beam,
                                               streaming=opts.streaming)
                    tok = tokenizers.get(lang) or next(iter(tokenizers.values()))
                    for key, seq in zip(batch.keys, ids):
                        hyps[key] = tok.decode(seq) if seq else ""
                done += len(batch.keys)
                bar.update(len(batch.keys))
                if time.time() >= next_report:
                    log.info("progress: %d / %d utterances", done, len(dataset.utts))
                    next_report = time.time() + 30.0
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.decode_seconds = time.time() - start
    if spec.text is not None:
        from asrkit.kaldi.textio import write_table

        write_table(spec.text, {k: " ".join(v.split()) for k, v in hyps.items()}, sort=True)
    log.info("job %d: %d utterances, %.1f s of audio in %.2f s: real-time factor %.5f (%.0fx real time)",
             spec.job, result.num_utts, result.audio_seconds, result.decode_seconds, result.rtf,
             1.0 / max(result.rtf, 1e-12))
    return result


def _warn_feature_mismatch(data_dir: Path, meta: ModelMeta, log) -> None:
    from asrkit.data.features_info import feature_settings

    trained = meta.features
    here = feature_settings(data_dir)
    if trained and here and trained != here:
        log.warning("features of %s were made with other settings than the model's training data "
                    "(%s vs %s)", data_dir, here, trained)
