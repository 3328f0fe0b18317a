"""`asrkit prepare <corpus>`: stage 1, Kaldi data dirs from a corpus on disk (or made offline)."""

from __future__ import annotations

import click

from asrkit.cli.lazy import LazyGroup

CORPORA = {
    "synth": ("asrkit.cli.prepare_synth", "synth"),
    "wsj": ("asrkit.cli.prepare_corpora", "wsj"),
    "mls": ("asrkit.cli.prepare_corpora", "mls"),
    "commonvoice": ("asrkit.cli.prepare_corpora", "commonvoice"),
    "librispeech": ("asrkit.cli.prepare_corpora", "librispeech"),
    "yesno": ("asrkit.cli.prepare_corpora", "yesno"),
    "fsdd": ("asrkit.cli.prepare_corpora", "fsdd"),
}


@click.group(cls=LazyGroup, lazy_commands=CORPORA)
def prepare() -> None:
    """Prepare Kaldi data dirs (wav.scp, text, utt2spk, spk2utt, utt2lang, utt2dur) for a corpus."""
