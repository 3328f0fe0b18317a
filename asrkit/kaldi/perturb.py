"""Speed perturbation of a data dir, file for file as Kaldi's scripts do it.

`perturb_data_dir_speed` reproduces utils/perturb_data_dir_speed.sh for each factor and, for several
factors, utils/data/perturb_data_dir_speed_3way.sh's combination (combine_data.sh + the sort). The
audio itself is not touched: wav.scp gets Kaldi's `sox ... speed F |` pipes, which
asrkit.kaldi.wav reads with or without sox installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asrkit.errors import ConfigError, DataDirError, FormatError
from asrkit.kaldi.datadir import write_data_dir
from asrkit.kaldi.durations import awk_number, kaldi_float, utt_durations
from asrkit.kaldi.textio import c_sorted, read_table
from asrkit.logutil import get_logger

log = get_logger(__name__)

# Files the Kaldi scripts carry into a perturbed dir; everything else (feats.scp, cmvn.scp,
# utt2num_frames, vad.scp, ...) describes the unperturbed audio and is dropped.
_UTT_FILES = ("text", "utt2lang")
_COMBINED = ("utt2spk", "utt2lang", "utt2dur", "reco2dur", "text", "reco2file_and_channel", "wav.scp",
             "spk2gender", "segments", "utt2uniq")


def factor_string(factor: float | str) -> str:
    """The factor as it appears in ids and sox commands: `0.9` -> "0.9" (the shortest repr)."""
    if isinstance(factor, str):
        try:
            value = float(factor)
        except ValueError:
            raise ConfigError(f"speed factor must be a positive number, got {factor!r}") from None
        text = factor.strip()
    else:
        value = float(factor)
        text = repr(value)
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"speed factor must be a positive number, got {factor!r}")
    return text


def _perturbed_wav_value(value: str, fs: str) -> str:
    """Rewrite a wav.scp value as perturb_data_dir_speed.sh's awk does, for its three cases."""
    fields = value.split()
    # sed 's/| *$/ |/': a trailing pipe becomes its own field.
    if fields and fields[-1].endswith("|") and fields[-1] != "|":
        fields[-1] = fields[-1][:-1]
        fields.append("|")
    rest = " ".join(fields)
    if fields and fields[-1] == "|":
        return f"{rest} sox -t wav - -t wav - speed {fs} |"
    if _ends_with_offset(rest):
        return f"wav-copy {rest} - | sox -t wav - -t wav - speed {fs} |"
    if len(fields) == 1 and Path(rest).suffix.lower() not in ("", ".wav"):
        # Kaldi's awk writes `-t wav` for every file, which makes sox refuse a FLAC (or any other
        # non-WAV) file; without it sox takes the type from the name, as asrkit's reader does.
        return f"sox {rest} -t wav - speed {fs} |"
    return f"sox -t wav {rest} -t wav - speed {fs} |"


def _ends_with_offset(text: str) -> bool:
    head, sep, tail = text.rpartition(":")
    return bool(sep) and tail.isdigit()


def _map_keys(table: dict[str, str], mapping: dict[str, str], path: Path, what: str) -> dict[str, str]:
    """utils/apply_map.pl -f 1: every key must be in the map."""
    out = {}
    for key, value in table.items():
        if key not in mapping:
            raise DataDirError(f"{path}: {what} '{key}' is not in utt2spk/wav.scp (apply_map.pl: undefined key)")
        out[mapping[key]] = value
    return out


class _Source:
    """The source data dir's tables that speed perturbation reads."""

    def __init__(self, src: Path):
        self.dir = src
        for name in ("utt2spk", "wav.scp"):
            if not (src / name).is_file():
                raise DataDirError(f"{src}: no such file {name}")
        self.utt2spk = read_table(src / "utt2spk", num_fields=2)
        self.wav = read_table(src / "wav.scp", min_fields=2)
        self.tables: dict[str, dict[str, str]] = {}
        for name in ("segments", "text", "utt2lang", "spk2gender", "reco2file_and_channel", "utt2uniq",
                     "utt2dur", "reco2dur"):
            if (src / name).is_file():
                fields = {"segments": 4, "reco2file_and_channel": 3}.get(name)
                self.tables[name] = read_table(src / name, num_fields=fields, min_fields=2 if name != "text" else 1)
        self.segments: dict[str, list[str]] | None = None
        if "segments" in self.tables:
            self.segments = {u: v.split() for u, v in self.tables["segments"].items()}
            for utt, (reco, start, end) in self.segments.items():
                if reco not in self.wav:
                    raise DataDirError(f"{src / 'segments'}: recording '{reco}' of '{utt}' is not in wav.scp")
                try:
                    float(start), float(end)
                except ValueError:
                    raise DataDirError(f"{src / 'segments'}: utterance '{utt}': bad times '{start} {end}'") from None
        self._fill_durations()

    def _fill_durations(self) -> None:
        # perturb_data_dir_speed.sh runs get_utt2dur.sh / get_reco2dur.sh on the source when the
        # files are missing; asrkit computes them the same way but never writes into the source.
        if "utt2dur" in self.tables and "reco2dur" in self.tables:
            return
        from asrkit.kaldi.wav import audio_duration

        if "reco2dur" not in self.tables:
            self.tables["reco2dur"] = {r: kaldi_float(audio_duration(rx, r)) for r, rx in self.wav.items()}
        if "utt2dur" not in self.tables:
            self.tables["utt2dur"] = utt_durations(self.dir)


def _original_part(src: _Source) -> dict[str, dict[str, str]]:
    part = {"utt2spk": dict(src.utt2spk), "wav.scp": dict(src.wav)}
    part.update({name: dict(t) for name, t in src.tables.items()})
    return part


def _prefixed_copy(src: _Source, prefix: str) -> dict[str, dict[str, str]]:
    """utils/copy_data_dir.sh --utt-prefix/--spk-prefix (the 3-way script's sp1.0- copy)."""
    utt_map = {u: prefix + u for u in src.utt2spk}
    spk_map = {s: prefix + s for s in set(src.utt2spk.values())}
    part = {"utt2spk": {utt_map[u]: spk_map[s] for u, s in src.utt2spk.items()}}
    part["utt2uniq"] = {prefix + u: src.tables.get("utt2uniq", {}).get(u, u) for u in src.utt2spk}
    for name in _UTT_FILES + ("utt2dur",):
        if name in src.tables:
            part[name] = _map_keys(src.tables[name], utt_map, src.dir / name, "utterance")
    if "spk2gender" in src.tables:
        part["spk2gender"] = _map_keys(src.tables["spk2gender"], spk_map, src.dir / "spk2gender", "speaker")
    if src.segments is not None:
        # With segments, copy_data_dir.sh keeps recording ids (wav.scp is copied as it is).
        part["segments"] = _map_keys(src.tables["segments"], utt_map, src.dir / "segments", "utterance")
        for name in ("reco2file_and_channel", "reco2dur"):
            if name in src.tables:
                part[name] = dict(src.tables[name])
        part["wav.scp"] = dict(src.wav)
    else:
        part["wav.scp"] = _map_keys(src.wav, utt_map, src.dir / "wav.scp", "utterance")
        part["reco2dur"] = _map_keys(src.tables["reco2dur"], utt_map, src.dir / "reco2dur", "recording")
    return part


def _perturbed_part(src: _Source, factor: float, fs: str, include_spk_prefix: bool) -> dict[str, dict[str, str]]:
    """One run of utils/perturb_data_dir_speed.sh <factor>."""
    utt_prefix = f"sp{fs}-"
    spk_prefix = utt_prefix if include_spk_prefix else ""
    utt_map = {u: utt_prefix + u for u in src.utt2spk}
    spk_map = {s: spk_prefix + s for s in set(src.utt2spk.values())}
    reco_map = {r: spk_prefix + r for r in src.wav}  # the script builds reco_map with spk_prefix

    part: dict[str, dict[str, str]] = {}
    part["utt2spk"] = {utt_map[u]: spk_map[s] for u, s in src.utt2spk.items()}
    src_uniq = src.tables.get("utt2uniq")
    if src_uniq is not None:
        part["utt2uniq"] = {utt_prefix + u: v for u, v in src_uniq.items()}
    else:
        part["utt2uniq"] = {utt_prefix + u: u for u in src.utt2spk}

    dropped: set[str] = set()
    if src.segments is not None:
        segments = {}
        for utt, (reco, start_s, end_s) in src.segments.items():
            if utt not in utt_map:
                raise DataDirError(f"{src.dir / 'segments'}: utterance '{utt}' is not in utt2spk")
            start, end = float(start_s) / factor, float(end_s) / factor
            if float(end_s) == -1:
                # Kaldi's awk would drop it (-1/F < start); keep "to the end of the recording".
                segments[utt_map[utt]] = f"{reco_map[reco]} {start:.2f} -1"
            elif end > start + 0.01:
                segments[utt_map[utt]] = f"{reco_map[reco]} {start:.2f} {end:.2f}"
            else:
                dropped.add(utt_map[utt])
        part["segments"] = segments
        part["wav.scp"] = {reco_map[r]: _perturbed_wav_value(v, fs) for r, v in src.wav.items()}
        if "reco2file_and_channel" in src.tables:
            part["reco2file_and_channel"] = _map_keys(src.tables["reco2file_and_channel"], reco_map,
                                                      src.dir / "reco2file_and_channel", "recording")
    else:
        part["wav.scp"] = {utt_map[u] if u in utt_map else _undefined(src, u): _perturbed_wav_value(v, fs)
                           for u, v in src.wav.items()}

    for name in _UTT_FILES:
        if name in src.tables:
            part[name] = _map_keys(src.tables[name], utt_map, src.dir / name, "utterance")
    if "spk2gender" in src.tables:
        part["spk2gender"] = _map_keys(src.tables["spk2gender"], spk_map, src.dir / "spk2gender", "speaker")
    part["utt2dur"] = {utt_map[u]: awk_number(_number(src, "utt2dur", u, v) / factor)
                       for u, v in _map_check(src, "utt2dur", utt_map).items()}
    part["reco2dur"] = {reco_map[r]: awk_number(_number(src, "reco2dur", r, v) / factor)
                        for r, v in _map_check(src, "reco2dur", reco_map).items()}

    if dropped:
        # The awk drops segments under 0.01 s; fix_data_dir.sh (run by combine_data.sh) then drops
        # those utterances everywhere. Do that here so even a single-factor dir is consistent.
        log.warning("speed %s: dropped %d segment(s) shorter than 0.01 s after perturbation", fs, len(dropped))
        for name in ("utt2spk", "utt2uniq", "utt2dur", *_UTT_FILES):
            if name in part:
                part[name] = {k: v for k, v in part[name].items() if k not in dropped}
    return part


def _undefined(src: _Source, key: str):
    raise DataDirError(f"{src.dir / 'wav.scp'}: '{key}' is not an utterance in utt2spk "
                       "(without segments, wav.scp must be keyed by utterance)")


def _map_check(src: _Source, name: str, mapping: dict[str, str]) -> dict[str, str]:
    table = src.tables[name]
    for key in table:
        if key not in mapping:
            raise DataDirError(f"{src.dir / name}: '{key}' is not in utt2spk/wav.scp (apply_map.pl: undefined key)")
    return table


def _number(src: _Source, name: str, key: str, value: str) -> float:
    try:
        return float(value.split()[0])
    except (ValueError, IndexError):
        raise FormatError(src.dir / name, f"'{key}': '{value}' is not a number") from None


def _combine(parts: list[dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """utils/data/combine_data.sh: files present in every part are concatenated and sorted.

    utt2uniq is made for parts without one (identity map), as combine_data.sh does.
    """
    out: dict[str, dict[str, str]] = {}
    if any("utt2uniq" in p for p in parts):
        for p in parts:
            p.setdefault("utt2uniq", {u: u for u in p["utt2spk"]})
    for name in _COMBINED:
        if not all(name in p for p in parts):
            continue
        merged: dict[str, str] = {}
        for p in parts:
            for key, value in p[name].items():
                if key in merged:
                    raise DataDirError(f"{name}: id '{key}' occurs in two speed-perturbed copies; "
                                       "use always_include_prefix=True")
                merged[key] = value
        out[name] = {k: merged[k] for k in c_sorted(merged)}
    return out


def perturb_data_dir_speed(src: str | os.PathLike, dst: str | os.PathLike, factors: list[float], *,
                           always_include_prefix: bool = False, include_spk_prefix: bool = True,
                           validate: bool = True, overwrite: bool = False) -> None:
    """Write a speed-perturbed copy of a data dir, as Kaldi's utils/perturb_data_dir_speed.sh does.

    For each factor F != 1.0: utterance and speaker ids (and recording ids) get the prefix
    `sp<F>-`; wav.scp values become `<pipe> sox -t wav - -t wav - speed F |`,
    `wav-copy <ark:offset> - | sox -t wav - -t wav - speed F |` or
    `sox -t wav <file> -t wav - speed F |`; segment times are divided by F and written `%.2f`,
    dropping segments not longer than 0.01 s (and, as fix_data_dir.sh would, their utterances);
    utt2dur and reco2dur are divided by F (awk's `%.6g`); text, utt2lang, spk2gender,
    reco2file_and_channel are carried; utt2uniq maps each perturbed id to the original.
    Factor 1.0 is the source data with its own ids (`sp1.0-` with `always_include_prefix`), as in
    perturb_data_dir_speed_3way.sh. Several factors are combined as combine_data.sh does: C-sorted,
    keeping only files every copy has, so feats.scp, cmvn.scp, utt2num_frames and vad.scp are
    dropped. utt2dur and reco2dur are computed from the audio when the source lacks them (the
    source dir is never modified).

    Deviation from Kaldi: a segment ending at -1 (to the end of the recording) stays -1; Kaldi's awk
    would drop it.

    The result is written by the staged data-dir writer: built in a temporary folder next to `dst`,
    validated (`validate_data_dir --no-feats --no-text`) and renamed to `dst`, replacing an old `dst`.

    Args:
        src: the data dir to perturb (needs utt2spk and wav.scp).
        dst: the output data dir; must differ from src.
        factors: e.g. [0.9, 1.0, 1.1] (the 3-way recipe) or [0.9] (one perturbed copy). Strings keep
            their spelling in ids ("0.90" gives `sp0.90-`).
        always_include_prefix: give factor 1.0 the `sp1.0-` prefix too.
        include_spk_prefix: prefix speaker (and recording) ids as well as utterance ids.
        validate: run validate_data_dir on the result before it is renamed into place.
        overwrite: replace `dst` even if asrkit did not make it.

    Raises:
        DataDirError: missing files, ids not in utt2spk/wav.scp, dst == src, dst holding
            feats.scp, or a result that fails validation.
        FormatError: a malformed source file (file:line).
        ConfigError: no factors, a factor that is not a positive number, or a repeated factor.
    """
    src, dst = Path(src), Path(dst)
    if not factors:
        raise ConfigError("give at least one speed factor")
    strings = [factor_string(f) for f in factors]
    values = [float(s) for s in strings]
    if len(set(values)) != len(values):
        raise ConfigError(f"repeated speed factor in {strings}")
    if not src.is_dir():
        raise DataDirError(f"{src}: no such data directory")
    if dst.resolve() == src.resolve():
        raise DataDirError(f"{dst}: the output dir must differ from the source dir")
    if (dst / "feats.scp").exists():
        raise DataDirError(f"{dst}/feats.scp already exists: refusing to overwrite a dir with features "
                           "(delete it first)")

    source = _Source(src)
    parts = []
    for value, fs in zip(values, strings):
        if value == 1.0:
            parts.append(_prefixed_copy(source, "sp1.0-") if always_include_prefix else _original_part(source))
        else:
            parts.append(_perturbed_part(source, value, fs, include_spk_prefix))
    result = _combine(parts) if len(parts) > 1 else {n: dict(sorted(t.items())) for n, t in parts[0].items()
                                                      if n in _COMBINED}

    warnings = write_data_dir(dst, result, inputs=[src], overwrite=overwrite,
                              validate={"no_feats": True, "no_text": True} if validate else None)
    for w in warnings:
        log.warning("%s", w)
    log.info("generated speed-perturbed version (factors %s) of data in %s, in %s", " ".join(strings), src, dst)
