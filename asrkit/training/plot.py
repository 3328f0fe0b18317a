"""Training curves from `log/metrics.jsonl` into one PNG (loss, validation loss, lr, frames/s)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from asrkit.errors import FormatError
from asrkit.fileio import tmp_path_for


def read_metrics(exp_dir: str | os.PathLike) -> list[dict]:
    path = Path(exp_dir) / "log" / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(2, "no training metrics (has training started?)", str(path))
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise FormatError(path, "not a JSON line", lineno) from None
    return rows


def plot_curves(exp_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the curves of a run to a PNG and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(exp_dir)
    out = Path(out) if out else Path(exp_dir) / "log" / "curves.png"
    panels = [("loss", ["loss", "valid_loss", "valid_loss_ema"]), ("learning rate", ["lr"]),
              ("frames/s", ["frames_per_s"]), ("token error rate (%)", ["valid_ter"])]
    panels = [(t, ks) for t, ks in panels if any(k in r for r in rows for k in ks)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (title, keys) in zip(axes[:, 0], panels):
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if k in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o" if k.startswith("valid") else None, label=k)
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    tmp = tmp_path_for(out)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return out
