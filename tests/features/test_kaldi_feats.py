"""Fbank/MFCC options and per-utterance extraction against real Kaldi outputs (tests/fixtures/kaldi)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from asrkit.errors import AudioError, ConfigError, FormatError
from asrkit.features.kaldi_feats import (
    FeatureOptions,
    compute_features,
    load_feature_options,
    read_kaldi_conf,
)
from tests.features.conftest import load_ark, read_wav_scp

# (golden ark, wav.scp, feature type, options) as in KALDI_COMMANDS.txt (all with --dither=0).
KALDI_CASES = [
    ("fbank80.ark", "wav.scp", "fbank", ["num-mel-bins=80"]),
    ("fbank40_opts.ark", "wav.scp", "fbank",
     ["num-mel-bins=40", "snip-edges=false", "low-freq=20", "high-freq=-400", "use-energy=true"]),
    ("fbank40_8k.ark", "wav8k.scp", "fbank", ["num-mel-bins=40", "sample-frequency=8000"]),
    ("mfcc13.ark", "wav.scp", "mfcc", []),
    ("mfcc20_opts.ark", "wav.scp", "mfcc", ["num-ceps=20", "num-mel-bins=40", "snip-edges=false"]),
]


def lifter(opts: FeatureOptions) -> np.ndarray:
    i = np.arange(opts.num_ceps)
    return 1.0 + 0.5 * opts.cepstral_lifter * np.sin(np.pi * i / opts.cepstral_lifter)


def assert_close_to_kaldi(ours: np.ndarray, kaldi: np.ndarray, opts: FeatureOptions) -> None:
    """Identical shape; mean |diff| <= 1e-4 and max |diff| <= 0.05 on log values.

    MFCCs are liftered (scaled by up to 1 + L/2 = 12), so they are compared before the lifter, i.e. on
    an orthonormal DCT of log values; C0 is the log energy (use-energy) and is compared as is.
    """
    assert ours.shape == kaldi.shape
    if opts.feat_type == "mfcc":
        scale = lifter(opts)
        if opts.use_energy:
            scale[0] = 1.0
        ours, kaldi = ours / scale, kaldi / scale
    diff = np.abs(ours - kaldi)
    assert diff.mean() <= 1e-4, diff.mean()
    assert diff.max() <= 0.05, diff.max()


@pytest.mark.parametrize("ark,scp,feat_type,options", KALDI_CASES, ids=[c[0] for c in KALDI_CASES])
def test_matches_kaldi(ark, scp, feat_type, options):
    golden = load_ark(ark)
    waves = read_wav_scp(scp)
    opts = load_feature_options(feat_type, overrides=options)
    assert set(golden) == set(waves)
    for utt, (samples, rate) in waves.items():
        assert rate == opts.sample_frequency
        feats = compute_features(samples, opts, utt)
        assert isinstance(feats, torch.Tensor) and feats.dtype == torch.float32
        assert feats.shape[0] == opts.num_frames(len(samples)) == golden[utt].shape[0]
        assert_close_to_kaldi(feats.numpy(), golden[utt], opts)


def test_defaults_are_kaldis_except_dither():
    fbank = load_feature_options("fbank")
    assert (fbank.num_mel_bins, fbank.frame_length, fbank.frame_shift, fbank.window_type) == (23, 25.0, 10.0, "povey")
    assert fbank.snip_edges and fbank.remove_dc_offset and fbank.round_to_power_of_two and fbank.raw_energy
    assert fbank.dither == 0.0 and fbank.energy_floor == 0.0 and fbank.use_energy is False
    mfcc = load_feature_options("mfcc")
    assert mfcc.use_energy is True and mfcc.num_ceps == 13 and mfcc.cepstral_lifter == 22.0 and mfcc.dim == 13
    assert (fbank.window_size, fbank.window_shift, fbank.padded_window_size) == (400, 160, 512)
    assert fbank.num_frames(16000 * 10) == 998  # Kaldi's count for 10 s (snip-edges)
    assert load_feature_options("fbank", overrides=["snip-edges=false"]).num_frames(16000 * 10) == 1000


def test_conf_file(tmp_path):
    conf = tmp_path / "fbank.conf"
    conf.write_text("# 80-dim fbank\n--num-mel-bins=80  # comment\n\n--snip_edges=false\n--use-energy\n")
    values = read_kaldi_conf(conf, "fbank")
    assert values == {"num_mel_bins": ("num-mel-bins", 80), "snip_edges": ("snip-edges", False),
                      "use_energy": ("use-energy", True)}
    opts = load_feature_options("fbank", conf, ["--num-mel-bins=40", "dither=0.5"])
    assert (opts.num_mel_bins, opts.snip_edges, opts.use_energy, opts.dither) == (40, False, True, 0.5)
    assert opts.dim == 41
    assert opts.to_kaldi_args(only_explicit=True) == [
        "--dither=0.5", "--snip-edges=false", "--num-mel-bins=40", "--use-energy=true"]
    # The written conf reads back as the same options.
    full = tmp_path / "full.conf"
    full.write_text(opts.to_kaldi_conf())
    assert load_feature_options("fbank", full) == opts


@pytest.mark.parametrize("line,message", [
    ("--num-mel-bin=80", "unknown option --num-mel-bin for compute-fbank-feats"),
    ("num-mel-bins=80", "expected an option of the form --name=value"),
    ("--num-mel-bins=eighty", "invalid value 'eighty' for option --num-mel-bins"),
    ("--snip-edges=maybe", "invalid value 'maybe' for boolean option --snip-edges"),
    ("--num-ceps=13", "option --num-ceps is not an option of compute-fbank-feats"),
    ("--allow-downsample=true", "Kaldi option --allow-downsample is not supported by asrkit"),
    ("--num-mel-bins", "option --num-mel-bins needs a value"),
])
def test_conf_errors_name_file_and_line(tmp_path, line, message):
    conf = tmp_path / "fbank.conf"
    conf.write_text(f"--frame-shift=10\n{line}\n")
    with pytest.raises(FormatError) as e:
        load_feature_options("fbank", conf)
    assert str(e.value).startswith(f"{conf}:2: ")
    assert message in str(e.value)


def test_bad_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown option --foo for compute-mfcc-feats"):
        load_feature_options("mfcc", overrides=["foo=1"])
    with pytest.raises(ConfigError, match="--num-ceps=30: must lie in"):
        load_feature_options("mfcc", overrides=["num-ceps=30"])
    with pytest.raises(ConfigError, match="high-freq=9000"):
        load_feature_options("fbank", overrides={"high-freq": 9000})
    conf = tmp_path / "bad.conf"
    conf.write_text("--window-type=kaiser\n")
    with pytest.raises(ConfigError, match=f"--window-type=kaiser: must be one of .* \\(in {conf}\\)"):
        load_feature_options("fbank", conf)


def test_too_short_utterance_names_it():
    opts = load_feature_options("fbank")
    with pytest.raises(AudioError, match="^short-utt: 399 samples is too short for one 25.0 ms frame"):
        compute_features(np.zeros(399, dtype=np.float32), opts, "short-utt")
    assert compute_features(np.ones(400, dtype=np.float32), opts, "u").shape == (1, 23)


def test_dither_is_seeded_per_utterance(waves):
    samples = waves["spkA-en-001"][0]
    opts = load_feature_options("fbank", overrides=["dither=1.0"])
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    a = compute_features(samples, opts, "spkA-en-001")
    b = compute_features(samples, opts, "spkA-en-001")
    c = compute_features(samples, opts, "other-key")
    assert torch.equal(torch.rand(1), expected)  # the caller's RNG state is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)
    plain = compute_features(samples, load_feature_options("fbank"), "spkA-en-001")
    assert 0 < float((a - plain).abs().mean()) < 0.5 and math.isfinite(float(a.sum()))


@pytest.mark.parametrize("feat_type", ["fbank", "mfcc"])
def test_recorded_defaults_are_feature_options_defaults(feat_type):
    """`asrkit.data.features_info.KALDI_DEFAULTS` (what a conf file leaves out, for decode's
    comparison of feature settings) must stay what FeatureOptions computes with."""
    from asrkit.data.features_info import KALDI_DEFAULTS

    args = dict(a[2:].split("=", 1) for a in FeatureOptions(feat_type=feat_type).to_kaldi_args())
    args.pop("dither")  # asrkit's 0, not Kaldi's 1: never compared
    assert {k: v for k, v in KALDI_DEFAULTS[feat_type].items()} == args


def test_mel_channels_that_collapse_at_8khz_are_named():
    # Issue 21: 80 mel bins at 8 kHz gave identical channels (1 = 2 and 6 = 7) without a word.
    opts = load_feature_options("fbank", overrides=["num-mel-bins=80", "sample-frequency=8000"])
    assert opts.collapsed_mel_channels() == [(1, 2), (6, 7)]
    assert opts.mel_bank_warning() == (
        "--num-mel-bins=80 is too fine for 8000 Hz audio (256-point FFT): mel channels 1 = 2, 6 = 7 weigh one "
        "and the same FFT bin and carry the same information; use --num-mel-bins=74 or fewer (e.g. 40 at 8 kHz)")
    # The two channels really are the same feature up to a constant.
    samples = np.random.default_rng(0).normal(0, 1000, 8000).astype(np.float32)
    feats = compute_features(samples, opts).numpy()
    assert np.allclose(feats[:, 1] - feats[:, 2], (feats[:, 1] - feats[:, 2]).mean(), atol=1e-4)
    for ok in (["num-mel-bins=40", "sample-frequency=8000"], ["num-mel-bins=80", "sample-frequency=16000"]):
        assert load_feature_options("fbank", overrides=ok).mel_bank_warning() is None
