"""Kaldi's compressed matrices, written byte for byte as `CompressedMatrix::CopyFromMat` and
`Write` do (src/matrix/compressed-matrix.cc), so that `make-feats --compress` gives the archive
`copy-feats --compress=true` gives.

kaldiio's compressor rounds differently (47 of 64 fixture matrices differed from Kaldi's, by up to
0.45 after decompression). Every step here keeps Kaldi's arithmetic: float32 operations where
Kaldi uses `float`, the double `+ 0.499` / `+ 0.5` rounding terms where C++ promotes to double,
and truncation toward zero for `static_cast<int>`.
"""

from __future__ import annotations

import struct

import numpy as np

# Kaldi's CompressionMethod enum (src/matrix/compressed-matrix.h).
AUTOMATIC, SPEECH_FEATURE, TWO_BYTE_AUTO, ONE_BYTE_AUTO = 1, 2, 3, 5
_ONE_OVER_65535 = np.float32(1.52590218966964e-05)  # Kaldi's constant in Uint16ToFloat


def compress_matrix(mat: np.ndarray, method: int = AUTOMATIC) -> bytes:
    """The binary Kaldi object of `mat` compressed: token (`CM `, `CM2 ` or `CM3 `) and data,
    without the `\\0B` binary marker.

    Args:
        mat: `(num_rows, num_cols)` float matrix without NaN/Inf (float64 is compressed from its
            float32 values, as Kaldi compresses a `Matrix<BaseFloat>`), at least one row and column.
        method: 1 (automatic: `CM` for more than 8 rows, else `CM2`; copy-feats' default),
            2 (`CM` always), 3 (`CM2`), 5 (`CM3`).

    Raises:
        ValueError: an empty matrix or a method Kaldi's automatic ranges do not cover.
    """
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    if mat.ndim != 2 or mat.size == 0:
        raise ValueError(f"cannot compress a matrix of shape {mat.shape}")
    if method == AUTOMATIC:
        method = SPEECH_FEATURE if mat.shape[0] > 8 else TWO_BYTE_AUTO
    if method not in (SPEECH_FEATURE, TWO_BYTE_AUTO, ONE_BYTE_AUTO):
        raise ValueError(f"compression method {method} is not supported (use 1, 2, 3 or 5)")
    min_value, range_ = _global_range(mat)
    rows, cols = mat.shape
    header = struct.pack("<ffii", min_value, range_, rows, cols)
    if method == TWO_BYTE_AUTO:
        return b"CM2 " + header + _to_uint16(mat, min_value, range_).astype("<u2").tobytes()
    if method == ONE_BYTE_AUTO:
        f = _unit(mat, min_value, range_)
        return b"CM3 " + header + _round(f * np.float32(255), 0.499).astype(np.uint8).tobytes()
    col_headers = np.empty((cols, 4), dtype=np.int64)
    data = np.empty((cols, rows), dtype=np.uint8)  # column after column, as Kaldi stores them
    for c in range(cols):
        col_headers[c] = _col_header(mat[:, c], min_value, range_)
        p0, p25, p75, p100 = _to_float(col_headers[c], min_value, range_)
        data[c] = _to_char(mat[:, c], p0, p25, p75, p100)
    return b"CM " + header + col_headers.astype("<u2").tobytes() + data.tobytes()


def _global_range(mat: np.ndarray) -> tuple[np.float32, np.float32]:
    """`ComputeGlobalHeader`: the minimum and the range (max - min, never 0), in float32."""
    min_value, max_value = np.float32(mat.min()), np.float32(mat.max())
    if max_value == min_value:
        max_value = np.float32(np.float64(min_value) + (1.0 + abs(np.float64(min_value))))
    return min_value, np.float32(max_value - min_value)


def _unit(values: np.ndarray, min_value: np.float32, range_: np.float32) -> np.ndarray:
    """`(value - min) / range` in float32, clipped to [0, 1]."""
    f = (values - min_value) / range_
    return np.clip(f, np.float32(0.0), np.float32(1.0))


def _round(scaled: np.ndarray, half: float) -> np.ndarray:
    """`static_cast<int>(scaled + half)`: a float32 product plus a double constant, truncated."""
    return np.trunc(scaled.astype(np.float64) + half).astype(np.int64)


def _to_uint16(values: np.ndarray, min_value: np.float32, range_: np.float32) -> np.ndarray:
    """`FloatToUint16`."""
    return _round(_unit(np.asarray(values, dtype=np.float32), min_value, range_) * np.float32(65535), 0.499)


def _to_float(codes: np.ndarray, min_value: np.float32, range_: np.float32) -> np.ndarray:
    """`Uint16ToFloat`: `min + range * (1/65535) * code`, in float32, left to right."""
    return min_value + (range_ * _ONE_OVER_65535) * np.asarray(codes, dtype=np.float32)


def _col_header(col: np.ndarray, min_value: np.float32, range_: np.float32) -> list[int]:
    """`ComputeColHeader`: the 0th, 25th, 75th and 100th percentile codes of a column, kept
    strictly increasing."""
    s = np.sort(col)
    n = len(s)
    if n >= 5:
        q = n // 4
        c0, c25, c75, c100 = _to_uint16(s[[0, q, 3 * q, n - 1]], min_value, range_)
        p0 = min(int(c0), 65532)
        p25 = min(max(int(c25), p0 + 1), 65533)
        p75 = min(max(int(c75), p25 + 1), 65534)
        return [p0, p25, p75, max(int(c100), p75 + 1)]
    # Kaldi's "pathological case" of fewer than 5 rows: the sorted values themselves.
    codes = [int(c) for c in _to_uint16(s, min_value, range_)]
    p0 = min(codes[0], 65532)
    p25 = min(max(codes[1], p0 + 1), 65533) if n > 1 else p0 + 1
    p75 = min(max(codes[2], p25 + 1), 65534) if n > 2 else p25 + 1
    p100 = max(codes[3], p75 + 1) if n > 3 else p75 + 1
    return [p0, p25, p75, p100]


def _to_char(col: np.ndarray, p0, p25, p75, p100) -> np.ndarray:
    """`FloatToChar`: codes 0-64 for [p0, p25), 64-192 for [p25, p75), 192-255 above."""
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.clip(_round((col - p0) / (p25 - p0) * np.float32(64), 0.5), 0, 64)
        mid = np.clip(64 + _round((col - p25) / (p75 - p25) * np.float32(128), 0.5), 64, 192)
        high = np.clip(192 + _round((col - p75) / (p100 - p75) * np.float32(63), 0.5), 192, 255)
    return np.where(col < p25, low, np.where(col < p75, mid, high)).astype(np.uint8)


__all__ = ["AUTOMATIC", "ONE_BYTE_AUTO", "SPEECH_FEATURE", "TWO_BYTE_AUTO", "compress_matrix"]
