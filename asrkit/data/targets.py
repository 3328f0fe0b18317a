"""Training targets read from Kaldi tables: frame alignments and soft targets.

Alignments are int vectors per utterance (Kaldi pdf-ids, also `ali.N.gz`); soft targets are float
matrices (rows = output frames, columns = output dimension) or Kaldi Posterior archives (top-k
entries per frame, expanded to dense rows when read), such as `asrkit dump-posteriors` writes with a
`post_info.yaml` beside them.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

from asrkit.errors import AsrkitError, FormatError
from asrkit.kaldi.posterior import PosteriorTable, is_posterior_scp, iter_posterior_ark, posterior_to_dense
from asrkit.kaldi.table import iter_table, load_table_scp
from asrkit.kaldi.textio import read_table

INFO_NAME = "post_info.yaml"


def table_rspecifier(path: str) -> str:
    """An rspecifier for a target table given as a path: `x.gz` is a gzipped archive (Kaldi's
    ali.N.gz), `x.ark` and a pipe `... |` archives, anything else an scp; an rspecifier stays as it is."""
    if path.startswith(("ark:", "ark,", "scp:", "scp,")):
        return path
    if path.endswith(".gz"):
        return f"ark:gunzip -c {shlex.quote(path)} |"
    return ("ark:" if path.endswith((".ark", "|")) else "scp:") + path


def open_alignments(rspecifier: str) -> dict[str, np.ndarray]:
    """Frame labels: `{key: (num_frames,) int64}`, read whole (alignments are small).

    Raises:
        FileNotFoundError / FormatError: no such table, or unreadable entries.
    """
    return {k: np.asarray(v, dtype=np.int64) for k, v in iter_table(table_rspecifier(rspecifier))}


def read_post_info(folder: str | os.PathLike) -> dict | None:
    """The `post_info.yaml` that `dump_posteriors` writes next to `post.scp`, or None."""
    path = Path(folder) / INFO_NAME
    if not path.is_file():
        return None
    info = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(info, dict):
        raise FormatError(path, "expected a YAML mapping")
    return info


def _posterior_dims(folder: Path, scp: Path) -> tuple[int | dict[str, int], dict[str, str] | None]:
    info = read_post_info(folder)
    if info is None or not (info.get("output_dims") or info.get("output_dim")):
        raise AsrkitError(f"{scp}: a Posterior archive does not record its output dimension; put a {INFO_NAME} "
                          f"next to it with 'output_dim: <dim>' (or 'output_dims: {{<lang>: <dim>}}' and a "
                          f"utt2lang file)")
    if info.get("output_dim"):
        return int(info["output_dim"]), None
    dims = {str(k): int(v) for k, v in info["output_dims"].items()}
    if len(set(dims.values())) == 1:
        return next(iter(dims.values())), None
    if not (folder / "utt2lang").is_file():
        raise AsrkitError(f"{folder / INFO_NAME}: per-language output dimensions need {folder / 'utt2lang'}")
    return dims, read_table(folder / "utt2lang", num_fields=2)


def open_soft_targets(rspecifier: str) -> Mapping:
    """Open soft targets for training: `{key: (num_frames, dim) float32}`, read lazily.

    Accepts an scp (`post.scp`, `scp:post.scp`) of float matrices (FM/DM, compressed CM/CM2/CM3) or
    of Kaldi Posteriors (expanded to dense rows at load time, with the dimension from the
    `post_info.yaml` beside the scp), or an archive (`ark:post.1.ark`, `post.ark.gz`, read whole
    into memory); paths as `table_rspecifier` reads them.

    Raises:
        FileNotFoundError: no such scp/archive. FormatError / AsrkitError: unreadable entries, or a
        Posterior table whose output dimension is unknown.
    """
    spec = table_rspecifier(rspecifier)
    kind, rest = spec.split(":", 1)
    if kind.startswith("scp"):
        scp = Path(rest)
        if not scp.is_file():
            raise FileNotFoundError(2, "no such soft-target scp", str(scp))
        if is_posterior_scp(scp):
            dims, utt2lang = _posterior_dims(scp.parent, scp)
            return PosteriorTable(scp, dims, utt2lang)
        return load_table_scp(scp)
    ark = Path(rest)
    if not ark.is_file():  # a pipe (`ark:gunzip -c post.ark.gz |`) or `-`: matrices only
        return {k: np.asarray(v, dtype=np.float32) for k, v in iter_table(spec)}
    with open(ark, "rb") as f:
        head = f.read(64)
    space = head.find(b" ")
    if space > 0 and head[space + 1:space + 4] == b"\0B\x04":
        dims, utt2lang = _posterior_dims(ark.parent, ark)
        return {k: posterior_to_dense(p, _dim_of(dims, utt2lang, k, ark), k) for k, p in iter_posterior_ark(ark)}
    return {k: np.asarray(v, dtype=np.float32) for k, v in iter_table(spec)}


def _dim_of(dims, utt2lang, key: str, where: Path) -> int:
    if isinstance(dims, int):
        return dims
    lang = (utt2lang or {}).get(key)
    if lang not in dims:
        raise AsrkitError(f"{where}: no output dimension for utterance '{key}' (language {lang or 'unknown'})")
    return dims[lang]
