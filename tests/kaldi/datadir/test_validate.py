"""validate_data_dir: every rule of utils/validate_data_dir.sh, in its order (validate.py)."""

from __future__ import annotations

import re

import pytest

from asrkit.errors import DataDirError
from asrkit.kaldi.datadir import DataDirFileError, validate_data_dir
from tests.kaldi.datadir.helpers import (
    UTTS,
    edit,
    replace_line,
    swap,
    to_segments,
    utt2spk_spk_unsorted,
    write,
)


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


def _no_final_newline(d):
    write(d, "text", (d / "text").read_text().rstrip("\n"))


def _segments_end_before_start(d):
    to_segments(d)
    edit(d, "segments", replace_line(1, "spkA-en-002 recA 10.00 9.50"))


def _segments_three_fields(d):
    to_segments(d)
    edit(d, "segments", replace_line(2, "spkB-de-001 recB 0.00"))


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
    ("utt2spk-3-fields", lambda d: edit(d, "utt2spk", replace_line(1, "spkA-en-002 spkA extra")),
     "utt2spk:2: expected 2 fields (utt-id speaker-id), found 3"),
    ("utt2spk-unsorted", lambda d: edit(d, "utt2spk", swap(1, 2)),
     "utt2spk:3: not sorted: 'spkA-en-002' after 'spkB-de-001'"),
    ("utt2spk-duplicate", lambda d: edit(d, "utt2spk", replace_line(2, "spkA-en-002 spkA")),
     "utt2spk:3: duplicate key 'spkA-en-002'"),
    ("utt2spk-not-sorted-by-speaker", utt2spk_spk_unsorted,
     "utt2spk:3: not sorted by speaker: 'spkB' after 'spkZ'"),
    ("spk2utt-unsorted", lambda d: edit(d, "spk2utt", swap(0, 1)), "spk2utt:2: not sorted: 'spkA' after 'spkB'"),
    ("spk2utt-mismatch", lambda d: edit(d, "spk2utt", replace_line(1, "spkB spkB-de-001")),
     "spk2utt:3: does not match utt2spk: found utterance 'spkC-fr-001' of speaker 'spkC' where utt2spk line 4"),
    ("text-non-printable", lambda d: edit(d, "text", replace_line(1, "spkA-en-002 seven\x07 bottles")),
     "text:2: non-printable character U+0007"),
    ("text-cr", lambda d: write(d, "text", (d / "text").read_text().replace("bottles\n", "bottles\r\n")),
     "text:2: carriage return"),
    ("text-non-utf8", lambda d: write(d, "text", (d / "text").read_bytes().replace(b"seven", b"s\xe9ven")),
     "text:2: not valid UTF-8"),
    ("text-unicode-space", lambda d: edit(d, "text", replace_line(3, "spkB-de-002 guten\u00a0morgen")),
     "text:4: disallowed whitespace character U+00A0"),
    ("text-no-final-newline", _no_final_newline, "text:6: last line does not end in a newline"),
    ("text-unsorted", lambda d: edit(d, "text", swap(4, 5)), "text:6: not sorted: 'spkC-fr-001' after 'spkC-fr-002'"),
    ("text-illegal-s", lambda d: edit(d, "text", replace_line(1, "spkA-en-002 <s> seven bottles")),
     "text:2: illegal symbol '<s>'"),
    ("text-illegal-hash0", lambda d: edit(d, "text", replace_line(2, "spkB-de-001 der #0")),
     "text:3: illegal symbol '#0'"),
    ("text-missing-utt", lambda d: edit(d, "text", lambda ls: ls[:2] + ls[3:]),
     "text: keys are not the utterances of utt2spk (first: 'spkB-de-001'); 1 missing, 0 extra"),
    ("segments-without-wav", _segments_without_wav, "segments: exists but there is no wav.scp"),
    ("wav-unsorted", lambda d: edit(d, "wav.scp", swap(0, 1)), "wav.scp:2: not sorted"),
    ("wav-tilde", lambda d: edit(d, "wav.scp", replace_line(0, "spkA-en-001 ~/a.wav")), "wav.scp:1: tilde (~)"),
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
    ("utt2lang-no-value", lambda d: edit(d, "utt2lang", replace_line(0, "spkA-en-001")),
     "utt2lang:1: expected 2 fields (id language), found 1"),
    ("utt2uniq-extra-utt", lambda d: write(d, "utt2uniq", "".join(f"{u} {u}\n" for u in ["a", *UTTS])),
     "utt2uniq: keys are not the utterances of utt2spk (first: 'a'); 0 missing, 1 extra"),
    ("vad-unsorted", lambda d: write(d, "vad.scp", "".join(f"{u} vad.ark:{i}\n" for i, u in enumerate(reversed(UTTS)))),
     "vad.scp:2: not sorted"),
    ("utt2dur-zero", lambda d: edit(d, "utt2dur", replace_line(2, "spkB-de-001 0")),
     "utt2dur:3: duration 0 is not > 0"),
    ("utt2dur-negative", lambda d: edit(d, "utt2dur", replace_line(0, "spkA-en-001 -1.5")),
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
    edit(fixture_datadir, "text", replace_line(1, "spkA-en-002 </s>"))
    with pytest.raises(DataDirFileError) as info:
        validate_data_dir(fixture_datadir, no_feats=True)
    assert info.value.path == fixture_datadir / "text" and info.value.line == 2


def test_validate_options_relax_their_checks(fixture_datadir):
    edit(fixture_datadir, "text", replace_line(1, "spkA-en-002 seven\u200b bottles"))  # zero-width space
    with pytest.raises(DataDirFileError, match="non-printable character U\\+200B"):
        validate_data_dir(fixture_datadir, no_feats=True)
    assert validate_data_dir(fixture_datadir, no_feats=True, non_print=True) == []
    # --no-spk-sort skips check 4; this utt2spk then fails at check 5 (spk2utt no longer matches).
    utt2spk_spk_unsorted(fixture_datadir)
    with pytest.raises(DataDirFileError, match=re.escape("spk2utt:1: does not match utt2spk")):
        validate_data_dir(fixture_datadir, no_feats=True, no_spk_sort=True)


def test_validate_accepts_segments_non_ascii_text_and_channel_1(fixture_datadir):
    to_segments(fixture_datadir)
    edit(fixture_datadir, "segments", replace_line(5, "spkC-fr-002 recC 10.00 -1"))  # extract-segments' "to the end"
    edit(fixture_datadir, "text", replace_line(4, "spkC-fr-001 le petit chat dort sur le canapé"))
    write(fixture_datadir, "reco2file_and_channel", "recA a.sph A\nrecB b.sph 1\nrecC c.sph B\n")
    write(fixture_datadir, "reco2dur", "recA 20\nrecB 20\nrecC 13\n")
    warnings = validate_data_dir(fixture_datadir, no_feats=True)
    assert warnings == [f"{fixture_datadir}/reco2file_and_channel: the channel should be marked as A or B, not 1"]


def test_validate_reports_checks_in_kaldi_order(fixture_datadir):
    # text (check 6) comes before utt2dur (check 13) even though both are broken.
    edit(fixture_datadir, "utt2dur", replace_line(0, "spkA-en-001 0"))
    edit(fixture_datadir, "text", replace_line(5, "spkC-fr-002 <s>"))
    with pytest.raises(DataDirFileError, match="text:6: illegal symbol"):
        validate_data_dir(fixture_datadir, no_feats=True)
