"""Kaldi tables, read the way Kaldi's table I/O reads them: archives, scp files (lazily, as a
mapping), rspecifiers, with errors that name the key and the scp file:line.

The objects themselves are read by asrkit.kaldi.objects, rxfilenames opened by asrkit.kaldi.rxfile;
writing is asrkit.kaldi.writer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from asrkit.errors import AsrkitError, FormatError
from asrkit.kaldi.objects import READ_ERRORS, Truncated, describe_read_error, read_key, read_object
from asrkit.kaldi.rxfile import apply_range, open_rx, parse_rspecifier, split_offset, split_range
from asrkit.kaldi.textio import iter_lines
from asrkit.logutil import get_logger

log = get_logger(__name__)

# ------------------------------------------------------------------------------------------------
# Public readers
# ------------------------------------------------------------------------------------------------

def iter_ark(rxfilename: str, read: Callable = read_object) -> Iterator[tuple[str, object]]:
    """Yield `(key, object)` from an archive: a path, `-` or a `cmd |` pipe (exit status checked).

    `read` reads one object from the binary stream after its key: `read_object` (matrices, vectors,
    audio), or the reader of a type kaldiio does not know (`asrkit.kaldi.posterior`).

    Raises:
        FormatError: a truncated or corrupted object (naming the key and the archive).
        AsrkitError: the pipe command exited non-zero.
    """
    with open_rx(rxfilename) as f:
        prev = None
        while True:
            try:
                key = read_key(f)
            except Truncated as e:
                after = f" after key '{prev}'" if prev else ""
                raise FormatError(rxfilename, f"truncated archive{after}: {e}") from None
            if key is None:
                return
            try:
                obj = read(f)
            except READ_ERRORS as e:
                raise FormatError(rxfilename, f"key '{key}': {describe_read_error(e)}") from None
            prev = key
            yield key, obj


class ScpEntry:
    __slots__ = ("key", "rxfilename", "line")

    def __init__(self, key: str, rxfilename: str, line: int):
        self.key, self.rxfilename, self.line = key, rxfilename, line


def parse_scp(path: str | os.PathLike) -> list[ScpEntry]:
    entries = []
    for lineno, line in iter_lines(path):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            raise FormatError(path, "empty line", lineno)
        if len(parts) != 2:
            raise FormatError(path, f"expected '<key> <rxfilename>', found '{line.strip()}'", lineno)
        entries.append(ScpEntry(parts[0], parts[1].strip(), lineno))
    return entries


class _FileCache:
    """Open archive handles, reopened after a fork (forked readers must not share file offsets)."""

    def __init__(self, max_open: int = 16):
        self._files: dict[str, object] = {}
        self._pid = os.getpid()
        self._max_open = max_open

    def get(self, path: str):
        if self._pid != os.getpid():
            self._files = {}  # inherited handles belong to the parent; never touch them here
            self._pid = os.getpid()
        f = self._files.get(path)
        if f is None:
            if len(self._files) >= self._max_open:
                old = next(iter(self._files))
                self._files.pop(old).close()
            f = open(path, "rb")
            self._files[path] = f
        return f

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._files.values():
                f.close()
        self._files = {}


def _read_entry(rxfilename: str, files: _FileCache | None, read: Callable = read_object):
    """Read the object an scp entry points to with `read`. Raises the READ_ERRORS or OSError."""
    rx, range_spec = split_range(rxfilename)
    if rx.endswith("|"):
        with open_rx(rx) as f:
            obj = read(f)
            f.read()  # drain, so the command is not killed by SIGPIPE before we check its status
    else:
        path, offset = split_offset(rx)
        if offset is not None and not os.path.exists(path) and os.path.exists(rx):
            path, offset = rx, None  # a file whose name really ends in :<digits>
        if files is not None:
            f = files.get(path)
        else:
            f = open(path, "rb")
        try:
            size = os.fstat(f.fileno()).st_size
            if offset is not None and offset >= size:
                raise Truncated(f"offset {offset} is past the end of {path} ({size} bytes)")
            f.seek(offset or 0)
            obj = read(f)
        finally:
            if files is None:
                f.close()
    if range_spec is not None:
        obj = apply_range(obj, range_spec)
    return obj


def iter_scp(scp_path: str | os.PathLike, *, permissive: bool = False) -> Iterator[tuple[str, object]]:
    """Yield `(key, object)` for each line of an scp file, in file order.

    Raises:
        FormatError: naming the key and scp file:line when an entry cannot be read (missing
            archive, offset past the end, truncated or corrupted data). With `permissive`, such
            entries are skipped with a warning instead (Kaldi's `scp,p:`).
    """
    files = _FileCache(max_open=4)
    try:
        for entry in parse_scp(scp_path):
            try:
                obj = _read_entry(entry.rxfilename, files)
            except (OSError, AsrkitError, *READ_ERRORS) as e:
                err = _entry_error(scp_path, entry, e)
                if permissive:
                    log.warning("skipping: %s", err)
                    continue
                raise err from None
            yield entry.key, obj
    finally:
        files.close()


def _entry_error(scp_path, entry: ScpEntry, e: BaseException) -> FormatError:
    if isinstance(e, FileNotFoundError):
        why = f"cannot open '{e.filename}': no such file"
    elif isinstance(e, OSError):
        why = f"cannot read '{entry.rxfilename}': {e.strerror or e}"
    elif isinstance(e, AsrkitError):
        why = str(e)
    else:
        why = f"{describe_read_error(e)} (entry '{entry.rxfilename}')"
    return FormatError(scp_path, f"key '{entry.key}': {why}", entry.line)


def iter_table(rspecifier: str) -> Iterator[tuple[str, object]]:
    """Iterate a Kaldi table given by an rspecifier, yielding `(key, np.ndarray)`.

    Accepts `ark:foo.ark`, `ark,t:foo.txt` (text form), `ark:gunzip -c ali.1.gz|` (the command runs
    under bash with pipefail; a non-zero exit status is an error, unlike kaldiio), `ark:-`, `scp:feats.scp`
    (entries `foo.ark:123`, `foo.ark:123[0:99]`, `foo.ark:123[0:99,0:12]`, plain files or pipes)
    and `scp:cmd |`. Options `t b o s cs f nf` are accepted (reading detects binary/text by
    itself); `p` (permissive) skips unreadable scp entries and stops an archive at its first bad
    object, with a warning.

    Objects: float32/float64 matrices `(rows, cols)` and vectors `(dim,)`, compressed matrices
    (decoded to float32 exactly as Kaldi does), int32 vectors `(length,)`, and audio as kaldiio's
    `(rate, samples)` tuple.

    Raises:
        FormatError: bad data, naming the archive (or scp file:line) and the key.
        AsrkitError: a bad rspecifier, or a pipe that exits non-zero.
    """
    kind, opts, rx = parse_rspecifier(rspecifier)
    permissive = "p" in opts
    if kind == "ark":
        it = iter_ark(rx)
        if not permissive:
            yield from it
            return
        try:
            yield from it
        except (FormatError, AsrkitError) as e:
            log.warning("stopping early (permissive): %s", e)
        return
    if rx.endswith("|") or rx == "-":
        # An scp produced by a command: read it whole, then read the entries.
        with open_rx(rx) as f:
            text = f.read()
        with tempfile.NamedTemporaryFile("wb", suffix=".scp", delete=False) as tmp:
            tmp.write(text)
        try:
            yield from iter_scp(tmp.name, permissive=permissive)
        finally:
            os.unlink(tmp.name)
        return
    yield from iter_scp(rx, permissive=permissive)


class ScpTable(Mapping):
    """Lazy random access to the objects of an scp file: `table[key] -> np.ndarray`.

    Keys keep file order. Archive handles stay open between reads (at most 16; reopened in a
    forked child). Use as a context manager, or call `close()`, to release them. `read` reads one
    object (see `iter_ark`).
    """

    def __init__(self, scp_path: str | os.PathLike, read: Callable = read_object):
        self.path = Path(scp_path)
        self._read = read
        self._entries: dict[str, ScpEntry] = {}
        for entry in parse_scp(self.path):
            if entry.key in self._entries:
                first = self._entries[entry.key].line
                raise FormatError(self.path, f"duplicate key '{entry.key}' (first on line {first})", entry.line)
            self._entries[entry.key] = entry
        self._files = _FileCache()

    def __getitem__(self, key: str):
        """Read the object for `key`.

        Raises:
            KeyError: `key` is not in the scp.
            FormatError: the entry cannot be read; names the key and scp file:line.
        """
        entry = self._entries[key]
        try:
            return _read_entry(entry.rxfilename, self._files, self._read)
        except (OSError, AsrkitError, *READ_ERRORS) as e:
            raise _entry_error(self.path, entry, e) from None

    def rxfilename(self, key: str) -> str:
        """The scp value for `key` (e.g. `raw_fbank_train.1.ark:1234`)."""
        return self._entries[key].rxfilename

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def close(self) -> None:
        self._files.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_table_scp(path: str | os.PathLike) -> ScpTable:
    """Open an scp file for lazy random access by key (see ScpTable).

    Raises:
        FileNotFoundError: the scp does not exist.
        FormatError: a malformed line or duplicate key (file:line).
    """
    return ScpTable(path)


def read_int_vectors_text(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a text table of integer vectors (`utt 1 8 4 ...`, e.g. alignments in text form).

    Returns:
        `{key: np.ndarray int32 (length,)}` in file order (a key alone gives an empty vector).

    Raises:
        FormatError: a non-integer value, a value outside int32, or a duplicate key (file:line).
    """
    out: dict[str, np.ndarray] = {}
    for lineno, line in iter_lines(path):
        fields = line.split()
        if not fields:
            raise FormatError(path, "empty line", lineno)
        key = fields[0]
        if key in out:
            raise FormatError(path, f"duplicate key '{key}'", lineno)
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            bad = next(v for v in fields[1:] if not v.lstrip("+-").isdigit())
            raise FormatError(path, f"key '{key}': '{bad}' is not an integer", lineno) from None
        arr = np.array(values, dtype=np.int64)
        if arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
            raise FormatError(path, f"key '{key}': value outside the int32 range", lineno)
        out[key] = arr.astype(np.int32)
    return out
