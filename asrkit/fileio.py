"""Atomic file writing: every asrkit output appears whole or not at all.

A writer writes to a temporary name in the destination folder and renames it into place only when
the write finished, so a killed stage leaves the old output or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Sequence
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


#: The stamp asrkit writes into every folder it builds whole (`staged_dir`): a folder holding it
#: (or one of a stage's own manifests, e.g. a lang dir's `lang.yaml`) was made by asrkit and may be
#: replaced; any other non-empty folder is the user's, and replacing it needs `--overwrite`.
MARKER = ".asrkit"


def made_by_asrkit(folder: str | os.PathLike, markers: Sequence[str] = ()) -> bool:
    """True if `folder` holds asrkit's stamp (`MARKER`) or one of the stage's own `markers`."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in (MARKER, *markers))


def check_not_an_input(dst: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                       error: type[AsrkitError] = AsrkitError, *, inside_ok: bool = False) -> None:
    """Raise `error` if the output folder `dst` is one of `inputs`, holds one, or (unless `inside_ok`)
    lies inside one: writing it would replace or mix with what the command reads.

    `inside_ok` is for folders written into rather than replaced (make-feats' `--feat-dir` is
    `DATA_DIR/data` by default, as in Kaldi's make_fbank.sh).
    """
    rdst = Path(dst).resolve()
    for src in inputs:
        rsrc = Path(src).resolve()
        if rsrc == rdst:
            raise error(f"{dst}: is also an input ({src}); choose another output folder")
        if rdst in rsrc.parents:
            raise error(f"{dst}: holds the input {src}; choose another output folder")
        if not inside_ok and rsrc in rdst.parents:
            raise error(f"{dst}: is inside the input {src}; choose another output folder")


def check_replaceable_dir(dst: str | os.PathLike, error: type[AsrkitError] = AsrkitError, *,
                          inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False,
                          markers: Sequence[str] = ()) -> None:
    """Raise `error` unless the folder `dst` may be created or replaced by a staged write.

    asrkit replaces only a folder it made itself (`made_by_asrkit`) or an empty one; any other
    existing folder needs `overwrite` (the user's `--overwrite`). A destination that is, holds or
    lies inside one of `inputs` is refused even then. Every folder asrkit replaces whole goes
    through here (via `staged_dir`).

    Raises:
        error: `dst` exists and is not a folder; `dst` is, holds or is inside an input; `dst` is a
            non-empty folder asrkit did not make and `overwrite` is False.
    """
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise error(f"{dst}: exists and is not a directory")
    check_not_an_input(dst, inputs, error)
    if dst.is_dir() and not overwrite and not made_by_asrkit(dst, markers) and any(dst.iterdir()):
        raise error(f"{dst}: exists and was not made by asrkit; use --overwrite to replace it and "
                    f"everything in it, or choose another folder")


@contextlib.contextmanager
def staged_dir(dst: str | os.PathLike, error: type[AsrkitError] = AsrkitError, *,
               inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False, markers: Sequence[str] = ()):
    """Build a folder aside and put it in place in one rename: yields a temporary folder beside
    `dst` holding only asrkit's stamp (`MARKER`); when the block ends without error it gets the
    umask's mode and replaces `dst` whole (`replace_dir`); on an error it is removed and `dst` is
    untouched.

    Args:
        dst: the folder to create or replace; its parent is created if needed.
        error: the exception class `check_replaceable_dir` raises (callers pick their domain's).
        inputs, overwrite, markers: as `check_replaceable_dir`.

    Raises:
        error: `dst` may not be replaced (`check_replaceable_dir`).
    """
    import shutil

    dst = Path(dst)
    check_replaceable_dir(dst, error, inputs=inputs, overwrite=overwrite, markers=markers)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        with naming_write_errors(dst / MARKER):
            (tmp / MARKER).write_text("made by asrkit: replaced whole when asrkit rebuilds it\n", encoding="utf-8")
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


#: The lock file of a folder asrkit writes into (`dir_lock`).
LOCK = ".asrkit.lock"


@contextlib.contextmanager
def dir_lock(folder: str | os.PathLike, command: str, error: type[AsrkitError] = AsrkitError):
    """Hold an exclusive lock (flock on `folder/.asrkit.lock`) while a command writes into `folder`.

    Two runs writing one data dir or exp dir at once would mix their outputs (half the utterances
    at one feature dimension, half at another) and both exit 0; the second one stops instead. The
    lock is the kernel's, so a killed run leaves no stale lock; a finished run removes the file.

    Args:
        folder: the data dir / exp dir / decode dir; created if missing, and removed again at the
            end if the run left it empty.
        command: the asrkit command, for the other run's message (e.g. "make-feats").
        error: the exception class to raise.

    Raises:
        error: another process holds the lock (`DIR is being written by another asrkit <command>
            (pid N)`), or the lock file cannot be created (the folder is read-only).
    """
    import fcntl

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise error(f"{folder}: cannot write in this folder ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").split(maxsplit=1)
            os.close(fd)
            pid, other = (holder + ["?", "command"])[:2] if holder else ("?", "command")
            raise error(f"{folder} is being written by another asrkit {other.strip()} (pid {pid}); "
                        f"wait for it to finish") from None
        # The holder before us may have removed the file between our open and our flock: then our
        # lock is on a file nobody else sees, so lock the one now at `path` instead.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # before the close: a waiting run then re-opens a fresh file
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # a run that wrote nothing leaves no folder behind (rmdir of a full one fails)
