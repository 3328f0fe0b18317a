"""wav.scp reading: files, pipes, ark offsets, segments, and the in-process sox stand-in."""

from __future__ import annotations

import logging
import shutil

import kaldiio
import numpy as np
import pytest
import soundfile

from asrkit.errors import AudioError, FormatError
from asrkit.kaldi import wav
from asrkit.kaldi.wav import WavScpReader, read_audio, speed_perturb

UTT = "spkA-en-001"


@pytest.fixture
def in_fixtures(kaldi_fixtures, monkeypatch):
    """Run from the fixture folder: its wav.scp paths are relative, as Kaldi's usually are."""
    monkeypatch.chdir(kaldi_fixtures)
    return kaldi_fixtures


@pytest.fixture
def no_sox(monkeypatch):
    """Pretend sox and wav-copy are not installed."""
    monkeypatch.setattr(wav, "_have", lambda program: False)


def _int16(path):
    data, _ = soundfile.read(path, dtype="int16")
    return data.astype(np.float32)


def test_wav_scp_samples_are_int16_scale(in_fixtures):
    reader = WavScpReader("wav.scp")
    assert reader.keys() == ["spkA-en-001", "spkA-en-002", "spkB-de-001", "spkB-de-002", "spkC-fr-001",
                             "spkC-fr-002"]
    seen = []
    for utt, samples, rate in reader:
        seen.append(utt)
        assert rate == 16000
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert np.abs(samples).max() > 1000  # Kaldi scale, not [-1, 1]
        np.testing.assert_array_equal(samples, _int16(f"wav/{utt}.wav"))
    assert seen == reader.keys()
    assert reader[UTT][0].shape == (51278,)


def test_durations_match_kaldi_utt2dur(in_fixtures):
    kaldi = {ln.split()[0]: float(ln.split()[1]) for ln in (in_fixtures / "utt2dur").read_text().splitlines()}
    durations = WavScpReader(in_fixtures).durations()
    assert list(durations) == list(kaldi)
    for utt, d in durations.items():
        assert d == pytest.approx(kaldi[utt], abs=1e-6)


def test_8k_fixture(in_fixtures):
    samples, rate = WavScpReader("wav8k.scp")[UTT]
    assert rate == 8000
    assert samples.shape[0] == soundfile.info("wav8k-spkA-en-001.wav").frames


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_sox_pipe_reads_the_same_samples(in_fixtures):
    piped = WavScpReader("wav_pipe.scp")[UTT]
    plain = WavScpReader("wav.scp")[UTT]
    np.testing.assert_array_equal(piped[0], plain[0])
    assert piped[1] == plain[1]


def test_cat_pipe_reads_the_same_samples(in_fixtures, tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"{UTT} cat {in_fixtures / 'wav' / (UTT + '.wav')} |\nutt2 cat {in_fixtures / 'wav8k-spkA-en-001.wav'}|\n")
    reader = WavScpReader(scp)
    np.testing.assert_array_equal(reader[UTT][0], _int16(f"wav/{UTT}.wav"))
    assert reader["utt2"][1] == 8000


def test_failing_pipe_names_key_and_command(in_fixtures):
    with pytest.raises(AudioError, match=r"spkA-en-001: command 'false' failed with exit status 1"):
        WavScpReader("wav_pipe_fails.scp")[UTT]
    with pytest.raises(AudioError, match=r"u1: command 'ls /no/such/dir' failed with exit status 2: .*No such file"):
        read_audio("ls /no/such/dir |", "u1")


def test_ark_offset(tmp_path, in_fixtures):
    samples = _int16(f"wav/{UTT}.wav").astype(np.int16)
    ark, scp = tmp_path / "wav.ark", tmp_path / "wav_ark.scp"
    kaldiio.save_ark(str(ark), {"first": (16000, samples[:100]), UTT: (16000, samples)}, scp=str(scp))
    reader = WavScpReader(scp)
    np.testing.assert_array_equal(reader[UTT][0], samples.astype(np.float32))
    assert reader["first"][0].shape == (100,)
    size = ark.stat().st_size
    with pytest.raises(AudioError, match=rf"u9: offset {size + 5} is past the end"):
        read_audio(f"{ark}:{size + 5}", "u9")
    # An offset into a truncated archive.
    cut = tmp_path / "cut.ark"
    cut.write_bytes(ark.read_bytes()[: size - 1000])
    offset = reader._wav[UTT].rsplit(":", 1)[1]
    with pytest.raises(AudioError, match="u8: .*truncated"):
        read_audio(f"{cut}:{offset}", "u8")


def test_segments_cut_kaldis_samples(in_fixtures, tmp_path):
    seg = tmp_path / "segments"
    seg.write_text(
        f"{UTT}-a {UTT} 0.10 0.50\n"
        f"{UTT}-b {UTT} 1.23456 2.0\n"
        f"{UTT}-c {UTT} 3.0 -1\n"
        f"{UTT}-d {UTT} 3.0 3.5\n"  # 0.295 s past the 3.204875 s recording: cut at the end
        "spkB-de-001-a spkB-de-001 0 1\n"
    )
    full = _int16(f"wav/{UTT}.wav")
    calls = []
    real = wav.read_audio

    def counting(rx, key):
        calls.append(key)
        return real(rx, key)

    reader = WavScpReader("wav.scp", segments=seg)
    wav.read_audio = counting
    try:
        got = {utt: s for utt, s, _ in reader}
    finally:
        wav.read_audio = real
    assert calls == [UTT, "spkB-de-001"]  # each recording read once
    np.testing.assert_array_equal(got[f"{UTT}-a"], full[1600:8000])
    np.testing.assert_array_equal(got[f"{UTT}-b"], full[19752:32000])  # int(19752.96): truncated
    np.testing.assert_array_equal(got[f"{UTT}-c"], full[48000:])
    np.testing.assert_array_equal(got[f"{UTT}-d"], full[48000:])
    assert got["spkB-de-001-a"].shape == (16000,)
    assert reader.durations()[f"{UTT}-c"] == pytest.approx(3.204875 - 3.0)
    assert reader.durations()[f"{UTT}-a"] == pytest.approx(0.4)


def test_segment_errors_name_the_utterance(in_fixtures, tmp_path):
    seg = tmp_path / "segments"
    seg.write_text(f"late {UTT} 3.21 4.0\nlong {UTT} 0.0 3.705\n")
    reader = WavScpReader("wav.scp", segments=seg)
    with pytest.raises(AudioError, match=r"late: segment starts at 3.21 s, past the end of recording 'spkA-en-001'"):
        reader["late"]
    with pytest.raises(AudioError, match=r"long: segment ends at 3.705 s, more than 0.5 s past the end"):
        reader["long"]
    seg.write_text(f"u1 {UTT} 0.5 0.4\n")
    with pytest.raises(FormatError, match=r"segments:1: utterance 'u1': invalid times"):
        WavScpReader("wav.scp", segments=seg)
    seg.write_text("u1 nosuchreco 0 1\n")
    with pytest.raises(FormatError, match=r"segments:1: utterance 'u1': recording 'nosuchreco' is not in wav.scp"):
        WavScpReader("wav.scp", segments=seg)


def test_stereo_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.zeros((1600, 2), dtype=np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"stereo-utt: .*stereo.wav' has 2 channels; Kaldi needs mono"):
        read_audio(str(path), "stereo-utt")
    with pytest.raises(AudioError, match=r"stereo-pipe: .* has 2 channels"):
        read_audio(f"cat {path} |", "stereo-pipe")


def test_empty_truncated_and_missing_audio(tmp_path, in_fixtures):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"e1: .*empty.wav' has no samples"):
        read_audio(str(empty), "e1")
    cut = tmp_path / "cut.wav"
    cut.write_bytes((in_fixtures / "wav" / f"{UTT}.wav").read_bytes()[:50000])
    with pytest.raises(AudioError, match=r"t1: .*cut.wav' is truncated: the header says 51278 samples, found 24978"):
        read_audio(str(cut), "t1")
    with pytest.raises(AudioError, match=r"m1: cannot open 'nope.wav': no such file"):
        read_audio("nope.wav", "m1")


def test_flac_and_sphere(tmp_path, in_fixtures):
    samples = _int16(f"wav/{UTT}.wav")
    for fmt, name in (("FLAC", "x.flac"), ("NIST", "x.sph")):
        soundfile.write(tmp_path / name, samples.astype(np.int16), 16000, format=fmt, subtype="PCM_16")
        got, rate = read_audio(str(tmp_path / name), "u")
        assert rate == 16000
        np.testing.assert_array_equal(got, samples)


def test_speed_perturb_length_and_content():
    rate = 16000
    t = np.arange(16000) / rate
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for factor in (0.9, 1.1, 0.95):
        out = speed_perturb(tone, rate, factor)
        assert abs(out.shape[0] - tone.shape[0] / factor) <= 1
        assert np.all(out == np.round(out))  # int16 values, as sox's 16-bit output
        # Pitch moves with speed: the tone is now at 440 * factor Hz.
        spectrum = np.abs(np.fft.rfft(out[2000:-2000] * np.hanning(out.shape[0] - 4000)))
        peak = np.argmax(spectrum) * rate / (out.shape[0] - 4000)
        assert peak == pytest.approx(440 * factor, abs=2)
    np.testing.assert_array_equal(speed_perturb(tone, rate, 1.0), tone)


def test_kaldi_speed_pipes_without_sox(in_fixtures, tmp_path, no_sox):
    plain = _int16(f"wav/{UTT}.wav")
    expected = speed_perturb(plain, 16000, 0.9)
    file_form, rate = read_audio(f"sox -t wav wav/{UTT}.wav -t wav - speed 0.9 |", UTT)
    assert rate == 16000
    assert abs(file_form.shape[0] - plain.shape[0] / 0.9) <= 1
    np.testing.assert_array_equal(file_form, expected)
    old_form, _ = read_audio(f"sox wav/{UTT}.wav -t wav - speed 0.9 |", UTT)
    np.testing.assert_array_equal(old_form, expected)
    pipe_form, _ = read_audio(f"cat wav/{UTT}.wav | sox -t wav - -t wav - speed 0.9 |", UTT)
    np.testing.assert_array_equal(pipe_form, expected)
    ark, scp = tmp_path / "w.ark", tmp_path / "w.scp"
    kaldiio.save_ark(str(ark), {UTT: (16000, plain.astype(np.int16))}, scp=str(scp))
    offset = scp.read_text().split()[1]
    ark_form, _ = read_audio(f"wav-copy {offset} - | sox -t wav - -t wav - speed 0.9 |", UTT)
    np.testing.assert_array_equal(ark_form, expected)
    # Without sox, the fixture's plain `sox file -t wav - |` conversion reads the file itself.
    np.testing.assert_array_equal(WavScpReader("wav_pipe.scp")[UTT][0], plain)
    # A stage asrkit cannot stand in for still runs, and fails clearly.
    with pytest.raises(AudioError, match=r"u: command 'no-such-tool x.wav' failed "
                                         r"with exit status 127: .*no-such-tool: command not found"):
        read_audio("no-such-tool x.wav | sox -t wav - -t wav - speed 0.9 |", "u")


def test_sox_streaming_header_is_not_a_truncation(tmp_path, in_fixtures, caplog):
    # sox writing to a pipe puts a placeholder data size (0x7ffff000) in the header; a speed-perturbed
    # data dir then gave one warning per utterance although the samples are all there.
    samples = _int16(f"wav/{UTT}.wav")
    for placeholder in (0x7FFFF000, 0xFFFFFFFF):
        data = bytearray((in_fixtures / "wav" / f"{UTT}.wav").read_bytes())
        at = data.index(b"data") + 4
        data[at:at + 4] = placeholder.to_bytes(4, "little")
        streamed = tmp_path / f"streamed_{placeholder:x}.wav"
        streamed.write_bytes(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="asrkit"):
            logging.getLogger("asrkit").addHandler(caplog.handler)
            try:
                got, rate = read_audio(f"cat {streamed} |", "s1")
                from_file, _ = read_audio(str(streamed), "s2")
            finally:
                logging.getLogger("asrkit").removeHandler(caplog.handler)
        assert not [r for r in caplog.records if "truncated" in r.getMessage()]
        np.testing.assert_array_equal(got, samples)
        np.testing.assert_array_equal(from_file, samples)
    # A real short read from a pipe is still reported.
    cut = tmp_path / "cut.wav"
    cut.write_bytes((in_fixtures / "wav" / f"{UTT}.wav").read_bytes()[:50000])
    with caplog.at_level(logging.WARNING, logger="asrkit"):
        logging.getLogger("asrkit").addHandler(caplog.handler)
        try:
            read_audio(f"cat {cut} |", "t2")
        finally:
            logging.getLogger("asrkit").removeHandler(caplog.handler)
    assert any("t2: " in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)


def test_emulated_speed_is_detected_and_warned_once(in_fixtures, tmp_path, monkeypatch):
    scp = tmp_path / "wav.scp"
    scp.write_text(f"a wav/{UTT}.wav\nb sox wav/{UTT}.wav -t wav - remix 1 |\n")
    assert not wav.emulates_sox_speed(scp)  # no speed effect
    scp.write_text(f"a wav/{UTT}.wav\nb\tsox -t wav wav/{UTT}.wav -t wav - speed 1.1 |\n")
    monkeypatch.setattr(wav, "_have", lambda program: program != "sox")
    assert wav.emulates_sox_speed(scp)
    monkeypatch.setattr(wav, "_have", lambda program: True)
    assert not wav.emulates_sox_speed(scp)  # sox runs it

    monkeypatch.setattr(wav, "_have", lambda program: False)
    monkeypatch.setattr(wav, "_warned_speed_emulated", False)
    warnings = []
    monkeypatch.setattr(wav.log, "warning", lambda msg, *args: warnings.append(msg % args))
    for _ in range(2):
        read_audio(f"sox wav/{UTT}.wav -t wav - speed 0.9 |", UTT)
    read_audio(f"sox wav/{UTT}.wav -t wav - |", UTT)  # no speed: nothing to say
    assert warnings == [f"sox is not installed: speed perturbation ('sox wav/{UTT}.wav -t wav - speed 0.9 |' and "
                        "the like) is emulated in-process; samples differ from sox's by a few int16 steps"]


def test_pcm16_wav_fast_path_equals_soundfile(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    samples = rng.integers(-32768, 32767, 16001, dtype=np.int16)
    path = tmp_path / "x.wav"
    soundfile.write(path, samples, 16000, subtype="PCM_16")
    got, rate = read_audio(str(path), "u")
    assert rate == 16000 and got.dtype == np.float32
    np.testing.assert_array_equal(got, samples.astype(np.float32))
    # Other WAV encodings are soundfile's, on the same int16 scale.
    for subtype in ("PCM_24", "FLOAT", "PCM_U8"):
        soundfile.write(tmp_path / "y.wav", samples / 32768.0, 16000, subtype=subtype)
        other, _ = read_audio(str(tmp_path / "y.wav"), "u")
        tolerance = 256 if subtype == "PCM_U8" else 0
        np.testing.assert_allclose(other, samples.astype(np.float32), atol=tolerance)
    # Cut inside a sample: the half sample is dropped and the file is truncated, as soundfile says.
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:44 + 2 * 1000 + 1])
    with pytest.raises(AudioError, match=r"the header says 16001 samples, found 1000"):
        read_audio(str(cut), "u")
    # The same bytes through a pipe: a warning, and the samples that came.
    monkeypatch.setattr(wav, "_have", lambda program: True)
    piped, _ = read_audio(f"cat {cut} |", "u")
    np.testing.assert_array_equal(piped, samples[:1000].astype(np.float32))
