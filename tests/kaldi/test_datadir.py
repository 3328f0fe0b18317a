"""Data directories: load/save, every validate_data_dir.sh rule, fix, subset, split, combine, info."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import pytest

from asrkit.errors import ConfigError, DataDirError
from asrkit.kaldi.datadir import (
    DataDir,
    DataDirFileError,
    Segment,
    combine_data_dirs,
    data_dir_info,
    fix_data_dir,
    load_data_dir,
    split_data_dir,
    subset_data_dir,
    validate_data_dir,
)

UTTS = ["spkA-en-001", "spkA-en-002", "spkB-de-001", "spkB-de-002", "spkC-fr-001", "spkC-fr-002"]
FIXTURE_SECONDS = 3.204875 + 2.634063 + 2.04125 + 2.435937 + 2.128813 + 1.164312


def write(d: Path, name: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        (d / name).write_bytes(text)
    else:
        (d / name).write_text(text, encoding="utf-8")


def lines(d: Path, name: str) -> list[str]:
    return (d / name).read_text(encoding="utf-8").splitlines()


def edit(d: Path, name: str, fn) -> None:
    """Rewrite file `name` of `d` as fn(list of lines) + newlines."""
    write(d, name, "".join(x + "\n" for x in fn(lines(d, name))))


def to_segments(d: Path) -> None:
    """Turn the fixture dir into one with `segments`: recording recA holds spkA's utterances, etc."""
    durs = dict(x.split() for x in lines(d, "utt2dur"))
    wav = dict(x.split() for x in lines(d, "wav.scp"))
    segs, recos = [], {}
    for utt in durs:
        reco = "rec" + utt[3]
        start = 0.0 if utt.endswith("001") else 10.0
        segs.append(f"{utt} {reco} {start:.2f} {start + float(durs[utt]):.2f}")
        recos.setdefault(reco, wav[utt])
    write(d, "segments", "".join(s + "\n" for s in segs))
    write(d, "wav.scp", "".join(f"{r} {p}\n" for r, p in sorted(recos.items())))


def assert_valid(d: Path, **options) -> None:
    """validate_data_dir passes; a one-speaker warning is expected of small subsets and splits."""
    warnings = validate_data_dir(d, **options)
    assert all("only one speaker" in w for w in warnings), warnings


@pytest.fixture
def log_records(caplog):
    """Capture asrkit log records even when setup_logging() turned propagation off."""
    logger = logging.getLogger("asrkit")
    logger.addHandler(caplog.handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old_level)


# --------------------------------------------------------------------------------------------- DataDir


def test_load_fixture(fixture_datadir):
    d = load_data_dir(fixture_datadir)
    assert d.utts == UTTS
    assert d.speakers == ["spkA", "spkB", "spkC"]
    assert d.spk2utt == {"spkA": UTTS[0:2], "spkB": UTTS[2:4], "spkC": UTTS[4:6]}
    assert d.langs == ["de", "en", "fr"]
    assert d.text["spkC-fr-002"] == "bonjour tout le monde"
    assert d.utt2dur["spkA-en-001"] == 3.204875
    assert d.utt_duration("spkC-fr-002") == 1.164312
    assert d.feats_scp is None and d.segments is None
    assert d.wav_scp["spkA-en-001"].endswith("wav/spkA-en-001.wav")


def test_load_parses_segments_and_numbers(fixture_datadir):
    to_segments(fixture_datadir)
    write(fixture_datadir, "utt2num_frames", "".join(f"{u} {100 + i}\n" for i, u in enumerate(UTTS)))
    edit(fixture_datadir, "segments", lambda ls: ls[:-1] + ["spkC-fr-002 recC 10.00 -1"])
    write(fixture_datadir, "reco2dur", "recA 20\nrecB 20\nrecC 12.5\n")
    (fixture_datadir / "utt2dur").unlink()
    d = load_data_dir(fixture_datadir)
    assert d.segments["spkB-de-002"] == Segment("recB", 10.0, 12.44)
    assert d.utt2num_frames["spkC-fr-002"] == 105
    assert d.utt_duration("spkB-de-002") == pytest.approx(2.44)
    assert d.utt_duration("spkC-fr-002") == pytest.approx(2.5)  # end -1: to the end of the recording


def test_load_rejects_bad_values(fixture_datadir):
    edit(fixture_datadir, "utt2dur", lambda ls: [ls[0], "spkA-en-002 long"] + ls[2:])
    with pytest.raises(DataDirFileError, match=re.escape(f"{fixture_datadir}/utt2dur:2: expected a number, found 'long'")):
        load_data_dir(fixture_datadir)


def test_utt_duration_errors(fixture_datadir):
    d = load_data_dir(fixture_datadir)
    with pytest.raises(DataDirError, match="unknown utterance 'nope'"):
        d.utt_duration("nope")
    d.utt2dur = None
    with pytest.raises(DataDirError, match="no duration for utterance 'spkA-en-001'"):
        d.utt_duration("spkA-en-001")


def test_save_sorts_regenerates_spk2utt_and_removes_absent_files(tmp_path, fixture_datadir):
    d = DataDir(utt2spk={"b-2": "b", "a-1": "a", "b-1": "b"},
                text={"b-2": "two", "a-1": "one", "b-1": "three"},
                segments={"a-1": Segment("r1", 0.0, 1.5), "b-1": Segment("r2", 0.25, 2.0),
                          "b-2": Segment("r2", 2.0, -1)},
                wav_scp={"r2": "r2.wav", "r1": "sox r1.flac -t wav - |"},
                utt2dur={"a-1": 1.5, "b-1": 1.75, "b-2": 3.204875})
    out = tmp_path / "out"
    out.mkdir()
    write(out, "feats.scp", "stale\n")
    d.save(out)
    assert lines(out, "utt2spk") == ["a-1 a", "b-1 b", "b-2 b"]
    assert lines(out, "spk2utt") == ["a a-1", "b b-1 b-2"]
    assert lines(out, "segments") == ["a-1 r1 0 1.5", "b-1 r2 0.25 2", "b-2 r2 2 -1"]
    assert lines(out, "wav.scp") == ["r1 sox r1.flac -t wav - |", "r2 r2.wav"]
    assert lines(out, "utt2dur") == ["a-1 1.5", "b-1 1.75", "b-2 3.204875"]
    assert not (out / "feats.scp").exists()
    assert load_data_dir(out).segments == d.segments
    # A loaded dir saves to files that validate again.
    load_data_dir(fixture_datadir).save(tmp_path / "copy")
    assert validate_data_dir(tmp_path / "copy", no_feats=True) == []
    assert lines(tmp_path / "copy", "text") == lines(fixture_datadir, "text")


# --------------------------------------------------------------------------------------------- validate


def test_validate_fixture_passes(fixture_datadir):
    assert validate_data_dir(fixture_datadir, no_feats=True) == []


def test_validate_requires_feats_unless_no_feats(fixture_datadir):
    with pytest.raises(DataDirFileError, match=re.escape(f"{fixture_datadir}/feats.scp: no such file")):
        validate_data_dir(fixture_datadir)


def test_validate_requires_text_and_wav_unless_told(fixture_datadir):
    (fixture_datadir / "text").unlink()
    with pytest.raises(DataDirFileError, match="text: no such file"):
        validate_data_dir(fixture_datadir, no_feats=True)
    (fixture_datadir / "wav.scp").unlink()
    with pytest.raises(DataDirFileError, match="wav.scp: no such file"):
        validate_data_dir(fixture_datadir, no_feats=True, no_text=True)
    assert validate_data_dir(fixture_datadir, no_feats=True, no_text=True, no_wav=True) == []


def test_validate_warns_on_one_speaker(fixture_datadir):
    edit(fixture_datadir, "utt2spk", lambda ls: [f"{x.split()[0]} spk" for x in ls])
    write(fixture_datadir, "spk2utt", "spk " + " ".join(UTTS) + "\n")
    warnings = validate_data_dir(fixture_datadir, no_feats=True)
    assert len(warnings) == 1 and "only one speaker" in warnings[0]


def _swap(i: int, j: int):
    def fn(ls):
        ls = list(ls)
        ls[i], ls[j] = ls[j], ls[i]
        return ls
    return fn


def _replace_line(i: int, new: str):
    def fn(ls):
        ls = list(ls)
        ls[i] = new
        return ls
    return fn


def _utt2spk_spk_unsorted(d):
    edit(d, "utt2spk", _replace_line(1, "spkA-en-002 spkZ"))


def _no_final_newline(d):
    write(d, "text", (d / "text").read_text().rstrip("\n"))


def _segments_end_before_start(d):
    to_segments(d)
    edit(d, "segments", _replace_line(1, "spkA-en-002 recA 10.00 9.50"))


def _segments_three_fields(d):
    to_segments(d)
    edit(d, "segments", _replace_line(2, "spkB-de-001 recB 0.00"))


def _segments_without_wav(d):
    to_segments(d)
    (d / "wav.scp").unlink()


def _segments_reco_not_in_wav(d):
    to_segments(d)
    edit(d, "wav.scp", lambda ls: ls[:2])


def _feats_key_mismatch(d):
    write(d, "feats.scp", "".join(f"{u} feats.ark:{10 * i}\n" for i, u in enumerate(UTTS[:5] + ["spkD-xx-001"])))


def _cmvn_by_utterance(d):
    write(d, "cmvn.scp", "".join(f"{u} cmvn.ark:{10 * i}\n" for i, u in enumerate(UTTS)))


def _r2fc_bad_channel(d):
    write(d, "reco2file_and_channel", "".join(f"{u} {u} C\n" for u in UTTS))


# (id, how to break the fixture dir, expected message after "<dir>/") — one per validate_data_dir.sh check.
BROKEN = [
    ("utt2spk-missing", lambda d: (d / "utt2spk").unlink(), "utt2spk: no such file"),
    ("spk2utt-empty", lambda d: write(d, "spk2utt", ""), "spk2utt: empty file"),
    ("utt2spk-3-fields", lambda d: edit(d, "utt2spk", _replace_line(1, "spkA-en-002 spkA extra")),
     "utt2spk:2: expected 2 fields (utt-id speaker-id), found 3"),
    ("utt2spk-unsorted", lambda d: edit(d, "utt2spk", _swap(1, 2)),
     "utt2spk:3: not sorted: 'spkA-en-002' after 'spkB-de-001'"),
    ("utt2spk-duplicate", lambda d: edit(d, "utt2spk", _replace_line(2, "spkA-en-002 spkA")),
     "utt2spk:3: duplicate key 'spkA-en-002'"),
    ("utt2spk-not-sorted-by-speaker", _utt2spk_spk_unsorted,
     "utt2spk:3: not sorted by speaker: 'spkB' after 'spkZ'"),
    ("spk2utt-unsorted", lambda d: edit(d, "spk2utt", _swap(0, 1)), "spk2utt:2: not sorted: 'spkA' after 'spkB'"),
    ("spk2utt-mismatch", lambda d: edit(d, "spk2utt", _replace_line(1, "spkB spkB-de-001")),
     "spk2utt:3: does not match utt2spk: found utterance 'spkC-fr-001' of speaker 'spkC' where utt2spk line 4"),
    ("text-non-printable", lambda d: edit(d, "text", _replace_line(1, "spkA-en-002 seven\x07 bottles")),
     "text:2: non-printable character U+0007"),
    ("text-cr", lambda d: write(d, "text", (d / "text").read_text().replace("bottles\n", "bottles\r\n")),
     "text:2: carriage return"),
    ("text-non-utf8", lambda d: write(d, "text", (d / "text").read_bytes().replace(b"seven", b"s\xe9ven")),
     "text:2: not valid UTF-8"),
    ("text-unicode-space", lambda d: edit(d, "text", _replace_line(3, "spkB-de-002 guten\u00a0morgen")),
     "text:4: disallowed whitespace character U+00A0"),
    ("text-no-final-newline", _no_final_newline, "text:6: last line does not end in a newline"),
    ("text-unsorted", lambda d: edit(d, "text", _swap(4, 5)), "text:6: not sorted: 'spkC-fr-001' after 'spkC-fr-002'"),
    ("text-illegal-s", lambda d: edit(d, "text", _replace_line(1, "spkA-en-002 <s> seven bottles")),
     "text:2: illegal symbol '<s>'"),
    ("text-illegal-hash0", lambda d: edit(d, "text", _replace_line(2, "spkB-de-001 der #0")),
     "text:3: illegal symbol '#0'"),
    ("text-missing-utt", lambda d: edit(d, "text", lambda ls: ls[:2] + ls[3:]),
     "text: keys are not the utterances of utt2spk (first: 'spkB-de-001'); 1 missing, 0 extra"),
    ("segments-without-wav", _segments_without_wav, "segments: exists but there is no wav.scp"),
    ("wav-unsorted", lambda d: edit(d, "wav.scp", _swap(0, 1)), "wav.scp:2: not sorted"),
    ("wav-tilde", lambda d: edit(d, "wav.scp", _replace_line(0, "spkA-en-001 ~/a.wav")), "wav.scp:1: tilde (~)"),
    ("wav-missing-utt", lambda d: edit(d, "wav.scp", lambda ls: ls[1:]),
     "wav.scp: keys are not the utterances of utt2spk (first: 'spkA-en-001')"),
    ("segments-end-before-start", _segments_end_before_start, "segments:2: end time 9.50 is not after start time 10.00"),
    ("segments-3-fields", _segments_three_fields, "segments:3: expected 4 fields (utt-id reco-id start end), found 3"),
    ("segments-reco-not-in-wav", _segments_reco_not_in_wav,
     "wav.scp: keys are not the recordings of segments (first: 'recC'); 1 missing, 0 extra"),
    ("reco2file_and_channel-bad-channel", _r2fc_bad_channel, "reco2file_and_channel:1: expected '<reco-id> <file> <A|B>'"),
    ("feats-key-mismatch", _feats_key_mismatch,
     "feats.scp: keys are not the utterances of utt2spk (first: 'spkC-fr-002'); 1 missing, 1 extra"),
    ("cmvn-by-utterance", _cmvn_by_utterance, "cmvn.scp: keys are not the speakers of spk2utt (first: 'spkA')"),
    ("spk2gender-x", lambda d: write(d, "spk2gender", "spkA m\nspkB x\nspkC f\n"),
     "spk2gender:2: expected '<speaker> m' or '<speaker> f', found 'spkB x'"),
    ("spk2gender-missing-speaker", lambda d: write(d, "spk2gender", "spkA m\nspkC f\n"),
     "spk2gender: keys are not the speakers of spk2utt (first: 'spkB')"),
    ("spk2warp-range", lambda d: write(d, "spk2warp", "spkA 1.0\nspkB 1.5\nspkC 0.9\n"),
     "spk2warp:2: warp factor 1.5 is not in (0.5, 1.5)"),
    ("utt2warp-range", lambda d: write(d, "utt2warp", "".join(f"{u} {0.5 if i == 0 else 1}\n" for i, u in enumerate(UTTS))),
     "utt2warp:1: warp factor 0.5 is not in (0.5, 1.5)"),
    ("utt2lang-missing-utt", lambda d: edit(d, "utt2lang", lambda ls: ls[:-1]),
     "utt2lang: keys are not the utterances of utt2spk (first: 'spkC-fr-002'); 1 missing, 0 extra"),
    ("utt2lang-no-value", lambda d: edit(d, "utt2lang", _replace_line(0, "spkA-en-001")),
     "utt2lang:1: expected 2 fields (id language), found 1"),
    ("utt2uniq-extra-utt", lambda d: write(d, "utt2uniq", "".join(f"{u} {u}\n" for u in ["a", *UTTS])),
     "utt2uniq: keys are not the utterances of utt2spk (first: 'a'); 0 missing, 1 extra"),
    ("vad-unsorted", lambda d: write(d, "vad.scp", "".join(f"{u} vad.ark:{i}\n" for i, u in enumerate(reversed(UTTS)))),
     "vad.scp:2: not sorted"),
    ("utt2dur-zero", lambda d: edit(d, "utt2dur", _replace_line(2, "spkB-de-001 0")),
     "utt2dur:3: duration 0 is not > 0"),
    ("utt2dur-negative", lambda d: edit(d, "utt2dur", _replace_line(0, "spkA-en-001 -1.5")),
     "utt2dur:1: duration -1.5 is not > 0"),
    ("utt2num_frames-not-int", lambda d: write(d, "utt2num_frames", "".join(f"{u} {i + 10.5}\n" for i, u in enumerate(UTTS))),
     "utt2num_frames:1: expected a positive integer, found '10.5'"),
    ("utt2num_frames-zero", lambda d: write(d, "utt2num_frames", "".join(f"{u} {i}\n" for i, u in enumerate(UTTS))),
     "utt2num_frames:1: expected a positive integer, found '0'"),
    ("reco2dur-not-recordings", lambda d: (to_segments(d), write(d, "reco2dur", "".join(f"{u} 3\n" for u in UTTS))),
     "reco2dur: keys are not the recordings of segments (first: 'recA')"),
]


@pytest.mark.parametrize("breaker,expected", [(b, e) for _, b, e in BROKEN], ids=[i for i, _, _ in BROKEN])
def test_validate_rejects_broken_dir(fixture_datadir, breaker, expected):
    breaker(fixture_datadir)
    with pytest.raises(DataDirError) as info:
        validate_data_dir(fixture_datadir, no_feats=True)
    assert str(info.value).startswith(f"{fixture_datadir}/{expected}"), str(info.value)


def test_validate_error_is_a_format_error_with_path_and_line(fixture_datadir):
    edit(fixture_datadir, "text", _replace_line(1, "spkA-en-002 </s>"))
    with pytest.raises(DataDirFileError) as info:
        validate_data_dir(fixture_datadir, no_feats=True)
    assert info.value.path == fixture_datadir / "text" and info.value.line == 2


def test_validate_options_relax_their_checks(fixture_datadir):
    edit(fixture_datadir, "text", _replace_line(1, "spkA-en-002 seven\u200b bottles"))  # zero-width space
    with pytest.raises(DataDirFileError, match="non-printable character U\\+200B"):
        validate_data_dir(fixture_datadir, no_feats=True)
    assert validate_data_dir(fixture_datadir, no_feats=True, non_print=True) == []
    # --no-spk-sort skips check 4; this utt2spk then fails at check 5 (spk2utt no longer matches).
    _utt2spk_spk_unsorted(fixture_datadir)
    with pytest.raises(DataDirFileError, match=re.escape("spk2utt:1: does not match utt2spk")):
        validate_data_dir(fixture_datadir, no_feats=True, no_spk_sort=True)


def test_validate_accepts_segments_non_ascii_text_and_channel_1(fixture_datadir):
    to_segments(fixture_datadir)
    edit(fixture_datadir, "segments", _replace_line(5, "spkC-fr-002 recC 10.00 -1"))  # extract-segments' "to the end"
    edit(fixture_datadir, "text", _replace_line(4, "spkC-fr-001 le petit chat dort sur le canapé"))
    write(fixture_datadir, "reco2file_and_channel", "recA a.sph A\nrecB b.sph 1\nrecC c.sph B\n")
    write(fixture_datadir, "reco2dur", "recA 20\nrecB 20\nrecC 13\n")
    warnings = validate_data_dir(fixture_datadir, no_feats=True)
    assert warnings == [f"{fixture_datadir}/reco2file_and_channel: the channel should be marked as A or B, not 1"]


def test_validate_reports_checks_in_kaldi_order(fixture_datadir):
    # text (check 6) comes before utt2dur (check 13) even though both are broken.
    edit(fixture_datadir, "utt2dur", _replace_line(0, "spkA-en-001 0"))
    edit(fixture_datadir, "text", _replace_line(5, "spkC-fr-002 <s>"))
    with pytest.raises(DataDirFileError, match="text:6: illegal symbol"):
        validate_data_dir(fixture_datadir, no_feats=True)


# --------------------------------------------------------------------------------------------- fix


def test_fix_keeps_the_intersection_and_backs_up(fixture_datadir, log_records):
    d = fixture_datadir
    original_text = (d / "text").read_bytes()
    edit(d, "text", lambda ls: [ls[1], ls[0], *ls[3:]])           # unsorted, spkB-de-001 missing
    edit(d, "utt2dur", _replace_line(4, "spkC-fr-001 0"))          # invalid duration
    write(d, "feats.scp", "".join(f"{u} f.ark:{i}\n" for i, u in enumerate(UTTS) if u != "spkA-en-002"))
    write(d, "utt2spk", (d / "utt2spk").read_text() + "spkA-en-001 spkA\n")  # a duplicate line at the end
    text_before = (d / "text").read_bytes()
    assert fix_data_dir(d) == (3, 6)
    kept = ["spkA-en-001", "spkB-de-002", "spkC-fr-002"]
    assert [x.split()[0] for x in lines(d, "utt2spk")] == kept
    assert lines(d, "spk2utt") == ["spkA spkA-en-001", "spkB spkB-de-002", "spkC spkC-fr-002"]
    for name in ("text", "wav.scp", "utt2lang", "utt2dur", "feats.scp"):
        assert [x.split()[0] for x in lines(d, name)] == kept, name
    assert lines(d, "text")[0] == "spkA-en-001 the quick brown fox jumps over the lazy dog"
    assert (d / ".backup" / "text").read_bytes() == text_before != original_text
    assert "kept" not in (d / ".backup" / "utt2spk").read_text()
    assert len(lines(d / ".backup", "utt2spk")) == 7
    assert "fix_data_dir: kept 3 utterances out of 6" in log_records.text
    assert validate_data_dir(d) == []


def test_fix_leaves_a_valid_dir_alone(fixture_datadir):
    before = {f.name: f.stat().st_mtime_ns for f in fixture_datadir.iterdir()}
    assert fix_data_dir(fixture_datadir) == (6, 6)
    after = {f.name: f.stat().st_mtime_ns for f in fixture_datadir.iterdir() if f.is_file()}
    assert after == before


def test_fix_filters_speakers_and_recordings(fixture_datadir):
    d = fixture_datadir
    to_segments(d)
    write(d, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    edit(d, "cmvn.scp", lambda ls: [ls[0], ls[2]])            # spkB has no CMVN stats
    edit(d, "wav.scp", lambda ls: ls[:2])                     # recording recC is gone
    write(d, "spk2gender", "spkA f\nspkB m\nspkC f\nspkD m\n")
    write(d, "reco2dur", "recA 20\nrecB 20\nrecC 20\n")
    assert fix_data_dir(d, spk_extra_files=["spk2age"]) == (2, 6)
    assert lines(d, "utt2spk") == ["spkA-en-001 spkA", "spkA-en-002 spkA"]
    assert lines(d, "spk2gender") == ["spkA f"]
    assert lines(d, "cmvn.scp") == ["spkA c.ark:1"]
    assert [x.split()[0] for x in lines(d, "wav.scp")] == ["recA"]
    assert lines(d, "reco2dur") == ["recA 20"]
    assert [x.split()[1] for x in lines(d, "segments")] == ["recA", "recA"]
    assert ["only one speaker" in w for w in validate_data_dir(d, no_feats=True)] == [True]


def test_fix_extra_files(fixture_datadir):
    write(fixture_datadir, "utt2category", "".join(f"{u} read\n" for u in UTTS))
    edit(fixture_datadir, "text", lambda ls: ls[1:])
    fix_data_dir(fixture_datadir, utt_extra_files=["utt2category"])
    assert [x.split()[0] for x in lines(fixture_datadir, "utt2category")] == UTTS[1:]


def test_fix_refuses_to_empty_the_dir(fixture_datadir):
    edit(fixture_datadir, "text", lambda ls: ["zzz hello"])
    before = {f.name: f.read_bytes() for f in fixture_datadir.iterdir() if f.is_file()}
    with pytest.raises(DataDirError, match="no utterances remained"):
        fix_data_dir(fixture_datadir)
    assert {f.name: f.read_bytes() for f in fixture_datadir.iterdir() if f.is_file()} == before


def test_fix_cannot_fix_speaker_order(fixture_datadir):
    _utt2spk_spk_unsorted(fixture_datadir)
    with pytest.raises(DataDirFileError, match="utt2spk:3: not sorted by speaker"):
        fix_data_dir(fixture_datadir)


# --------------------------------------------------------------------------------------------- subset


def utt_ids(d: Path) -> list[str]:
    return [x.split()[0] for x in lines(d, "utt2spk")]


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
    with pytest.raises(DataDirError, match="would replace source"):
        subset_data_dir(fixture_datadir, fixture_datadir, first=1)
    write(tmp_path, "none.list", "nobody\n")
    with pytest.raises(DataDirError, match="selection .* is empty"):
        subset_data_dir(fixture_datadir, tmp_path / "x", spk_list=tmp_path / "none.list")
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------------- split


def test_split_per_speaker(fixture_datadir):
    write(fixture_datadir, "cmvn.scp", "spkA c.ark:1\nspkB c.ark:2\nspkC c.ark:3\n")
    parts = split_data_dir(fixture_datadir, 3)
    assert parts == [fixture_datadir / "split3" / str(i) for i in (1, 2, 3)]
    for part, spk in zip(parts, ("spkA", "spkB", "spkC")):
        assert {x.split()[1] for x in lines(part, "utt2spk")} == {spk}
        assert lines(part, "cmvn.scp") == [x for x in lines(fixture_datadir, "cmvn.scp") if x.startswith(spk)]
        assert sorted(p.name for p in part.iterdir()) == ["cmvn.scp", "spk2utt", "text", "utt2dur", "utt2lang",
                                                          "utt2spk", "wav.scp"]
        assert_valid(part, no_feats=True)
    two = split_data_dir(fixture_datadir, 2)
    assert [utt_ids(p) for p in two] == [UTTS[:4], UTTS[4:]]


def test_split_balances_speakers_like_split_scp(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    counts = {"s1": 5, "s2": 1, "s3": 1, "s4": 1}
    write(d, "utt2spk", "".join(f"{s}-{i} {s}\n" for s, n in counts.items() for i in range(n)))
    parts = split_data_dir(d, 2)
    # Initial assignment [s1 s2] [s3 s4] (6 vs 2 utterances); moving s2 over gives 5 vs 3.
    assert [sorted({x.split()[1] for x in lines(p, "utt2spk")}) for p in parts] == [["s1"], ["s2", "s3", "s4"]]


def test_split_per_utt(fixture_datadir):
    parts = split_data_dir(fixture_datadir, 4, per_utt=True)
    assert parts[0] == fixture_datadir / "split4utt" / "1"
    assert [utt_ids(p) for p in parts] == [UTTS[0:2], UTTS[2:4], UTTS[4:5], UTTS[5:6]]
    assert lines(parts[2], "spk2utt") == ["spkC spkC-fr-001"]


def test_split_with_segments(fixture_datadir):
    to_segments(fixture_datadir)
    parts = split_data_dir(fixture_datadir, 3)
    assert [lines(p, "wav.scp")[0].split()[0] for p in parts] == ["recA", "recB", "recC"]
    for p in parts:
        assert_valid(p, no_feats=True)


def test_split_is_idempotent(fixture_datadir):
    parts = split_data_dir(fixture_datadir, 2)

    def mtimes():
        return {p: p.stat().st_mtime_ns for part in parts for p in part.iterdir()}

    before = mtimes()
    assert split_data_dir(fixture_datadir, 2) == parts
    assert mtimes() == before                                   # nothing rewritten
    # A source newer than its copy in split2/1 triggers a re-split.
    newest = max(before.values())
    os.utime(fixture_datadir / "text", ns=(newest + 10**9, newest + 10**9))
    edit_time = (fixture_datadir / "text").stat().st_mtime_ns
    split_data_dir(fixture_datadir, 2)
    assert all(t >= edit_time - 10**9 for t in mtimes().values())
    assert mtimes() != before
    # A new source file (feats.scp) is not in split2/1 yet: re-split too.
    write(fixture_datadir, "feats.scp", "".join(f"{u} f.ark:{i}\n" for i, u in enumerate(UTTS)))
    split_data_dir(fixture_datadir, 2)
    assert (parts[1] / "feats.scp").is_file()


def test_split_errors(fixture_datadir):
    with pytest.raises(DataDirError, match="number of speakers 3 is less than the number of parts 4"):
        split_data_dir(fixture_datadir, 4)
    with pytest.raises(DataDirError, match="cannot split 6 utterances"):
        split_data_dir(fixture_datadir, 7, per_utt=True)
    with pytest.raises(DataDirError, match="invalid number of parts 0"):
        split_data_dir(fixture_datadir, 0)
    assert not (fixture_datadir / "split4").exists()


# --------------------------------------------------------------------------------------------- combine


def _two_halves(src: Path, tmp_path: Path) -> tuple[Path, Path]:
    write(tmp_path, "ab.list", "spkA\nspkB\n")
    write(tmp_path, "c.list", "spkC\n")
    return (subset_data_dir(src, tmp_path / "ab", spk_list=tmp_path / "ab.list"),
            subset_data_dir(src, tmp_path / "c", spk_list=tmp_path / "c.list"))


def test_combine_restores_the_whole(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    out = combine_data_dirs(tmp_path / "all", [c, ab])
    for name in ("utt2spk", "spk2utt", "text", "utt2lang", "utt2dur", "wav.scp"):
        assert lines(out, name) == lines(fixture_datadir, name), name
    assert validate_data_dir(out, no_feats=True) == []


def test_combine_drops_files_not_everywhere(fixture_datadir, tmp_path, log_records):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    (c / "utt2lang").unlink()
    write(ab, "utt2category", "".join(f"{u} read\n" for u in utt_ids(ab)))
    write(c, "utt2category", "".join(f"{u} spont\n" for u in utt_ids(c)))
    out = combine_data_dirs(tmp_path / "all", [ab, c], extra_files=["utt2category"])
    assert not (out / "utt2lang").exists()
    assert "not combining utt2lang" in log_records.text
    assert [x.split()[1] for x in lines(out, "utt2category")] == ["read"] * 4 + ["spont"] * 2


def test_combine_makes_segments_where_needed(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    to_segments(ab)
    out = combine_data_dirs(tmp_path / "all", [ab, c])
    segs = lines(out, "segments")
    assert segs[-2:] == ["spkC-fr-001 spkC-fr-001 0 2.128813", "spkC-fr-002 spkC-fr-002 0 1.164312"]
    assert [x.split()[0] for x in lines(out, "wav.scp")] == ["recA", "recB", "spkC-fr-001", "spkC-fr-002"]
    assert validate_data_dir(out, no_feats=True) == []


def test_combine_duplicate_utterance_names_both_dirs(fixture_datadir, tmp_path):
    ab, _ = _two_halves(fixture_datadir, tmp_path)
    with pytest.raises(DataDirError, match=re.escape(f"utterance 'spkA-en-001' is in both {ab} and {fixture_datadir}")):
        combine_data_dirs(tmp_path / "all", [ab, fixture_datadir])
    assert not (tmp_path / "all").exists()


def test_combine_validates_the_result(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    edit(c, "text", lambda ls: [ls[0], "spkC-fr-002 </s>"])
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'all'}/text:6: illegal symbol '</s>'")):
        combine_data_dirs(tmp_path / "all", [ab, c])
    assert not (tmp_path / "all").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".all")]


def test_combine_conflicting_speaker_lines(fixture_datadir, tmp_path):
    ab, c = _two_halves(fixture_datadir, tmp_path)
    write(ab, "spk2gender", "spkA m\nspkB f\n")
    write(c, "spk2gender", "spkC f\n")
    shutil.copytree(c, tmp_path / "c2")
    for f in ("utt2spk", "spk2utt"):
        (tmp_path / "c2" / f).write_text((c / f).read_text().replace("spkC", "spkB").replace("spkB-fr", "spkC-fr"))
    write(tmp_path / "c2", "spk2gender", "spkB m\n")
    with pytest.raises(DataDirError, match="'spkB' has different lines in"):
        combine_data_dirs(tmp_path / "all", [ab, tmp_path / "c2"])


# --------------------------------------------------------------------------------------------- info


def test_info_on_fixture(fixture_datadir):
    info = data_dir_info(fixture_datadir)
    assert info["utterances"] == 6 and info["speakers"] == 3
    assert info["seconds"] == pytest.approx(13.61, abs=0.005)
    assert info["seconds"] == pytest.approx(FIXTURE_SECONDS)
    assert info["hours"] == pytest.approx(FIXTURE_SECONDS / 3600)
    assert info["duration_source"] == "utt2dur"
    assert list(info["languages"]) == ["de", "en", "fr"]
    assert info["languages"]["en"]["utterances"] == 2
    assert info["languages"]["en"]["seconds"] == pytest.approx(3.204875 + 2.634063)
    assert info["languages"]["fr"]["hours"] == pytest.approx((2.128813 + 1.164312) / 3600)
    assert (info["has_text"], info["has_feats"], info["has_cmvn"], info["feat_dim"]) == (True, False, False, None)


def test_info_reads_feat_dim_and_segment_durations(fixture_datadir):
    import kaldiio
    import numpy as np

    feats = {u: np.full((3 + i, 7), i, dtype=np.float32) for i, u in enumerate(UTTS)}
    kaldiio.save_ark(str(fixture_datadir / "feats.ark"), feats, scp=str(fixture_datadir / "feats.scp"))
    to_segments(fixture_datadir)
    (fixture_datadir / "utt2dur").unlink()
    info = data_dir_info(fixture_datadir)
    assert info["has_feats"] and info["feat_dim"] == 7
    assert info["duration_source"] == "segments" and info["recordings"] == 3
    # to_segments rounds each duration to 10 ms.
    assert info["seconds"] == pytest.approx(3.20 + 2.63 + 2.04 + 2.44 + 2.13 + 1.16)
    assert validate_data_dir(fixture_datadir) == []
