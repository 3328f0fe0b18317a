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


# Kaldi's defaults of compute-fbank-feats / compute-mfcc-feats, for the options a conf file leaves
# out (a Kaldi recipe's conf lists only what it changes; make-feats writes every option).
# tests/features/test_kaldi_feats.py checks them against `FeatureOptions`, the one implementation.
_COMMON_DEFAULTS = {
    "sample-frequency": "16000", "frame-length": "25", "frame-shift": "10", "preemphasis-coefficient": "0.97",
    "remove-dc-offset": "true", "window-type": "povey", "blackman-coeff": "0.42", "round-to-power-of-two": "true",
    "snip-edges": "true", "num-mel-bins": "23", "low-freq": "20", "high-freq": "0", "vtln-low": "100",
    "vtln-high": "-500", "energy-floor": "0", "raw-energy": "true", "htk-compat": "false", "vtln-warp": "1",
    "subtract-mean": "false", "min-duration": "0",
}
KALDI_DEFAULTS = {
    "fbank": {**_COMMON_DEFAULTS, "use-energy": "false", "use-log-fbank": "true", "use-power": "true"},
    "mfcc": {**_COMMON_DEFAULTS, "use-energy": "true", "num-ceps": "13", "cepstral-lifter": "22"},
}
# Dither adds noise, it does not make other features (and Kaldi's default, 1, is not asrkit's, 0);
# min-duration only decides which utterances get features.
_NOT_COMPARED = ("dither", "min-duration")


def effective_options(settings: dict) -> dict[str, object]:
    """Every option's value as the feature program used it: the recorded ones over Kaldi's defaults,
    numbers as floats (`20` equals `20.0`), words lower-cased; dither and min-duration left out."""
    merged = {**KALDI_DEFAULTS.get(settings["type"], {}), **settings["options"]}
    return {name: _value(text) for name, text in merged.items() if name not in _NOT_COMPARED}


def feature_differences(trained: dict, here: dict) -> list[str]:
    """How the features of a data dir (`here`) differ from a model's training features (`trained`),
    both `feature_settings` results: e.g. `["num-mel-bins: 40 here, 80 in training"]`, or []."""
    if trained["type"] != here["type"]:
        return [f"{here['type']} here, {trained['type']} in training"]
    a, b = effective_options(trained), effective_options(here)
    return [f"{name}: {_show(b.get(name))} here, {_show(a.get(name))} in training"
            for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]


def _value(text: object) -> object:
    word = str(text).strip().lower()
    try:
        return float(word)
    except ValueError:
        return word


def _show(value: object) -> str:
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)
