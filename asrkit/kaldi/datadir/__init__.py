"""Kaldi data directories: load/save, validate, fix, subset, split, combine, summarise and write them.

The rules are Kaldi's own (`utils/validate_data_dir.sh`, `fix_data_dir.sh`, `subset_data_dir.sh`,
`split_data.sh`, `combine_data.sh`; KALDI_CONVENTIONS.md §1), except that every failure raises
(Kaldi exits 0 on some) and every output is written atomically. One module per script:

    files     the registry of data-dir files (name, key kind, format, per-line rules) and the line reader
    tables    `DataDir` (the tables in memory), `load_data_dir`
    write     the staged writer every data-dir writer uses (`write_data_dir`)
    validate  validate_data_dir.sh          fix     fix_data_dir.sh
    subset    subset_data_dir.sh            split   split_data.sh (and `split_for_jobs`)
    combine   combine_data.sh               info    `asrkit data info`
"""

from asrkit.kaldi.datadir.combine import combine_data_dirs
from asrkit.kaldi.datadir.files import (
    FILES,
    ILLEGAL_TEXT_SYMBOLS,
    RECO_FILES,
    SPK_FILES,
    UTT_FILES,
    DataDirFileError,
    KaldiFile,
    Segment,
    utt2spk_to_spk2utt,
)
from asrkit.kaldi.datadir.fix import fix_data_dir
from asrkit.kaldi.datadir.info import data_dir_info
from asrkit.kaldi.datadir.split import split_data_dir, split_for_jobs
from asrkit.kaldi.datadir.subset import subset_data_dir
from asrkit.kaldi.datadir.tables import DataDir, load_data_dir
from asrkit.kaldi.datadir.validate import validate_data_dir
from asrkit.kaldi.datadir.write import write_data_dir

__all__ = [
    "DataDir", "DataDirFileError", "Segment", "KaldiFile", "load_data_dir", "validate_data_dir", "fix_data_dir",
    "subset_data_dir", "split_data_dir", "split_for_jobs", "combine_data_dirs", "data_dir_info",
    "write_data_dir", "utt2spk_to_spk2utt",
    "FILES", "UTT_FILES", "SPK_FILES", "RECO_FILES", "ILLEGAL_TEXT_SYMBOLS",
]
