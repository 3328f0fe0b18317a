#!/usr/bin/env python3
"""`make install`'s first step: is there room for the venv? One line and exit 1 when there is not.

Usage: check-disk.py VENV MIN_FREE_GB

A full disk otherwise shows up as pip's "OSError: [Errno 28] No space left on device" at the end of
hundreds of lines, after minutes of unpacking, with a half-installed venv left behind. An existing
venv counts as room already taken (a re-install replaces packages in place).
"""

import shutil
import sys
from pathlib import Path


def main() -> int:
    venv, min_free_gb = Path(sys.argv[1]), float(sys.argv[2])
    if min_free_gb <= 0 or (venv / "bin" / "python").exists():
        return 0
    where = venv.resolve().parent
    free_gb = shutil.disk_usage(where).free / 1e9
    if free_gb < min_free_gb:
        print(f"make install: only {free_gb:.1f} GB free on the disk of {where}; the locked install "
              f"(torch with its CUDA libraries) needs about {min_free_gb:g} GB. Free some space, or set "
              f"VENV=/path/on/a/larger/disk (MIN_FREE_GB=0 skips this check)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
