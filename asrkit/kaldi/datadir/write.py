"""Writing whole data dirs: the one staged writer (build the folder aside, write the tables, derive
spk2utt, validate, rename into place) that data prep, speed perturbation, subset and combine use
(split writes its parts with the same pieces into one staged folder), so a killed or failed run
never leaves half a data dir under its final name."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from asrkit.errors import DataDirError
from asrkit.fileio import atomic_write, staged_dir
from asrkit.kaldi.datadir.files import Row, key_kind, utt2spk_to_spk2utt
from asrkit.kaldi.datadir.validate import validate_data_dir
from asrkit.kaldi.textio import write_table

#: A table to write: `{key: value}` (written C-sorted; list values joined with spaces), or rows of
#: a source file (written in their order, byte for byte, as Kaldi's filter_scp.pl copies lines).
Table = Mapping[str, object] | Sequence[Row]


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_write(path) as f:
        for line in lines:
            f.write(line + "\n")


def write_tables(folder: Path, tables: Mapping[str, Table]) -> None:
    """Write `tables` (which must include `utt2spk`) into the existing `folder`, and `spk2utt` from utt2spk."""
    for name, table in tables.items():
        if isinstance(table, Mapping):
            write_table(folder / name, table)
        else:
            _write_lines(folder / name, [row.line for row in table])
    utt2spk = tables["utt2spk"]
    pairs = utt2spk if isinstance(utt2spk, Mapping) else [(row.key, row.fields[1]) for row in utt2spk]
    write_table(folder / "spk2utt", utt2spk_to_spk2utt(pairs), sort=False)


def write_data_dir(dst: str | os.PathLike, tables: Mapping[str, Table], *,
                   validate: Mapping[str, bool] | None = None, error_prefix: str = "",
                   inputs: Sequence[str | os.PathLike] = (), overwrite: bool = False) -> list[str]:
    """Write a data dir atomically: `tables` and the derived `spk2utt` go into a temporary folder
    beside `dst`, which is validated (unless `validate` is None) and then replaces `dst` whole.

    Args:
        dst: the data dir to create or replace.
        tables: `{file_name: Table}`; must include `utt2spk`.
        validate: keyword options of `validate_data_dir` (e.g. `{"no_feats": True}`), or None to
            skip validation.
        inputs: the data dirs it is made from: `dst` may not be, hold or be inside one.
        overwrite: replace `dst` even if asrkit did not make it (`asrkit.fileio.check_replaceable_dir`).
        error_prefix: put before the message of a validation failure (e.g. "prepared data dir
            fails validation: ").

    Returns:
        the validation warnings, naming `dst`.

    Raises:
        DataDirError: `dst` may not be replaced (not a folder, an input, or a folder asrkit did not
            make without `overwrite`), or the dir fails validation (the message
            names `dst`, not the temporary folder; nothing is written then).
    """
    dst = Path(dst)
    if "utt2spk" not in tables:
        raise ValueError("write_data_dir: tables must include utt2spk")
    warnings: list[str] = []
    with staged_dir(dst, DataDirError, inputs=inputs, overwrite=overwrite) as tmp:
        write_tables(tmp, tables)
        if validate is not None:
            try:
                warnings = validate_data_dir(tmp, **validate)
            except DataDirError as e:
                raise DataDirError(error_prefix + str(e).replace(str(tmp), str(dst))) from None
    return [str(w).replace(str(tmp), str(dst)) for w in warnings]


def part_tables(tables: Mapping[str, Sequence[Row]], groups: Sequence[Sequence[Row]]) -> list[dict[str, list[Row]]]:
    """The tables of each part made of `groups[i]` (rows of utt2spk): every row of `tables` that belongs
    to its utterances, their speakers and their recordings, in the source order (filter_scp.pl).

    One pass over each table, whatever the number of parts.
    """
    owners = _part_owners(groups, tables.get("segments"))
    parts: list[dict[str, list[Row]]] = [{"utt2spk": list(group)} for group in groups]
    for name, rows in tables.items():
        if name == "utt2spk":
            continue
        for part in parts:
            part[name] = []
        by_key = owners[key_kind(name)]
        for row in rows:
            for i in by_key.get(row.key, ()):
                parts[i][name].append(row)
    return parts


def _part_owners(groups: Sequence[Sequence[Row]], segments: Sequence[Row] | None) -> dict[str, dict[str, set[int]]]:
    """For each key kind, `{key: the parts holding it}`: an utterance is in one part, a speaker or a
    recording (of `segments`; without it recordings are utterances) in every part using it."""
    utts: dict[str, set[int]] = {}
    speakers: dict[str, set[int]] = {}
    for i, group in enumerate(groups):
        for row in group:
            utts[row.key] = {i}
            speakers.setdefault(row.fields[1], set()).add(i)
    if segments is None:
        return {"utt": utts, "spk": speakers, "reco": utts}
    recordings: dict[str, set[int]] = {}
    for row in segments:
        f = row.fields
        if row.key in utts and len(f) > 1:
            recordings.setdefault(f[1], set()).update(utts[row.key])
    return {"utt": utts, "spk": speakers, "reco": recordings}
