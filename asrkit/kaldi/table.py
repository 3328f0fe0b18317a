"""Kaldi tables: read and write ark/scp archives the way Kaldi's table I/O does, over kaldiio.

kaldiio decodes the binary objects (FM/DM/FV/DV, int32 vectors, wav, text). This module adds what a
toolkit needs around it: rspecifiers (`ark:`, `scp:`, `ark:cmd |`, row ranges), pipes whose exit
status is checked, errors that name the key and the scp file:line, truncation detection, atomic
ark+scp writing, and Kaldi-exact decompression of `CM`/`CM2`/`CM3` matrices (kaldiio's own
decompression differs from Kaldi's in the last bits; asrkit must give the values Kaldi gives).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from kaldiio.matio import read_ascii_mat, read_kaldi, write_array
from kaldiio.utils import MultiFileDescriptor

from asrkit.errors import AsrkitError, FormatError
from asrkit.fileio import atomic_write, naming_write_errors, set_default_mode, tmp_path_for
from asrkit.kaldi.compressed import compress_matrix
from asrkit.kaldi.textio import iter_lines, write_table
from asrkit.logutil import get_logger

log = get_logger(__name__)

# Kaldi's CompressionMethod enum (src/matrix/compressed-matrix.h); kaldiio uses the same numbers.
COMPRESSION_AUTOMATIC = 1  # CM for matrices with more than 8 rows, CM2 otherwise (copy-feats default)
COMPRESSION_SPEECH_FEATURE = 2  # always CM (kOneByteWithColHeaders)
COMPRESSION_TWO_BYTE = 3  # CM2
COMPRESSION_ONE_BYTE = 5  # CM3

_RSPEC_OPTIONS = {"t", "b", "o", "no", "s", "ns", "cs", "ncs", "p", "np", "f", "nf"}
_OFFSET_RE = re.compile(r"^(.*):(\d+)$")
_RANGE_RE = re.compile(r"^(.*)\[([^\[\]]*)\]$")


class _Truncated(EOFError):
    """The data ended before the object it was reading was complete."""


class _StrictStream:
    """A read-only, non-seekable view of a binary stream that raises on short reads.

    kaldiio trusts `read(n)` to return n bytes; on a truncated archive it would silently return a
    shorter vector. Reporting the stream as unseekable makes kaldiio (and the `wave` module it uses)
    never seek, so reading from a pipe and from a file take the same path.
    """

    def __init__(self, f, strict: bool = True):
        self._f = f
        self.strict = strict

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self.strict and n is not None and n > 0 and len(data) < n:
            raise _Truncated(f"data ends early (wanted {n} more bytes, found {len(data)})")
        return data

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")


# ------------------------------------------------------------------------------------------------
# Reading one object
# ------------------------------------------------------------------------------------------------

def read_key(f) -> str | None:
    """Read `<key><space>` from an archive; None at a clean end of file."""
    buf = bytearray()
    while True:
        c = f.read(1)
        if c == b"":
            if buf:
                raise _Truncated(f"archive ends inside key '{buf.decode('utf-8', 'replace')}'")
            return None
        if c == b" ":
            if buf:
                break
            continue
        if c in b"\n\r\t" and not buf:  # blank lines between text-form objects
            continue
        buf += c
    return buf.decode("utf-8")


def _read_token(f) -> bytes:
    """Read a Kaldi binary token such as `FM` (terminated by a space)."""
    tok = bytearray()
    while True:
        c = f.read(1)
        if c == b"":
            raise _Truncated("data ends inside a type token")
        if c == b" ":
            return bytes(tok)
        tok += c
        if len(tok) > 8:
            raise ValueError(f"unknown binary object type starting with {bytes(tok)!r}")


def _decompress(token: bytes, f) -> np.ndarray:
    """Decode a Kaldi compressed matrix exactly as `CompressedMatrix::CopyToMat` does (float32).

    Kaldi's arithmetic is mirrored operation by operation (float32 where Kaldi uses float, float64
    where it multiplies by a double constant), which makes the result bit-identical to
    `copy-feats` decompressing the same archive.
    """
    f32 = np.float32
    min_value, range_, rows, cols = struct.unpack("<ffii", f.read(16))
    if rows < 0 or cols < 0:
        raise ValueError(f"compressed matrix has negative size {rows}x{cols}")
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols), dtype=np.float32)
    min_value, range_ = f32(min_value), f32(range_)
    if token == b"CM":
        col_headers = np.frombuffer(f.read(8 * cols), dtype="<u2").reshape(cols, 4)
        data = np.frombuffer(f.read(rows * cols), dtype=np.uint8).reshape(cols, rows)  # column-major
        # Uint16ToFloat: min + range * 1.52590218966964e-05F * value, all in float.
        pct = min_value + (range_ * f32(1.52590218966964e-05)) * col_headers.astype(f32)
        p0, p25, p75, p100 = (pct[:, i : i + 1] for i in range(4))
        v = data.astype(f32)
        # CharToFloat: (p25 - p0) * value is float, the (1/64.0) factor is double.
        low = (p0 + ((p25 - p0) * v).astype(np.float64) * (1 / 64.0)).astype(f32)
        mid = (p25 + ((p75 - p25) * (v - f32(64))).astype(np.float64) * (1 / 128.0)).astype(f32)
        high = (p75 + ((p100 - p75) * (v - f32(192))).astype(np.float64) * (1 / 63.0)).astype(f32)
        out = np.where(data <= 64, low, np.where(data <= 192, mid, high))
        return np.ascontiguousarray(out.T)
    if token == b"CM2":
        data = np.frombuffer(f.read(2 * rows * cols), dtype="<u2").reshape(rows, cols)
        increment = f32(np.float64(range_) * (1.0 / 65535.0))
    else:  # CM3
        data = np.frombuffer(f.read(rows * cols), dtype=np.uint8).reshape(rows, cols)
        increment = f32(np.float64(range_) * (1.0 / 255.0))
    return min_value + data.astype(f32) * increment


def _read_object(f):
    """Read one Kaldi object (the bytes after `<key> `) from a binary stream.

    Returns an np.ndarray (matrix, vector, int32 vector) or, for audio, kaldiio's `(rate, array)`.
    Raises _Truncated, ValueError, AssertionError or struct.error on bad data (callers add the key).
    """
    head = f.read(2)
    if len(head) == 0:
        raise _Truncated("no object after the key")
    if head == b"\0B":
        strict = _StrictStream(f)
        nxt = strict.read(1)
        if nxt == b"\4":  # int32 vector: no type token
            return read_kaldi(MultiFileDescriptor(io.BytesIO(head + nxt), strict))
        token = nxt + _read_token(strict)
        if token in (b"CM", b"CM2", b"CM3"):
            return _decompress(token, strict)
        if token not in (b"FM", b"DM", b"FV", b"DV"):
            raise ValueError(f"unsupported binary object type '{token.decode('utf-8', 'replace')}'")
        return read_kaldi(MultiFileDescriptor(io.BytesIO(head + token + b" "), strict))
    if head in (b"RI", b"fL", b"NP", b"PK", b"AU"):
        # Audio and the other formats kaldiio stores (RIFF, fLaC, NPY, PKL, AUDIO); every byte counts.
        strict = _StrictStream(f, strict=head == b"RI")
        return read_kaldi(MultiFileDescriptor(io.BytesIO(head), strict))
    # Text form (`ark,t:`): read_kaldi would read 5 bytes ahead to sniff the type and, on an
    # unseekable stream, lose the start of the next key after a short value; parse text directly.
    return read_ascii_mat(MultiFileDescriptor(io.BytesIO(head), _StrictStream(f, strict=False)))


_READ_ERRORS = (_Truncated, ValueError, AssertionError, struct.error, RuntimeError, UnicodeDecodeError)


def _describe(e: BaseException) -> str:
    if isinstance(e, _Truncated):
        return f"truncated or corrupted data: {e}"
    if isinstance(e, AssertionError):
        return "corrupted data (not a Kaldi object where one was expected)"
    return f"corrupted data: {e}" if str(e) else f"corrupted data ({type(e).__name__})"


# ------------------------------------------------------------------------------------------------
# rxfilenames: path, path:offset, path:offset[range], command |
# ------------------------------------------------------------------------------------------------

def split_range(rxfilename: str) -> tuple[str, str | None]:
    m = _RANGE_RE.match(rxfilename)
    if m and not rxfilename.rstrip().endswith("|"):
        return m.group(1), m.group(2)
    return rxfilename, None


def split_offset(rxfilename: str) -> tuple[str, int | None]:
    """Kaldi's ClassifyRxfilename rule: a trailing `:<digits>` is a byte offset."""
    m = _OFFSET_RE.match(rxfilename)
    if m:
        return m.group(1), int(m.group(2))
    return rxfilename, None


def _apply_range(array, range_spec: str):
    """Apply a Kaldi range `r1:r2` or `r1:r2,c1:c2` (inclusive ends, `:` for all) to a matrix."""
    if not isinstance(array, np.ndarray) or array.ndim != 2:
        raise ValueError(f"range [{range_spec}] given for an object that is not a matrix")
    parts = range_spec.split(",")
    if len(parts) not in (1, 2):
        raise ValueError(f"invalid range [{range_spec}]")
    slices = []
    for dim, part in enumerate(parts):
        part = part.strip()
        if part in ("", ":"):
            slices.append(slice(None))
            continue
        bounds = part.split(":")
        try:
            first, last = (int(b) for b in bounds)
        except ValueError:
            raise ValueError(f"invalid range [{range_spec}]") from None
        size = array.shape[dim]
        if first < 0 or first > last or last >= size:
            what = "rows" if dim == 0 else "columns"
            raise ValueError(f"range [{range_spec}] is outside the matrix ({size} {what})")
        slices.append(slice(first, last + 1))
    return array[tuple(slices)]


class _PipeReader:
    """`cmd |` run with bash (pipefail: any failing stage fails it); stdout readable as a stream,
    exit status checked on close.

    stderr goes to a temporary file (a pipe could fill and deadlock the command); its last line is
    quoted when the command fails.
    """

    def __init__(self, command: str):
        self.command = command
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", command], stdout=subprocess.PIPE, stderr=self._stderr)
        self.stdout = self.proc.stdout

    def finish(self, complete: bool = True) -> AsrkitError | None:
        """Wait for the command.

        If `complete` (all output was read), raise AsrkitError when it exited non-zero. If not
        (the reader stopped early), return that error instead of raising, or None when the
        command succeeded or was only stopped by the closed pipe (SIGPIPE is not its failure).
        """
        try:
            self.stdout.close()
            try:
                rc = self.proc.wait(timeout=None if complete else 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
            err = self.stderr_text()
            if rc != 0:
                if not complete and rc in (-13, 141):  # killed by SIGPIPE (bash reports 128+13)
                    return None
                last = err.strip().splitlines()[-1] if err.strip() else "(no stderr output)"
                failure = AsrkitError(f"command '{self.command}' failed with exit status {rc}: {last}")
                if complete:
                    raise failure
                return failure
            for line in err.splitlines():
                if line.strip():
                    log.info("%s: %s", self.command, line)
            return None
        finally:
            self._stderr.close()

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")


def _parse_rspecifier(rspecifier: str) -> tuple[str, set[str], str]:
    """Split `ark,t:foo.ark` into ("ark", {"t"}, "foo.ark")."""
    if ":" not in rspecifier:
        raise AsrkitError(f"invalid rspecifier '{rspecifier}': expected ark:<rxfilename> or scp:<rxfilename>")
    head, rest = rspecifier.split(":", 1)
    kinds = [t.strip() for t in head.split(",") if t.strip()]
    types = [t for t in kinds if t in ("ark", "scp")]
    opts = {t for t in kinds if t not in ("ark", "scp")}
    if len(types) != 1:
        raise AsrkitError(f"invalid rspecifier '{rspecifier}': give exactly one of ark or scp")
    bad = opts - _RSPEC_OPTIONS
    if bad:
        raise AsrkitError(f"invalid rspecifier '{rspecifier}': unknown option(s) {','.join(sorted(bad))}")
    if not rest.strip():
        raise AsrkitError(f"invalid rspecifier '{rspecifier}': no file given")
    return types[0], opts, rest.strip()


@contextlib.contextmanager
def _open_rx(rxfilename: str):
    """Open a Kaldi rxfilename (path, `-`, or `cmd |`) for binary reading; checks pipe status."""
    if rxfilename.endswith("|"):
        pipe = _PipeReader(rxfilename[:-1].strip())
        try:
            yield pipe.stdout
        except Exception as e:
            # Bad data from a failing command: the command's own error is the one to report.
            failure = pipe.finish(complete=False)
            if failure is not None:
                raise failure from e
            raise
        except BaseException:
            pipe.finish(complete=False)  # e.g. the consumer closed the generator early
            raise
        else:
            pipe.finish(complete=True)
    elif rxfilename == "-":
        yield sys.stdin.buffer
    else:
        with open(rxfilename, "rb") as f:
            yield f


# ------------------------------------------------------------------------------------------------
# Public readers
# ------------------------------------------------------------------------------------------------

def iter_ark(rxfilename: str) -> Iterator[tuple[str, object]]:
    """Yield `(key, object)` from an archive: a path, `-` or a `cmd |` pipe (exit status checked).

    Raises:
        FormatError: a truncated or corrupted object (naming the key and the archive).
        AsrkitError: the pipe command exited non-zero.
    """
    with _open_rx(rxfilename) as f:
        prev = None
        while True:
            try:
                key = read_key(f)
            except _Truncated as e:
                after = f" after key '{prev}'" if prev else ""
                raise FormatError(rxfilename, f"truncated archive{after}: {e}") from None
            if key is None:
                return
            try:
                obj = _read_object(f)
            except _READ_ERRORS as e:
                raise FormatError(rxfilename, f"key '{key}': {_describe(e)}") from None
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


def _read_entry(rxfilename: str, files: _FileCache | None):
    """Read the object an scp entry points to. Raises the _READ_ERRORS or OSError."""
    rx, range_spec = split_range(rxfilename)
    if rx.endswith("|"):
        with _open_rx(rx) as f:
            obj = _read_object(f)
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
                raise _Truncated(f"offset {offset} is past the end of {path} ({size} bytes)")
            f.seek(offset or 0)
            obj = _read_object(f)
        finally:
            if files is None:
                f.close()
    if range_spec is not None:
        obj = _apply_range(obj, range_spec)
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
            except (OSError, AsrkitError, *_READ_ERRORS) as e:
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
        why = f"{_describe(e)} (entry '{entry.rxfilename}')"
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
    kind, opts, rx = _parse_rspecifier(rspecifier)
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
        with _open_rx(rx) as f:
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
    forked child). Use as a context manager, or call `close()`, to release them.
    """

    def __init__(self, scp_path: str | os.PathLike):
        self.path = Path(scp_path)
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
            return _read_entry(entry.rxfilename, self._files)
        except (OSError, AsrkitError, *_READ_ERRORS) as e:
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


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------

def _prepare_for_write(key: str, array, compress: bool) -> tuple[np.ndarray, int | None]:
    """Check and convert an array for Kaldi binary writing; returns (array, compression_method)."""
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise AsrkitError(f"invalid key {key!r}: Kaldi keys are non-empty and contain no whitespace")
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        if array.ndim != 1:
            raise AsrkitError(f"key '{key}': integer data must be a 1-D vector, got shape {array.shape}")
        if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
            raise AsrkitError(f"key '{key}': integer value outside the int32 range")
        return array.astype(np.int32), None
    if array.dtype not in (np.float32, np.float64):
        raise AsrkitError(f"key '{key}': cannot write dtype {array.dtype} (use float32, float64 or int32)")
    if array.ndim not in (1, 2):
        raise AsrkitError(f"key '{key}': can write vectors and matrices, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise AsrkitError(f"key '{key}': non-finite value (NaN or Inf) at index {tuple(int(i) for i in bad)}")
    array = np.ascontiguousarray(array)
    method = compress if (compress and array.ndim == 2 and array.size > 0) else None
    return array, method


class ArkScpWriter:
    """Write a Kaldi binary archive and its scp, atomically.

    Both files are written under temporary names in their folders and renamed into place (ark
    first, then scp) when the block exits cleanly; on an exception neither file appears and any
    old files are left untouched. scp lines use the final ark path, made absolute (asrkit's one
    path policy, so that the scp works from any folder), and the byte offset of the object's
    `\\0B`, as Kaldi's `ark,scp:` writer does.

    Types: float32 2-D -> `FM`, float64 2-D -> `DM`, float32/float64 1-D -> `FV`/`DV`, integer
    1-D -> Kaldi int32 vector. With `compress`, matrices are written compressed as
    `copy-feats --compress=true` does: `compression_method=1` (Kaldi's default, automatic) gives
    `CM` (kOneByteWithColHeaders) for more than 8 rows and `CM2` otherwise; 2 forces `CM`.
    Vectors and empty matrices are never compressed (Kaldi has no compressed vector).

    Args:
        ark_path: the archive to write.
        scp_path: its scp, or None for an archive alone.
        compress: write matrices compressed.
        compression_method: Kaldi's CompressionMethod number (`asrkit.kaldi.compressed` encodes,
            byte for byte as Kaldi).
        sorted: require keys in strictly increasing C order (for `s`/`cs` readers).

    Without a `with` block, call `close()` to finish (or `abort()`); a writer dropped unclosed is
    discarded like an aborted one.

    Example:
        >>> with ArkScpWriter("feats.ark", "feats.scp", compress=True) as w:
        ...     w.write("utt1", feats)            # feats: float32 (num_frames, num_bins)

    Raises (from write):
        AsrkitError: NaN/Inf in float data, a bad key, a duplicate key, an unsupported dtype or
            shape, or (with sorted=True) a key out of order; each names the key.
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike | None = None, *,
                 compress: bool = False, compression_method: int = COMPRESSION_AUTOMATIC,
                 sorted: bool = False):
        self.ark_path = Path(ark_path)
        # One path policy for every scp asrkit writes (feats, cmvn, post, loglikes): absolute, so
        # that a Kaldi binary run from any folder finds the archive.
        self._ark_in_scp = self.ark_path.absolute()
        self.scp_path = Path(scp_path) if scp_path is not None else None
        self._compression = compression_method if compress else None
        self._sorted = sorted
        self._keys: set[str] = set()
        self._last_key: str | None = None
        for p in (self.ark_path, self.scp_path):
            if p is not None and not p.parent.is_dir():
                raise FileNotFoundError(f"{p.parent}: output folder does not exist")
        self._ark_tmp = tmp_path_for(self.ark_path)
        self._scp_tmp = tmp_path_for(self.scp_path) if self.scp_path is not None else None
        self._ark = open(self._ark_tmp, "wb")
        self._scp = open(self._scp_tmp, "w", encoding="utf-8", newline="\n") if self._scp_tmp else None
        self._closed = False

    def write(self, key: str, array) -> None:
        """Append one object. `array`: np.ndarray (see the class doc for types and shapes)."""
        if self._closed:
            raise AsrkitError(f"{self.ark_path}: writer is closed")
        array, method = _prepare_for_write(key, array, bool(self._compression))
        if method is not None:
            method = self._compression
        if key in self._keys:
            raise AsrkitError(f"{self.ark_path}: duplicate key '{key}'")
        if self._sorted and self._last_key is not None and not key > self._last_key:
            raise AsrkitError(f"{self.ark_path}: key '{key}' is not after '{self._last_key}' in C order")
        with naming_write_errors(self.ark_path):
            self._ark.write(key.encode("utf-8") + b" ")
            offset = self._ark.tell()
            if method is None:
                write_array(self._ark, array)
            else:  # Kaldi's own compressor, not kaldiio's (which rounds differently)
                self._ark.write(b"\0B" + compress_matrix(array, method))
        if self._scp is not None:
            with naming_write_errors(self.scp_path):
                self._scp.write(f"{key} {self._ark_in_scp}:{offset}\n")
        self._keys.add(key)
        self._last_key = key

    def __setitem__(self, key: str, array) -> None:
        self.write(key, array)

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        """Finish: flush, fsync and rename both files into place."""
        if self._closed:
            return
        self._closed = True
        try:
            for f, path in ((self._ark, self.ark_path), (self._scp, self.scp_path)):
                if f is not None:
                    with naming_write_errors(path):
                        f.flush()
                        os.fsync(f.fileno())
                        f.close()
            set_default_mode(self._ark_tmp)
            os.replace(self._ark_tmp, self.ark_path)
            if self._scp_tmp is not None:
                set_default_mode(self._scp_tmp)
                os.replace(self._scp_tmp, self.scp_path)
        except BaseException:
            self._remove_tmp()
            raise

    def abort(self) -> None:
        """Discard everything written: no file appears."""
        if self._closed:
            return
        self._closed = True
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        for f in (self._ark, self._scp):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        for p in (self._ark_tmp, self._scp_tmp):
            if p is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        # A writer dropped without close() leaves no temporary files behind.
        with contextlib.suppress(Exception):
            self.abort()


def write_int_vectors_gz(path: str | os.PathLike,
                         items: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]]) -> None:
    """Write a gzipped binary archive of int32 vectors (Kaldi's `ali.N.gz`), atomically.

    The result is what `copy-int-vector ark,t:- "ark:|gzip -c > ali.1.gz"` makes: read it back with
    `iter_table("ark:gunzip -c ali.1.gz|")` or Kaldi's `ali-to-pdf`. Keys are written in the order
    given; the gzip header carries no timestamp, so the same input gives the same bytes.

    Args:
        items: `{key: int array (length,)}` or `(key, array)` pairs.

    Raises:
        AsrkitError: a bad or duplicate key, a non-integer or out-of-range vector (naming the key).
    """
    pairs = items.items() if isinstance(items, Mapping) else items
    seen: set[str] = set()
    with atomic_write(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for key, vec in pairs:
            vec = np.asarray(vec)
            if vec.dtype.kind not in "iu":
                raise AsrkitError(f"{path}: key '{key}': alignments must be integers, got {vec.dtype}")
            vec, _ = _prepare_for_write(key, vec, False)
            if key in seen:
                raise AsrkitError(f"{path}: duplicate key '{key}'")
            seen.add(key)
            gz.write(key.encode("utf-8") + b" ")
            write_array(gz, vec)


def merge_scp(part_scps: Iterable[str | os.PathLike], out_scp: str | os.PathLike) -> None:
    """Merge per-job scp files into one C-sorted scp, atomically (like `cat *.scp | sort`).

    Raises:
        FormatError: a malformed line, or a key found in two parts (naming both files and lines).
    """
    merged: dict[str, tuple[str, Path, int]] = {}
    for part in part_scps:
        part = Path(part)
        for entry in parse_scp(part):
            if entry.key in merged:
                _, other, other_line = merged[entry.key]
                raise FormatError(part, f"duplicate key '{entry.key}' (also in {other}:{other_line})", entry.line)
            merged[entry.key] = (entry.rxfilename, part, entry.line)
    write_table(out_scp, {k: v[0] for k, v in merged.items()}, sort=True)
