"""Scoring: WER/CER with Kaldi's exact numbers, Kaldi-format report files, and results tables.

`wer` computes edit counts and alignments the way compute-wer and align-text do; `report` scores a
decode dir into `wer`, `wer_<lang>`, `cer*` and `per_utt`; `results` gathers every decode dir's
scores under an exp/ tree into a table for RESULTS.md.
"""

from asrkit.scoring.report import NO_SPACE_LANGUAGES, format_per_utt, is_no_space_language, score_decode_dir
from asrkit.scoring.results import Result, collect_results, format_results, format_seed_results
from asrkit.scoring.wer import EditCounts, ErrorStats, align, compute_wer, edit_counts, to_chars

__all__ = [
    "NO_SPACE_LANGUAGES",
    "EditCounts",
    "ErrorStats",
    "Result",
    "align",
    "collect_results",
    "compute_wer",
    "edit_counts",
    "format_per_utt",
    "format_results",
    "format_seed_results",
    "is_no_space_language",
    "score_decode_dir",
    "to_chars",
]
