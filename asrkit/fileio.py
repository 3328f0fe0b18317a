"""Atomic file writing: every asrkit output appears whole or not at all.

A writer writes to a temporary name in the destination folder and renames it into place only when
the write finished, so a killed stage leaves the old output or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from asrkit.errors import AsrkitError

# Errors a write raises when the disk (or a quota, or a file-size limit) is full.
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def named_write_error(e: OSError, path: str | os.PathLike) -> OSError:
    """Return `e` naming `path` when `e` is a full-disk write error without a file name, else `e`.

    A failed `f.write()` raises `OSError(EFBIG/ENOSPC)` that names no file; the user must learn which
    output could not be written.
    """
    if e.filename is None and e.errno in _NO_SPACE:
        return OSError(e.errno, f"cannot write: {e.strerror}", str(path))
    return e


@contextlib.contextmanager
def naming_write_errors(path: str | os.PathLike):
    """Context manager: a full-disk OSError without a file name raised inside is re-raised naming `path`."""
    try:
        yield
    except OSError as e:
        named = named_write_error(e, path)
        if named is e:
            raise
        raise named from e


def tmp_path_for(path: str | os.PathLike) -> Path:
    """Return a unique temporary path in the same folder as `path` (same filesystem, so rename is atomic)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file for writing and rename it to `path` when the block ends without error.

    Args:
        path: final destination; its folder must exist.
        mode: "w" (text) or "wb" (binary).
        encoding: text encoding (ignored for binary mode).

    Yields:
        the open file object. On an exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output folder does not exist")
    tmp = tmp_path_for(path)
    try:
        if "b" in mode:
            f = open(tmp, mode)
        else:
            f = open(tmp, mode, encoding=encoding, newline="\n")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        named = named_write_error(e, path) if isinstance(e, OSError) else e
        if named is not e:
            raise named from e
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def set_default_mode(path: str | os.PathLike, *, directory: bool = False) -> None:
    """Give `path` the mode a plain `open()` / `mkdir()` would have: 0666 (0777 for a folder) less the umask.

    mkstemp and mkdtemp create 0600 / 0700 entries; an output renamed into place must not keep that.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def _keep_mode(path: Path, tmp: Path) -> None:
    set_default_mode(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_write(path) as f:
        f.write(text)


def check_replaceable_dir(dst: str | os.PathLike, error: type[AsrkitError] = AsrkitError) -> None:
    """Raise `error` unless the folder `dst` may be created or replaced by a staged write.

    Every folder asrkit replaces whole goes through here (via `staged_dir`), so a stricter rule
    (say, replace only folders asrkit made) needs changing in this one place.

    Raises:
        error: `dst` exists and is not a folder.
    """
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise error(f"{dst}: exists and is not a directory")


@contextlib.contextmanager
def staged_dir(dst: str | os.PathLike, error: type[AsrkitError] = AsrkitError):
    """Build a folder aside and put it in place in one rename: yields an empty temporary folder
    beside `dst`; when the block ends without error it gets the umask's mode and replaces `dst`
    whole (`replace_dir`); on an error it is removed and `dst` is untouched.

    Args:
        dst: the folder to create or replace; its parent is created if needed.
        error: the exception class `check_replaceable_dir` raises (callers pick their domain's).

    Raises:
        error: `dst` exists and is not a folder.
    """
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable_dir(dst, error)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
        set_default_mode(tmp, directory=True)
        replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename the finished folder `tmp` to `dst`, replacing an existing `dst` whole.

    A folder cannot be renamed over a non-empty one, so the old one steps aside first: `dst` is
    always either the old folder or the new one, and the old one is removed only after.
    """
    import shutil

    tmp, dst = Path(tmp), Path(dst)
    if not dst.exists():
        os.rename(tmp, dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
    os.rmdir(old)
    os.rename(dst, old)
    try:
        os.rename(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)
