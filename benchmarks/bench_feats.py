#!/usr/bin/env python3
"""Feature extraction speed: `asrkit make-feats` against a plain torchaudio loop and kaldi-native-fbank.

Makes >= 10 minutes of audio (`asrkit prepare synth`, or noise+tone wav files if that fails or with
`--audio tones`), then times, in one run and on the same files, 80-dim Kaldi fbank with file I/O
(read the audio, compute, write a Kaldi ark):

  * `make_feats()` with nj=1 (1 torch thread per job, the default; and 2 threads) and nj=2 (the
    library call behind `asrkit make-feats`), and the `asrkit make-feats --nj 1` command itself
    (adds interpreter start-up and imports);
  * a plain loop: soundfile.read -> torchaudio.compliance.kaldi.fbank -> kaldiio ark, one utterance
    at a time, torch's default thread count (the reference, ratio 1.00), and the same with 1 thread;
  * a kaldi-native-fbank loop (skipped with a message if `kaldi_native_fbank` is not installed);
  * `make_feats(device="cuda")` when a GPU is present.

Every method runs once per round, --repeat rounds after one untimed warm-up round (which also fills
the page cache), so all see the same machine load; the best wall time is reported as seconds of
audio per second of wall time, with ratios against the torchaudio loop, and the CPU seconds (user +
system, worker processes included) of that run. This is a script that prints a table, not a test: nothing fails on a threshold.

Usage:
    .venv/bin/python benchmarks/bench_feats.py [--minutes 12] [--audio synth|tones] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FBANK_OPTS = ["num-mel-bins=80"]


def make_synth(work: Path, minutes: float) -> Path | None:
    """A data dir of eSpeak NG speech via `asrkit prepare synth`, or None if that is unavailable."""
    corpus = work / "synth"
    # prepare synth splits each language 80/10/10 into train/dev/test; ask for enough that train
    # alone holds `minutes`.
    hours = minutes / 60.0 / 0.8 * 1.05
    cmd = [sys.executable, "-m", "asrkit", "prepare", "synth", "--langs", "en", "--hours-per-lang", f"{hours:.3f}",
           "--speakers-per-lang", "6", "--nj", str(os.cpu_count() or 1), "--seed", "0", str(corpus)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"# asrkit prepare synth failed ({proc.stderr.strip().splitlines()[-1:]}); using tones",
              file=sys.stderr)
        return None
    return corpus / "train"


def make_tones(work: Path, minutes: float) -> Path:
    """A data dir of 16 kHz int16 wav files, 2-12 s each: tones in noise, 4 speakers."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    data, audio = work / "tones" / "data", work / "tones" / "wav"
    data.mkdir(parents=True)
    audio.mkdir(parents=True)
    total, i, wav_scp, utt2spk = 0.0, 0, [], []
    while total < minutes * 60:
        dur = float(rng.uniform(2, 12))
        t = np.arange(int(dur * 16000)) / 16000
        x = 3000 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) + rng.normal(0, 800, t.size)
        spk = f"spk{i % 4}"
        utt = f"{spk}-{i:05d}"
        sf.write(audio / f"{utt}.wav", np.clip(x, -32768, 32767).astype(np.int16), 16000, subtype="PCM_16")
        wav_scp.append(f"{utt} {audio / f'{utt}.wav'}\n")
        utt2spk.append(f"{utt} {spk}\n")
        total += dur
        i += 1
    order = sorted(range(len(wav_scp)), key=lambda k: wav_scp[k])
    (data / "wav.scp").write_text("".join(wav_scp[k] for k in order))
    (data / "utt2spk").write_text("".join(utt2spk[k] for k in order))
    spk2utt: dict[str, list[str]] = {}
    for k in order:
        u, s = utt2spk[k].split()
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return data


def audio_seconds(data: Path) -> float:
    import soundfile as sf

    return sum(sf.info(line.split(maxsplit=1)[1].strip()).duration
               for line in (data / "wav.scp").read_text().splitlines())


def run_make_feats(data: Path, out: Path, nj: int, device: str = "cpu", threads: int | None = None) -> None:
    import torch

    from asrkit.features.make_feats import make_feats

    saved = torch.get_num_threads()  # make_feats sets the thread count of in-process jobs
    try:
        make_feats(data, options=FBANK_OPTS, nj=nj, device=device, feat_dir=out, overwrite=True,
                   threads=threads, progress=False)
    finally:
        torch.set_num_threads(saved)


def run_make_feats_cli(data: Path, out: Path) -> None:
    cmd = [sys.executable, "-m", "asrkit", "make-feats", "--opt", FBANK_OPTS[0], "--nj", "1", "--overwrite",
           "--feat-dir", str(out), str(data)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)


def run_torchaudio_loop(data: Path, out: Path, threads: int | None = None) -> None:
    import torch

    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _torchaudio_loop(data, out)
    finally:
        torch.set_num_threads(saved)


def _torchaudio_loop(data: Path, out: Path) -> None:
    import kaldiio
    import soundfile as sf
    import torch
    import torchaudio.compliance.kaldi as ta_kaldi

    out.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{out}/feats.ark,{out}/feats.scp") as writer:
        for line in (data / "wav.scp").read_text().splitlines():
            utt, path = line.split(maxsplit=1)
            samples, rate = sf.read(path.strip(), dtype="int16")
            wave = torch.from_numpy(samples.astype("float32")).unsqueeze(0)
            feats = ta_kaldi.fbank(wave, num_mel_bins=80, dither=0.0, energy_floor=0.0, sample_frequency=rate)
            writer(utt, feats.numpy())


def run_knf_loop(data: Path, out: Path) -> None:
    import kaldi_native_fbank as knf
    import kaldiio
    import numpy as np
    import soundfile as sf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    out.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{out}/feats.ark,{out}/feats.scp") as writer:
        for line in (data / "wav.scp").read_text().splitlines():
            utt, path = line.split(maxsplit=1)
            samples, rate = sf.read(path.strip(), dtype="int16")
            fbank = knf.OnlineFbank(opts)
            fbank.accept_waveform(rate, samples.astype(np.float32))
            fbank.input_finished()
            feats = np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])
            writer(utt, feats)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_rounds(methods: dict, repeat: int) -> dict[str, tuple[float, float]]:
    """Run every method once per round (after one untimed warm-up round) so that all of them see the
    same machine load; return each one's best `(wall seconds, CPU seconds)`."""
    for name, fn in methods.items():
        print(f"# warm-up {name} ...", file=sys.stderr, flush=True)
        fn()
    best: dict[str, tuple[float, float]] = {}
    for r in range(repeat):
        print(f"# round {r + 1} / {repeat} ...", file=sys.stderr, flush=True)
        for name, fn in methods.items():
            wall, cpu = time.perf_counter(), cpu_seconds()
            fn()
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            if name not in best or wall < best[name][0]:
                best[name] = (wall, cpu)
    return best


def startup_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import asrkit.features.make_feats, asrkit.features.batched"],
                   cwd=REPO, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="minutes of audio (at least 10 recommended)")
    parser.add_argument("--audio", choices=["synth", "tones"], default="synth",
                        help="eSpeak NG speech via `asrkit prepare synth` (falls back to tones), or tones")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row; the best is reported")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the audio and outputs here")
    args = parser.parse_args()

    import torch

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_feats."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = None
        if args.audio == "synth":
            data = make_synth(work, args.minutes)
        if data is None:
            data = make_tones(work, args.minutes)
        seconds = audio_seconds(data)
        load_before = os.getloadavg()[0]
        num_utts = len((data / "wav.scp").read_text().splitlines())
        out = work / "out"
        methods = {
            "torchaudio.compliance.kaldi.fbank loop": lambda: run_torchaudio_loop(data, out / "ta"),
            "torchaudio loop, 1 thread": lambda: run_torchaudio_loop(data, out / "ta1", threads=1),
            "asrkit make-feats nj=1": lambda: run_make_feats(data, out / "nj1", 1),
            "asrkit make-feats nj=1, 2 threads": lambda: run_make_feats(data, out / "nj1t2", 1, threads=2),
            "asrkit make-feats nj=2": lambda: run_make_feats(data, out / "nj2", 2),
            "asrkit make-feats nj=1 (command, incl. start-up)": lambda: run_make_feats_cli(data, out / "cli"),
        }
        skipped: dict[str, str] = {}
        try:
            import kaldi_native_fbank  # noqa: F401

            methods["kaldi-native-fbank loop"] = lambda: run_knf_loop(data, out / "knf")
        except ImportError:
            skipped["kaldi-native-fbank loop"] = "skipped: pip install kaldi-native-fbank"
        if torch.cuda.is_available():
            methods["asrkit make-feats nj=1 --device cuda"] = lambda: run_make_feats(data, out / "cuda", 1, "cuda")
        else:
            skipped["asrkit make-feats --device cuda"] = "skipped: no CUDA device"
        best = time_rounds(methods, args.repeat)

        reference = seconds / best["torchaudio.compliance.kaldi.fbank loop"][0]
        cpu = platform.processor() or platform.machine()
        print(f"\n80-dim fbank with file I/O: {seconds / 60:.1f} min of audio, {num_utts} utterances, "
              f"{os.cpu_count()} CPU(s) ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"best of {args.repeat} rounds, load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}")
        print(f"{'method':50s} {'wall s':>7s} {'CPU s':>7s} {'audio s / wall s':>17s} {'vs torchaudio':>14s}")
        for name, (wall, cpu_s) in best.items():
            speed = seconds / wall
            print(f"{name:50s} {wall:7.2f} {cpu_s:7.2f} {speed:17.0f} {speed / reference:13.2f}x")
        for name, note in skipped.items():
            print(f"{name:50s} {'-':>7s} {'-':>7s} {'-':>17s} {'-':>14s}  {note}")
        print(f"(python start-up + imports of asrkit.features: {startup_seconds():.2f} s)")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
