"""The registry of data-dir files (files.py) and the operations it drives: a data dir holding every
registered file goes through validate, fix, subset, split, combine and load with none of them lost."""

from __future__ import annotations

import dataclasses
import re

import pytest

from asrkit.fileio import MARKER
from asrkit.kaldi.datadir import (
    FILES,
    RECO_FILES,
    SPK_FILES,
    UTT_FILES,
    DataDir,
    DataDirFileError,
    combine_data_dirs,
    fix_data_dir,
    load_data_dir,
    split_data_dir,
    subset_data_dir,
    utt2spk_to_spk2utt,
    validate_data_dir,
)
from asrkit.kaldi.datadir.files import key_kind, present_files
from tests.kaldi.datadir.helpers import UTTS, edit, lines, to_segments, utt_ids, write

ALL_NAMES = {"utt2spk", "spk2utt", *(f.name for f in FILES)}


@pytest.fixture
def full_datadir(fixture_datadir):
    """The fixture dir with segments and every other registered file, valid."""
    d = fixture_datadir
    to_segments(d)
    speakers, recos = ["spkA", "spkB", "spkC"], ["recA", "recB", "recC"]
    write(d, "reco2file_and_channel", "".join(f"{r} {r}.sph A\n" for r in recos))
    write(d, "reco2dur", "".join(f"{r} 20\n" for r in recos))
    write(d, "feats.scp", "".join(f"{u} feats.ark:{10 * i}\n" for i, u in enumerate(UTTS)))
    write(d, "vad.scp", "".join(f"{u} vad.ark:{10 * i}\n" for i, u in enumerate(UTTS)))
    write(d, "utt2num_frames", "".join(f"{u} {100 + i}\n" for i, u in enumerate(UTTS)))
    write(d, "utt2uniq", "".join(f"{u} {u}\n" for u in UTTS))
    write(d, "utt2warp", "".join(f"{u} 1.05\n" for u in UTTS))
    write(d, "cmvn.scp", "".join(f"{s} cmvn.ark:{i}\n" for i, s in enumerate(speakers)))
    write(d, "spk2gender", "spkA f\nspkB m\nspkC f\n")
    write(d, "spk2warp", "spkA 0.9\nspkB 1.0\nspkC 1.1\n")
    assert {p.name for p in d.iterdir()} == ALL_NAMES
    assert validate_data_dir(d) == []
    return d


def test_key_kinds_partition_the_registry():
    assert set(UTT_FILES) | set(SPK_FILES) | set(RECO_FILES) | {"segments"} == {f.name for f in FILES}
    assert len(UTT_FILES) + len(SPK_FILES) + len(RECO_FILES) + 1 == len(FILES)
    assert set(SPK_FILES) == {"cmvn.scp", "spk2gender", "spk2warp"}
    assert set(RECO_FILES) == {"wav.scp", "reco2dur", "reco2file_and_channel"}
    # Files the registry does not know: per speaker when named spk2*, else per utterance.
    assert (key_kind("spk2age"), key_kind("utt2category"), key_kind("wav.scp")) == ("spk", "utt", "reco")


def test_datadir_has_one_attribute_per_registered_file():
    names = [f.name for f in dataclasses.fields(DataDir)]
    assert names == ["utt2spk", *(f.attr for f in FILES), "path"]
    assert DataDir().wav_scp is None and DataDir().utt2spk == {}


def test_present_files_adds_unlisted_utt2_and_spk2_files(fixture_datadir):
    write(fixture_datadir, "utt2category", "".join(f"{u} read\n" for u in UTTS))
    write(fixture_datadir, "spk2age", "spkA 30\nspkB 40\nspkC 50\n")
    assert present_files(fixture_datadir) == ["utt2spk", "text", "wav.scp", "utt2lang", "utt2dur", "spk2age",
                                              "utt2category"]


def test_utt2spk_to_spk2utt():
    # A mapping is taken C-sorted; pairs keep their order within a speaker; speakers are C-sorted.
    assert utt2spk_to_spk2utt({"b-2": "b", "a-1": "a", "b-1": "b"}) == {"a": ["a-1"], "b": ["b-1", "b-2"]}
    assert utt2spk_to_spk2utt([("b-2", "b"), ("a-1", "a"), ("b-1", "b")]) == {"a": ["a-1"], "b": ["b-2", "b-1"]}


def test_every_registered_file_is_loaded(full_datadir):
    d = load_data_dir(full_datadir)
    for f in FILES:
        table = getattr(d, f.attr)
        assert table is not None and len(table) in (3, 6), f.name
        assert all(isinstance(v, f.value_type) for v in table.values()), f.name


def test_every_registered_file_survives_subset_split_and_combine(full_datadir, tmp_path):
    write(tmp_path, "ab.list", "spkA\nspkB\n")
    write(tmp_path, "c.list", "spkC\n")
    ab = subset_data_dir(full_datadir, tmp_path / "ab", spk_list=tmp_path / "ab.list")
    c = subset_data_dir(full_datadir, tmp_path / "c", spk_list=tmp_path / "c.list")
    assert {p.name for p in ab.iterdir() if p.name != MARKER} == {p.name for p in c.iterdir() if p.name != MARKER} == ALL_NAMES
    assert lines(c, "cmvn.scp") == ["spkC cmvn.ark:2"] and lines(c, "reco2dur") == ["recC 20"]
    for part in split_data_dir(full_datadir, 3):
        assert {p.name for p in part.iterdir() if p.name != MARKER} == ALL_NAMES
        validate_data_dir(part)
    whole = combine_data_dirs(tmp_path / "whole", [c, ab])
    assert {p.name for p in whole.iterdir() if p.name != MARKER} == ALL_NAMES
    for name in ALL_NAMES:
        assert lines(whole, name) == lines(full_datadir, name), name


def test_fix_leaves_a_full_dir_alone(full_datadir):
    before = {p.name: p.read_bytes() for p in full_datadir.iterdir()}
    assert fix_data_dir(full_datadir) == (6, 6)
    assert {p.name: p.read_bytes() for p in full_datadir.iterdir() if p.is_file()} == before


RESTRICTING = [f.name for f in FILES if f.restricts and f.key == "utt"]


@pytest.mark.parametrize("name", RESTRICTING)
def test_fix_drops_an_utterance_missing_from_a_restricting_file(full_datadir, name):
    edit(full_datadir, name, lambda ls: [x for x in ls if not x.startswith("spkB-de-002 ")])
    assert fix_data_dir(full_datadir) == (5, 6)
    assert "spkB-de-002" not in utt_ids(full_datadir)
    assert validate_data_dir(full_datadir) == []


@pytest.mark.parametrize("spec", FILES, ids=[f.name for f in FILES])
def test_validate_checks_the_keys_of_every_registered_file(full_datadir, spec):
    edit(full_datadir, spec.name, lambda ls: ls[:-1])
    what = {"utt": "utterances of utt2spk", "spk": "speakers of spk2utt", "reco": "recordings of segments"}[spec.key]
    with pytest.raises(DataDirFileError, match=re.escape(f"{full_datadir / spec.name}: keys are not the {what}")):
        validate_data_dir(full_datadir)
