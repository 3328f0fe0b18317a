"""Building a model from its config: the options of each encoder, head, predictor and joiner type
(asrkit.schema sections), and `build_model`, which returns an `AsrModel`, or, for a config with
`predictor` and `joiner` sections, a `TransducerModel`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from asrkit.errors import ConfigError
from asrkit.models.asr_model import AsrModel
from asrkit.models.encoders import ConformerEncoder, DnnEncoder, EmformerEncoder, LstmEncoder
from asrkit.models.heads import Head, LinearHead, LrmfHead, MtlHead
from asrkit.models.transducer import build_transducer
from asrkit.schema import (
    BOOL,
    INT_LIST,
    MODEL_WORDING,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    PROBABILITY,
    OneOf,
    Section,
    number,
    one_of,
    option,
    optional,
    section,
)

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")


@dataclass
class DnnEncoderConfig(Section):
    """Spliced frames through Linear + ReLU + dropout layers (`num_layers` + `hidden_dim` may stand for
    `hidden_dims`)."""

    type = "dnn"
    aliases = ("num_layers", "hidden_dim")
    context: int = option(5, NON_NEGATIVE_INT)
    hidden_dims: list = option([1024, 1024, 1024, 1024], INT_LIST)
    bottleneck_dim: int = option(0, NON_NEGATIVE_INT)
    dropout: float = option(0.0, PROBABILITY)
    subsample: int = option(1, POSITIVE_INT)

    @classmethod
    def prepare(cls, data: dict, where: str) -> dict:
        if "num_layers" not in data and "hidden_dim" not in data:
            return data
        if "hidden_dims" in data:
            raise ConfigError(f"{where}: give either hidden_dims or num_layers + hidden_dim, not both")
        if "num_layers" not in data or "hidden_dim" not in data:
            raise ConfigError(f"{where}: num_layers and hidden_dim go together (or give hidden_dims)")
        layers = POSITIVE_INT.check(data.pop("num_layers"), f"{where}.num_layers")
        width = POSITIVE_INT.check(data.pop("hidden_dim"), f"{where}.hidden_dim")
        return {**data, "hidden_dims": [width] * layers}


@dataclass
class LstmEncoderConfig(Section):
    type = "lstm"
    hidden_dim: int = option(512, POSITIVE_INT)
    num_layers: int = option(3, POSITIVE_INT)
    bidirectional: bool = option(True, BOOL)
    proj_size: int = option(0, NON_NEGATIVE_INT)
    dropout: float = option(0.0, PROBABILITY)
    subsample: int = option(1, POSITIVE_INT)
    stack: int = option(1, POSITIVE_INT)

    def validate(self, where: str) -> None:
        if self.proj_size >= self.hidden_dim:
            raise ConfigError(f"{where}.proj_size: must be smaller than hidden_dim ({self.hidden_dim}), "
                              f"got {self.proj_size}")


@dataclass
class _AttentionEncoderConfig(Section):
    """The options the two self-attention encoders share (listed first in both)."""

    d_model: int = option(256, POSITIVE_INT)
    num_layers: int = option(12, POSITIVE_INT)
    num_heads: int = option(4, POSITIVE_INT)
    ffn_dim: int = option(1024, POSITIVE_INT)

    def validate(self, where: str) -> None:
        if self.d_model % self.num_heads:
            raise ConfigError(f"{where}: d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")


@dataclass
class ConformerEncoderConfig(_AttentionEncoderConfig):
    """torchaudio's Conformer after a Conv2d front end (`subsampling_channels: null` means d_model)
    that keeps one frame in `subsampling` (ESPnet's Conv2dSubsampling2/4/6/8)."""

    type = "conformer"
    depthwise_conv_kernel_size: int = option(31, POSITIVE_INT)
    dropout: float = option(0.1, PROBABILITY)
    subsampling_channels: int | None = option(None, optional(POSITIVE_INT))
    # x2 keeps enough frames for short utterances and dense (character) targets; x8 suits one token per word.
    subsampling: int = option(4, one_of(2, 4, 6, 8))
    pos_enc: bool = option(True, BOOL)
    convolution_first: bool = option(False, BOOL)

    def validate(self, where: str) -> None:
        if self.subsampling_channels is None:
            self.subsampling_channels = self.d_model
        super().validate(where)
        if self.depthwise_conv_kernel_size % 2 == 0:
            raise ConfigError(f"{where}.depthwise_conv_kernel_size: must be odd, got "
                              f"{self.depthwise_conv_kernel_size}")


@dataclass
class EmformerEncoderConfig(_AttentionEncoderConfig):
    """Streaming: torchaudio's Emformer after a frame-stacking front end (`stride` frames -> one)."""

    type = "emformer"
    segment_length: int = option(16, POSITIVE_INT)
    left_context: int = option(32, NON_NEGATIVE_INT)
    right_context: int = option(4, NON_NEGATIVE_INT)
    max_memory_size: int = option(0, NON_NEGATIVE_INT)
    stride: int = option(4, POSITIVE_INT)
    dropout: float = option(0.1, PROBABILITY)
    activation: str = option("gelu", one_of(*ACTIVATIONS))

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.activation == "tanh":
            raise ConfigError(f"{where}.activation: the emformer takes relu, gelu or silu, got 'tanh'")


@dataclass
class HeadConfig(Section):
    """Options every output head has: `num_classes` is the output size for ce/kl training without
    token sets (the trainer reads it; the model's sizes come from `vocab_sizes`); `blank_bias` is the
    initial bias of output 0 (the CTC blank) of every output layer (null: PyTorch's initialisation)."""

    num_classes: int | None = option(None, optional(POSITIVE_INT), omit_none=True)
    # A CTC model that starts out emitting blank on every frame learns words as spikes with blanks
    # between them; from an even start a frame-level model can settle on emitting a word on every
    # frame of a run of equal words, where CTC reads one word (docs/training.md, yesno).
    blank_bias: float | None = option(None, optional(number()), omit_none=True)


@dataclass
class LinearHeadConfig(HeadConfig):
    type = "linear"


@dataclass
class MtlHeadConfig(HeadConfig):
    type = "mtl"


@dataclass
class LrmfHeadConfig(HeadConfig):
    type = "lrmf"
    rank: int = option(64, POSITIVE_INT)


@dataclass
class LstmPredictorConfig(Section):
    type = "lstm"
    embed_dim: int = option(256, POSITIVE_INT)
    hidden_dim: int = option(512, POSITIVE_INT)
    num_layers: int = option(1, POSITIVE_INT)
    dropout: float = option(0.1, PROBABILITY)


@dataclass
class AdditiveJoinerConfig(Section):
    type = "additive"
    dim: int = option(512, POSITIVE_INT)
    activation: str = option("tanh", one_of(*ACTIVATIONS))


@dataclass
class AuxCtcConfig(Section):
    """A transducer's auxiliary CTC loss on the encoder: loss = (1 - w) rnnt + w ctc."""

    weight: float = option(None, number(0.0, 1.0, low_open=True, high_open=True))


ENCODERS = OneOf((DnnEncoderConfig, LstmEncoderConfig, ConformerEncoderConfig, EmformerEncoderConfig),
                 default="conformer", wording=MODEL_WORDING)
HEADS = OneOf((LinearHeadConfig, MtlHeadConfig, LrmfHeadConfig), default="linear", wording=MODEL_WORDING)
PREDICTORS = OneOf((LstmPredictorConfig,), default="lstm", wording=MODEL_WORDING)
JOINERS = OneOf((AdditiveJoinerConfig,), default="additive", wording=MODEL_WORDING)


@dataclass
class ModelConfig(Section):
    """A model: encoder and output head; with `predictor` and `joiner` (`{}` takes their defaults) a
    transducer, which may add `aux_ctc`."""

    encoder: Section = section(ENCODERS)
    head: HeadConfig = section(HEADS)
    predictor: LstmPredictorConfig | None = section(PREDICTORS, optional=True, omit_none=True)
    joiner: AdditiveJoinerConfig | None = section(JOINERS, optional=True, omit_none=True)
    aux_ctc: AuxCtcConfig | None = section(AuxCtcConfig, optional=True, omit_none=True)

    @property
    def is_transducer(self) -> bool:
        return self.predictor is not None

    def validate(self, where: str) -> None:
        if self.predictor is not None or self.joiner is not None:
            self.predictor = self.predictor or LstmPredictorConfig()
            self.joiner = self.joiner or AdditiveJoinerConfig()
        elif self.aux_ctc is not None:
            raise ConfigError(f"{where}.aux_ctc: an auxiliary CTC loss is for transducers (add model.predictor); "
                              "a CTC model is trained with objective.type: ctc")


def model_config_defaults(model_conf: Mapping | None = None) -> dict:
    """Return the model config with every default filled in (a new dict; the input is not changed).

    `model_config_defaults()` gives the defaults of the default types (conformer encoder, linear
    head); `model_config_defaults({"encoder": {"type": "dnn"}})` those of a dnn, and so on. A dnn's
    `num_layers` + `hidden_dim` are resolved into `hidden_dims`; a conformer's
    `subsampling_channels: null` into `d_model`. Sections set to null (e.g. `predictor: null`) are
    left out; the result has the `encoder` and `head` sections, and for a transducer (a config with a
    `predictor` or `joiner` section; `{}` takes the defaults) `predictor` and `joiner` as well, and
    `aux_ctc: {weight: w}` when given (an auxiliary CTC loss on the encoder, see TransducerModel).

    Raises:
        ConfigError: unknown section, type or option, or a value of the wrong kind, naming the key.
    """
    return ModelConfig.read(model_conf, "model").to_dict()


_ENCODERS = {"dnn": DnnEncoder, "lstm": LstmEncoder, "conformer": ConformerEncoder, "emformer": EmformerEncoder}


def _build_encoder(conf: Section, feat_dim: int) -> nn.Module:
    return _ENCODERS[conf.type](feat_dim, **conf.to_dict())


def _build_head(conf: HeadConfig, input_dim: int, vocab_sizes: Mapping[str, int]) -> Head:
    if isinstance(conf, LrmfHeadConfig):
        head = LrmfHead(input_dim, vocab_sizes, conf.rank)
    else:
        head = (LinearHead if conf.type == "linear" else MtlHead)(input_dim, vocab_sizes)
    if conf.blank_bias is not None:
        head.init_blank_bias(conf.blank_bias)
    return head


def build_model(model_conf: Mapping | ModelConfig | None, *, feat_dim: int,
                vocab_sizes: Mapping[str, int]) -> AsrModel:
    """Build an `AsrModel` from a model config.

    Args:
        model_conf: a ModelConfig, or its plain values: `{"encoder": {"type":
            "dnn"|"lstm"|"conformer"|"emformer", ...}, "head": {"type": "linear"|"mtl"|"lrmf", "rank":
            64}}`, plus `predictor` and `joiner` sections for a transducer; missing values take the
            defaults (`model_config_defaults`). The model's `.conf` holds the resolved plain values.
        feat_dim: input feature dimension.
        vocab_sizes: `{lang: V_lang}` in a fixed language order. A linear head takes `{"all": V}`
            (any language tag) or identical sizes.

    Raises:
        ConfigError: bad config values, bad vocab sizes, or differing sizes for a linear head.
    """
    if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
        raise ConfigError(f"feat_dim must be a positive integer, got {feat_dim!r}")
    model = ModelConfig.read(model_conf, "model")
    conf = model.to_dict()
    encoder = _build_encoder(model.encoder, feat_dim)
    if model.is_transducer:
        return build_transducer(encoder, conf, feat_dim, vocab_sizes,
                                lambda dim: _build_head(model.head, dim, vocab_sizes))
    head = _build_head(model.head, encoder.output_dim, vocab_sizes)
    return AsrModel(encoder, head, conf, feat_dim)


def lrmf_model_from_mtl(model: AsrModel, rank: int) -> AsrModel:
    """A new model with a copy of `model`'s encoder and an lrmf head SVD-initialised from its mtl head.

    Raises:
        ConfigError: `model` has no mtl head, or `rank` is larger than the SVD allows.
    """
    if not isinstance(model.head, MtlHead):
        raise ConfigError(f"SVD initialisation of an lrmf head needs a model with an mtl head, "
                          f"not '{model.conf['head']['type']}'")
    conf = copy.deepcopy(model.conf)
    conf["head"] = {"type": "lrmf", "rank": rank}
    head = LrmfHead.from_mtl(model.head, rank)
    return AsrModel(copy.deepcopy(model.encoder), head, model_config_defaults(conf), model.feat_dim)
