"""Output heads: one shared output layer, one per language (MTL), or low-rank factorised (LRMF).

A head maps encoder frames `(batch, time, hidden)` and a language tag to unnormalised logits
`(batch, time, V_lang)`. The LRMF head follows "Multi-lingual speech recognition with low-rank
multi-task DNNs": a shared linear map `A: hidden -> rank` (no activation) followed by one
`B_l: rank -> V_l` per language, which cuts the output-layer parameters against one full-rank layer
per language and can be initialised from a trained MTL head by an SVD.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn

from asrkit.errors import ConfigError

ANY_LANGUAGE = "all"  # a linear head given {"all": V} serves every language tag


def _check_vocab_sizes(vocab_sizes: Mapping[str, int]) -> dict[str, int]:
    if not vocab_sizes:
        raise ConfigError("vocab_sizes is empty: the model needs at least one language")
    out = {}
    for lang, size in vocab_sizes.items():
        if not isinstance(lang, str) or not lang or "." in lang:
            raise ConfigError(f"invalid language tag {lang!r}: it must be a non-empty string without '.'")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"vocabulary size for language '{lang}' must be a positive integer, got {size!r}")
        out[lang] = size
    return out


def _unknown_language(lang: str, languages) -> ConfigError:
    return ConfigError(f"language '{lang}' has no output layer in this model (languages: {', '.join(languages)})")


class Head(nn.Module, metaclass=abc.ABCMeta):
    """Abstract base: `forward(h (B, T, H), lang) -> logits (B, T, V_lang)`.

    Subclasses provide `vocab_sizes` (`{lang: V}` in order), `shared_parameters()` (used by every
    language) and `language_parameters(lang)` (used only by `lang`), and `add_languages`.
    """

    input_dim: int
    vocab_sizes: dict[str, int]

    @property
    def languages(self) -> list[str]:
        return list(self.vocab_sizes)

    @abc.abstractmethod
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """See the class docstring."""

    @abc.abstractmethod
    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        """See the class docstring."""

    @abc.abstractmethod
    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """See the class docstring."""

    def init_blank_bias(self, value: float) -> None:
        """Set the bias of output 0 (the CTC blank) of every output layer to `value`."""
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear) and layer.bias is not None:
                    layer.bias[0] = value

    def _new_languages(self, vocab_sizes: Mapping[str, int]) -> dict[str, int]:
        vocab_sizes = _check_vocab_sizes(vocab_sizes)
        clash = [lang for lang in vocab_sizes if lang in self.vocab_sizes]
        if clash:
            raise ConfigError(f"language(s) {', '.join(clash)} already have an output layer in this model")
        return vocab_sizes


class LinearHead(Head):
    """One `Linear(H, V)` for every language.

    Args:
        input_dim: H.
        vocab_sizes: `{"all": V}` (any language tag accepted) or `{lang: V, ...}` with one size for all.

    Raises:
        ConfigError: the languages have different vocabulary sizes.
    """

    def __init__(self, input_dim: int, vocab_sizes: Mapping[str, int]):
        super().__init__()
        vocab_sizes = _check_vocab_sizes(vocab_sizes)
        sizes = set(vocab_sizes.values())
        if len(sizes) != 1:
            raise ConfigError(f"head type 'linear' shares one output layer, but the vocabulary sizes differ "
                              f"({', '.join(f'{k}={v}' for k, v in vocab_sizes.items())}); use head type 'mtl' or 'lrmf'")
        self.input_dim = input_dim
        self.vocab_sizes = vocab_sizes
        self.output = nn.Linear(input_dim, sizes.pop())

    def forward(self, h: Tensor, lang: str) -> Tensor:
        if lang not in self.vocab_sizes and ANY_LANGUAGE not in self.vocab_sizes:
            raise _unknown_language(lang, self.languages)
        return self.output(h)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.output.parameters()

    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        return iter(())

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """Register more language tags on the shared layer; their vocabulary size must be the same."""
        vocab_sizes = self._new_languages(vocab_sizes)
        size = self.output.out_features
        bad = {k: v for k, v in vocab_sizes.items() if v != size}
        if bad:
            raise ConfigError(f"head type 'linear' has one output layer of size {size}; cannot add "
                              f"{', '.join(f'{k}={v}' for k, v in bad.items())} (use head type 'mtl' or 'lrmf')")
        self.vocab_sizes.update(vocab_sizes)


class MtlHead(Head):
    """One full-rank `Linear(H, V_l)` per language (multi-task learning on a shared encoder).

    Args:
        input_dim: H.
        vocab_sizes: `{lang: V_l}`; the order is kept.
    """

    def __init__(self, input_dim: int, vocab_sizes: Mapping[str, int]):
        super().__init__()
        vocab_sizes = _check_vocab_sizes(vocab_sizes)
        self.input_dim = input_dim
        self.vocab_sizes = dict(vocab_sizes)
        self.outputs = nn.ModuleDict({lang: nn.Linear(input_dim, size) for lang, size in vocab_sizes.items()})

    def forward(self, h: Tensor, lang: str) -> Tensor:
        if lang not in self.outputs:
            raise _unknown_language(lang, self.languages)
        return self.outputs[lang](h)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        return self.outputs[lang].parameters()

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """Add a freshly initialised full-rank output layer for each new language."""
        vocab_sizes = self._new_languages(vocab_sizes)
        device = next(self.parameters()).device
        for lang, size in vocab_sizes.items():
            self.outputs[lang] = nn.Linear(self.input_dim, size, device=device)
        self.vocab_sizes.update(vocab_sizes)


class LrmfHead(Head):
    """Low-rank factorised multi-task output: shared `A: Linear(H, r, bias=False)`, per-language `B_l: Linear(r, V_l)`.

    Output-layer parameters: `H*r + sum_l (r*V_l + V_l)`, against `sum_l (H*V_l + V_l)` for an
    `MtlHead` (see `full_rank_params`, `lrmf_params`).

    Args:
        input_dim: H.
        vocab_sizes: `{lang: V_l}`; the order is kept.
        rank: r.
    """

    def __init__(self, input_dim: int, vocab_sizes: Mapping[str, int], rank: int):
        super().__init__()
        vocab_sizes = _check_vocab_sizes(vocab_sizes)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"head rank must be a positive integer, got {rank!r}")
        self.input_dim = input_dim
        self.rank = rank
        self.vocab_sizes = dict(vocab_sizes)
        self.shared = nn.Linear(input_dim, rank, bias=False)  # A
        self.outputs = nn.ModuleDict({lang: nn.Linear(rank, size) for lang, size in vocab_sizes.items()})  # B_l

    def forward(self, h: Tensor, lang: str) -> Tensor:
        if lang not in self.outputs:
            raise _unknown_language(lang, self.languages)
        return self.outputs[lang](self.shared(h))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.shared.parameters()

    def language_parameters(self, lang: str) -> Iterator[nn.Parameter]:
        return self.outputs[lang].parameters()

    def add_languages(self, vocab_sizes: Mapping[str, int]) -> None:
        """Add a freshly initialised `B_l` on the shared `A` for each new language (cross-language transfer)."""
        vocab_sizes = self._new_languages(vocab_sizes)
        device = self.shared.weight.device
        for lang, size in vocab_sizes.items():
            self.outputs[lang] = nn.Linear(self.rank, size, device=device)
        self.vocab_sizes.update(vocab_sizes)

    @staticmethod
    def lrmf_params(input_dim: int, vocab_sizes: Mapping[str, int], rank: int) -> int:
        """Closed-form output-layer parameter count `H*r + sum_l (r*V_l + V_l)`."""
        return input_dim * rank + sum(rank * v + v for v in vocab_sizes.values())

    @staticmethod
    def full_rank_params(input_dim: int, vocab_sizes: Mapping[str, int]) -> int:
        """Parameter count of one full-rank output layer per language, `sum_l (H*V_l + V_l)`."""
        return sum(input_dim * v + v for v in vocab_sizes.values())

    @classmethod
    def from_mtl(cls, mtl_head: MtlHead, rank: int) -> LrmfHead:
        """Initialise an LRMF head from a trained MTL head by a truncated SVD.

        The weights `W_l (V_l x H)` are stacked into `W (sum V_l x H) ~= U S V^T`; then
        `A = S_r^{1/2} V_r^T (r x H)` and `B_l` = the rows of `U_r S_r^{1/2}` belonging to language l.
        Biases are copied. At `rank = min(sum V_l, H)` the logits equal the MTL head's (up to rounding).

        Raises:
            ConfigError: `rank` exceeds `min(sum V_l, H)`, the rank an SVD of W can give.
        """
        langs = mtl_head.languages
        weight = torch.cat([mtl_head.outputs[lang].weight.detach() for lang in langs], dim=0)
        max_rank = min(weight.shape)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= max_rank:
            raise ConfigError(f"SVD initialisation needs 1 <= rank <= {max_rank} (min of total vocabulary "
                              f"{weight.shape[0]} and hidden size {weight.shape[1]}), got {rank!r}")
        # float64 so that a full-rank factorisation reproduces the MTL logits to rounding.
        u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
        root = s[:rank].sqrt()
        a = root.unsqueeze(1) * vh[:rank]  # (r, H)
        b = u[:, :rank] * root.unsqueeze(0)  # (sum V, r)
        head = cls(mtl_head.input_dim, mtl_head.vocab_sizes, rank).to(weight.device)
        dtype = weight.dtype
        with torch.no_grad():
            head.shared.weight.copy_(a.to(dtype))
            start = 0
            for lang in langs:
                size = mtl_head.vocab_sizes[lang]
                head.outputs[lang].weight.copy_(b[start:start + size].to(dtype))
                head.outputs[lang].bias.copy_(mtl_head.outputs[lang].bias.detach())
                start += size
        return head

