"""Building a model from a model config of plain values.

`build_model(model_conf, feat_dim=..., vocab_sizes=...)` resolves the config (fills defaults, rejects
unknown keys and bad values with a ConfigError naming the key) and returns an `AsrModel`, or, for a
config with `predictor` and `joiner` sections, a `TransducerModel`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn

from asrkit.errors import ConfigError
from asrkit.models.asr_model import AsrModel
from asrkit.models.encoders import ConformerEncoder, DnnEncoder, EmformerEncoder, LstmEncoder
from asrkit.models.heads import Head, LinearHead, LrmfHead, MtlHead
from asrkit.models.transducer import build_transducer

# Defaults per type. Values only; `_ENCODER_BUILDERS` / `_build_head` hold the behaviour.
ENCODER_DEFAULTS: dict[str, dict] = {
    "dnn": {"context": 5, "hidden_dims": [1024, 1024, 1024, 1024], "bottleneck_dim": 0, "dropout": 0.0,
            "subsample": 1},
    "lstm": {"hidden_dim": 512, "num_layers": 3, "bidirectional": True, "proj_size": 0, "dropout": 0.0,
             "subsample": 1, "stack": 1},
    "conformer": {"d_model": 256, "num_layers": 12, "num_heads": 4, "ffn_dim": 1024,
                  "depthwise_conv_kernel_size": 31, "dropout": 0.1, "subsampling_channels": None,
                  "pos_enc": True, "convolution_first": False, "subsampling": 4},
    # Streaming: torchaudio's Emformer after a frame-stacking front end (`stride` frames -> one).
    "emformer": {"d_model": 256, "num_layers": 12, "num_heads": 4, "ffn_dim": 1024, "segment_length": 16,
                 "left_context": 32, "right_context": 4, "max_memory_size": 0, "stride": 4, "dropout": 0.1,
                 "activation": "gelu"},
}
# Transducer sections (a model config with these builds a TransducerModel).
PREDICTOR_DEFAULTS: dict[str, dict] = {"lstm": {"embed_dim": 256, "hidden_dim": 512, "num_layers": 1,
                                                "dropout": 0.1}}
JOINER_DEFAULTS: dict[str, dict] = {"additive": {"dim": 512, "activation": "tanh"}}
HEAD_DEFAULTS: dict[str, dict] = {"linear": {}, "mtl": {}, "lrmf": {"rank": 64}}
DEFAULT_ENCODER_TYPE = "conformer"
DEFAULT_HEAD_TYPE = "linear"

# How each value is checked: "int>0", "int>=0", "prob" (0 <= p < 1), "bool", "int_list", "int>0|None".
_KINDS = {
    "context": "int>=0", "hidden_dims": "int_list", "bottleneck_dim": "int>=0", "dropout": "prob",
    "subsample": "int>0", "stack": "int>0", "hidden_dim": "int>0", "num_layers": "int>0", "bidirectional": "bool",
    "proj_size": "int>=0", "d_model": "int>0", "num_heads": "int>0", "ffn_dim": "int>0",
    "depthwise_conv_kernel_size": "int>0", "subsampling_channels": "int>0|None", "pos_enc": "bool",
    "convolution_first": "bool", "rank": "int>0", "segment_length": "int>0", "left_context": "int>=0",
    "right_context": "int>=0", "max_memory_size": "int>=0", "stride": "int>0", "activation": "activation",
    "embed_dim": "int>0", "dim": "int>0", "subsampling": "int>0",
}
_ACTIVATIONS = ("relu", "gelu", "silu", "tanh")


def _check_value(where: str, key: str, value):
    kind = _KINDS[key]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int>0|None":
        ok = value is None or (is_int and value > 0)
    elif kind == "int>0":
        ok = is_int and value > 0
    elif kind == "int>=0":
        ok = is_int and value >= 0
    elif kind == "prob":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "activation":
        ok = value in _ACTIVATIONS
    else:  # int_list
        ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    if not ok:
        wanted = {"int>0": "a positive integer", "int>=0": "a non-negative integer", "prob": "a number in [0, 1)",
                  "bool": "true or false", "int_list": "a non-empty list of positive integers",
                  "int>0|None": "a positive integer or null",
                  "activation": f"one of {', '.join(_ACTIVATIONS)}"}[kind]
        raise ConfigError(f"{where}.{key}: expected {wanted}, got {value!r}")


def _resolve_section(where: str, section: Mapping | None, defaults_by_type: dict[str, dict],
                     default_type: str, aliases_by_type: Mapping[str, tuple[str, ...]] | None = None) -> dict:
    section = dict(section or {})
    kind = section.pop("type", default_type)
    if kind not in defaults_by_type:
        raise ConfigError(f"{where}.type: unknown type {kind!r} (choose from {', '.join(defaults_by_type)})")
    defaults = defaults_by_type[kind]
    aliases = (aliases_by_type or {}).get(kind, ())
    unknown = [k for k in section if k not in defaults and k not in aliases]
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(map(repr, unknown))} for type '{kind}' "
                          f"(known: {', '.join(defaults) or 'none'})")
    resolved = {"type": kind, **copy.deepcopy(defaults)}
    resolved.update(section)
    return resolved


def model_config_defaults(model_conf: Mapping | None = None) -> dict:
    """Return the model config with every default filled in (a new dict; the input is not changed).

    `model_config_defaults()` gives the defaults of the default types (conformer encoder, linear
    head); `model_config_defaults({"encoder": {"type": "dnn"}})` those of a dnn, and so on. A dnn's
    `num_layers` + `hidden_dim` are resolved into `hidden_dims`; a conformer's
    `subsampling_channels: null` into `d_model`. Sections set to null (e.g. `predictor: null`) are
    ignored; the result has the `encoder` and `head` sections, and for a transducer (a config with a
    `predictor` or `joiner` section; `{}` takes the defaults) `predictor` and `joiner` as well, and
    `aux_ctc: {weight: w}` when given (an auxiliary CTC loss on the encoder, see TransducerModel).

    Raises:
        ConfigError: unknown section, type or option, or a value of the wrong kind, naming the key.
    """
    # A section set to null counts as absent (a trainer config may carry `predictor: null` etc.).
    model_conf = {k: v for k, v in (model_conf or {}).items() if v is not None}
    unknown = [k for k in model_conf if k not in ("encoder", "head", "predictor", "joiner", "aux_ctc")]
    if unknown:
        raise ConfigError(f"model: unknown section(s) {', '.join(map(repr, unknown))} "
                          "(known: encoder, head, predictor, joiner, aux_ctc)")
    # A dnn's width may be given as hidden_dims, or as num_layers + hidden_dim (resolved to hidden_dims).
    enc = _resolve_section("model.encoder", model_conf.get("encoder"), ENCODER_DEFAULTS, DEFAULT_ENCODER_TYPE,
                           aliases_by_type={"dnn": ("num_layers", "hidden_dim")})
    if enc["type"] == "dnn" and ("num_layers" in enc or "hidden_dim" in enc):
        if "hidden_dims" in (model_conf.get("encoder") or {}):
            raise ConfigError("model.encoder: give either hidden_dims or num_layers + hidden_dim, not both")
        if "num_layers" not in enc or "hidden_dim" not in enc:
            raise ConfigError("model.encoder: num_layers and hidden_dim go together (or give hidden_dims)")
        for key in ("num_layers", "hidden_dim"):
            _check_value("model.encoder", key, enc[key])
        enc["hidden_dims"] = [enc.pop("hidden_dim")] * enc.pop("num_layers")
    if enc["type"] == "dnn":
        enc["hidden_dims"] = list(enc["hidden_dims"]) if isinstance(enc["hidden_dims"], tuple) else enc["hidden_dims"]
    for key, value in enc.items():
        if key != "type":
            _check_value("model.encoder", key, value)
    if enc["type"] == "conformer":
        if enc["subsampling_channels"] is None:
            enc["subsampling_channels"] = enc["d_model"]
        if enc["d_model"] % enc["num_heads"]:
            raise ConfigError(f"model.encoder: d_model ({enc['d_model']}) must be divisible by num_heads "
                              f"({enc['num_heads']})")
        if enc["subsampling"] not in (2, 4, 6, 8):
            raise ConfigError(f"model.encoder.subsampling: the conformer subsamples by 2, 4, 6 or 8, "
                              f"not {enc['subsampling']}")
        if enc["depthwise_conv_kernel_size"] % 2 == 0:
            raise ConfigError(f"model.encoder.depthwise_conv_kernel_size: must be odd, got "
                              f"{enc['depthwise_conv_kernel_size']}")
    if enc["type"] == "emformer":
        if enc["d_model"] % enc["num_heads"]:
            raise ConfigError(f"model.encoder: d_model ({enc['d_model']}) must be divisible by num_heads "
                              f"({enc['num_heads']})")
        if enc["activation"] == "tanh":
            raise ConfigError("model.encoder.activation: the emformer takes relu, gelu or silu, got 'tanh'")
    if enc["type"] == "lstm" and enc["proj_size"] >= enc["hidden_dim"]:
        raise ConfigError(f"model.encoder.proj_size: must be smaller than hidden_dim ({enc['hidden_dim']}), "
                          f"got {enc['proj_size']}")
    head = _resolve_section("model.head", model_conf.get("head"), HEAD_DEFAULTS, DEFAULT_HEAD_TYPE)
    for key, value in head.items():
        if key != "type":
            _check_value("model.head", key, value)
    if "predictor" not in model_conf and "joiner" not in model_conf:
        if "aux_ctc" in model_conf:
            raise ConfigError("model.aux_ctc: an auxiliary CTC loss is for transducers (add model.predictor); "
                              "a CTC model is trained with objective.type: ctc")
        return {"encoder": enc, "head": head}
    predictor = _resolve_section("model.predictor", model_conf.get("predictor"), PREDICTOR_DEFAULTS, "lstm")
    joiner = _resolve_section("model.joiner", model_conf.get("joiner"), JOINER_DEFAULTS, "additive")
    for where, section in (("model.predictor", predictor), ("model.joiner", joiner)):
        for key, value in section.items():
            if key != "type":
                _check_value(where, key, value)
    out = {"encoder": enc, "head": head, "predictor": predictor, "joiner": joiner}
    if "aux_ctc" in model_conf:
        aux = dict(model_conf["aux_ctc"]) if isinstance(model_conf["aux_ctc"], Mapping) else None
        if aux is None or set(aux) != {"weight"}:
            raise ConfigError("model.aux_ctc must be {weight: w} with 0 < w < 1, "
                              f"not {model_conf['aux_ctc']!r}")
        w = aux["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < 1:
            raise ConfigError(f"model.aux_ctc.weight: expected a number with 0 < w < 1, got {w!r}")
        out["aux_ctc"] = {"weight": float(w)}
    return out


def _build_encoder(conf: dict, feat_dim: int) -> nn.Module:
    options = {k: v for k, v in conf.items() if k != "type"}
    if conf["type"] == "dnn":
        return DnnEncoder(feat_dim, **options)
    if conf["type"] == "lstm":
        return LstmEncoder(feat_dim, **options)
    if conf["type"] == "emformer":
        return EmformerEncoder(feat_dim, **options)
    return ConformerEncoder(feat_dim, **options)


def _build_head(conf: dict, input_dim: int, vocab_sizes: Mapping[str, int]) -> Head:
    if conf["type"] == "linear":
        return LinearHead(input_dim, vocab_sizes)
    if conf["type"] == "mtl":
        return MtlHead(input_dim, vocab_sizes)
    return LrmfHead(input_dim, vocab_sizes, conf["rank"])


def build_model(model_conf: Mapping | None, *, feat_dim: int, vocab_sizes: Mapping[str, int]) -> AsrModel:
    """Build an `AsrModel` from a model config.

    Args:
        model_conf: `{"encoder": {"type": "dnn"|"lstm"|"conformer"|"emformer", ...}, "head": {"type":
            "linear"|"mtl"|"lrmf", "rank": 64}}`, plus `predictor` and `joiner` sections for a
            transducer; missing values take the defaults (`model_config_defaults`).
        feat_dim: input feature dimension.
        vocab_sizes: `{lang: V_lang}` in a fixed language order. A linear head takes `{"all": V}`
            (any language tag) or identical sizes.

    Raises:
        ConfigError: bad config values, bad vocab sizes, or differing sizes for a linear head.
    """
    if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
        raise ConfigError(f"feat_dim must be a positive integer, got {feat_dim!r}")
    conf = model_config_defaults(model_conf)
    encoder = _build_encoder(conf["encoder"], feat_dim)
    if "predictor" in conf:
        return build_transducer(encoder, conf, feat_dim, vocab_sizes,
                                lambda dim: _build_head(conf["head"], dim, vocab_sizes))
    head = _build_head(conf["head"], encoder.output_dim, vocab_sizes)
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
