"""Search: how a decode job turns batches of features into hypotheses, per model type.

Search backends
---------------
How a batch of features becomes token ids depends on the model type, and is a `SearchBackend`:

    class SearchBackend(Protocol):
        searches: tuple[str, ...]        # the --search values it offers, e.g. ("greedy", "beam")
        supports_streaming: bool         # whether it accepts streaming=True

        def decode_batch(self, model, feats, feat_lens, lang, search, beam, *, streaming=False)
                -> list[list[int]]: ...

`decode_batch` gets the loaded model (eval mode, on its device, called under
`torch.inference_mode()`), `feats (B, T, D)` float32 after CMVN on the model's device,
`feat_lens (B,)` int64 on the same device, the batch's one language tag, the search name and
the beam size, and returns B lists of token ids of that language's token set (blank removed,
token id 0 is blank in every token set); `TextOutput` turns them into words with the model's
sentencepiece model. A backend may also define `describe(model) -> list[str]`: lines the job
writes into its log before decoding (a streaming model's chunk size and algorithmic latency).

`model_type(model, meta)` names the backend: "rnnt" for a transducer (the model file's objective
is "rnnt", or the model has `transducer_loss`), "ctc" otherwise. `BACKENDS` maps the name to the
backend class: `CtcSearch` here (greedy and prefix beam search), `asrkit.decoding.rnnt.RnntSearch`
(greedy, beam and streaming search for the Emformer transducer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from asrkit.decoding.ctc import ctc_prefix_beam_search
from asrkit.decoding.rnnt import RnntSearch
from asrkit.errors import ConfigError
from asrkit.kaldi.textio import write_table
from asrkit.models.ctc import ctc_greedy
from asrkit.models.modelfile import ModelMeta

SEARCHES = ("greedy", "beam")


@runtime_checkable
class SearchBackend(Protocol):
    """Turns a batch of features into token ids (see the module docstring for the contract)."""

    searches: tuple[str, ...]
    supports_streaming: bool

    def decode_batch(self, model, feats, feat_lens, lang: str, search: str, beam: int, *,
                     streaming: bool = False) -> list[list[int]]: ...


class CtcSearch:
    """CTC models (encoder + frame-level softmax over tokens with blank 0): greedy or prefix beam."""

    searches = SEARCHES
    supports_streaming = False

    def decode_batch(self, model, feats, feat_lens, lang: str, search: str, beam: int, *,
                     streaming: bool = False) -> list[list[int]]:
        """`feats (B, T, D)`, `feat_lens (B,)` -> B token-id lists (see the module docstring)."""
        if streaming:
            raise ConfigError("streaming decoding needs a streaming (Emformer RNN-T) model; this is a CTC model")
        logits, out_lens = model(feats, feat_lens, lang)  # (B, T', V), (B,)
        if search == "greedy":
            return ctc_greedy(logits, out_lens, blank=0)
        if search == "beam":
            nbest = ctc_prefix_beam_search(logits.float().log_softmax(-1), out_lens, beam=beam, blank=0)
            return [hyps[0][0] for hyps in nbest]
        raise ConfigError(f"unknown search '{search}' for a CTC model (choose from {', '.join(self.searches)})")

    def describe(self, model) -> list[str]:
        return [f"CTC model, {model.frame_subsampling}x frame subsampling"]


BACKENDS: dict[str, type] = {"ctc": CtcSearch, "rnnt": RnntSearch}


def model_type(model, meta: ModelMeta) -> str:
    """"rnnt" for a transducer model, "ctc" for a model with frame-level token outputs."""
    if meta.objective == "rnnt" or hasattr(model, "transducer_loss"):
        return "rnnt"
    return "ctc"


def search_backend(model, meta: ModelMeta) -> SearchBackend:
    """The backend for a model (see `BACKENDS`)."""
    return BACKENDS[model_type(model, meta)]()


class TextOutput:
    """What a decode job writes with `--output text`: every batch searched by the model's backend,
    token ids turned into words; `finish` writes the job's Kaldi text (C-sorted)."""

    def __init__(self, model, meta: ModelMeta, path: Path, *, search: str, beam: int, streaming: bool, log):
        """Raises ConfigError when the model's backend does not offer `search` or streaming."""
        self.backend = search_backend(model, meta)
        if search not in self.backend.searches:
            raise ConfigError(f"search '{search}' is not available for this model "
                              f"(choose from {', '.join(self.backend.searches)})")
        if streaming and not self.backend.supports_streaming:
            raise ConfigError("--streaming: this model cannot be decoded in streaming mode")
        for line in getattr(self.backend, "describe", lambda m: [])(model):
            log.info("%s", line)
        self.tokenizers = meta.tokenizers()
        self.path, self.search, self.beam, self.streaming = path, search, beam, streaming
        self.hyps: dict[str, str] = {}
        path.parent.mkdir(parents=True, exist_ok=True)

    def add_batch(self, model, feats, feat_lens, lang: str, keys: list[str]) -> None:
        """Search one language-homogeneous batch: `feats (B, T, D)`, `feat_lens (B,)`, B keys."""
        ids = self.backend.decode_batch(model, feats, feat_lens, lang, self.search, self.beam,
                                        streaming=self.streaming)
        tok = self.tokenizers.get(lang) or next(iter(self.tokenizers.values()))
        for key, seq in zip(keys, ids):
            self.hyps[key] = tok.decode(seq) if seq else ""

    def finish(self) -> None:
        write_table(self.path, {k: " ".join(v.split()) for k, v in self.hyps.items()}, sort=True)

    def abort(self) -> None:
        """Nothing was written yet."""


__all__ = ["BACKENDS", "SEARCHES", "CtcSearch", "SearchBackend", "TextOutput", "model_type", "search_backend"]
