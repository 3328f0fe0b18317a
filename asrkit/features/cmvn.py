"""`asrkit compute-cmvn`: CMVN stats of a data dir's features, as Kaldi's compute-cmvn-stats.

`compute_cmvn` writes them per speaker (`cmvn.scp` keyed by speaker, as steps/compute_cmvn_stats.sh)
or once for the whole set (`cmvn.ark`); the stats themselves and their application when features are
loaded are asrkit.kaldi.cmvn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np

from asrkit.errors import DataDirError
from asrkit.fileio import atomic_write, dir_lock
from asrkit.kaldi.cmvn import acc_cmvn_stats, init_cmvn_stats
from asrkit.kaldi.table import load_table_scp
from asrkit.kaldi.textio import read_table
from asrkit.kaldi.writer import ArkScpWriter
from asrkit.logutil import get_logger

log = get_logger("features.cmvn")


@dataclass(frozen=True)
class CmvnResult:
    """What `compute_cmvn` wrote: the stats files and how many speakers (1 for global) they cover."""

    cmvn_scp: Path | None
    cmvn_ark: Path
    num_keys: int
    num_frames: int


def compute_cmvn(data_dir: str | os.PathLike, global_stats: bool = False,
                 feat_dir: str | os.PathLike | None = None) -> CmvnResult:
    """Accumulate CMVN stats over a data dir's `feats.scp`, per speaker or globally.

    Per speaker (default; steps/compute_cmvn_stats.sh): writes `<feat-dir>/cmvn_<set>.{ark,scp}`
    (one `(2, dim + 1)` double matrix per speaker of `spk2utt`) and copies the scp to
    `DATA_DIR/cmvn.scp`. The feat dir defaults to the folder of the first ark in `feats.scp`
    (where make-feats put the features), as Kaldi's script defaults to `<data-dir>/data`.

    Global (`global_stats=True`): writes one keyless binary float matrix (`FM`) to
    `DATA_DIR/cmvn.ark`, what `compute-cmvn-stats scp:feats.scp cmvn.ark` writes (it rounds the
    double stats to float) and `apply-cmvn cmvn.ark ...` reads.

    Raises:
        DataDirError: no feats.scp, a speaker without features, or features of differing dimension.
        FormatError: a bad line in feats.scp or spk2utt.
        AsrkitError: the data dir cannot be written (read-only: nothing is written anywhere), or
            another asrkit command is writing it now.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataDirError(f"{data_dir / 'feats.scp'}: not found (run `asrkit make-feats {data_dir}` first)")
    # The lock comes first: a data dir that cannot take cmvn.scp fails before any ark is written.
    with dir_lock(data_dir, "compute-cmvn", DataDirError):
        return _compute_cmvn(data_dir, global_stats, feat_dir)


def _compute_cmvn(data_dir: Path, global_stats: bool, feat_dir: str | os.PathLike | None) -> CmvnResult:
    feats_scp = data_dir / "feats.scp"
    if not feats_scp.is_file():
        raise DataDirError(f"{feats_scp}: not found (run `asrkit make-feats {data_dir}` first)")
    reader = load_table_scp(feats_scp)
    if not len(reader):
        raise DataDirError(f"{feats_scp}: empty")
    feat_table = {utt: reader.rxfilename(utt) for utt in reader}

    def load(utt: str) -> np.ndarray:
        return np.asarray(reader[utt])  # FormatError naming the key and scp line on a bad entry

    if global_stats:
        stats = None
        for utt in feat_table:
            mat = load(utt)
            stats = init_cmvn_stats(mat.shape[1]) if stats is None else stats
            _acc_checked(stats, mat, utt, feats_scp)
        out = data_dir / "cmvn.ark"
        with atomic_write(out, "wb") as f:
            # compute-cmvn-stats writes global stats as a float matrix (`Matrix<float>
            # stats_float(stats)`), per-speaker stats as double.
            kaldiio.save_mat(f, stats.astype(np.float32))
        if (data_dir / "cmvn.scp").is_file():
            # Not removed: it may be the user's. Training and decoding would use it and not cmvn.ark.
            log.warning("%s: per-speaker stats are there too, and train/decode use them instead of %s; "
                        "remove cmvn.scp to normalise with the global stats", data_dir / "cmvn.scp", out)
        return CmvnResult(None, out, 1, int(stats[0, -1]))

    spk2utt_path = data_dir / "spk2utt"
    if not spk2utt_path.is_file():
        raise DataDirError(f"{spk2utt_path}: not found (per-speaker CMVN needs spk2utt; or use --global)")
    spk2utt = {spk: utts.split() for spk, utts in read_table(spk2utt_path, min_fields=2).items()}
    set_name = data_dir.resolve().name
    feat_dir = (Path(feat_dir) if feat_dir is not None else _feat_dir_of(feat_table, feats_scp)).resolve()
    feat_dir.mkdir(parents=True, exist_ok=True)
    ark, scp = feat_dir / f"cmvn_{set_name}.ark", feat_dir / f"cmvn_{set_name}.scp"
    all_stats: dict[str, np.ndarray] = {}
    total = 0
    for spk, utts in spk2utt.items():
        stats = None
        for utt in utts:
            if utt not in feat_table:
                continue  # Kaldi warns and skips utterances without features
            mat = load(utt)
            stats = init_cmvn_stats(mat.shape[1]) if stats is None else stats
            _acc_checked(stats, mat, utt, feats_scp)
        if stats is None:
            raise DataDirError(f"{spk2utt_path}: speaker '{spk}' has no utterance in {feats_scp}")
        all_stats[spk] = stats
        total += int(stats[0, -1])
    with ArkScpWriter(ark, scp) as writer:
        for spk, stats in all_stats.items():
            writer.write(spk, stats)  # float64 -> Kaldi DM, as compute-cmvn-stats writes
    with atomic_write(data_dir / "cmvn.scp") as f:
        f.write(scp.read_text())
    return CmvnResult(data_dir / "cmvn.scp", ark, len(all_stats), total)


def _acc_checked(stats: np.ndarray, mat: np.ndarray, utt: str, feats_scp: Path) -> None:
    if mat.ndim != 2 or mat.shape[1] != stats.shape[1] - 1:
        raise DataDirError(f"{feats_scp}: '{utt}' has shape {mat.shape}, expected (*, {stats.shape[1] - 1})")
    if not np.isfinite(mat).all():
        # Caught here, where the utterance is known, rather than as a NaN in the speaker's stats.
        frame, dim = (int(i) for i in np.argwhere(~np.isfinite(mat))[0])
        raise DataDirError(f"{feats_scp}: utterance '{utt}': NaN or Inf in its features (frame {frame}, dim {dim})")
    acc_cmvn_stats(stats, mat)


def _feat_dir_of(feat_table: dict[str, str], feats_scp: Path) -> Path:
    first = next(iter(feat_table.values()))
    ark = first.rsplit(":", 1)[0]
    path = Path(ark)
    return path.parent if path.is_absolute() else (Path.cwd() / path).parent
