"""An RNN-T: an encoder (streaming with the `EmformerEncoder` of asrkit.models.encoders), an LSTM
predictor and an additive joiner.

`TransducerModel` adds the predictor and joiner to an encoder; the output layer is a head of
asrkit.models.heads applied to the joiner's hidden units, so tokens are joint (`linear` head, one
predictor embedding) or per language (`mtl`/`lrmf` heads, one predictor embedding per language).
Blank is token 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor, nn

from asrkit.errors import AsrkitError, ConfigError
from asrkit.models.asr_model import AsrModel
from asrkit.models.encoders import EmformerEncoder, valid_frame_mask
from asrkit.models.heads import Head, LinearHead, _unknown_language

BLANK = 0
SHARED = "shared"  # the predictor embedding key when all languages share one token set


class LstmPredictor(nn.Module):
    """Token embedding (one table, or one per language) + LSTM: the RNN-T prediction network.

    Args:
        vocab_sizes: `{lang: V}`; with `shared_embedding` one table of the (common) size.
        shared_embedding: one embedding for all languages (joint tokens).
        embed_dim, hidden_dim, num_layers, dropout: sizes; dropout on the embedding and between layers.

    Forward: `(tokens (N, U) int64, lang, state=None) -> (out (N, U, hidden_dim), state)` with state
    the LSTM's `(h, c)`, each `(num_layers, N, hidden_dim)`.
    """

    def __init__(self, vocab_sizes: Mapping[str, int], *, shared_embedding: bool, embed_dim: int = 256,
                 hidden_dim: int = 512, num_layers: int = 1, dropout: float = 0.1):
        super().__init__()
        self.shared_embedding = shared_embedding
        self.embed_dim = embed_dim
        sizes = {SHARED: next(iter(vocab_sizes.values()))} if shared_embedding else dict(vocab_sizes)
        self.embeddings = nn.ModuleDict({k: nn.Embedding(v, embed_dim) for k, v in sizes.items()})
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.output_dim = hidden_dim

    def _embedding(self, lang: str) -> nn.Embedding:
        if self.shared_embedding:
            return self.embeddings[SHARED]
        if lang not in self.embeddings:
            raise _unknown_language(lang, list(self.embeddings))
        return self.embeddings[lang]

    def forward(self, tokens: Tensor, lang: str, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = self.dropout(self._embedding(lang)(tokens))
        out, state = self.lstm(x, state)
        return self.dropout(out), state

    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        """Parameters only `lang` uses (its embedding table; none when shared)."""
        return iter(()) if self.shared_embedding else self.embeddings[lang].parameters()

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        if self.shared_embedding:
            return
        device = next(self.parameters()).device
        for lang, size in vocab_sizes.items():
            self.embeddings[lang] = nn.Embedding(size, self.embed_dim, device=device)


_ACTIVATION: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU,
                                                   "silu": nn.SiLU}


class AdditiveJoiner(nn.Module):
    """`act(W_e enc + W_p pred)`: the joiner's hidden units (the head maps them to tokens).

    Forward: `(enc (N, T, E), pred (N, U, P)) -> (N, T, U, dim)` (N broadcasts: 1 against many).
    """

    def __init__(self, enc_dim: int, pred_dim: int, *, dim: int = 512, activation: str = "tanh"):
        super().__init__()
        self.enc_proj = nn.Linear(enc_dim, dim)
        self.pred_proj = nn.Linear(pred_dim, dim, bias=False)
        self.activation = _ACTIVATION[activation]()
        self.output_dim = dim

    def forward(self, enc: Tensor, pred: Tensor) -> Tensor:
        return self.activation(self.enc_proj(enc).unsqueeze(2) + self.pred_proj(pred).unsqueeze(1))


class TransducerModel(AsrModel):
    """Encoder + LSTM predictor + joiner + output head, trained with torchaudio's RNN-T loss.

    The trainer calls `forward(feats, feat_lens, lang, tokens=..., token_lens=...)` (through DDP when
    distributed) or `transducer_loss`; decoding (asrkit.decoding.rnnt) uses `encode`, `predict`,
    `joint` and, for streaming, `encoder.stream` / `encoder.infer`.
    """

    def __init__(self, encoder: nn.Module, predictor: LstmPredictor, joiner: AdditiveJoiner, head: Head,
                 conf: dict, feat_dim: int, ctc_head: Head | None = None):
        super().__init__(encoder, head, conf, feat_dim)
        self.predictor = predictor
        self.joiner = joiner
        self.blank = BLANK
        # `model.aux_ctc: {weight: w}`: a CTC output layer on the encoder, used only in training
        # (loss = (1 - w) * rnnt + w * ctc), as icefall's and ESPnet's transducers do: the encoder
        # learns to align far sooner than from the RNN-T loss alone.
        self.ctc_head = ctc_head
        self.ctc_weight = float((conf.get("aux_ctc") or {}).get("weight", 0.0)) if ctc_head is not None else 0.0

    @property
    def streaming(self) -> bool:
        """True when the encoder can run segment by segment (an emformer)."""
        return isinstance(self.encoder, EmformerEncoder)

    def algorithmic_latency_ms(self, frame_shift_ms: float = 10.0) -> float | None:
        """The emformer's algorithmic latency, `(segment_length + right_context) * stride` frames, in
        ms; None for a full-utterance encoder (its latency is the utterance)."""
        return self.encoder.latency_frames * frame_shift_ms if self.streaming else None

    def predict(self, tokens: Tensor, lang: str, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """`tokens (N, U)` -> predictor output `(N, U, P)` and the new LSTM state."""
        return self.predictor(tokens, lang, state)

    def joint(self, enc: Tensor, pred: Tensor, lang: str) -> Tensor:
        """`enc (N, T, E)`, `pred (N, U, P)` -> unnormalised `logits (N, T, U, V_lang)`."""
        return self.head(self.joiner(enc, pred), lang)

    def transducer_loss(self, feats: Tensor, feat_lens: Tensor, tokens: Tensor, token_lens: Tensor,
                        lang: str) -> tuple[Tensor, float]:
        """RNN-T loss (torchaudio.functional.rnnt_loss, blank 0), summed over utterances / B.

        Args:
            feats: `(B, T, D)`; feat_lens: `(B,)`; tokens: `(B, S)` int64 padded (any padding value);
            token_lens: `(B,)`; lang: the batch's language.

        Returns:
            `(loss, normaliser)`: the mean loss per utterance and B.
        """
        import torchaudio.functional

        hidden, out_lens = self.encode(feats, feat_lens)
        hidden = hidden[:, : int(out_lens.max())]
        u_max = int(token_lens.max()) if token_lens.numel() else 0
        targets = tokens[:, :u_max]
        targets = torch.where(valid_frame_mask(token_lens, u_max), targets, torch.zeros_like(targets))
        pred, _ = self.predict(nn.functional.pad(targets, (1, 0), value=self.blank), lang)  # (B, U+1, P)
        logits = self.joint(hidden, pred, lang)  # (B, T', U+1, V)
        per_utt = torchaudio.functional.rnnt_loss(logits.float(), targets.int(), out_lens.int(), token_lens.int(),
                                                  blank=self.blank, reduction="none")
        batch = float(feats.shape[0])
        loss = per_utt.sum() / batch
        if self.ctc_head is not None:
            log_probs = self.ctc_head(hidden, lang).float().log_softmax(-1).transpose(0, 1)  # (T', B, V)
            ctc = nn.functional.ctc_loss(log_probs, targets, out_lens, token_lens, blank=self.blank,
                                         reduction="sum", zero_infinity=True) / batch
            loss = (1.0 - self.ctc_weight) * loss + self.ctc_weight * ctc
        return loss, batch

    def forward(self, feats: Tensor, feat_lens: Tensor, lang: str, tokens: Tensor | None = None,
                token_lens: Tensor | None = None):
        """With `tokens`/`token_lens`: `transducer_loss(...)` (so DDP sees a forward call).

        Raises:
            AsrkitError: called without tokens (a transducer has no frame-wise output; decode it
                with asrkit.decoding.rnnt).
        """
        if tokens is None or token_lens is None:
            raise AsrkitError("a transducer model's forward needs tokens (training); decode it with an RNN-T search")
        return self.transducer_loss(feats, feat_lens, tokens, token_lens, lang)

    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        """Parameters only `lang` uses (its output layer and predictor embedding, unless shared)."""
        yield from self.head.language_parameters(lang)
        yield from self.predictor.language_parameters(lang)
        if self.ctc_head is not None:
            yield from self.ctc_head.language_parameters(lang)

    def param_counts(self) -> dict[str, int | float]:
        """As `AsrModel.param_counts`, plus `predictor` and `joiner` (without the head)."""
        counts = super().param_counts()
        total = counts.pop("total")
        counts["predictor"] = sum(p.numel() for p in self.predictor.parameters())
        counts["joiner"] = sum(p.numel() for p in self.joiner.parameters())
        if self.ctc_head is not None:  # training only: decoding never uses it
            counts["aux_ctc_head"] = sum(p.numel() for p in self.ctc_head.parameters())
        counts["total"] = total
        return counts

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """New output layers and predictor embeddings (none for joint tokens) for new languages."""
        self.head.add_languages(vocab_sizes)
        self.predictor.add_languages(vocab_sizes)
        if self.ctc_head is not None:
            self.ctc_head.add_languages(vocab_sizes)

    def freeze(self, part: str) -> None:
        """As `AsrModel.freeze`; "shared" leaves only the per-language output layers and embeddings training."""
        super().freeze(part)
        if part == "shared":
            for p in list(self.predictor.parameters()) + list(self.joiner.parameters()):
                p.requires_grad_(False)
            if self.ctc_head is not None:
                for p in self.ctc_head.shared_parameters():
                    p.requires_grad_(False)
            for lang in self.languages:
                for p in self.language_parameters(lang):
                    p.requires_grad_(True)


def build_transducer(encoder: nn.Module, conf: dict, feat_dim: int, vocab_sizes: Mapping[str, int],
                     make_head: Callable[[int], Head]) -> TransducerModel:
    """Build a TransducerModel from a resolved model config (see asr_model.build_model).

    Raises:
        ConfigError: a predictor or joiner type this module does not build.
    """
    pconf, jconf = dict(conf["predictor"]), dict(conf["joiner"])
    if pconf.pop("type") != "lstm" or jconf.pop("type") != "additive":
        raise ConfigError("model.predictor.type must be 'lstm' and model.joiner.type 'additive'")
    head = make_head(jconf["dim"])
    predictor = LstmPredictor(head.vocab_sizes, shared_embedding=isinstance(head, LinearHead), **pconf)
    joiner = AdditiveJoiner(encoder.output_dim, predictor.output_dim, **jconf)
    ctc_head = make_head(encoder.output_dim) if conf.get("aux_ctc") else None
    return TransducerModel(encoder, predictor, joiner, head, conf, feat_dim, ctc_head)

