"""The feature-settings comparison between a data dir and a model's training data (decode's warning)."""

from __future__ import annotations

from asrkit.data.features_info import feature_differences


def test_feature_difference_names_only_the_options_that_differ():
    # Issue 21.8: the warning printed two whole option dicts instead of naming what differs.
    trained = {"type": "fbank", "options": {"num-mel-bins": "80", "dither": "0", "sample-frequency": "8000"}}
    here = {"type": "fbank", "options": {"num-mel-bins": "40", "dither": "0", "snip-edges": "false",
                                         "sample-frequency": "8000"}}
    assert feature_differences(trained, here) == [
        "num-mel-bins: 40 here, 80 in training", "snip-edges: false here, true in training"]
    assert feature_differences(trained, {"type": "mfcc", "options": {}}) == ["mfcc here, fbank in training"]
