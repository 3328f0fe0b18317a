"""`asrkit decode`: decode a data dir with a model file, in batches on a GPU or in N CPU jobs.

The driver (`decode_data_dir`) checks the model and the data, splits the data dir like Kaldi's
`split_data.sh` when `nj > 1`, runs one job per part (`run_job`, through asrkit.jobs), and merges the
parts into `DIR/text` (Kaldi text, C-sorted) or, with `output="loglikes"`, `DIR/loglikes.scp` over
the jobs' `DIR/loglikes.JOB.ark`. Each job writes a run.pl-style log (`DIR/log/decode.log` for one
job, `DIR/log/decode.JOB.log` for several, beside the driver's own `DIR/log/decode.log`) with its
real-time factor. Every file is written atomically; a job whose log ends with code 0 and records the
same signature is not run again, and a finished decode (`DIR/.done` holds its signature) is
skipped, so a killed decode is finished by running it again.

A job reads its part of the data as the model takes it (asrkit.models.modelfile.open_data, in the
fixed batches of asrkit.data.sampler.inference_batches; the language and duration checks are
asrkit.decoding.inputs) and hands each batch to its output: `TextOutput` (asrkit.decoding.search:
the model type's search backend, then words), `LmTextOutput` (asrkit.decoding.lm: with `--lm`, CTC
lexicon beam search with a word n-gram, best hypotheses and n-best lists) or `LoglikesOutput`
(asrkit.decoding.loglikes: log posterior - log prior for Kaldi decoders).

Language pathways: when a model file's metadata has a "pathways" entry, each job calls
`asrkit.models.pathways.build_decode_hook(model, meta)` once and the returned object's
`before_batch(model, lang)` before every batch (to apply the language's mask).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from asrkit import jobs
from asrkit.data.dataset import batch_loader
from asrkit.data.sampler import inference_batches
from asrkit.decoding.inputs import audio_seconds, check_languages, count_unspellable, warn_feature_mismatch
from asrkit.decoding.lm import LmTextOutput, check_lm_languages, parse_lm_options
from asrkit.decoding.loglikes import LoglikesOutput, check_prior_dim, log_priors_from_counts, read_priors
from asrkit.decoding.search import SEARCHES, TextOutput, model_type
from asrkit.errors import AsrkitError, ConfigError
from asrkit.fileio import atomic_write_text, check_not_an_input, dir_lock
from asrkit.kaldi.writer import merge_scp
from asrkit.logutil import check_device, command_line, get_logger, job_log, versions
from asrkit.models.ctc import UnalignableCount
from asrkit.models.modelfile import ModelMeta, load_model, open_data, read_model_meta
from asrkit.models.pathways import build_decode_hook

OUTPUTS = ("text", "loglikes")
# Beam sizes when --beam is not given: prefix beam search gains little past 8 hypotheses; the
# lexicon search with a word LM wants far more (50 gained 4.6 points of WER over 20 on the demo,
# at the same speed: docs/decoding.md).
DEFAULT_BEAM = 8
DEFAULT_LM_BEAM = 50
# Padded input frames per batch: a few thousand keep a CPU's caches warm; a GPU wants many.
DEFAULT_BATCH_FRAMES = {"cpu": 20_000, "cuda": 400_000}
DONE_FILE = ".done"
NBEST_DIR = "nbest"  # --lm: DIR/nbest/{text,ac_cost,lm_cost}, keyed <utt>-<n>
NBEST_TABLES = ("text", "ac_cost", "lm_cost")


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
    lm: tuple[tuple[str, str, str], ...] = ()  # (language, LM dir, sha256 of its lm.arpa and lexicon.txt)
    lm_weight: float = 1.0
    word_penalty: float = 0.0
    nbest: int = 1


@dataclass(frozen=True)
class JobSpec(jobs.Job):
    """One decode job: the (split) data dir it reads and the files it writes (picklable); `log` is
    None for one job (it logs into the driver's decode.log)."""

    data_dir: Path
    model: Path
    out_dir: Path
    text: Path | None
    ark: Path | None
    scp: Path | None
    opts: DecodeOptions
    nbest: tuple[Path, Path, Path] | None = None  # --lm: the n-best words, ac_cost, lm_cost

    @property
    def outputs(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.text, self.ark, self.scp, *(self.nbest or ())) if p is not None)


@dataclass(kw_only=True)
class DecodeSpeed:
    """Utterances and seconds of audio decoded in `decode_seconds` (model loading excluded)."""

    num_utts: int = 0
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of decoding per second of audio."""
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def describe(self) -> str:
        """The log line's words: `N utterances, A s of audio in D s: real-time factor R (Xx real time)`."""
        return (f"{self.num_utts} utterances, {self.audio_seconds:.1f} s of audio in {self.decode_seconds:.2f} s: "
                f"real-time factor {self.rtf:.5f} ({1.0 / max(self.rtf, 1e-12):.0f}x real time)")


@dataclass
class JobResult(DecodeSpeed):
    """What a job did: its utterances, seconds of audio and decoding time; for a CTC model's text,
    how many of its utterances with a reference could not be spelled in the model's output frames."""

    job: int
    unspellable: UnalignableCount = field(default_factory=UnalignableCount)
    subsampling: int | None = None  # the model's input frames per output frame, for the message


@dataclass
class DecodeResult(DecodeSpeed):
    """What `decode_data_dir` did; the speed is that of the jobs run now."""

    out_dir: Path
    output: Path  # DIR/text or DIR/loglikes.scp
    skipped: bool = False
    jobs_run: list[int] = field(default_factory=list)
    jobs_reused: list[int] = field(default_factory=list)
    unspellable: UnalignableCount = field(default_factory=UnalignableCount)  # of the jobs run now (JobResult)


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------

def decode_data_dir(model_path: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    search: str | None = None, beam: int | None = None, lang: str = "auto", device: str = "cpu",
                    nj: int = 1, batch_frames: int = 0, output: str = "text", priors: str | os.PathLike | None = None,
                    streaming: bool = False, lm: tuple[str, ...] | list[str] = (), lm_weight: float = 1.0,
                    word_penalty: float = 0.0, nbest: int = 1, overwrite: bool = False,
                    command: str | None = None) -> DecodeResult:
    """Decode every utterance of a data dir and write `out_dir/text` (or the log-likelihood ark/scp).

    Args:
        model_path: a model file (`final.pt`, `ema.pt`, `best.pt`, an averaged model, or a
            training checkpoint).
        data_dir: data dir with `feats.scp` (+ `cmvn.scp`/`utt2spk` for CMVN, `utt2lang` for the
            language of each utterance, `utt2dur` for the real-time factor).
        out_dir: the decode dir (created).
        search: "greedy" or "beam" (what the model's backend offers); None: greedy. With `lm` it
            must be None: the LM decode is its own search.
        beam: beam size for "beam" and for `lm`; None: 8 (`DEFAULT_BEAM`), with `lm` 50
            (`DEFAULT_LM_BEAM`).
        lang: "auto" (each utterance's `utt2lang`, or the model's only language) or a language
            tag used for every utterance.
        device: "cpu", "cuda" or "cuda:N".
        nj: parallel CPU jobs over `asrkit.jobs.split_data(data_dir, nj)` (per speaker, or per utterance
            when there are fewer speakers than jobs), in a pool of processes.
        batch_frames: padded input frames per batch (0: 20000 on CPU, 400000 on a GPU).
        output: "text" (hypotheses) or "loglikes" (log posterior - log prior per output frame).
        priors: for loglikes, a Kaldi vector of class counts (`asrkit.decoding.loglikes.read_priors`);
            without it the log posteriors are written (priors all equal).
        streaming: decode chunk by chunk (streaming models only).
        lm: LM dirs (asrkit make-lm), each `DIR` (for the language its lm.yaml names) or
            `LANG=DIR`: CTC lexicon beam search with the word n-gram (asrkit.decoding.lm), one LM
            per language of the data; writes `out_dir/nbest/` besides `text`.
        lm_weight, word_penalty: score = acoustic + lm_weight * LM - word_penalty * words (natural logs).
        nbest: with `lm`, hypotheses (distinct word sequences) per utterance in `out_dir/nbest/`.
        overwrite: decode again even when a finished decode with the same signature exists.
        command: the command line recorded in the logs.

    Returns:
        a DecodeResult (with `skipped=True` when nothing had to be done).

    Raises:
        ConfigError: bad options; a model without token sets asked for text; --output loglikes
            with a transducer; priors whose dimension differs from the model output.
        DataDirError: no feats.scp; no cmvn.scp for a model trained with per-speaker CMVN; an utterance whose language the model does not have (naming
            the utterance, the language and the model's languages); no utt2lang for a
            multilingual model.
        AsrkitError: a job failed (the message names its log and the first error).
    """
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    command = command or command_line()
    device = check_device(device)
    if lm and search is not None:
        raise ConfigError(f"--search {search} does not go with --lm: --lm decodes with its own search (lexicon beam "
                          "search with the word LM, --beam hypotheses per frame); leave --search out")
    search = search or "greedy"
    if beam is None:
        beam = DEFAULT_LM_BEAM if lm else DEFAULT_BEAM
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
    meta.cmvn.check_data_dir(data_dir)  # here too, so the message names DATA, not a job's split dir
    lang_counts = check_languages(data_dir, meta, lang, model_path)
    lm_entries = _check_lms(lm, meta, model_path, output, lang_counts, data_dir, nbest)
    log_priors, prior_source = None, ""
    if output == "loglikes" and priors is not None:
        counts = read_priors(priors)
        check_prior_dim(counts, meta, priors, languages=list(lang_counts))
        log_priors, prior_source = tuple(float(x) for x in log_priors_from_counts(counts)), str(priors)
    opts = DecodeOptions(search=search, beam=beam, lang=lang, device=device,
                         batch_frames=batch_frames or DEFAULT_BATCH_FRAMES["cpu" if device == "cpu" else "cuda"],
                         output=output, streaming=streaming, priors=log_priors, prior_source=prior_source,
                         lm=lm_entries, lm_weight=float(lm_weight) if lm else 1.0,
                         word_penalty=float(word_penalty) if lm else 0.0, nbest=nbest if lm else 1)

    check_not_an_input(out_dir, [data_dir], ConfigError)  # out_dir/text would replace the references
    with dir_lock(out_dir, "decode", ConfigError):
        return _decode_into(model_path, data_dir, out_dir, opts, nj=nj, overwrite=overwrite, command=command)


def _remove_nbest(nbest_dir: Path) -> None:
    """Remove the n-best tables an earlier `--lm` decode wrote, and their folder once it is empty;
    anything else a user put there stays (asrkit replaces only what it made)."""
    for name in NBEST_TABLES:
        (nbest_dir / name).unlink(missing_ok=True)
    if nbest_dir.is_dir() and not any(nbest_dir.iterdir()):
        nbest_dir.rmdir()


def _decode_into(model_path: Path, data_dir: Path, out_dir: Path, opts: DecodeOptions, *, nj: int,
                 overwrite: bool, command: str) -> DecodeResult:
    """`decode_data_dir` once the options are checked and out_dir is locked: run the jobs, merge."""
    output = opts.output
    (out_dir / "log").mkdir(exist_ok=True)
    final_output = out_dir / ("text" if output == "text" else "loglikes.scp")
    model_digest = jobs.file_digest(model_path)
    splits = jobs.split_data(data_dir, nj)
    specs = [_job_spec(job, part, model_path, out_dir, opts, model_digest, nj, command)
             for job, part in enumerate(splits, start=1)]
    signature = hashlib.sha256("\0".join([f"nj={nj}", *(s.signature for s in specs)]).encode()).hexdigest()
    result = DecodeResult(out_dir, final_output)
    if not overwrite and final_output.is_file() and _read_done(out_dir) == signature:
        get_logger("decode").info("decode: %s is already decoded with this model and these options: skipping "
                 "(--overwrite to decode again)", out_dir)
        result.skipped = True
        return result
    jobs.remove_stale_temporaries([final_output, out_dir / DONE_FILE, out_dir / "num_jobs"])
    (out_dir / DONE_FILE).unlink(missing_ok=True)
    if not opts.lm:  # an earlier --lm decode's n-best would be scored with this decode's text
        _remove_nbest(out_dir / NBEST_DIR)

    with job_log(out_dir / "log" / "decode.log", command) as log:
        log.info("%s", versions())
        log.info("decode: model %s (sha256 %s), data %s, %s", model_path, model_digest[:16], data_dir,
                 _describe_opts(opts, nj))
        start = time.time()
        # One job has no part to reuse: it writes the final outputs directly.
        todo, result.jobs_reused = jobs.pending_jobs(specs, overwrite=overwrite or nj == 1, what="decode",
                                                     logger=log)
        total = sum(jobs.count_lines(s.data_dir / "feats.scp") for s in todo)
        results, failures = jobs.run_jobs(run_job, todo, processes=nj, progress_total=total, desc="decode")
        result.jobs_run = [s.job for s in todo]
        if failures:
            if nj == 1:
                raise failures[0].error  # the job's own error: it logged into this log
            where = specs[failures[0].job - 1].log
            raise AsrkitError(f"{len(failures)} / {len(specs)} decode jobs failed, log is in {where}: "
                              f"{failures[0].message}")
        unspellable = result.unspellable
        for r in results.values():
            result.num_utts += r.num_utts
            result.audio_seconds += r.audio_seconds
            unspellable.lost += r.unspellable.lost
            unspellable.total += r.unspellable.total
            unspellable.first = unspellable.first or r.unspellable.first
        if unspellable.lost:  # the training start-up check says the same for the training data
            subsampling = next(iter(results.values())).subsampling
            log.warning("decode: %s (references in %s): no CTC search can output them",
                        unspellable.describe(subsampling), data_dir / "text")
        wall = time.time() - start
        # One job: its own decoding time (model loading excluded); several: the wall time of all.
        result.decode_seconds = results[1].decode_seconds if nj == 1 and results else wall
        _merge(specs, opts, final_output, nj)
        if result.audio_seconds:
            log.info("decode: %s", result.describe())
        log.info("decode: wrote %s", final_output)
    atomic_write_text(out_dir / DONE_FILE, signature + "\n")
    return result


def _check_lms(lm, meta: ModelMeta, model_path: Path, output: str, lang_counts: dict[str, int], data_dir: Path,
               nbest: int) -> tuple[tuple[str, str, str], ...]:
    """Load and check the --lm dirs: one per language of the data, made with the model's tokens."""
    if not lm:
        return ()
    if output != "text":
        raise ConfigError("--lm writes hypotheses: it does not go with --output loglikes")
    if meta.objective == "rnnt":
        raise ConfigError(f"{model_path}: --lm decodes CTC models; shallow fusion for this transducer would need an "
                          "LM hook in torchaudio's RNNTBeamSearch (it has none) or a search of our own")
    if nbest < 1:
        raise ConfigError(f"--nbest must be at least 1 (got {nbest})")
    lms = parse_lm_options(lm)
    check_lm_languages(lms, lang_counts, data_dir)
    tokenizers = meta.tokenizers()
    entries = []
    for lang in sorted(lang_counts):
        lm_dir = lms[lang]
        if lang not in tokenizers or lm_dir.tokens() != tokenizers[lang].pieces():
            raise ConfigError(f"{lm_dir.path}/tokens.txt: the LM dir was made with other tokens than model "
                              f"{model_path} has for '{lang}'; make it with the model's lang dir")
        # The decode's signature follows the LM's content: a rebuilt LM dir decodes again.
        digest = f"{lm_dir.manifest['arpa_sha256']}:{jobs.file_digest(lm_dir.lexicon)}"
        entries.append((lang, str(lm_dir.path.resolve()), digest))
    return tuple(entries)


def _check_model_for_output(meta: ModelMeta, model_path: Path, output: str) -> None:
    if output == "text" and meta.tokens is None:
        raise ConfigError(f"{model_path}: the model has no token sets (objective {meta.objective}); "
                          "it cannot write text: use --output loglikes and a Kaldi decoder")
    if output == "loglikes" and meta.objective == "rnnt":
        raise ConfigError(f"{model_path}: --output loglikes needs frame-level outputs; a transducer (rnnt) "
                          "model has none")


def _job_spec(job: int, part: Path, model_path: Path, out_dir: Path, opts: DecodeOptions, model_digest: str,
              nj: int, command: str) -> JobSpec:
    jobs_dir = out_dir / "jobs"
    text = ark = scp = nbest = None
    if opts.output == "text":
        text = jobs_dir / f"text.{job}"
        if opts.lm:
            nbest = tuple(jobs_dir / f"nbest_{name}.{job}" for name in NBEST_TABLES)
    else:
        ark, scp = out_dir / f"loglikes.{job}.ark", jobs_dir / f"loglikes.{job}.scp"
    signature = jobs.job_signature(part, tables=jobs.FEATURE_TABLES, options=asdict(opts), model_digest=model_digest)
    threads = 0 if nj == 1 else max(1, (os.cpu_count() or 1) // nj)
    return JobSpec(job=job, data_dir=part, model=model_path.resolve(), out_dir=out_dir, text=text, ark=ark, scp=scp,
                   nbest=nbest, log=None if nj == 1 else out_dir / "log" / f"decode.{job}.log", opts=opts,
                   signature=signature, command=command, threads=threads)


def _read_done(out_dir: Path) -> str | None:
    path = out_dir / DONE_FILE
    return path.read_text().strip() if path.is_file() else None


def _describe_opts(opts: DecodeOptions, nj: int) -> str:
    parts = [f"search {'lexicon beam with a word LM' if opts.lm else opts.search}"]
    if opts.search == "beam" or opts.lm:
        parts.append(f"beam {opts.beam}")
    parts += [f"lang {opts.lang}", f"device {opts.device}", f"nj {nj}", f"batch-frames {opts.batch_frames}",
              f"output {opts.output}"]
    if opts.streaming:
        parts.append("streaming")
    if opts.prior_source:
        parts.append(f"priors {opts.prior_source}")
    if opts.lm:
        parts.append(f"lm {', '.join(f'{lang}={path}' for lang, path, _ in opts.lm)}, lm-weight {opts.lm_weight:g}, "
                     f"word-penalty {opts.word_penalty:g}, nbest {opts.nbest}")
    return ", ".join(parts)


def _merge(specs: list[JobSpec], opts: DecodeOptions, final_output: Path, nj: int) -> None:
    """Merge the jobs' parts into the final output (and the n-best tables, num_jobs), each written under
    its staged name, then rename the run into place with the jobs' parts (`asrkit.jobs.publish`)."""
    parts = jobs.current(specs)
    nbest_dir = final_output.parent / NBEST_DIR
    merged = [final_output, final_output.parent / "num_jobs"]
    if opts.lm:
        merged += [nbest_dir / name for name in NBEST_TABLES]
        nbest_dir.mkdir(exist_ok=True)
    staged = jobs.staged_path
    with jobs.publishing(specs, merged):
        if opts.output == "loglikes":
            merge_scp([s.scp for s in parts], staged(final_output))
        else:
            jobs.merge_tables([s.text for s in parts], staged(final_output))
        for i, name in enumerate(NBEST_TABLES if opts.lm else ()):
            jobs.merge_tables([s.nbest[i] for s in parts], staged(nbest_dir / name))
        atomic_write_text(staged(final_output.parent / "num_jobs"), f"{nj}\n")


# ------------------------------------------------------------------------------------------------
# One job
# ------------------------------------------------------------------------------------------------

def build_hooks(model, meta: ModelMeta) -> list:
    """Per-batch hooks a model file asks for (language pathway masks)."""
    if not meta.pathways:
        return []
    return [build_decode_hook(model, meta)]


def run_job(spec: JobSpec, on_progress=None) -> JobResult:
    """Decode one (split) data dir and write its part of the output, with a run.pl-style log
    (`asrkit.jobs.run_jobs` runs it with `spec.threads` torch threads).

    Args:
        spec: the job.
        on_progress: called with the number of utterances decoded since the last call.

    Returns:
        a JobResult.

    Raises:
        DataDirError / FormatError: bad data dir files or features (naming the utterance).
        ConfigError: a search the model's backend does not offer.
    """
    with jobs.job_logging(spec, command=f"{spec.command}  # job {spec.job}", source=spec.data_dir,
                          target=spec.text or spec.scp, driver_log=get_logger("decode")) as log:
        return _decode_job(spec, log, on_progress)


def _decode_job(spec: JobSpec, log, on_progress) -> JobResult:
    opts = spec.opts
    device = torch.device(opts.device)
    model, meta = load_model(spec.model, device)
    warn_feature_mismatch(spec.data_dir, meta, log)
    dataset = open_data(spec.data_dir, meta, opts.lang)
    batches = inference_batches(dataset.utts, opts.batch_frames)
    seconds = audio_seconds(spec.data_dir, dataset, meta)
    hooks = build_hooks(model, meta)
    if opts.lm:
        output = LmTextOutput(meta, spec.text, spec.nbest, lms={lang: path for lang, path, _ in opts.lm},
                              lm_weight=opts.lm_weight, word_penalty=opts.word_penalty, beam=opts.beam,
                              nbest=opts.nbest, log=log)
    elif opts.output == "loglikes":
        output = LoglikesOutput(spec.ark, spec.scp, log_priors=opts.priors, prior_source=opts.prior_source,
                                device=device, final_ark=jobs.final_path(spec.ark))
    else:
        output = TextOutput(model, meta, spec.text, search=opts.search, beam=opts.beam, streaming=opts.streaming,
                            log=log)
    result = JobResult(spec.job, num_utts=len(dataset.utts),
                       audio_seconds=sum(seconds.get(u.key, 0.0) for u in dataset.utts))
    if opts.output == "text" and model_type(model, meta) == "ctc":
        result.unspellable = count_unspellable(spec.data_dir, dataset, meta, model)
        result.subsampling = meta.frame_subsampling
    start = time.time()
    next_report = start + 30.0
    done = 0
    loader = batch_loader(dataset, batches, num_workers=2 if device.type == "cuda" else 0)
    try:
        with torch.inference_mode():
            for batch in loader:
                feats = batch.feats.to(device, non_blocking=True)
                feat_lens = batch.feat_lens.to(device, non_blocking=True)
                for hook in hooks:
                    hook.before_batch(model, batch.lang)
                output.add_batch(model, feats, feat_lens, batch.lang, batch.keys)
                done += len(batch.keys)
                if on_progress is not None:
                    on_progress(len(batch.keys))
                if time.time() >= next_report:
                    log.info("progress: %d / %d utterances", done, len(dataset.utts))
                    next_report = time.time() + 30.0
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        result.decode_seconds = time.time() - start  # decoding, not writing the output
        output.finish()
    except BaseException:
        output.abort()
        raise
    log.info("job %d: %s", spec.job, result.describe())
    return result


__all__ = ["DEFAULT_BATCH_FRAMES", "DEFAULT_BEAM", "DEFAULT_LM_BEAM", "OUTPUTS", "DecodeOptions", "DecodeResult",
           "DecodeSpeed", "JobResult", "JobSpec", "check_languages", "decode_data_dir", "run_job"]
