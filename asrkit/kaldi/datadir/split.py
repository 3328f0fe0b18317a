"""split_data_dir: the parts of a data dir for parallel jobs (Kaldi's `utils/split_data.sh`), per
speaker or per utterance, and `split_for_jobs`, the split every multi-job stage asks for."""

from __future__ import annotations

import os
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.fileio import staged_dir
from asrkit.kaldi.datadir.files import Row, present_files, read_tables, require_utt2spk, utt2spk_of
from asrkit.kaldi.datadir.write import part_tables, write_tables
from asrkit.kaldi.textio import read_table
from asrkit.logutil import get_logger

log = get_logger("kaldi.datadir")


def split_for_jobs(path: str | os.PathLike, nj: int) -> list[Path]:
    """The data dirs of `nj` parallel jobs of a stage with no per-speaker state (decoding, dumping
    posteriors): the dir itself for one job, else `split_data_dir` per speaker, or per utterance when
    there are fewer speakers than jobs (where split_data.sh would refuse). CMVN stays per speaker:
    every part keeps utt2spk and the speakers' cmvn.scp lines.
    """
    d = Path(path)
    if nj == 1:
        return [d]
    require_utt2spk(d)
    num_speakers = len(set(read_table(d / "utt2spk", num_fields=2).values()))
    return split_data_dir(d, nj, per_utt=num_speakers < nj)


def split_data_dir(path: str | os.PathLike, n: int, *, per_utt: bool = False) -> list[Path]:
    """Split a data dir into `n` parts, like Kaldi's `utils/split_data.sh`.

    Writes `<path>/split{n}/{1..n}` (per speaker: each speaker in one part, speakers assigned as
    `split_scp.pl --utt2spk` does, balancing utterance counts) or `<path>/split{n}utt/{1..n}`
    (`per_utt`: consecutive chunks of utt2spk, the first `#utts mod n` one line longer). Each part
    gets utt2spk, spk2utt and every per-utt, per-speaker and per-recording file of the source.

    It is idempotent: when `split{n}/1` exists and no source file is newer than its copy there,
    nothing is written. The split folder is built aside and renamed into place.

    Returns:
        the `n` part folders, in order.

    Raises:
        DataDirError: n < 1, more parts than speakers (per speaker) or utterances (per utt).
    """
    d = Path(path)
    require_utt2spk(d)
    if not isinstance(n, int) or n < 1:
        raise DataDirError(f"split_data_dir: invalid number of parts {n!r}")
    root = d / f"split{n}{'utt' if per_utt else ''}"
    parts = [root / str(i) for i in range(1, n + 1)]
    names = present_files(d)
    if _up_to_date(d, parts[0], names + (["spk2utt"] if (d / "spk2utt").is_file() else [])):
        log.info("split_data_dir: %s is up to date", root)
        return parts
    tables = read_tables(d, names)
    rows = tables["utt2spk"]
    utt2spk_of(d / "utt2spk", rows)  # every line must be `utt spk`
    for name in ("feats.scp", "text"):
        if name in tables and len(tables[name]) != len(rows):
            log.warning("split_data_dir: #lines in (utt2spk, %s) is (%d, %d); fix_data_dir %s would fix this",
                        name, len(rows), len(tables[name]), d)
    groups = _split_per_utt(d, rows, n) if per_utt else _split_per_speaker(d, rows, n)
    # split{N} is the toolkit's own folder (Kaldi's split_data.sh replaces it too).
    with staged_dir(root, DataDirError, overwrite=True) as tmp:
        for i, part in enumerate(part_tables(tables, groups), start=1):
            (tmp / str(i)).mkdir()
            write_tables(tmp / str(i), part)
    log.info("split_data_dir: %s into %d parts (%s)", d, n, "per utterance" if per_utt else "per speaker")
    return parts


def _up_to_date(d: Path, first_part: Path, names: list[str]) -> bool:
    if not first_part.is_dir():
        return False
    for name in names:
        copy = first_part / name
        if not copy.is_file() or copy.stat().st_mtime_ns < (d / name).stat().st_mtime_ns:
            return False
    return True


def _split_per_utt(d: Path, rows: list[Row], n: int) -> list[list[Row]]:
    if n > len(rows):
        raise DataDirError(f"split_data_dir: cannot split {len(rows)} utterances of {d} into {n} parts")
    size, remainder = divmod(len(rows), n)
    groups, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < remainder else 0)
        groups.append(rows[start:end])
        start = end
    return groups


def _split_per_speaker(d: Path, rows: list[Row], n: int) -> list[list[Row]]:
    """split_scp.pl --utt2spk: contiguous speaker ranges, then edge speakers moved while that evens
    out the utterance counts of neighbouring parts."""
    spk_rows: dict[str, list[Row]] = {}
    for row in rows:
        spk_rows.setdefault(row.fields[1], []).append(row)
    spks = list(spk_rows)
    if len(spks) < n:
        raise DataDirError(f"split_data_dir: refusing to split {d}: number of speakers {len(spks)} "
                           f"is less than the number of parts {n} (use per_utt / --per-utt)")
    count = {s: len(r) for s, r in spk_rows.items()}
    groups: list[list[str]] = [[] for _ in range(n)]
    sizes = [0] * n
    for i, spk in enumerate(spks):
        j = i * n // len(spks)
        groups[j].append(spk)
        sizes[j] += count[spk]
    changed = True
    while changed:
        changed = False
        for j in range(n):
            if j < n - 1 and groups[j]:
                c = count[groups[j][-1]]
                if abs((sizes[j + 1] + c) - (sizes[j] - c)) < abs(sizes[j + 1] - sizes[j]):
                    groups[j + 1].insert(0, groups[j].pop())
                    sizes[j] -= c
                    sizes[j + 1] += c
                    changed = True
            if j > 0 and groups[j]:
                c = count[groups[j][0]]
                if abs((sizes[j] - c) - (sizes[j - 1] + c)) < abs(sizes[j] - sizes[j - 1]):
                    groups[j - 1].append(groups[j].pop(0))
                    sizes[j] -= c
                    sizes[j - 1] += c
                    changed = True
    if any(not g for g in groups):
        raise DataDirError(f"split_data_dir: an empty part when splitting {d} into {n} (too few speakers?)")
    return [[row for spk in g for row in spk_rows[spk]] for g in groups]
