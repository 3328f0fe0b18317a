"""Tests for asrkit/data/targets.py: alignment and soft-target tables as training reads them."""

from __future__ import annotations

import gzip

import kaldiio
import numpy as np
import pytest

from asrkit.data.targets import open_alignments, open_soft_targets, table_rspecifier
from asrkit.errors import AsrkitError
from asrkit.kaldi.posterior import PosteriorArkWriter


def test_table_rspecifier_reads_paths_as_kaldi_would():
    assert table_rspecifier("exp/ali.1.gz") == "ark:gunzip -c exp/ali.1.gz |"
    assert table_rspecifier("post.ark") == "ark:post.ark"
    assert table_rspecifier("ali-to-pdf final.mdl ark:ali.1 ark:- |") == "ark:ali-to-pdf final.mdl ark:ali.1 ark:- |"
    assert table_rspecifier("post.scp") == "scp:post.scp"
    assert table_rspecifier("scp,s:post.scp") == "scp,s:post.scp"
    assert table_rspecifier("my dir/ali 1.gz") == "ark:gunzip -c 'my dir/ali 1.gz' |"


def test_alignments_from_a_gzipped_archive_and_an_scp(tmp_path):
    ali = {"u1": np.array([3, 3, 0], dtype=np.int32), "u2": np.array([1], dtype=np.int32)}
    kaldiio.save_ark(str(tmp_path / "ali.ark"), ali, scp=str(tmp_path / "ali.scp"))
    (tmp_path / "ali.1.gz").write_bytes(gzip.compress((tmp_path / "ali.ark").read_bytes()))
    for spec in (str(tmp_path / "ali.1.gz"), str(tmp_path / "ali.scp"), f"ark:{tmp_path / 'ali.ark'}"):
        table = open_alignments(spec)
        assert sorted(table) == ["u1", "u2"] and table["u1"].dtype == np.int64
        np.testing.assert_array_equal(table["u1"], [3, 3, 0])


def test_soft_targets_need_the_posterior_dimension(tmp_path):
    with PosteriorArkWriter(tmp_path / "post.ark", tmp_path / "post.scp") as w:
        w.write("u", np.array([[1]]), np.array([[1.0]]))
    with pytest.raises(AsrkitError, match="does not record its output dimension; put a post_info.yaml"):
        open_soft_targets(str(tmp_path / "post.scp"))
    (tmp_path / "post_info.yaml").write_text("output_dims: {en: 3}\n")
    table = open_soft_targets(f"scp:{tmp_path}/post.scp")
    np.testing.assert_array_equal(table["u"], [[0, 1, 0]])
    np.testing.assert_array_equal(open_soft_targets(f"ark:{tmp_path}/post.ark")["u"], [[0, 1, 0]])


def test_soft_targets_from_a_gzipped_matrix_archive(tmp_path):
    post = {"u": np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)}
    kaldiio.save_ark(str(tmp_path / "post.ark"), post)
    (tmp_path / "post.ark.gz").write_bytes(gzip.compress((tmp_path / "post.ark").read_bytes()))
    np.testing.assert_array_equal(open_soft_targets(str(tmp_path / "post.ark.gz"))["u"], post["u"])
