"""Kaldi rxfilenames and rspecifiers: `ark:`/`scp:` with their options, `path:offset`, row ranges
`[r1:r2,c1:c2]`, `-` and `cmd |` pipes whose exit status is checked (a failing command is an error,
quoting its stderr, never a silently short table).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile

import numpy as np

from asrkit.errors import AsrkitError
from asrkit.logutil import get_logger

log = get_logger(__name__)

_RSPEC_OPTIONS = {"t", "b", "o", "no", "s", "ns", "cs", "ncs", "p", "np", "f", "nf"}
_OFFSET_RE = re.compile(r"^(.*):(\d+)$")
_RANGE_RE = re.compile(r"^(.*)\[([^\[\]]*)\]$")


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


def apply_range(array, range_spec: str):
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


class PipeReader:
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


def parse_rspecifier(rspecifier: str) -> tuple[str, set[str], str]:
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
def open_rx(rxfilename: str):
    """Open a Kaldi rxfilename (path, `-`, or `cmd |`) for binary reading; checks pipe status."""
    if rxfilename.endswith("|"):
        pipe = PipeReader(rxfilename[:-1].strip())
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
