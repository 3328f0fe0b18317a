"""Logging for asrkit commands: the command line, versions and timing, to stderr and a log file.

Job logs follow Kaldi's run.pl layout (`# <command>`, `# Started at`, ..., `# Accounting:` and
`# Ended (code N) at ...`), so `utils/summarize_logs.pl` and `run.pl --pick` work on them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from asrkit.fileio import naming_write_errors

LOGGER_NAME = "asrkit"
_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """Return a logger under the `asrkit` hierarchy."""
    if name != LOGGER_NAME and not name.startswith(LOGGER_NAME + "."):
        name = f"{LOGGER_NAME}.{name}"
    return logging.getLogger(name)


class _LogFileHandler(logging.FileHandler):
    """A log file that cannot stop the run: on a full disk, records that cannot be written are dropped
    (the first error is kept in `write_error`) instead of printing a traceback per record, and
    closing never raises. The outputs' own writes report a full disk, naming the file."""

    write_error: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self.write_error = self.write_error or exc
            return
        super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as e:
            self.write_error = self.write_error or e


def setup_logging(log_file: str | os.PathLike | None = None, verbose: bool = False,
                  stderr: bool = True) -> logging.Logger:
    """Configure the `asrkit` logger: stderr and, if given, an appended log file."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    if stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        logger.addHandler(sh)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = _LogFileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False
    return logger


def command_line() -> str:
    """The command line of this process, shell-quoted, as the user could re-run it."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "asrkit")):
        argv[0] = "asrkit"
    return shlex.join(argv)


def versions() -> str:
    """A one-line summary of the versions that affect results."""
    from asrkit import __version__

    parts = [f"asrkit {__version__}", f"python {sys.version.split()[0]}"]
    for mod in ("torch", "torchaudio"):
        m = sys.modules.get(mod)
        if m is not None:
            parts.append(f"{mod} {getattr(m, '__version__', '?')}")
    return ", ".join(parts)


@contextlib.contextmanager
def job_log(path: str | os.PathLike, command: str | None = None):
    """Write a run.pl-style job log around a block.

    The file starts with `# <command>` and `# Started at <date>`, the block's log records go into it,
    and it ends with `# Accounting: time=<s> threads=1` and `# Ended (code N) at <date>, elapsed time <s> seconds`.
    Code is 0 when the block returns and 1 when it raises (the exception propagates).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = command or command_line()
    start = time.time()
    logger = logging.getLogger(LOGGER_NAME)
    with naming_write_errors(path), open(path, "w", encoding="utf-8") as f:
        f.write(f"# {command}\n# Started at {time.strftime('%a %b %d %H:%M:%S %Z %Y')}\n#\n")
        f.flush()
    handler = _LogFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    code = 0
    try:
        yield logger
    except BaseException as e:
        code = 1
        logger.error("%s", " ".join(str(e).split("\n")) or type(e).__name__)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
        elapsed = int(round(time.time() - start))
        # On a full disk the trailer cannot be written either; the error that stopped the block
        # (code 1) is the one to report, and a finished block stays finished (with a warning).
        error = handler.write_error
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"# Accounting: time={elapsed} threads=1\n")
                f.write(f"# Ended (code {code}) at {time.strftime('%a %b %d %H:%M:%S %Z %Y')}, "
                        f"elapsed time {elapsed} seconds\n")
        except OSError as e:
            error = error or e
        if error is not None and code == 0:
            logger.warning("%s: the log is incomplete: %s", path, error.strerror or error)


def check_device(device: str) -> str:
    """Validate a `--device` value (cpu, cuda, cuda:N) against what this machine has.

    Raises:
        ConfigError: an unknown device name, or cuda without a CUDA device.
    """
    from asrkit.errors import ConfigError

    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}' (expected cpu, cuda or cuda:N)")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available")
    return device
