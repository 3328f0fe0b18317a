"""Speed perturbation of data dirs: the files Kaldi's perturb_data_dir_speed(_3way).sh would write."""

from __future__ import annotations

import numpy as np
import pytest

from asrkit.errors import ConfigError, DataDirError
from asrkit.fileio import MARKER
from asrkit.kaldi import wav
from asrkit.kaldi.perturb import perturb_data_dir_speed
from asrkit.kaldi.wav import WavScpReader


def _write_dir(d, files):
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def _read_dir(d):
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != MARKER}


def test_three_way_without_segments(tmp_path):
    src = _write_dir(tmp_path / "train", {
        "utt2spk": "a-1 a\nb-1 b\nc-1 c\n",
        "spk2utt": "a a-1\nb b-1\nc c-1\n",
        # Kaldi's three wav.scp forms: a file, a pipe (with `|` glued on), an ark offset.
        "wav.scp": "a-1 /data/a1.wav\nb-1 sph2pipe -f wav -p -c 1 /data/b1.sph|\nc-1 /data/wav.ark:1234\n",
        "text": "a-1 hello world\nb-1 guten tag\nc-1 bonjour\n",
        "utt2lang": "a-1 en\nb-1 de\nc-1 fr\n",
        "spk2gender": "a f\nb m\nc f\n",
        "utt2dur": "a-1 3.204875 \nb-1 2\nc-1 1.5\n",
        "reco2dur": "a-1 3.204875\nb-1 2\nc-1 1.5\n",
        "feats.scp": "a-1 raw.ark:12\nb-1 raw.ark:99\nc-1 raw.ark:200\n",
        "cmvn.scp": "a cmvn.ark:5\nb cmvn.ark:60\nc cmvn.ark:120\n",
        "utt2num_frames": "a-1 318\nb-1 198\nc-1 148\n",
    })
    perturb_data_dir_speed(src, tmp_path / "train_sp", [0.9, 1.0, 1.1])
    # Durations: x/0.9 and x/1.1 printed by awk (%.6g); originals as they were.
    dur = ("a-1 3.204875\nb-1 2\nc-1 1.5\n"
           "sp0.9-a-1 3.56097\nsp0.9-b-1 2.22222\nsp0.9-c-1 1.66667\n"
           "sp1.1-a-1 2.91352\nsp1.1-b-1 1.81818\nsp1.1-c-1 1.36364\n")
    assert _read_dir(tmp_path / "train_sp") == {
        "reco2dur": dur,
        "spk2gender": "a f\nb m\nc f\nsp0.9-a f\nsp0.9-b m\nsp0.9-c f\nsp1.1-a f\nsp1.1-b m\nsp1.1-c f\n",
        "spk2utt": ("a a-1\nb b-1\nc c-1\nsp0.9-a sp0.9-a-1\nsp0.9-b sp0.9-b-1\nsp0.9-c sp0.9-c-1\n"
                    "sp1.1-a sp1.1-a-1\nsp1.1-b sp1.1-b-1\nsp1.1-c sp1.1-c-1\n"),
        "text": ("a-1 hello world\nb-1 guten tag\nc-1 bonjour\n"
                 "sp0.9-a-1 hello world\nsp0.9-b-1 guten tag\nsp0.9-c-1 bonjour\n"
                 "sp1.1-a-1 hello world\nsp1.1-b-1 guten tag\nsp1.1-c-1 bonjour\n"),
        "utt2dur": dur,
        "utt2lang": "a-1 en\nb-1 de\nc-1 fr\nsp0.9-a-1 en\nsp0.9-b-1 de\nsp0.9-c-1 fr\nsp1.1-a-1 en\nsp1.1-b-1 de\nsp1.1-c-1 fr\n",
        "utt2spk": ("a-1 a\nb-1 b\nc-1 c\nsp0.9-a-1 sp0.9-a\nsp0.9-b-1 sp0.9-b\nsp0.9-c-1 sp0.9-c\n"
                    "sp1.1-a-1 sp1.1-a\nsp1.1-b-1 sp1.1-b\nsp1.1-c-1 sp1.1-c\n"),
        # combine_data.sh gives the unperturbed copy an identity utt2uniq.
        "utt2uniq": ("a-1 a-1\nb-1 b-1\nc-1 c-1\nsp0.9-a-1 a-1\nsp0.9-b-1 b-1\nsp0.9-c-1 c-1\n"
                     "sp1.1-a-1 a-1\nsp1.1-b-1 b-1\nsp1.1-c-1 c-1\n"),
        "wav.scp": ("a-1 /data/a1.wav\n"
                    "b-1 sph2pipe -f wav -p -c 1 /data/b1.sph|\n"
                    "c-1 /data/wav.ark:1234\n"
                    "sp0.9-a-1 sox -t wav /data/a1.wav -t wav - speed 0.9 |\n"
                    "sp0.9-b-1 sph2pipe -f wav -p -c 1 /data/b1.sph | sox -t wav - -t wav - speed 0.9 |\n"
                    "sp0.9-c-1 wav-copy /data/wav.ark:1234 - | sox -t wav - -t wav - speed 0.9 |\n"
                    "sp1.1-a-1 sox -t wav /data/a1.wav -t wav - speed 1.1 |\n"
                    "sp1.1-b-1 sph2pipe -f wav -p -c 1 /data/b1.sph | sox -t wav - -t wav - speed 1.1 |\n"
                    "sp1.1-c-1 wav-copy /data/wav.ark:1234 - | sox -t wav - -t wav - speed 1.1 |\n"),
    }
    # feats.scp, cmvn.scp, utt2num_frames describe unperturbed audio: dropped. No temp dirs left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", "train_sp"]


def test_single_factor_with_segments(tmp_path):
    src = _write_dir(tmp_path / "dev", {
        "wav.scp": "rec1 /data/rec1.wav\nrec2 /data/rec2.flac\n",
        "segments": ("a-rec1-0000 rec1 0.00 1.25\n"
                     "a-rec1-0001 rec1 1.25 1.258\n"  # 0.0089 s after perturbation: dropped
                     "b-rec2-0000 rec2 0.5 2.3456\n"),
        "utt2spk": "a-rec1-0000 a\na-rec1-0001 a\nb-rec2-0000 b\n",
        "spk2utt": "a a-rec1-0000 a-rec1-0001\nb b-rec2-0000\n",
        "text": "a-rec1-0000 one\na-rec1-0001 two\nb-rec2-0000 three\n",
        "reco2file_and_channel": "rec1 rec1 A\nrec2 rec2 A\n",
        "utt2dur": "a-rec1-0000 1.25\na-rec1-0001 0.008\nb-rec2-0000 1.8456\n",
        "reco2dur": "rec1 10\nrec2 20.5\n",
    })
    perturb_data_dir_speed(src, tmp_path / "dev_sp", [0.9])
    assert _read_dir(tmp_path / "dev_sp") == {
        "reco2dur": "sp0.9-rec1 11.1111\nsp0.9-rec2 22.7778\n",
        "reco2file_and_channel": "sp0.9-rec1 rec1 A\nsp0.9-rec2 rec2 A\n",
        # Times / 0.9, printed %.2f: 1.25/0.9 = 1.3889, 0.5/0.9 = 0.5556, 2.3456/0.9 = 2.6062.
        "segments": "sp0.9-a-rec1-0000 sp0.9-rec1 0.00 1.39\nsp0.9-b-rec2-0000 sp0.9-rec2 0.56 2.61\n",
        "spk2utt": "sp0.9-a sp0.9-a-rec1-0000\nsp0.9-b sp0.9-b-rec2-0000\n",
        "text": "sp0.9-a-rec1-0000 one\nsp0.9-b-rec2-0000 three\n",
        "utt2dur": "sp0.9-a-rec1-0000 1.38889\nsp0.9-b-rec2-0000 2.05067\n",
        "utt2spk": "sp0.9-a-rec1-0000 sp0.9-a\nsp0.9-b-rec2-0000 sp0.9-b\n",
        "utt2uniq": "sp0.9-a-rec1-0000 a-rec1-0000\nsp0.9-b-rec2-0000 b-rec2-0000\n",
        "wav.scp": ("sp0.9-rec1 sox -t wav /data/rec1.wav -t wav - speed 0.9 |\n"
                    # not Kaldi's `-t wav` (sox would refuse the FLAC): sox takes the type from the name
                    "sp0.9-rec2 sox /data/rec2.flac -t wav - speed 0.9 |\n"),
    }


def test_always_include_prefix(tmp_path):
    src = _write_dir(tmp_path / "d", {
        "utt2spk": "s1-u1 s1\n", "spk2utt": "s1 s1-u1\n", "wav.scp": "s1-u1 /x.wav\n",
        "utt2dur": "s1-u1 2\n", "reco2dur": "s1-u1 2\n", "utt2uniq": "s1-u1 orig-u1\n",
    })
    perturb_data_dir_speed(src, tmp_path / "sp", [1.0, 1.1], always_include_prefix=True)
    out = _read_dir(tmp_path / "sp")
    assert out["utt2spk"] == "sp1.0-s1-u1 sp1.0-s1\nsp1.1-s1-u1 sp1.1-s1\n"
    assert out["wav.scp"] == "sp1.0-s1-u1 /x.wav\nsp1.1-s1-u1 sox -t wav /x.wav -t wav - speed 1.1 |\n"
    # An existing utt2uniq is followed back to the original id.
    assert out["utt2uniq"] == "sp1.0-s1-u1 orig-u1\nsp1.1-s1-u1 orig-u1\n"
    assert out["utt2dur"] == "sp1.0-s1-u1 2\nsp1.1-s1-u1 1.81818\n"


def test_durations_computed_from_audio_and_read_back_without_sox(fixture_datadir, tmp_path, monkeypatch):
    (fixture_datadir / "utt2dur").unlink()
    dst = tmp_path / "sp"
    perturb_data_dir_speed(fixture_datadir, dst, [0.9, 1.0])
    lines = dict(ln.split() for ln in (dst / "utt2dur").read_text().splitlines())
    # wav-to-duration's values (the fixture's Kaldi utt2dur), and those / 0.9 in awk's format.
    assert lines["spkA-en-002"] == "2.634063"
    assert lines["sp0.9-spkA-en-002"] == "2.92674"
    assert (dst / "reco2dur").read_text() == (dst / "utt2dur").read_text()
    assert not (fixture_datadir / "reco2dur").exists()  # the source is never written to

    monkeypatch.setattr(wav, "_have", lambda program: False)
    reader = WavScpReader(dst)
    samples, rate = reader["sp0.9-spkC-fr-002"]
    assert rate == 16000
    assert abs(samples.shape[0] - 18629 / 0.9) <= 1
    assert reader["spkC-fr-002"][0].shape == (18629,)


@pytest.mark.parametrize("with_sox", [True, False])
def test_a_flac_recording_is_read_back_perturbed(tmp_path, monkeypatch, with_sox):
    import shutil

    import soundfile

    if with_sox and shutil.which("sox") is None:
        pytest.skip("sox is not installed: the in-process reading is the other case")
    if not with_sox:
        monkeypatch.setattr(wav, "_have", lambda program: False)
    audio = (np.sin(np.arange(16000) * 0.05) * 8000).astype(np.int16)
    soundfile.write(tmp_path / "r1.flac", audio, 16000, subtype="PCM_16")
    src = _write_dir(tmp_path / "d", {"wav.scp": f"r1 {tmp_path / 'r1.flac'}\n", "utt2spk": "r1 s\n",
                                      "spk2utt": "s r1\n"})
    perturb_data_dir_speed(src, tmp_path / "sp", [0.9])
    samples, rate = WavScpReader(tmp_path / "sp")["sp0.9-r1"]
    assert rate == 16000 and abs(samples.shape[0] - 16000 / 0.9) <= 2


def test_errors_leave_nothing_behind(tmp_path, fixture_datadir):
    with pytest.raises(DataDirError, match="must differ"):
        perturb_data_dir_speed(fixture_datadir, fixture_datadir, [0.9])
    dst = _write_dir(tmp_path / "has_feats", {"feats.scp": "x y\n"})
    with pytest.raises(DataDirError, match=r"has_feats/feats.scp already exists"):
        perturb_data_dir_speed(fixture_datadir, dst, [0.9])
    (fixture_datadir / "text").write_text((fixture_datadir / "text").read_text() + "zz-unknown hello\n")
    with pytest.raises(DataDirError, match=r"text: utterance 'zz-unknown' is not in utt2spk"):
        perturb_data_dir_speed(fixture_datadir, tmp_path / "out", [0.9])
    with pytest.raises(ConfigError, match="repeated speed factor"):
        perturb_data_dir_speed(fixture_datadir, tmp_path / "out", [0.9, 0.9])
    with pytest.raises(ConfigError, match="positive"):
        perturb_data_dir_speed(fixture_datadir, tmp_path / "out", [-1.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "has_feats"]


def test_replaces_an_old_output(tmp_path, fixture_datadir):
    dst = _write_dir(tmp_path / "sp", {"stale": "x\n", MARKER: ""})  # an earlier asrkit output
    perturb_data_dir_speed(fixture_datadir, dst, [1.1])
    assert not (dst / "stale").exists()
    assert (dst / "utt2spk").read_text().splitlines()[0] == "sp1.1-spkA-en-001 sp1.1-spkA"
    assert np.isclose(float((dst / "utt2dur").read_text().split()[1]), 3.204875 / 1.1, atol=1e-5)


def test_a_result_that_fails_validation_is_reported_under_its_own_name(tmp_path, fixture_datadir):
    # The staged writer validates before the rename; the message names dst, not the temporary folder.
    text = (fixture_datadir / "text").read_text().replace("spkA-en-002 ", "spkA-en-002 <s> ")
    (fixture_datadir / "text").write_text(text)
    dst = tmp_path / "sp"
    with pytest.raises(DataDirError) as info:
        perturb_data_dir_speed(fixture_datadir, dst, [0.9, 1.0])
    assert str(info.value) == f"{dst}/text:2: illegal symbol '<s>'"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
