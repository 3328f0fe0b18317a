"""synth audio: eSpeak speech resampled to 16 kHz, optional noise and room reverberation, written as
16-bit FLAC by a pool of worker processes (each holding one eSpeak engine)."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from asrkit.corpora import espeak
from asrkit.corpora.synth.plan import UttPlan
from asrkit.errors import AsrkitError
from asrkit.fileio import atomic_write
from asrkit.logutil import get_logger

logger = get_logger("corpora.synth")

SAMPLE_RATE = 16000

def add_noise(speech: np.ndarray, snr_db: float, color: str, rng: np.random.Generator) -> np.ndarray:
    """Add white, pink or brown noise at `snr_db` (speech power over the whole utterance).

    Args:
        speech: float64 samples, shape `(num_samples,)`.
    Returns:
        float64 `(num_samples,)`.
    """
    n = speech.shape[0]
    noise = rng.standard_normal(n)
    if color != "white":
        spectrum = np.fft.rfft(noise)
        freqs = np.arange(spectrum.shape[0], dtype=np.float64)
        freqs[0] = 1.0
        spectrum /= np.sqrt(freqs) if color == "pink" else freqs
        noise = np.fft.irfft(spectrum, n=n)
    speech_power = float(np.mean(speech**2)) or 1e-10
    noise_power = float(np.mean(noise**2)) or 1e-10
    return speech + noise * math.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))


def add_reverb(speech: np.ndarray, rt60: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path plus an exponentially decaying noise tail.

    The tail decays by 60 dB in `rt60` seconds; the direct-to-reverberant ratio is drawn in 0..8 dB.
    The output keeps the input's length and RMS.

    Args:
        speech: float64 samples, shape `(num_samples,)`.
    Returns:
        float64 `(num_samples,)`.
    """
    length = max(2, int(rt60 * sample_rate))
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60)
    tail[0] = 0.0
    drr_db = rng.uniform(0.0, 8.0)
    tail *= math.sqrt(10 ** (-drr_db / 10) / float(np.sum(tail**2)))
    rir = tail
    rir[0] = 1.0
    out = AF.fftconvolve(torch.from_numpy(speech), torch.from_numpy(rir)).numpy()[: speech.shape[0]]
    rms_in, rms_out = math.sqrt(float(np.mean(speech**2))), math.sqrt(float(np.mean(out**2)))
    return out * (rms_in / rms_out) if rms_out > 0 else out


def render_utterance(engine, plan: UttPlan) -> np.ndarray:
    """Synthesise, resample to 16 kHz and apply the planned effects.

    Args:
        engine: an `espeak.EspeakLibrary` or `espeak.EspeakBinary`.
    Returns:
        int16 samples at 16 kHz, shape `(num_samples,)`.
    Raises:
        AsrkitError: eSpeak failed or produced no audio.
    """
    raw = engine.synthesize(plan.text, plan.voice, seed=plan.espeak_seed)
    if raw.size == 0:
        raise AsrkitError(f"{plan.utt_id}: eSpeak produced no audio for {plan.text!r}")
    wave = torch.from_numpy(raw.astype(np.float32) / 32768.0)
    audio = AF.resample(wave, engine.sample_rate, SAMPLE_RATE).numpy().astype(np.float64)
    rng = np.random.default_rng(plan.effects_seed)
    if plan.rt60 is not None:
        audio = add_reverb(audio, plan.rt60, rng)
    if plan.snr_db is not None:
        audio = add_noise(audio, plan.snr_db, plan.noise_color, rng)
    peak = float(np.max(np.abs(audio)))
    if peak > 0.97:  # eSpeak speaks near full scale; resampling, noise and reverb can overshoot
        audio *= 0.97 / peak
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def write_flac(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 `samples` `(num_samples,)` as 16-bit FLAC, atomically (libFLAC output is deterministic)."""
    with atomic_write(path, "wb") as f:
        sf.write(f, samples, sample_rate, format="FLAC", subtype="PCM_16")


_ENGINE = None


def _init_worker(backend: str) -> None:
    global _ENGINE
    # One thread per worker: no oversubscription, and float results that do not depend on --nj.
    torch.set_num_threads(1)
    _ENGINE = espeak.open_engine(backend)


def _synthesize_chunk(plans: list[UttPlan]) -> list[tuple[str, int]]:
    out = []
    for plan in plans:
        samples = render_utterance(_ENGINE, plan)
        Path(plan.audio_path).parent.mkdir(parents=True, exist_ok=True)
        write_flac(plan.audio_path, samples)
        out.append((plan.utt_id, int(samples.shape[0])))
    return out


def synthesize_plans(plans: Sequence[UttPlan], nj: int, backend: str) -> dict[str, int]:
    """Synthesise `plans` with `nj` worker processes (each initialises eSpeak once).

    Returns:
        `{utt_id: num_samples_at_16k}`.
    Raises:
        AsrkitError: from any worker.
    """
    if not plans:
        return {}
    chunk = max(1, min(16, len(plans) // (4 * nj) or 1))
    chunks = [list(plans[i:i + chunk]) for i in range(0, len(plans), chunk)]
    # fork: workers start instantly, with torch and torchaudio already imported (seconds each
    # otherwise); they never inherit an initialised eSpeak (the parent never has one).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    results: dict[str, int] = {}
    start = time.time()
    progress = _progress(len(plans))
    with ctx.Pool(processes=nj, initializer=_init_worker, initargs=(backend,)) as pool:
        for done in pool.imap_unordered(_synthesize_chunk, chunks):
            results.update(done)
            progress(len(results))
    logger.info("synthesised %d utterances in %.1f s with %d job(s)", len(plans), time.time() - start, nj)
    return results


def _progress(total: int):
    if sys.stderr.isatty():
        bar = tqdm(total=total, unit="utt", leave=False)

        def update(n: int) -> None:
            bar.update(n - bar.n)
            if n >= total:
                bar.close()

        return update
    marks = {max(1, round(total * k / 10)) for k in range(1, 11)}

    def log_line(n: int) -> None:
        if n in marks:
            logger.info("synthesised %d / %d utterances", n, total)

    return log_line
