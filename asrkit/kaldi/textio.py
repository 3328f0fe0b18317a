"""Kaldi text tables: `<key> <value>` per line, UTF-8, C-locale sorted.

One reader and one writer for every text file of a data directory (`utt2spk`, `text`, `utt2lang`
...). Errors name the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from asrkit.errors import FormatError
from asrkit.fileio import atomic_write


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` for each line of a UTF-8 text file, without the trailing newline.

    Raises:
        FileNotFoundError: the file does not exist.
        FormatError: a line is not valid UTF-8, or contains a carriage return; the file starts
            with a byte-order mark.
    """
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(path, f"not valid UTF-8 ({e.reason} at byte {e.start})", lineno) from None
            if lineno == 1 and line.startswith("\ufeff"):
                # Else it becomes part of the first key, and the error blames another line or file.
                raise FormatError(path, "starts with a UTF-8 byte-order mark (U+FEFF); remove it", 1)
            if line.endswith("\n"):
                line = line[:-1]
            if "\r" in line:
                raise FormatError(path, "carriage return (CR) in line; convert the file to Unix line endings", lineno)
            yield lineno, line


def read_table(path: str | os.PathLike, *, num_fields: int | None = None, min_fields: int = 1) -> dict[str, str]:
    """Read a Kaldi text table into an insertion-ordered `{key: rest_of_line}` dict.

    Args:
        path: the table file.
        num_fields: if set, every line must have exactly this many whitespace-separated fields
            (key included).
        min_fields: every line must have at least this many fields (key included).

    Raises:
        FormatError: empty key, wrong field count or a duplicate key, naming file and line.
    """
    path = Path(path)
    table: dict[str, str] = {}
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            raise FormatError(path, "empty line", lineno)
        if num_fields is not None and len(fields) != num_fields:
            raise FormatError(path, f"expected {num_fields} fields, found {len(fields)}", lineno)
        if len(fields) < min_fields:
            raise FormatError(path, f"expected at least {min_fields} fields, found {len(fields)}", lineno)
        key = fields[0]
        if key in table:
            raise FormatError(path, f"duplicate key '{key}'", lineno)
        parts = line.strip().split(maxsplit=1)
        table[key] = parts[1] if len(parts) > 1 else ""
    return table


def c_sorted(keys: Iterable[str]) -> list[str]:
    """Sort keys the way `LC_ALL=C sort` does (byte order of the UTF-8 encoding)."""
    # Code-point order of str equals byte order of UTF-8, which is what the C locale compares.
    return sorted(keys)


def write_table(path: str | os.PathLike, table: Mapping[str, object] | Iterable[tuple[str, object]],
                *, sort: bool = True) -> None:
    """Write `key value` lines atomically, C-sorted by key unless `sort` is False.

    Values that are lists or tuples are joined with spaces; an empty value writes the key alone.
    """
    items = list(table.items()) if isinstance(table, Mapping) else list(table)
    if sort:
        items.sort(key=lambda kv: kv[0])
    with atomic_write(path) as f:
        for key, value in items:
            if isinstance(value, (list, tuple)):
                value = " ".join(str(v) for v in value)
            value = str(value)
            f.write(f"{key} {value}\n" if value != "" else f"{key}\n")
