"""Broken feature tables (truncated or corrupted ark, scp past the end of its ark, NaN/Inf) under
`asrkit compute-cmvn`, plus the cmvn output folder being unwritable or full."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from tests.reliability.conftest import (
    assert_no_partial_output,
    assert_one_line_error,
    copy_dir,
    edit_line,
    file_size_limit,
    run_cli,
    snapshot,
)

BAD_UTT = "despk1-003"  # line 5 of feats.scp in the toy data dir


def _own_ark(data):
    """Give a copied data dir its own feats.ark (the copied scp still points at the original)."""
    scp = (data / "feats.scp").read_text()
    old_ark = scp.split()[1].rsplit(":", 1)[0]
    (data / "feats.scp").write_text(scp.replace(old_ark, str(data / "feats.ark")))


def truncate_ark(data):
    _own_ark(data)
    b = (data / "feats.ark").read_bytes()
    (data / "feats.ark").write_bytes(b[: len(b) // 2])


def corrupt_ark(data):
    """Overwrite the binary header of BAD_UTT's matrix."""
    _own_ark(data)
    line = (data / "feats.scp").read_text().splitlines()[4]
    assert line.startswith(BAD_UTT)
    offset = int(line.rsplit(":", 1)[1])
    b = bytearray((data / "feats.ark").read_bytes())
    b[offset: offset + 6] = b"\xb9XXXXX"
    (data / "feats.ark").write_bytes(bytes(b))


def scp_past_end(data):
    key, rx = (data / "feats.scp").read_text().splitlines()[4].split()
    ark = rx.rsplit(":", 1)[0]
    edit_line(data / "feats.scp", 4, f"{key} {ark}:{10**6}")


def nan_features(data, value=np.nan):
    feats = {k: np.array(v) for k, v in kaldiio.load_scp(str(data / "feats.scp")).items()}
    feats[BAD_UTT][3, 2] = value
    with kaldiio.WriteHelper(f"ark,scp:{data / 'feats.ark'},{data / 'feats.scp'}") as w:
        for k in sorted(feats):
            w(k, feats[k])


# case: (breaker, expected message regex); shared with the train/decode/dump-posteriors tests.
FEATURE_CASES = {
    "truncated-ark": (truncate_ark, r"feats\.scp:\d+: key '[^']+': truncated or corrupted data"),
    "corrupted-ark": (corrupt_ark, rf"feats\.scp:5: key '{BAD_UTT}': corrupted data"),
    "scp-past-end-of-ark": (scp_past_end, rf"feats\.scp:5: key '{BAD_UTT}': truncated or corrupted data: offset "
                                          r"1000000 is past the end of .*feats\.ark"),
    "nan-features": (nan_features, rf"'{BAD_UTT}'.*NaN or Inf"),
    "inf-features": (lambda d: nan_features(d, np.inf), rf"'{BAD_UTT}'.*NaN or Inf"),
}


def _cmvn_dir(feats_dir, tmp_path):
    data = copy_dir(feats_dir, tmp_path / "data")
    for name in ("cmvn.scp", "cmvn.ark"):
        (data / name).unlink()
    return data


@pytest.mark.parametrize("case", list(FEATURE_CASES))
def test_compute_cmvn_names_the_utterance(case, feats_dir, tmp_path):
    breaker, message = FEATURE_CASES[case]
    data = _cmvn_dir(feats_dir, tmp_path)
    breaker(data)
    out = tmp_path / "cmvn"
    res = run_cli("compute-cmvn", data, "--feat-dir", out)
    assert_one_line_error(res, "compute-cmvn", message)
    assert not (data / "cmvn.scp").exists()
    assert_no_partial_output(out, {})


def test_compute_cmvn_nan_names_the_scp_too(feats_dir, tmp_path):
    data = _cmvn_dir(feats_dir, tmp_path)
    nan_features(data)
    res = run_cli("compute-cmvn", data, "--feat-dir", tmp_path / "cmvn")
    assert_one_line_error(res, "compute-cmvn", rf"data/feats\.scp: utterance '{BAD_UTT}': NaN or Inf in its features "
                                               r"\(frame 3, dim 2\)")


def test_compute_cmvn_missing_feats_scp(feats_dir, tmp_path):
    data = _cmvn_dir(feats_dir, tmp_path)
    (data / "feats.scp").unlink()
    assert_one_line_error(run_cli("compute-cmvn", data), "compute-cmvn", r"data/feats\.scp")


def test_compute_cmvn_unwritable_and_full(feats_dir, tmp_path):
    data = _cmvn_dir(feats_dir, tmp_path)
    (tmp_path / "a_file").write_text("")
    res = run_cli("compute-cmvn", data, "--feat-dir", tmp_path / "a_file" / "cmvn")
    assert_one_line_error(res, "compute-cmvn", r"a_file/cmvn: (Not a directory|File exists)")
    out = tmp_path / "cmvn"
    out.mkdir()
    with file_size_limit(100):  # each speaker's stats are ~250 bytes
        res = run_cli("compute-cmvn", data, "--feat-dir", out)
    assert_one_line_error(res, "compute-cmvn", r"cmvn/cmvn_data\.ark: cannot write: File too large")
    assert not (data / "cmvn.scp").exists()
    assert_no_partial_output(out, {})


def test_failed_rerun_keeps_the_old_cmvn(feats_dir, tmp_path):
    data = _cmvn_dir(feats_dir, tmp_path)
    out = tmp_path / "cmvn"
    assert run_cli("compute-cmvn", data, "--feat-dir", out).returncode == 0
    before, old_scp = snapshot(out), (data / "cmvn.scp").read_text()
    nan_features(data)
    assert_one_line_error(run_cli("compute-cmvn", data, "--feat-dir", out), "compute-cmvn", BAD_UTT)
    assert_no_partial_output(out, before)
    assert (data / "cmvn.scp").read_text() == old_scp
