"""synth corpus: build (or find built) a whole synth corpus — plan every utterance, synthesise the
audio, write and validate the Kaldi data dirs per language and split, and stamp the options used,
so a rebuild with the same options is skipped and one with other options is refused."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asrkit.corpora import espeak
from asrkit.corpora.synth.audio import SAMPLE_RATE, synthesize_plans
from asrkit.corpora.synth.closed import GRAMMAR_VERSION
from asrkit.corpora.synth.plan import (
    DEFAULT_UTTS_PER_LANG,
    SPLITS,
    SynthConfig,
    UttPlan,
    check_config,
    estimated_seconds,
    load_sentences,
    make_speakers,
    plan_utterance,
)
from asrkit.errors import ConfigError
from asrkit.fileio import atomic_write_text
from asrkit.kaldi.datadir import write_data_dir as write_kaldi_data_dir
from asrkit.logutil import get_logger

logger = get_logger("corpora.synth")

#: dev and test each get this share of a language's utterances (or hours); train gets the rest.
HELD_OUT_FRACTION = 0.1
#: Bumped when the same options would produce different files, so old stamps stop matching.
FORMAT_VERSION = 1
DONE_STAMP = ".done"
PARTIAL_STAMP = ".partial"

_DATA_DIR_RE = re.compile(r"^(train|dev|test)(_[A-Za-z0-9-]+)?$")

@dataclass
class SynthSummary:
    """What `prepare_synth` made (or found already made).

    Attributes:
        out_dir: the corpus folder.
        data_dirs: every data dir, per-language ones first, then `train`, `dev`, `test`.
        num_utts: `{data_dir_name: utterances}`.
        hours: `{data_dir_name: hours of audio}`.
        skipped: True when a finished corpus with the same options was already there.
        seconds: wall time of the build.
    """

    out_dir: Path
    data_dirs: list[Path]
    num_utts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    seconds: float = 0.0


def _stamp(config: SynthConfig, backend_version: str) -> dict:
    stamp = {"format": FORMAT_VERSION, "espeak": backend_version, **asdict(config)}
    stamp["langs"] = list(config.langs)
    stamp["low_resource"] = [list(x) for x in config.low_resource]
    stamp["noise_snr"] = list(config.noise_snr) if config.noise_snr is not None else None
    if config.text == "open":
        # Corpora stamped before --text existed are open ones: their stamps must still match.
        del stamp["text"]
    else:
        del stamp["vocab_size"]  # the closed word lists do not depend on it
        stamp["grammar"] = GRAMMAR_VERSION  # a corpus of an older grammar is not reused
    if config.relative:
        stamp["relative_to"] = os.getcwd()
    return stamp


def _data_dir_names(langs: Sequence[str]) -> list[str]:
    return [f"{split}_{lang}" for lang in langs for split in SPLITS] + list(SPLITS)


def _our_entries(out_dir: Path) -> list[Path]:
    """Everything in `out_dir` a synth build writes (and may remove)."""
    entries = []
    for p in out_dir.iterdir():
        name = p.name
        if name in ("audio", DONE_STAMP, PARTIAL_STAMP) or _DATA_DIR_RE.match(name) \
                or (name.startswith(".") and ".tmp" in name):
            entries.append(p)
    return entries


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _prepare_out_dir(out_dir: Path, stamp: dict, expected: list[str], overwrite: bool) -> bool:
    """Decide between skip (returns True) and (re)build (cleans what a build owns, returns False)."""
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return False
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory")
    done = out_dir / DONE_STAMP
    if done.exists() and not overwrite:
        try:
            old = json.loads(done.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        complete = all((out_dir / d / "wav.scp").is_file() for d in expected) and (out_dir / "audio").is_dir()
        if old == stamp and complete and not (out_dir / PARTIAL_STAMP).exists():
            return True
        if old != stamp and old is not None and complete:
            changed = sorted(k for k in set(old) | set(stamp) if old.get(k) != stamp.get(k))
            raise ConfigError(f"{out_dir}: holds a synth corpus built with other options ({', '.join(changed)} "
                              "differ); use --overwrite to rebuild it, or another OUT_DIR")
        logger.warning("%s: previous build is incomplete; rebuilding", out_dir)
    elif (out_dir / PARTIAL_STAMP).exists():
        logger.warning("%s: found a partial previous run; rebuilding from scratch", out_dir)
    elif not overwrite:
        foreign = [p.name for p in out_dir.iterdir() if p.name != "log"]
        if foreign:
            raise ConfigError(f"{out_dir}: exists, is not empty ({', '.join(sorted(foreign)[:3])}...) and holds no "
                              "synth corpus; use --overwrite to build into it anyway")
    # Stamps go first: a build killed while cleaning is still recognised as partial.
    (out_dir / DONE_STAMP).unlink(missing_ok=True)
    atomic_write_text(out_dir / PARTIAL_STAMP, json.dumps(stamp, sort_keys=True, indent=1) + "\n")
    for p in _our_entries(out_dir):
        if p.name != PARTIAL_STAMP:
            _remove(p)
    return False


def _targets(config: SynthConfig) -> dict[tuple[str, str], tuple[str, float]]:
    """`{(lang, split): ("utts", n) | ("seconds", s)}`."""
    targets: dict[tuple[str, str], tuple[str, float]] = {}
    low = dict(config.low_resource)
    for lang in config.langs:
        if config.hours_per_lang is not None:
            total = config.hours_per_lang * 3600.0
            held = total * HELD_OUT_FRACTION
            sizes = {"train": ("seconds", total - 2 * held), "dev": ("seconds", held), "test": ("seconds", held)}
        else:
            n = config.utts_per_lang if config.utts_per_lang is not None else DEFAULT_UTTS_PER_LANG
            held = max(1, round(n * HELD_OUT_FRACTION))
            sizes = {"train": ("utts", n - 2 * held), "dev": ("utts", held), "test": ("utts", held)}
        if lang in low:
            sizes["train"] = ("seconds", low[lang] * 3600.0)
        for split in SPLITS:
            targets[(lang, split)] = sizes[split]
    return targets


def _plan_corpus(config: SynthConfig, out_dir: Path, nj: int) -> tuple[list[UttPlan], dict[str, int]]:
    """Plan and synthesise every utterance; returns the kept plans and their sample counts."""
    audio_dir = (out_dir / "audio").resolve()
    variants = espeak.available_variants(config.backend)
    lexicons = {lang: load_sentences(config, lang) for lang in config.langs}
    speakers = {lang: make_speakers(lang, config.speakers_per_lang, config.seed, variants) for lang in config.langs}
    targets = _targets(config)

    def plan(key: tuple[str, str], index: int) -> UttPlan:
        lang, split = key
        return plan_utterance(config, lexicons[lang], speakers[lang][split], split, index, audio_dir)

    planned: dict[tuple[str, str], list[UttPlan]] = {}
    todo: list[UttPlan] = []
    for key, (kind, size) in targets.items():
        if kind == "utts":
            planned[key] = [plan(key, i) for i in range(int(size))]
        else:  # by duration: plan by estimate now, top up after measuring
            planned[key] = []
            est = 0.0
            while est < size * 1.05:
                p = plan(key, len(planned[key]))
                planned[key].append(p)
                est += estimated_seconds(p)
        todo.extend(planned[key])
    num_samples: dict[str, int] = {}
    while todo:
        num_samples.update(synthesize_plans(todo, nj, config.backend))
        todo = []
        for key, (kind, size) in targets.items():
            if kind != "seconds":
                continue
            have = sum(num_samples[p.utt_id] for p in planned[key]) / SAMPLE_RATE
            if have >= size:
                continue
            measured = have / len(planned[key])
            extra = max(1, math.ceil((size - have) / measured * 1.05))
            new = [plan(key, len(planned[key]) + i) for i in range(extra)]
            planned[key].extend(new)
            todo.extend(new)
    kept: list[UttPlan] = []
    for key, (kind, size) in targets.items():
        plans = planned[key]
        if kind == "seconds":
            # The shortest prefix that reaches the target: the same utterances whatever --nj was.
            total, cut = 0.0, len(plans)
            for i, p in enumerate(plans):
                total += num_samples[p.utt_id] / SAMPLE_RATE
                if total >= size:
                    cut = i + 1
                    break
            for p in plans[cut:]:
                Path(p.audio_path).unlink(missing_ok=True)
                num_samples.pop(p.utt_id)
            plans = plans[:cut]
        kept.extend(plans)
    return kept, num_samples


def _format_seconds(num_samples: int) -> str:
    # 1/16000 s = 0.0000625 s: seven decimals are exact.
    return f"{num_samples / SAMPLE_RATE:.7f}".rstrip("0").rstrip(".")


def write_data_dir(path: Path, plans: Sequence[UttPlan], num_samples: dict[str, int], relative: bool) -> None:
    """Write and validate a Kaldi data dir (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur) atomically,
    with the staged data-dir writer; an existing `path` is replaced.

    Raises:
        DataDirError: the data dir fails validation (nothing is written then).
    """
    cwd = os.getcwd()
    tables = {
        "wav.scp": {p.utt_id: (os.path.relpath(p.audio_path, cwd) if relative else p.audio_path) for p in plans},
        "text": {p.utt_id: p.text for p in plans},
        "utt2spk": {p.utt_id: p.spk_id for p in plans},
        "utt2lang": {p.utt_id: p.lang for p in plans},
        "utt2dur": {p.utt_id: _format_seconds(num_samples[p.utt_id]) for p in plans},
    }
    write_kaldi_data_dir(path, tables, validate={"no_feats": True},
                         error_prefix=f"{path}: synth wrote an invalid data dir: ")


def prepare_synth(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), nj: int = 1,
                  overwrite: bool = False) -> SynthSummary:
    """Build (or find built) the synth corpus in `out_dir`.

    Writes `out_dir/audio/<lang>/<spk>/<utt>.flac` and the Kaldi data dirs `train_<lang>`,
    `dev_<lang>`, `test_<lang>` for each language plus the combined `train`, `dev` and `test` (each
    validated before it is put in place), then writes `out_dir/.done` holding the options. A second call with the same
    options returns at once (`skipped=True`); `overwrite=True` rebuilds; a run that was killed
    (`.partial` present, or a data dir missing) is rebuilt from scratch, never reused.

    Args:
        out_dir: the corpus folder (created if missing).
        config: the corpus options.
        nj: worker processes for synthesis (the output does not depend on it).
        overwrite: rebuild even if a finished corpus (of any options) is there.

    Returns:
        a `SynthSummary`.

    Raises:
        ConfigError: bad options (unknown language, bad SNR range, low-resource language not in
            langs, ...), or `out_dir` holds something else.
        AsrkitError: eSpeak failed.
    """
    start = time.time()
    out_dir = Path(out_dir)
    if nj < 1:
        raise ConfigError(f"--nj {nj}: must be at least 1")
    check_config(config)
    expected = _data_dir_names(config.langs)
    stamp = _stamp(config, espeak.backend_version(config.backend))
    if _prepare_out_dir(out_dir, stamp, expected, overwrite):
        logger.info("%s: synth corpus already built with these options; skipping (--overwrite rebuilds)", out_dir)
        return _summarise(out_dir, expected, skipped=True, seconds=time.time() - start)
    logger.info("%s: building synth corpus for %s (seed %d, %d job(s))", out_dir, ",".join(config.langs),
                config.seed, nj)
    plans, num_samples = _plan_corpus(config, out_dir, nj)
    for name in expected:
        split, _, lang = name.partition("_")
        subset = [p for p in plans if p.split == split and (not lang or p.lang == lang)]
        write_data_dir(out_dir / name, subset, num_samples, config.relative)
    atomic_write_text(out_dir / DONE_STAMP, json.dumps(stamp, sort_keys=True, indent=1) + "\n")
    (out_dir / PARTIAL_STAMP).unlink(missing_ok=True)
    summary = _summarise(out_dir, expected, skipped=False, seconds=time.time() - start)
    for name in SPLITS:
        logger.info("%s: %d utterances, %.2f hours", name, summary.num_utts[name], summary.hours[name])
    logger.info("built %s in %.1f s", out_dir, summary.seconds)
    return summary


def _summarise(out_dir: Path, names: Sequence[str], skipped: bool, seconds: float) -> SynthSummary:
    summary = SynthSummary(out_dir=out_dir, data_dirs=[out_dir / n for n in names], skipped=skipped, seconds=seconds)
    for name in names:
        durs = [float(line.split()[1]) for line in (out_dir / name / "utt2dur").read_text(encoding="utf-8").splitlines()]
        summary.num_utts[name] = len(durs)
        summary.hours[name] = sum(durs) / 3600.0
    return summary
