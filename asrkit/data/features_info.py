"""The feature settings a data dir's features were made with, recorded in model files."""

from __future__ import annotations

import os
from pathlib import Path


def feature_settings(data_dir: str | os.PathLike) -> dict | None:
    """What `asrkit make-feats` recorded about a data dir's features, or None.

    Returns:
        {"type": "fbank"|"mfcc", "options": {kaldi-option-name: value-string}} from the
        `DATA_DIR/conf/<type>.conf` file make-feats writes beside feats.scp.
    """
    conf_dir = Path(data_dir) / "conf"
    for feat_type in ("fbank", "mfcc"):
        path = conf_dir / f"{feat_type}.conf"
        if path.is_file():
            options = {}
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("--") and "=" in line:
                    name, value = line[2:].split("=", 1)
                    options[name] = value
            return {"type": feat_type, "options": options}
    return None
