"""decoding/inputs: the feature-settings comparison between a data dir and a model's training data."""

from __future__ import annotations

from asrkit.decoding.inputs import describe_feature_difference


def test_feature_difference_names_only_the_options_that_differ():
    # Issue 21.8: the warning printed two whole option dicts instead of naming what differs.
    trained = {"type": "fbank", "options": {"num-mel-bins": "80", "dither": "0", "sample-frequency": "8000"}}
    here = {"type": "fbank", "options": {"num-mel-bins": "40", "dither": "0", "snip-edges": "false",
                                         "sample-frequency": "8000"}}
    assert describe_feature_difference(here, trained) == (
        "--num-mel-bins=40 here, 80 in training; --snip-edges=false here, (default) in training")
    assert describe_feature_difference({"type": "mfcc", "options": {}}, trained) == "mfcc here, fbank in training"
