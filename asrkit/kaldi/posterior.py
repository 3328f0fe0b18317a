"""Kaldi's `Posterior` table format (src/hmm/posterior.cc): per frame, a list of (id, weight) pairs.

Kaldi has no Python writer for Posterior archives (kaldiio reads and writes matrices and int
vectors only), so the binary format is written and read here: `posterior_bytes` /
`PosteriorArkWriter` (ark + scp, atomic), `read_posterior` / `iter_posterior_ark` /
`PosteriorTable` (lazy random access through an scp, expanded to dense matrices),
`posterior_to_dense` / `dense_to_topk`, and `is_posterior_scp` (Posterior or matrix?). Archive keys,
scp lines and `<ark>:<offset>` entries are parsed by asrkit.kaldi.table and asrkit.kaldi.rxfile.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from asrkit.errors import AsrkitError, FormatError
from asrkit.fileio import set_default_mode, tmp_path_for
from asrkit.kaldi.objects import read_key
from asrkit.kaldi.rxfile import split_offset, split_range
from asrkit.kaldi.table import parse_scp

# ------------------------------------------------------------------------------------------------
# Kaldi's Posterior format (src/hmm/posterior.cc: WritePosterior / ReadPosterior)
#
# Binary, after `<key> \0B`: `\4` int32 num_frames, then per frame `\4` int32 n and n pairs
# `\4` int32 id, `\4` float32 weight (WriteBasicType puts the size byte before every value).
# ------------------------------------------------------------------------------------------------

_SIZE = b"\x04"


_PAIR = np.dtype([("s_id", "u1"), ("id", "<i4"), ("s_w", "u1"), ("w", "<f4")])  # packed: 10 bytes


def _frame_dtype(k: int) -> np.dtype:
    """One frame of k entries: `\\4 n`, then k × (`\\4 id`, `\\4 weight`) (packed: 5 + 10k bytes)."""
    return np.dtype([("s_n", "u1"), ("n", "<i4"), ("pairs", _PAIR, (k,))])


def posterior_bytes(ids: np.ndarray, weights: np.ndarray) -> bytes:
    """Encode a Posterior with the same number of entries per frame as Kaldi's binary form.

    Args:
        ids: `(num_frames, k)` integer class ids; weights: `(num_frames, k)` float weights.

    Returns:
        the bytes after `<key> \\0B` (`\\4` num_frames, then the frames); a Posterior object.

    Raises:
        ValueError: shapes differ, or an id is outside int32.
    """
    ids = np.asarray(ids)
    weights = np.asarray(weights)
    if ids.ndim != 2 or ids.shape != weights.shape:
        raise ValueError(f"posterior ids {ids.shape} and weights {weights.shape} must be equal 2-D shapes")
    if ids.size and (ids.min() < 0 or ids.max() >= 2**31):
        raise ValueError("posterior ids must be non-negative int32 values")
    num_frames, k = ids.shape
    frames = np.zeros(num_frames, dtype=_frame_dtype(k))
    frames["s_n"] = 4
    frames["n"] = k
    frames["pairs"]["s_id"] = 4
    frames["pairs"]["id"] = ids
    frames["pairs"]["s_w"] = 4
    frames["pairs"]["w"] = weights
    return _SIZE + struct.pack("<i", num_frames) + frames.tobytes()


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError(f"data ends early (wanted {n} bytes, found {len(data)})")
    return data


def _read_int32(f) -> int:
    data = _read_exact(f, 5)
    if data[:1] != _SIZE:
        raise ValueError(f"expected an int32 size byte \\4, found {data[:1]!r}")
    return struct.unpack("<i", data[1:])[0]


def read_posterior(f) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read one binary Posterior (the bytes after `<key> \\0B`) from a binary stream.

    Returns:
        one `(ids int32 (n,), weights float32 (n,))` pair per frame.

    Raises:
        EOFError: the data ends inside the object; ValueError: the bytes are not a Posterior.
    """
    num_frames = _read_int32(f)
    if num_frames < 0:
        raise ValueError(f"negative frame count {num_frames}")
    frames = []
    for _ in range(num_frames):
        n = _read_int32(f)
        if n < 0:
            raise ValueError(f"negative entry count {n} in frame {len(frames)}")
        pairs = np.frombuffer(_read_exact(f, _PAIR.itemsize * n), dtype=_PAIR)
        if n and (np.any(pairs["s_id"] != 4) or np.any(pairs["s_w"] != 4)):
            raise ValueError(f"bad size bytes in frame {len(frames)} (not a Posterior?)")
        frames.append((pairs["id"].astype(np.int32), pairs["w"].astype(np.float32)))
    return frames


def posterior_to_dense(post: Sequence[tuple[np.ndarray, np.ndarray]], dim: int, key: str = "?") -> np.ndarray:
    """Expand a Posterior to a dense `(num_frames, dim)` float32 matrix (repeated ids are summed, as
    Kaldi's PosteriorToMatrix does).

    Raises:
        AsrkitError: an id outside `[0, dim)` or a non-finite weight, naming the key and frame.
    """
    out = np.zeros((len(post), dim), dtype=np.float32)
    for t, (ids, weights) in enumerate(post):
        if ids.size and (ids.min() < 0 or ids.max() >= dim):
            raise AsrkitError(f"utterance '{key}': frame {t} has class id {int(ids.max())} outside the "
                              f"output dimension {dim}")
        if not np.isfinite(weights).all():
            raise AsrkitError(f"utterance '{key}': frame {t} has a non-finite weight")
        np.add.at(out[t], ids, weights)
    return out


def dense_to_topk(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the `k` largest entries of each row, renormalised to sum to 1.

    Args:
        probs: `(num_frames, dim)` probabilities.

    Returns:
        `ids (num_frames, min(k, dim))` int32 in decreasing weight order, and their weights float32.
    """
    k = min(k, probs.shape[1])
    ids = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    weights = np.take_along_axis(probs, ids, axis=1).astype(np.float64)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-30)
    return ids.astype(np.int32), weights.astype(np.float32)


class PosteriorArkWriter:
    """Write a binary Posterior archive and its scp, atomically (both appear only on close()).

    scp lines point at the `\\0B` of each object, as Kaldi's `ark,scp:` writer does, so Kaldi's
    `copy-post scp:post.scp ark,t:-` and `asrkit train` read them.

    Example:
        >>> with PosteriorArkWriter("post.1.ark", "post.1.scp") as w:
        ...     w.write("utt1", ids, weights)     # (num_frames, k) each

    Raises (from write):
        AsrkitError: a bad or duplicate key, non-finite weights, or bad shapes (naming the key).
    """

    def __init__(self, ark_path: str | os.PathLike, scp_path: str | os.PathLike | None = None, *,
                 final_ark: str | os.PathLike | None = None):
        """`final_ark`: where the archive will be read from when `ark_path` is a staged name that is
        renamed later (a job's output, asrkit.jobs): the scp lines and messages name it."""
        self.ark_path = Path(ark_path)
        self._ark_name = Path(final_ark) if final_ark is not None else self.ark_path
        self.scp_path = Path(scp_path) if scp_path is not None else None
        for p in (self.ark_path, self.scp_path):
            if p is not None and not p.parent.is_dir():
                raise FileNotFoundError(f"{p.parent}: output folder does not exist")
        self._tmp = [tmp_path_for(self.ark_path)] + ([tmp_path_for(self.scp_path)] if self.scp_path else [])
        self._ark = open(self._tmp[0], "wb")
        self._scp = open(self._tmp[1], "w", encoding="utf-8", newline="\n") if self.scp_path else None
        self._keys: set[str] = set()
        self._closed = False

    def write(self, key: str, ids: np.ndarray, weights: np.ndarray) -> None:
        """Append the Posterior of one utterance: `ids`, `weights` of shape `(num_frames, k)`."""
        if self._closed:
            raise AsrkitError(f"{self._ark_name}: writer is closed")
        if not isinstance(key, str) or not key or any(c.isspace() for c in key):
            raise AsrkitError(f"invalid key {key!r}: Kaldi keys are non-empty and contain no whitespace")
        if key in self._keys:
            raise AsrkitError(f"{self._ark_name}: duplicate key '{key}'")
        if not np.isfinite(np.asarray(weights, dtype=np.float64)).all():
            raise AsrkitError(f"key '{key}': non-finite posterior weight")
        try:
            body = posterior_bytes(ids, weights)
        except ValueError as e:
            raise AsrkitError(f"key '{key}': {e}") from None
        self._ark.write(key.encode("utf-8") + b" ")
        offset = self._ark.tell()
        self._ark.write(b"\0B" + body)
        if self._scp is not None:
            self._scp.write(f"{key} {self._ark_name}:{offset}\n")
        self._keys.add(key)

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        """Flush, fsync and rename the archive, then the scp, into place."""
        if self._closed:
            return
        self._closed = True
        finals = [self.ark_path] + ([self.scp_path] if self.scp_path else [])
        try:
            for f in (self._ark, self._scp):
                if f is not None:
                    f.flush()
                    os.fsync(f.fileno())
                    f.close()
            for tmp, final in zip(self._tmp, finals):
                set_default_mode(tmp)
                os.replace(tmp, final)
        except BaseException:
            self.abort(force=True)
            raise

    def abort(self, force: bool = False) -> None:
        """Discard everything written: no file appears."""
        if self._closed and not force:
            return
        self._closed = True
        for f in (self._ark, self._scp):
            if f is not None and not f.closed:
                f.close()
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def iter_posterior_ark(path: str | os.PathLike) -> Iterator[tuple[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """Yield `(key, posterior)` from a binary Posterior archive (see `read_posterior`).

    Raises:
        FormatError: a truncated or corrupted object, or a text-form archive (naming the key).
    """
    with open(path, "rb") as f:
        while True:
            try:
                key = read_key(f)
            except EOFError as e:
                raise FormatError(path, f"truncated archive: {e}") from None
            if key is None:
                return
            try:
                if f.read(2) != b"\0B":
                    raise ValueError("not a binary object (only binary Posterior archives are read)")
                post = read_posterior(f)
            except (EOFError, ValueError, struct.error) as e:
                raise FormatError(path, f"key '{key}': bad Posterior: {e}") from None
            yield key, post


def _read_posterior_at(rxfilename: str, files: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    path, offset = split_offset(rxfilename)
    if offset is None or rxfilename.endswith("|") or rxfilename.endswith("]"):
        raise ValueError(f"'{rxfilename}' is not an <archive>:<offset> entry (pipes and ranges are not "
                         "supported for Posterior archives)")
    f = files.get(path)
    if f is None:
        if len(files) >= 16:
            files.pop(next(iter(files))).close()
        f = files[path] = open(path, "rb")
    f.seek(offset)
    if f.read(2) != b"\0B":
        raise ValueError(f"no binary object at offset {offset} of {path}")
    return read_posterior(f)


class PosteriorTable(Mapping):
    """Lazy random access to a Posterior scp, expanded to dense soft-target matrices.

    `table[key]` is a `(num_frames, dim)` float32 matrix whose `dim` is the output size of the
    utterance's language: `dims` is one int, or `{lang: dim}` with `utt2lang` mapping keys to
    languages (a Posterior does not store its dimension; `dump_posteriors` records it in
    `post_info.yaml`). `table.posterior(key)` gives the sparse `(ids, weights)` frames.

    Raises (from indexing):
        KeyError: key not in the scp. FormatError: the entry cannot be read, naming the scp file:line.
        AsrkitError: an id outside the output dimension.
    """

    def __init__(self, scp_path: str | os.PathLike, dims: int | Mapping[str, int],
                 utt2lang: Mapping[str, str] | None = None):
        self.path = Path(scp_path)
        self._entries = {}
        for entry in parse_scp(self.path):
            if entry.key in self._entries:
                raise FormatError(self.path, f"duplicate key '{entry.key}'", entry.line)
            self._entries[entry.key] = entry
        self.dims = dims
        self.utt2lang = dict(utt2lang or {})
        self._files: dict[str, object] = {}
        self._pid = os.getpid()

    def dim(self, key: str) -> int:
        """The output dimension of `key`'s rows."""
        if isinstance(self.dims, int):
            return self.dims
        lang = self.utt2lang.get(key)
        if lang is None or lang not in self.dims:
            raise AsrkitError(f"{self.path}: no output dimension for utterance '{key}' (language "
                              f"{lang or 'unknown'}; output dimensions are known for {', '.join(self.dims)})")
        return int(self.dims[lang])

    def posterior(self, key: str) -> list[tuple[np.ndarray, np.ndarray]]:
        entry = self._entries[key]
        if self._pid != os.getpid():  # a DataLoader worker: never share the parent's file offsets
            self._files, self._pid = {}, os.getpid()
        try:
            return _read_posterior_at(entry.rxfilename, self._files)
        except FileNotFoundError as e:
            raise FormatError(self.path, f"key '{key}': cannot open '{e.filename}': no such file", entry.line) from None
        except (OSError, EOFError, ValueError, struct.error) as e:
            raise FormatError(self.path, f"key '{key}': bad Posterior: {e}", entry.line) from None

    def __getitem__(self, key: str) -> np.ndarray:
        return posterior_to_dense(self.posterior(key), self.dim(key), key)

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def close(self) -> None:
        if self._pid == os.getpid():
            for f in self._files.values():
                f.close()
        self._files = {}


def is_posterior_scp(scp_path: Path) -> bool:
    """Look at the first entry's object: `\\0B\\4` (int32 count, no type token) is a Posterior."""
    entries = parse_scp(scp_path)
    if not entries:
        raise FormatError(scp_path, "empty soft-target scp")
    rx, _ = split_range(entries[0].rxfilename)
    path, offset = split_offset(rx)
    if rx.endswith("|") or not os.path.isfile(path):
        return False  # let the matrix reader report (or read) it
    with open(path, "rb") as f:
        f.seek(offset or 0)
        return f.read(3) == b"\0B\x04"
