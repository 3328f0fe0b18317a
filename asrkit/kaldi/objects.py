"""Kaldi binary objects, one at a time: the key before each, the type token, and the object, with
truncation detected (kaldiio would read a short file as a short matrix) and `CM`/`CM2`/`CM3`
matrices decompressed exactly as Kaldi does (kaldiio's own decompression differs in the last bits).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from kaldiio.matio import read_ascii_mat, read_kaldi
from kaldiio.utils import MultiFileDescriptor


class Truncated(EOFError):
    """The data ended before the object it was reading was complete."""


class BadObject(ValueError):
    """The bytes are not the object a reader expected; the message says so in full (e.g. `bad
    Posterior: ...`), so it is quoted as it is after the key."""


class StrictStream:
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
            raise Truncated(f"data ends early (wanted {n} more bytes, found {len(data)})")
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
                raise Truncated(f"archive ends inside key '{buf.decode('utf-8', 'replace')}'")
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
            raise Truncated("data ends inside a type token")
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


def read_object(f):
    """Read one Kaldi object (the bytes after `<key> `) from a binary stream.

    Returns an np.ndarray (matrix, vector, int32 vector) or, for audio, kaldiio's `(rate, array)`.
    Raises Truncated, ValueError, AssertionError or struct.error on bad data (callers add the key).
    """
    head = f.read(2)
    if len(head) == 0:
        raise Truncated("no object after the key")
    if head == b"\0B":
        strict = StrictStream(f)
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
        strict = StrictStream(f, strict=head == b"RI")
        return read_kaldi(MultiFileDescriptor(io.BytesIO(head), strict))
    # Text form (`ark,t:`): read_kaldi would read 5 bytes ahead to sniff the type and, on an
    # unseekable stream, lose the start of the next key after a short value; parse text directly.
    return read_ascii_mat(MultiFileDescriptor(io.BytesIO(head), StrictStream(f, strict=False)))


READ_ERRORS = (Truncated, ValueError, AssertionError, struct.error, RuntimeError, UnicodeDecodeError)


def describe_read_error(e: BaseException) -> str:
    if isinstance(e, BadObject):
        return str(e)
    if isinstance(e, Truncated):
        return f"truncated or corrupted data: {e}"
    if isinstance(e, AssertionError):
        return "corrupted data (not a Kaldi object where one was expected)"
    return f"corrupted data: {e}" if str(e) else f"corrupted data ({type(e).__name__})"
