"""Collect the scores of every decode dir under an exp/ tree into a results table for RESULTS.md.

Reads the `wer*`/`cer*` files that `asrkit score` and Kaldi's scoring scripts write, finds their
`%WER` line as `utils/best_wer.sh` does (Kaldi's `wer_<lmwt>_<wip>` files start with the
compute-wer command line), and keeps the best of a Kaldi LM-weight/penalty sweep per decode dir.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asrkit.errors import AsrkitError
from asrkit.kaldi.textio import iter_lines
from asrkit.logutil import get_logger

WER_LINE = re.compile(
    r"%WER\s+(?P<value>\S+)\s+\[\s*(?P<errors>\d+)\s*/\s*(?P<words>\d+),\s*(?P<ins>\d+)\s+ins,\s*"
    r"(?P<dels>\d+)\s+del,\s*(?P<subs>\d+)\s+sub\s*\](?P<partial>\s*\[PARTIAL\])?")
"""compute-wer's first output line: `%WER 4.71 [ 266 / 5643, 40 ins, 27 del, 199 sub ] [PARTIAL]`."""

# `wer`, `wer_<lmwt>` (old Kaldi), `wer_<lmwt>_<wip>`: all utterances. `wer_<lang>`: one language.
_OVERALL_NAME = re.compile(r"(?P<metric>wer|cer)(?:_\d+(?:\.\d+)?(?:_-?\d+(?:\.\d+)?)?)?")
_LANGUAGE_NAME = re.compile(r"(?P<metric>wer|cer)_(?P<lang>[A-Za-z][A-Za-z0-9_-]*)")

ALL = "all"
"""The language of a score over every utterance of a test set."""

_log = get_logger(__name__)


@dataclass(frozen=True)
class Result:
    """One score of one decode dir.

    Attributes:
        experiment: path of the experiment dir relative to the scanned root (`tdnn_1a`, `chain/tdnn_1a`).
        test_set: the decode dir name without its `decode_` prefix (`bd_tgpr_eval92`, `test_clean`).
        language: `all`, or the language tag of a `wer_<lang>` file.
        metric: `WER` or `CER`.
        value: the percentage as printed (2 decimals).
        partial: the file says `[PARTIAL]` (some utterances had no hypothesis).
        line: the `%WER ...` line as found in the file.
        path: the file, as reached from the scanned root.
    """

    experiment: str
    test_set: str
    language: str
    metric: str
    value: float
    partial: bool
    line: str
    path: Path


def read_wer_line(path: str | os.PathLike) -> str | None:
    """The first compute-wer `%WER ...` line of a file, or None when it has none (e.g. a failed job)."""
    for _, line in iter_lines(path):
        if WER_LINE.search(line):
            return line.strip()
    return None


def _classify(name: str) -> tuple[str, str] | None:
    """`(metric, language)` of a score file name, or None when the name is not a score file."""
    m = _OVERALL_NAME.fullmatch(name)
    if m:
        return m["metric"].upper(), ALL
    m = _LANGUAGE_NAME.fullmatch(name)
    if m:
        return m["metric"].upper(), m["lang"]
    return None


def _test_set(decode_dir_name: str) -> str:
    rest = decode_dir_name[len("decode"):]
    return rest[1:] if rest[:1] in ("_", "-", ".") and len(rest) > 1 else decode_dir_name


def _sort_value(value: float) -> float:
    # best_wer.sh keeps the lowest; a nan must never win.
    return math.inf if math.isnan(value) else value


def collect_results(exp_root: str | os.PathLike) -> list[Result]:
    """Find the scores of every `decode*` dir under `exp_root`.

    Looks at the files directly inside each `exp_root/**/decode*/` dir named `wer`, `cer`,
    `wer_<lang>`, `cer_<lang>` or Kaldi's sweep names `wer_<lmwt>_<wip>` (`cer_...`). The sweep
    files and `wer` all score every utterance: of those the lowest wins, as `utils/best_wer.sh`
    picks (the first in C order on a tie). Files without a `%WER` line are skipped with a warning.

    Args:
        exp_root: the folder to scan, usually `exp`.

    Returns:
        one Result per (decode dir, metric, language), sorted by experiment, test set, metric
        (WER first) and language.

    Raises:
        AsrkitError: `exp_root` is not a folder.
    """
    root = Path(exp_root)
    if not root.is_dir():
        raise AsrkitError(f"{root}: no such folder")
    results: list[Result] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        if not here.name.startswith("decode"):
            continue
        if here == root:
            experiment = root.resolve().parent.name
        else:
            experiment = here.parent.relative_to(root).as_posix()
        best: dict[tuple[str, str], Result] = {}
        for name in sorted(filenames):
            kind = _classify(name)
            if kind is None:
                continue
            path = here / name
            line = read_wer_line(path)
            if line is None:
                _log.warning("%s: no %%WER line; skipped", path)
                continue
            m = WER_LINE.search(line)
            try:
                value = float(m["value"])
            except ValueError:
                _log.warning("%s: unreadable %%WER value '%s'; skipped", path, m["value"])
                continue
            result = Result(experiment=experiment, test_set=_test_set(here.name), language=kind[1],
                            metric=kind[0], value=value, partial=m["partial"] is not None,
                            line=line, path=path)
            old = best.get(kind)
            if old is None or _sort_value(result.value) < _sort_value(old.value):
                best[kind] = result
        results.extend(best.values())
    results.sort(key=_result_order)
    return results


def _result_order(r: Result) -> tuple:
    return (r.experiment, r.test_set, 0 if r.metric == "WER" else 1, r.language == ALL, r.language)


def _columns(results: Sequence[Result]) -> list[tuple[str, str]]:
    keys = {(r.metric, r.language) for r in results}
    return sorted(keys, key=lambda k: (0 if k[0] == "WER" else 1, k[1] == ALL, k[1]))


def format_results(results: Iterable[Result], markdown: bool = False, raw: bool = False) -> str:
    """Render results as a table: one row per experiment and test set, one column per metric and language.

    Args:
        results: from `collect_results`.
        markdown: a Markdown table for RESULTS.md instead of aligned plain-text columns.
        raw: instead of a table, `utils/best_wer.sh`-style lines: the `%WER ...` line followed by
            the file it came from, one per result.

    Returns:
        the text, ending in a newline (empty when there are no results). Columns are named
        `WER <lang>` / `CER <lang>`, languages in C order with `all` last; a missing score is `-`;
        a `[PARTIAL]` score is marked `*` and explained under the table.
    """
    results = sorted(results, key=_result_order)
    if not results:
        return ""
    if raw:
        return "".join(f"{r.line} {r.path.as_posix()}\n" for r in results)
    return _table([results], markdown, lambda cell: f"{cell[0].value:.2f}")


def format_seed_results(runs: Sequence[Sequence[Result]], markdown: bool = False) -> str:
    """One table over several runs of the same recipe (one exp root per training seed): each cell is
    the mean and sample standard deviation of the runs' scores, `12.34 ± 0.56`, followed by `(n=K)`
    when only K of the runs have that score.

    Args:
        runs: one `collect_results` list per run.
        markdown: a Markdown table instead of aligned plain-text columns.

    Returns:
        the text, ending in a newline (empty when no run has results); as `format_results` otherwise.
    """
    if not any(runs):
        return ""

    def cell_text(cell: Sequence[Result]) -> str:
        values = [r.value for r in cell]
        sd = statistics.stdev(values) if len(values) > 1 else math.nan
        text = f"{statistics.fmean(values):.2f} ± {sd:.2f}"
        return text if len(values) == len(runs) else f"{text} (n={len(values)})"

    return _table(runs, markdown, cell_text)


def _table(runs: Sequence[Sequence[Result]], markdown: bool,
           cell_text: Callable[[Sequence[Result]], str]) -> str:
    """Rows experiment x test set, a column per (metric, language); a cell holds every run's Result."""
    flat = sorted((r for run in runs for r in run), key=_result_order)
    columns = _columns(flat)
    rows: dict[tuple[str, str], dict[tuple[str, str], list[Result]]] = {}
    for r in flat:
        rows.setdefault((r.experiment, r.test_set), {}).setdefault((r.metric, r.language), []).append(r)
    header = ["experiment", "test set"] + [f"{metric} {lang}" for metric, lang in columns]
    body = []
    for (experiment, test_set), cells in rows.items():
        row = [experiment, test_set]
        for col in columns:
            cell = cells.get(col)
            row.append("-" if cell is None else cell_text(cell) + ("*" if any(r.partial for r in cell) else ""))
        body.append(row)
    any_partial = any(r.partial for r in flat)

    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---", "---"] + ["---:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        if any_partial:
            lines += ["", "\\* [PARTIAL]: some utterances of the test set had no hypothesis."]
    else:
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def render(row: list[str]) -> str:
            cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
            return "  ".join(cells).rstrip()

        lines = [render(header)] + [render(row) for row in body]
        if any_partial:
            lines += ["", "* [PARTIAL]: some utterances of the test set had no hypothesis."]
    return "\n".join(lines) + "\n"
