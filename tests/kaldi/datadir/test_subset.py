"""subset_data_dir: every selector of utils/subset_data_dir.sh, and --lang (subset.py)."""

from __future__ import annotations

import os

import pytest

from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import MARKER
from asrkit.kaldi.datadir import subset_data_dir, validate_data_dir
from tests.kaldi.datadir.helpers import UTTS, assert_valid, lines, to_segments, utt_ids, write


@pytest.mark.parametrize("kwargs,expected", [
    ({"first": 2}, UTTS[:2]),
    ({"last": 2}, UTTS[4:]),
    ({"shortest": 2}, ["spkB-de-001", "spkC-fr-002"]),       # 2.04 s and 1.16 s
    ({"per_spk": 1}, ["spkA-en-001", "spkB-de-001", "spkC-fr-001"]),
])
def test_subset_selectors(fixture_datadir, tmp_path, kwargs, expected):
    write(fixture_datadir, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    dst = tmp_path / "sub"
    assert subset_data_dir(fixture_datadir, dst, **kwargs) == dst
    assert utt_ids(dst) == expected
    src_text = set(lines(fixture_datadir, "text"))
    for name in ("text", "wav.scp", "utt2lang", "utt2dur"):
        assert [x.split()[0] for x in lines(dst, name)] == expected
    assert set(lines(dst, "text")) <= src_text                 # lines copied byte for byte
    assert [x.split()[0] for x in lines(dst, "cmvn.scp")] == sorted({u[:4] for u in expected})
    assert_valid(dst, no_feats=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_subset_per_spk_spacing_follows_kaldi(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    utts = [f"s-{i}" for i in range(5)]
    write(src, "utt2spk", "".join(f"{u} s\n" for u in utts))
    # 5 utterances, 2 per speaker: skip = 5 // 2 = 2, so utterances 0 and 2.
    subset_data_dir(src, tmp_path / "dst", per_spk=2)
    assert utt_ids(tmp_path / "dst") == ["s-0", "s-2"]


def test_subset_lists(fixture_datadir, tmp_path):
    write(tmp_path, "spk.list", "spkC\nspkA\n")
    subset_data_dir(fixture_datadir, tmp_path / "a", spk_list=tmp_path / "spk.list")
    assert utt_ids(tmp_path / "a") == UTTS[:2] + UTTS[4:]
    write(tmp_path, "utt.list", "spkB-de-002 x\nnot-there\nspkA-en-001\n")
    subset_data_dir(fixture_datadir, tmp_path / "b", utt_list=tmp_path / "utt.list")
    assert utt_ids(tmp_path / "b") == ["spkA-en-001", "spkB-de-002"]


def test_subset_hours_and_random_are_seeded(fixture_datadir, tmp_path):
    durs = {x.split()[0]: float(x.split()[1]) for x in lines(fixture_datadir, "utt2dur")}
    picks = {}
    for seed in range(4):
        out = subset_data_dir(fixture_datadir, tmp_path / f"h{seed}", hours=6.0 / 3600, seed=seed)
        picks[seed] = utt_ids(out)
        total = sum(durs[u] for u in picks[seed])
        # Utterances are added until the total reaches 6 s: the last one added crossed it.
        assert total >= 6.0 and total - max(durs[u] for u in picks[seed]) < 6.0
    again = subset_data_dir(fixture_datadir, tmp_path / "again", hours=6.0 / 3600, seed=1)
    assert utt_ids(again) == picks[1]
    assert len({tuple(p) for p in picks.values()}) > 1        # the seed matters
    r1 = utt_ids(subset_data_dir(fixture_datadir, tmp_path / "r1", random_utts=3, seed=5))
    r2 = utt_ids(subset_data_dir(fixture_datadir, tmp_path / "r2", random_utts=3, seed=5))
    assert r1 == r2 and len(r1) == 3


def test_subset_speakers_takes_whole_speakers(fixture_datadir, tmp_path):
    out = subset_data_dir(fixture_datadir, tmp_path / "s", speakers=3, seed=0)
    spk = [x.split()[1] for x in lines(out, "utt2spk")]
    assert len(spk) == 4 and all(spk.count(s) == 2 for s in spk)   # two whole speakers reach 3 utterances


def test_subset_with_segments_filters_recordings(fixture_datadir, tmp_path):
    to_segments(fixture_datadir)
    write(fixture_datadir, "reco2dur", "recA 20\nrecB 20\nrecC 20\n")
    out = subset_data_dir(fixture_datadir, tmp_path / "s", first=3)
    assert [x.split()[0] for x in lines(out, "wav.scp")] == ["recA", "recB"]
    assert lines(out, "reco2dur") == ["recA 20", "recB 20"]
    assert validate_data_dir(out, no_feats=True) == []
    out = subset_data_dir(fixture_datadir, tmp_path / "h", hours=3.0 / 3600, seed=0)  # durations from segments
    assert len(utt_ids(out)) >= 1


def test_subset_replaces_an_existing_dst(fixture_datadir, tmp_path):
    dst = tmp_path / "sub"
    dst.mkdir()
    write(dst, "feats.scp", "stale f.ark:1\n")
    write(dst, MARKER, "")  # made by asrkit: replaced whole
    subset_data_dir(fixture_datadir, dst, first=1)
    assert not (dst / "feats.scp").exists()
    assert utt_ids(dst) == UTTS[:1]


def test_subset_errors(fixture_datadir, tmp_path):
    with pytest.raises(ConfigError, match="exactly one selector"):
        subset_data_dir(fixture_datadir, tmp_path / "x", first=1, last=1)
    with pytest.raises(ConfigError, match="exactly one selector"):
        subset_data_dir(fixture_datadir, tmp_path / "x")
    with pytest.raises(DataDirError, match="has 6 utterances, cannot select first 7"):
        subset_data_dir(fixture_datadir, tmp_path / "x", first=7)
    with pytest.raises(DataDirError, match="cannot select 1.0 hours"):
        subset_data_dir(fixture_datadir, tmp_path / "x", hours=1.0)
    with pytest.raises(DataDirError, match="is also an input"):
        subset_data_dir(fixture_datadir, fixture_datadir, first=1)
    write(tmp_path, "none.list", "nobody\n")
    with pytest.raises(DataDirError, match="selection .* is empty"):
        subset_data_dir(fixture_datadir, tmp_path / "x", spk_list=tmp_path / "none.list")
    assert not (tmp_path / "x").exists()


def test_subset_by_language(fixture_datadir, tmp_path):
    write(fixture_datadir, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    out = subset_data_dir(fixture_datadir, tmp_path / "de", lang="de")
    assert utt_ids(out) == ["spkB-de-001", "spkB-de-002"]
    assert lines(out, "utt2lang") == ["spkB-de-001 de", "spkB-de-002 de"]
    assert lines(out, "cmvn.scp") == ["spkB c.ark:2"]
    assert_valid(out, no_feats=True)
    # The same as the awk + --utt-list the recipes used before.
    write(tmp_path, "de.list", "".join(x.split()[0] + "\n" for x in lines(fixture_datadir, "utt2lang")
                                       if x.split()[1] == "de"))
    by_list = subset_data_dir(fixture_datadir, tmp_path / "de_list", utt_list=tmp_path / "de.list")
    assert {p.name: p.read_bytes() for p in by_list.iterdir()} == {p.name: p.read_bytes() for p in out.iterdir()}


def test_subset_by_language_errors(fixture_datadir, tmp_path):
    with pytest.raises(DataDirError, match=r"no utterance of .* has language 'it' in utt2lang "
                                           r"\(languages there: de, en, fr\)"):
        subset_data_dir(fixture_datadir, tmp_path / "x", lang="it")
    with pytest.raises(ConfigError, match="exactly one selector"):
        subset_data_dir(fixture_datadir, tmp_path / "x", lang="de", first=1)
    (fixture_datadir / "utt2lang").unlink()
    with pytest.raises(DataDirError, match=r"utt2lang: no such file \(selecting by language needs utt2lang\)"):
        subset_data_dir(fixture_datadir, tmp_path / "x", lang="de")
    assert not (tmp_path / "x").exists()


def test_subset_reads_a_list_from_a_pipe_once(fixture_datadir, tmp_path):
    # `--utt-list <(grep ...)` hands over /dev/fd/N: a pipe that can be read once and not seeked.
    read_end, write_end = os.pipe()
    os.write(write_end, b"spkB-de-002\nspkA-en-001 extra fields\n")
    os.close(write_end)
    try:
        subset_data_dir(fixture_datadir, tmp_path / "piped", utt_list=f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert utt_ids(tmp_path / "piped") == ["spkA-en-001", "spkB-de-002"]


def test_subset_exclude_keeps_everything_but_the_list(fixture_datadir, tmp_path):
    write(tmp_path, "utt.list", "spkB-de-002\nspkA-en-001\n")
    subset_data_dir(fixture_datadir, tmp_path / "rest", utt_list=tmp_path / "utt.list", exclude=True)
    assert utt_ids(tmp_path / "rest") == ["spkA-en-002", "spkB-de-001", "spkC-fr-001", "spkC-fr-002"]
    write(tmp_path, "spk.list", "spkA\n")
    subset_data_dir(fixture_datadir, tmp_path / "no_a", spk_list=tmp_path / "spk.list", exclude=True)
    assert utt_ids(tmp_path / "no_a") == UTTS[2:]
    with pytest.raises(ConfigError, match="exclude goes with spk_list or utt_list"):
        subset_data_dir(fixture_datadir, tmp_path / "x", first=2, exclude=True)
    write(tmp_path, "all.list", "".join(u + "\n" for u in UTTS))
    with pytest.raises(DataDirError, match="selection .* is empty"):
        subset_data_dir(fixture_datadir, tmp_path / "none", utt_list=tmp_path / "all.list", exclude=True)
