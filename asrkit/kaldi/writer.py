"""Writing Kaldi tables: ark+scp pairs written atomically (NaN/Inf, bad keys and duplicates refused,
optionally Kaldi-compressed), `ali.N.gz` alignments, and the merge of per-job scp files. The ark/scp
protocol itself (ObjectArkWriter) also writes the Posterior tables of asrkit.kaldi.posterior.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from kaldiio.matio import write_array

from asrkit.errors import AsrkitError, FormatError
from asrkit.fileio import atomic_write, naming_write_errors, set_default_mode, tmp_path_for
from asrkit.kaldi.compressed import compress_matrix
from asrkit.kaldi.table import parse_scp
from asrkit.kaldi.textio import write_table

# Kaldi's CompressionMethod enum (src/matrix/compressed-matrix.h); kaldiio uses the same numbers.
COMPRESSION_AUTOMATIC = 1  # CM for matrices with more than 8 rows, CM2 otherwise (copy-feats default)
COMPRESSION_SPEECH_FEATURE = 2  # always CM (kOneByteWithColHeaders)
COMPRESSION_TWO_BYTE = 3  # CM2
COMPRESSION_ONE_BYTE = 5  # CM3


def _prepare_for_write(key: str, array, compress: bool) -> tuple[np.ndarray, int | None]:
    """Check and convert an array for Kaldi binary writing; returns (array, compression_method)."""
    check_key(key)
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


def check_key(key: str) -> None:
    """Raise AsrkitError unless `key` is a Kaldi key: a non-empty string without whitespace."""
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise AsrkitError(f"invalid key {key!r}: Kaldi keys are non-empty and contain no whitespace")


class ObjectArkWriter:
    """Write encoded Kaldi binary objects into an archive and its scp, atomically: the table
    protocol every archive asrkit writes shares (ArkScpWriter for matrices and vectors,
    asrkit.kaldi.posterior.PosteriorArkWriter for Posteriors).

    Both files are written under temporary names in their folders and renamed into place (ark
    first, then scp) when the block exits cleanly; on an exception neither file appears and any
    old files are left untouched. scp lines use the final ark path, made absolute (asrkit's one
    path policy: the scp works from any folder), and the byte offset of the object's `\\0B`, as
    Kaldi's `ark,scp:` writer does.

    Args:
        ark_path: the archive to write.
        scp_path: its scp, or None for an archive alone.
        sorted: require keys in strictly increasing C order (for `s`/`cs` readers).
        final_ark: where the archive will be read from when `ark_path` is a staged name that is
            renamed later (a job's output, asrkit.jobs): the scp lines and messages name it.

    Without a `with` block, call `close()` to finish (or `abort()`); a writer dropped unclosed is
    discarded like an aborted one.

    Raises (from write_object):
        AsrkitError: a bad key, a duplicate key, or (with sorted=True) a key out of order; each
            names the key.
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike | None = None, *,
                 sorted: bool = False, final_ark: str | os.PathLike | None = None):
        self.ark_path = Path(ark_path)
        self._ark_name = Path(final_ark) if final_ark is not None else self.ark_path
        # One path policy for every scp asrkit writes (feats, cmvn, post, loglikes): absolute, so
        # that a Kaldi binary run from any folder finds the archive.
        self._ark_in_scp = self._ark_name.absolute()
        self.scp_path = Path(scp_path) if scp_path is not None else None
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

    def write_object(self, key: str, body: bytes) -> None:
        """Append one encoded binary object: `body` is what follows `<key> ` (`\\0B` and the object)."""
        if self._closed:
            raise AsrkitError(f"{self._ark_name}: writer is closed")
        check_key(key)
        if key in self._keys:
            raise AsrkitError(f"{self._ark_name}: duplicate key '{key}'")
        if self._sorted and self._last_key is not None and not key > self._last_key:
            raise AsrkitError(f"{self._ark_name}: key '{key}' is not after '{self._last_key}' in C order")
        with naming_write_errors(self._ark_name):
            self._ark.write(key.encode("utf-8") + b" ")
            offset = self._ark.tell()
            self._ark.write(body)
        if self._scp is not None:
            with naming_write_errors(self.scp_path):
                self._scp.write(f"{key} {self._ark_in_scp}:{offset}\n")
        self._keys.add(key)
        self._last_key = key

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        """Finish: flush, fsync and rename both files into place."""
        if self._closed:
            return
        self._closed = True
        try:
            for f, path in ((self._ark, self._ark_name), (self._scp, self.scp_path)):
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


class ArkScpWriter(ObjectArkWriter):
    """Write numpy matrices and vectors as a Kaldi binary archive and its scp, atomically (see
    ObjectArkWriter for the files, the scp paths and the key rules).

    Types: float32 2-D -> `FM`, float64 2-D -> `DM`, float32/float64 1-D -> `FV`/`DV`, integer
    1-D -> Kaldi int32 vector. With `compress`, matrices are written compressed as
    `copy-feats --compress=true` does: `compression_method=1` (Kaldi's default, automatic) gives
    `CM` (kOneByteWithColHeaders) for more than 8 rows and `CM2` otherwise; 2 forces `CM`.
    Vectors and empty matrices are never compressed (Kaldi has no compressed vector).

    Args:
        ark_path, scp_path, sorted: as ObjectArkWriter.
        compress: write matrices compressed.
        compression_method: Kaldi's CompressionMethod number (`asrkit.kaldi.compressed` encodes,
            byte for byte as Kaldi).

    Example:
        >>> with ArkScpWriter("feats.ark", "feats.scp", compress=True) as w:
        ...     w.write("utt1", feats)            # feats: float32 (num_frames, num_bins)

    Raises (from write):
        AsrkitError: NaN/Inf in float data, a bad key, a duplicate key, an unsupported dtype or
            shape, or (with sorted=True) a key out of order; each names the key.
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike | None = None, *,
                 compress: bool = False, compression_method: int = COMPRESSION_AUTOMATIC,
                 sorted: bool = False, final_ark: str | os.PathLike | None = None):
        super().__init__(ark_path, scp_path, sorted=sorted, final_ark=final_ark)
        self._compression = compression_method if compress else None

    def write(self, key: str, array) -> None:
        """Append one object. `array`: np.ndarray (see the class doc for types and shapes)."""
        if self._closed:
            raise AsrkitError(f"{self._ark_name}: writer is closed")
        array, method = _prepare_for_write(key, array, bool(self._compression))
        if method is None:
            body = io.BytesIO()
            write_array(body, array)
            self.write_object(key, body.getvalue())
        else:  # Kaldi's own compressor, not kaldiio's (which rounds differently)
            self.write_object(key, b"\0B" + compress_matrix(array, self._compression))

    def __setitem__(self, key: str, array) -> None:
        self.write(key, array)


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
