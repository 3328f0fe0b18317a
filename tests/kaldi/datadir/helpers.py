"""Small tools the data-dir tests share: the fixture's utterances, reading and editing its files."""

from __future__ import annotations

from pathlib import Path

from asrkit.kaldi.datadir import validate_data_dir

UTTS = ["spkA-en-001", "spkA-en-002", "spkB-de-001", "spkB-de-002", "spkC-fr-001", "spkC-fr-002"]
FIXTURE_SECONDS = 3.204875 + 2.634063 + 2.04125 + 2.435937 + 2.128813 + 1.164312


def write(d: Path, name: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        (d / name).write_bytes(text)
    else:
        (d / name).write_text(text, encoding="utf-8")


def lines(d: Path, name: str) -> list[str]:
    return (d / name).read_text(encoding="utf-8").splitlines()


def utt_ids(d: Path) -> list[str]:
    return [x.split()[0] for x in lines(d, "utt2spk")]


def edit(d: Path, name: str, fn) -> None:
    """Rewrite file `name` of `d` as fn(list of lines) + newlines."""
    write(d, name, "".join(x + "\n" for x in fn(lines(d, name))))


def swap(i: int, j: int):
    def fn(ls):
        ls = list(ls)
        ls[i], ls[j] = ls[j], ls[i]
        return ls
    return fn


def replace_line(i: int, new: str):
    def fn(ls):
        ls = list(ls)
        ls[i] = new
        return ls
    return fn


def utt2spk_spk_unsorted(d: Path) -> None:
    """Break `sort -k2 -C`: an utterance of spkA given to speaker spkZ."""
    edit(d, "utt2spk", replace_line(1, "spkA-en-002 spkZ"))


def to_segments(d: Path) -> None:
    """Turn the fixture dir into one with `segments`: recording recA holds spkA's utterances, etc."""
    durs = dict(x.split() for x in lines(d, "utt2dur"))
    wav = dict(x.split() for x in lines(d, "wav.scp"))
    segs, recos = [], {}
    for utt in durs:
        reco = "rec" + utt[3]
        start = 0.0 if utt.endswith("001") else 10.0
        segs.append(f"{utt} {reco} {start:.2f} {start + float(durs[utt]):.2f}")
        recos.setdefault(reco, wav[utt])
    write(d, "segments", "".join(s + "\n" for s in segs))
    write(d, "wav.scp", "".join(f"{r} {p}\n" for r, p in sorted(recos.items())))


def assert_valid(d: Path, **options) -> None:
    """validate_data_dir passes; a one-speaker warning is expected of small subsets and splits."""
    warnings = validate_data_dir(d, **options)
    assert all("only one speaker" in w for w in warnings), warnings
