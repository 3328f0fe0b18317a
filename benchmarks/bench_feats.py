#!/usr/bin/env python3
"""Feature extraction speed: the whole `asrkit make-feats` command against Kaldi-equivalent work.

Makes 16 kHz WAV data dirs of 10 minutes and 1 hour (`asrkit prepare synth` speech converted to WAV,
the hour made of the same recordings under new utterance ids; noise+tone files if synth fails or
with `--audio tones`), then times, in one run and on the same files, 80-dim Kaldi fbank with file
I/O (read the audio, compute, write a Kaldi ark + scp):

  * the `asrkit make-feats --nj 1` command as a subprocess: the whole command, interpreter start-up
    and imports included (what a Kaldi user compares with `compute-fbank-feats`);
  * with `--baseline DIR`, the same command from another checkout (e.g. main before a change), so
    before/after come from one run under the same load;
  * `make_feats()` in-process (the library call, without start-up), and `python -c "import torch"`
    (the start-up floor every torch-based command pays);
  * a plain loop: soundfile.read -> torchaudio.compliance.kaldi.fbank -> kaldiio ark, one utterance
    at a time, 1 torch thread (the reference, ratio 1.00);
  * a kaldi-native-fbank loop (skipped with a message if `kaldi_native_fbank` is not installed);
  * `make_feats(device="cuda")` when a GPU is present.

Every method runs once per round, --repeat rounds after one untimed warm-up round (which also fills
the page cache), so all see the same machine load; the best wall time is reported with its CPU
seconds (user + system, subprocesses included), as x real time, as seconds per hour of audio and as a
ratio to the torchaudio loop. Kaldi is not installed on these machines: docs/benchmarks.md sets the
seconds per hour beside Kaldi's, via the ratios once measured against it. This is a script that
prints a table, not a test: nothing fails on a threshold.

Usage:
    .venv/bin/python benchmarks/bench_feats.py [--minutes 10 60] [--repeat 3] [--baseline /path/to/old/checkout]
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


def wav_data_dir(src: Path, dst: Path, copies: int) -> Path:
    """A data dir of 16 kHz 16-bit WAV files with `src`'s recordings, each listed `copies` times
    (under utterance ids `<spk>-c<copy>-<rest>`, so a 10-minute corpus makes an hour)."""
    import soundfile as sf

    audio = dst.parent / "wav"
    audio.mkdir(parents=True, exist_ok=True)
    dst.mkdir(parents=True, exist_ok=True)
    utt2spk = dict(line.split() for line in (src / "utt2spk").read_text().splitlines())
    wav_scp, new_utt2spk = [], []
    for line in (src / "wav.scp").read_text().splitlines():
        utt, path = line.split(maxsplit=1)
        wav = audio / f"{utt}.wav"
        if not wav.exists():
            samples, rate = sf.read(path.strip(), dtype="int16")
            sf.write(wav, samples, rate, subtype="PCM_16")
        spk = utt2spk[utt]
        for c in range(copies):
            new = f"{spk}-c{c}{utt[len(spk):]}"
            wav_scp.append(f"{new} {wav}\n")
            new_utt2spk.append((new, spk))
    (dst / "wav.scp").write_text("".join(sorted(wav_scp)))
    new_utt2spk.sort()
    (dst / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in new_utt2spk))
    spk2utt: dict[str, list[str]] = {}
    for u, s in new_utt2spk:
        spk2utt.setdefault(s, []).append(u)
    (dst / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return dst


def run_make_feats(data: Path, out: Path, nj: int, device: str = "cpu", threads: int | None = None) -> None:
    import torch

    from asrkit.features.make_feats import make_feats

    saved = torch.get_num_threads()  # make_feats sets the thread count of in-process jobs
    try:
        make_feats(data, options=FBANK_OPTS, nj=nj, device=device, feat_dir=out, overwrite=True,
                   threads=threads, progress=False)
    finally:
        torch.set_num_threads(saved)


def run_make_feats_cli(data: Path, out: Path, tree: Path = REPO, nj: int = 1) -> None:
    """The whole `asrkit make-feats` command of the checkout `tree`, as a user runs it."""
    cmd = [sys.executable, "-m", "asrkit", "make-feats", "--opt", FBANK_OPTS[0], "--nj", str(nj), "--overwrite",
           "--feat-dir", str(out), str(data)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True)


def run_import_torch() -> None:
    subprocess.run([sys.executable, "-c", "import torch"], check=True)


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


def time_size(data: Path, out: Path, repeat: int, baseline: Path | None) -> dict[str, tuple[float, float]]:
    """Time every method on one data dir (see the module doc); returns `{method: (wall s, CPU s)}`."""
    import torch

    methods = {
        "torchaudio loop, 1 thread (reference)": lambda: run_torchaudio_loop(data, out / "ta1", threads=1),
        "asrkit make-feats --nj 1 (whole command)": lambda: run_make_feats_cli(data, out / "cli"),
    }
    if baseline is not None:
        methods[f"  same command, {baseline}"] = lambda: run_make_feats_cli(data, out / "base", baseline)
    methods["asrkit make-feats --nj 2 (whole command)"] = lambda: run_make_feats_cli(data, out / "cli2", nj=2)
    methods["make_feats() in-process, nj=1"] = lambda: run_make_feats(data, out / "nj1", 1)
    methods["python -c 'import torch' (start-up floor)"] = run_import_torch
    try:
        import kaldi_native_fbank  # noqa: F401

        methods["kaldi-native-fbank loop"] = lambda: run_knf_loop(data, out / "knf")
    except ImportError:
        print("# kaldi-native-fbank loop skipped: not installed (make install)", file=sys.stderr)
    if torch.cuda.is_available():
        methods["make_feats() in-process --device cuda"] = lambda: run_make_feats(data, out / "cuda", 1, "cuda")
    return time_rounds(methods, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0],
                        help="sizes in minutes of audio (each above 10 repeats the 10-minute recordings)")
    parser.add_argument("--audio", choices=["synth", "tones"], default="synth",
                        help="eSpeak NG speech via `asrkit prepare synth` (falls back to tones), or tones")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row; the best is reported")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another asrkit checkout whose make-feats command is timed in the same run")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the audio and outputs here")
    args = parser.parse_args()

    import torch

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_feats."))
    work.mkdir(parents=True, exist_ok=True)
    base_minutes = min(10.0, min(args.minutes))
    try:
        source = make_synth(work, base_minutes) if args.audio == "synth" else None
        if source is None:
            source = make_tones(work, base_minutes)
        base_seconds = audio_seconds(source)
        cpu = platform.processor() or platform.machine()
        print(f"80-dim fbank with file I/O (16 kHz WAV in, ark+scp out), {os.cpu_count()} CPU(s) ({cpu}), "
              f"torch {torch.__version__}, best of {args.repeat} rounds")
        for minutes in args.minutes:
            copies = max(1, round(minutes * 60 / base_seconds))
            data = wav_data_dir(source, work / f"wav{minutes:g}" / "data", copies)
            seconds = audio_seconds(data)
            num_utts = len((data / "wav.scp").read_text().splitlines())
            load_before = os.getloadavg()
            best = time_size(data, work / f"out{minutes:g}", args.repeat, args.baseline)
            load_after = os.getloadavg()
            reference = best["torchaudio loop, 1 thread (reference)"][0]
            print(f"\n{seconds / 60:.1f} min of audio ({num_utts} utterances); load average (1, 5, 15 min) "
                  f"before {', '.join(f'{x:.1f}' for x in load_before)}, after "
                  f"{', '.join(f'{x:.1f}' for x in load_after)}")
            print(f"| {'method':50s} | {'wall s':>7s} | {'CPU s':>7s} | {'x real time':>11s} | {'wall s / hour':>13s} "
                  f"| {'vs torchaudio loop':>18s} |")
            print(f"|{'-' * 52}|{'-' * 8}:|{'-' * 8}:|{'-' * 12}:|{'-' * 14}:|{'-' * 19}:|")
            for name, (wall, cpu_s) in best.items():
                print(f"| {name:50s} | {wall:7.2f} | {cpu_s:7.2f} | {seconds / wall:11.0f} | "
                      f"{wall * 3600 / seconds:13.2f} | {reference / wall:17.2f}x |")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
