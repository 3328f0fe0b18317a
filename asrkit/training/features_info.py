"""The feature settings a data dir's features were made with, recorded in model files."""

from __future__ import annotations

import os
from pathlib import Path


def feature_settings(data_dir: str | os.PathLike) -> dict | None:
    """What `asrkit make-feats` recorded about a data dir's features (type and Kaldi options), or None."""
    import yaml

    path = Path(data_dir) / "feats.yaml"
    if path.is_file():
        return yaml.safe_load(path.read_text())
    return None
