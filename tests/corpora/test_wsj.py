"""WSJ preparation on a tiny fake LDC tree; expected files written out from Kaldi's wsj_data_prep.sh rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.corpora.wsj import normalize_wsj_transcript, prepare_wsj, read_sphere_header
from asrkit.errors import AsrkitError, DataDirError, FormatError

DOT_011 = """[door_slam>] The <and> company's stock rose three .POINT five %PERCENT \\.PERIOD [loud_breath] (011c0201)
mr\\. smith ~ said --DASH yes . [<door_slam] *hello* so: [phone_ring/] ok [/phone_ring] (011c0202)
Not listed in any index (011c0203)
"""


def _pcm_sphere(path: Path, num_samples: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = (0.1 * np.sin(np.arange(num_samples) / 7.0)).astype("float32")
    sf.write(str(path), x, 16000, format="NIST", subtype="PCM_16")


def _shorten_sphere(path: Path, num_samples: int) -> None:
    """A SPHERE header that says shorten; the body is not real shorten (only sph2pipe would read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = (f"channel_count -i 1\nsample_count -i {num_samples}\nsample_rate -i 16000\nsample_n_bytes -i 2\n"
              "sample_coding -s26 pcm,embedded-shorten-v1.1\nend_head\n")
    head = ("NIST_1A\n   1024\n" + fields).encode("ascii")
    path.write_bytes(head + b" " * (1024 - len(head)) + b"\x00" * 64)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_wsj_tree(root: Path) -> tuple[Path, Path]:
    wsj0, wsj1 = root / "wsj0", root / "wsj1"
    _write(wsj0 / "11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx",
           ";; File: tr_s_wv1.ndx\n;;\n"
           "11_2_1:wsj0/si_tr_s/011/011c0201.wv1\n"
           "11_2_1:wsj0/si_tr_s/011/011c0202.wv1\n"
           "11_2_1:wsj0/si_tr_s/401/401c0201.wv1\n"   # Kaldi greps si_tr_s/401 out; it is not on disk
           "11_2_1:wsj0/si_tr_s/012/012c0201.wv1\n")
    _write(wsj0 / "11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx",
           ";; nvp index: no extension\n11_14_1:wsj0/si_et_20/440/440c0201\n11_14_1:wsj0/si_et_20/440/440c0202\n")
    _pcm_sphere(wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0201.wv1", 1600)
    _pcm_sphere(wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0202.wv1", 2400)
    _pcm_sphere(wsj0 / "11-2.1/wsj0/si_tr_s/012/012c0201.wv1", 4000)
    _write(wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0200.dot", DOT_011)
    _write(wsj0 / "11-2.1/wsj0/si_tr_s/012/012c0200.dot", ",COMMA Hello World (012c0201)\n")
    _pcm_sphere(wsj0 / "11-14.1/wsj0/si_et_20/440/440c0201.wv1", 3200)
    _pcm_sphere(wsj0 / "11-14.1/wsj0/si_et_20/440/440c0202.wv1", 1600)
    _write(wsj0 / "11-14.1/wsj0/si_et_20/440/440c0200.dot", "First test (440c0201)\nSecond test (440c0202)\n")

    _write(wsj1 / "13-34.1/wsj1/doc/indices/si_tr_s.ndx",
           ";; wsj1 si_tr_s\n13_1_1:wsj1/si_tr_s/46a/46ac0201.wv1\n13_1_1:wsj1/si_tr_s/46a/46ac0202.wv1\n")
    _write(wsj1 / "13-34.1/wsj1/doc/indices/h1_p0.ndx",
           ";; dev93\n13_16_1:wsj1/si_dt_20/4k0/4k0c0301.wv1\n13_16_1:wsj1/si_dt_20/4k0/4k0c0302.wv1\n")
    _write(wsj1 / "13-32.1/wsj1/doc/indices/wsj1/eval/h1_p0.ndx",
           ";; eval93 names the wrong disk\n13_32_1:wsj1/si_et_h1/wsj64k/4k8c0201.wv1\n")
    _pcm_sphere(wsj1 / "13-1.1/wsj1/si_tr_s/46a/46ac0201.wv1", 1600)
    _pcm_sphere(wsj1 / "13-1.1/wsj1/si_tr_s/46a/46ac0202.wv1", 1600)
    _write(wsj1 / "13-1.1/wsj1/si_tr_s/46a/46ac0200.dot", "one (46ac0201)\ntwo (46ac0202)\n")
    # An upper-cased copy of a file (ndx2flist.pl's 13-16.1 fix) and a shorten-compressed one.
    _pcm_sphere(wsj1 / "13-16.1/wsj1/si_dt_20/4k0/4K0C0301.WV1", 2400)
    _shorten_sphere(wsj1 / "13-16.1/wsj1/si_dt_20/4k0/4k0c0302.wv1", 8000)
    _write(wsj1 / "13-16.1/wsj1/si_dt_20/4k0/4k0c0300.dot", "dev one (4k0c0301)\n[lip_smack] dev two (4k0c0302)\n")
    _pcm_sphere(wsj1 / "13-33.1/wsj1/si_et_h1/wsj64k/4k8c0201.wv1", 1600)
    _write(wsj1 / "13-33.1/wsj1/si_et_h1/wsj64k/4k8c0200.dot", "eval ninety three (4k8c0201)\n")
    return wsj0, wsj1


def fake_sph2pipe(root: Path) -> Path:
    prog = root / "bin" / "sph2pipe"
    _write(prog, "#!/bin/sh\nexit 0\n")
    prog.chmod(prog.stat().st_mode | stat.S_IXUSR)
    return prog


def read_dir(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != ".asrkit"}


def test_normalize_wsj_transcript_follows_kaldi():
    assert (normalize_wsj_transcript(DOT_011.splitlines()[0].rsplit("(", 1)[0])
            == "THE AND COMPANY'S STOCK ROSE THREE POINT FIVE PERCENT .PERIOD <NOISE>")
    line2 = DOT_011.splitlines()[1].rsplit("(", 1)[0]
    assert normalize_wsj_transcript(line2) == "MR. SMITH SAID -DASH YES *HELLO* SO: OK"
    assert normalize_wsj_transcript(line2, strip_marks=True) == "MR. SMITH SAID -DASH YES HELLO SO OK"
    assert normalize_wsj_transcript("[tongue_click] x [a_b]y", noise_word="<N>") == "<N> X <N>"
    assert normalize_wsj_transcript(". ~") == ""


def test_read_sphere_header(tmp_path):
    _shorten_sphere(tmp_path / "a.wv1", 123)
    h = read_sphere_header(tmp_path / "a.wv1")
    assert h["sample_count"] == 123 and h["sample_rate"] == 16000
    assert h["sample_coding"] == "pcm,embedded-shorten-v1.1"
    (tmp_path / "b.wv1").write_bytes(b"RIFF....WAVE")
    with pytest.raises(AsrkitError, match=r"b\.wv1: not a NIST SPHERE file"):
        read_sphere_header(tmp_path / "b.wv1")


def test_prepare_wsj_matches_kaldi(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    prog = fake_sph2pipe(tmp_path)
    out = tmp_path / "data"
    dirs = prepare_wsj(wsj0, wsj1, out, sph2pipe=str(prog))
    assert [d.name for d in dirs] == ["train_si84", "train_si284", "test_eval92", "test_eval93", "test_dev93"]
    w0 = os.path.abspath(wsj0)
    w1 = os.path.abspath(wsj1)

    si84 = read_dir(out / "train_si84")
    assert set(si84) >= {"wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2dur"}
    assert si84["wav.scp"] == (
        f"011c0201 {w0}/11-2.1/wsj0/si_tr_s/011/011c0201.wv1\n"
        f"011c0202 {w0}/11-2.1/wsj0/si_tr_s/011/011c0202.wv1\n"
        f"012c0201 {w0}/11-2.1/wsj0/si_tr_s/012/012c0201.wv1\n")
    assert si84["text"] == (
        "011c0201 THE AND COMPANY'S STOCK ROSE THREE POINT FIVE PERCENT .PERIOD <NOISE>\n"
        "011c0202 MR. SMITH SAID -DASH YES *HELLO* SO: OK\n"
        "012c0201 ,COMMA HELLO WORLD\n")
    assert si84["utt2spk"] == "011c0201 011\n011c0202 011\n012c0201 012\n"
    assert si84["spk2utt"] == "011 011c0201 011c0202\n012 012c0201\n"
    assert si84["utt2lang"] == "011c0201 en\n011c0202 en\n012c0201 en\n"
    assert si84["utt2dur"] == "011c0201 0.1\n011c0202 0.15\n012c0201 0.25\n"

    si284 = read_dir(out / "train_si284")
    assert si284["text"] == si84["text"] + "46ac0201 ONE\n46ac0202 TWO\n"
    assert si284["utt2spk"] == si84["utt2spk"] + "46ac0201 46a\n46ac0202 46a\n"
    assert si284["spk2utt"] == si84["spk2utt"] + "46a 46ac0201 46ac0202\n"
    assert si284["wav.scp"].endswith(f"46ac0202 {w1}/13-1.1/wsj1/si_tr_s/46a/46ac0202.wv1\n")

    eval92 = read_dir(out / "test_eval92")
    assert eval92["wav.scp"] == (f"440c0201 {w0}/11-14.1/wsj0/si_et_20/440/440c0201.wv1\n"
                                 f"440c0202 {w0}/11-14.1/wsj0/si_et_20/440/440c0202.wv1\n")
    assert eval92["text"] == "440c0201 FIRST TEST\n440c0202 SECOND TEST\n"
    assert eval92["utt2dur"] == "440c0201 0.2\n440c0202 0.1\n"

    eval93 = read_dir(out / "test_eval93")  # 13_32_1 in the index -> disk 13-33.1
    assert eval93["wav.scp"] == f"4k8c0201 {w1}/13-33.1/wsj1/si_et_h1/wsj64k/4k8c0201.wv1\n"
    assert eval93["text"] == "4k8c0201 EVAL NINETY THREE\n"

    dev93 = read_dir(out / "test_dev93")
    assert dev93["wav.scp"] == (f"4k0c0301 {w1}/13-16.1/wsj1/si_dt_20/4k0/4K0C0301.WV1\n"
                                f"4k0c0302 {prog} -f wav {w1}/13-16.1/wsj1/si_dt_20/4k0/4k0c0302.wv1 |\n")
    assert dev93["text"] == "4k0c0301 DEV ONE\n4k0c0302 <NOISE> DEV TWO\n"
    assert dev93["utt2dur"] == "4k0c0301 0.15\n4k0c0302 0.5\n"
    assert dev93["utt2spk"] == "4k0c0301 4k0\n4k0c0302 4k0\n"
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary dirs left


def test_prepare_wsj_keeps_existing_unless_overwrite(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    prog = fake_sph2pipe(tmp_path)
    out = tmp_path / "data"
    prepare_wsj(wsj0, wsj1, out, sph2pipe=str(prog), sets=["train_si84"])
    (out / "train_si84" / "text").write_text("edited\n")
    prepare_wsj(wsj0, wsj1, out, sph2pipe=str(prog), sets=["train_si84"])
    assert (out / "train_si84" / "text").read_text() == "edited\n"
    prepare_wsj(wsj0, wsj1, out, sph2pipe=str(prog), sets=["train_si84"], overwrite=True)
    assert (out / "train_si84" / "text").read_text().startswith("011c0201 THE AND")


def test_prepare_wsj_needs_sph2pipe_for_shorten(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    with pytest.raises(AsrkitError, match=r"1 WSJ file\(s\) are shorten-compressed SPHERE .*4k0c0302\.wv1.*"
                                          r"'no-such-sph2pipe' was not found.*--sph2pipe"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sph2pipe="no-such-sph2pipe", sets=["test_dev93"])
    # Sets without shorten files need no sph2pipe.
    prepare_wsj(wsj0, wsj1, tmp_path / "data", sph2pipe="no-such-sph2pipe", sets=["test_eval92"])
    assert (tmp_path / "data/test_eval92/text").is_file()


def test_prepare_wsj_missing_disk_and_index(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    with pytest.raises(AsrkitError, match=r"nowhere: WSJ0 folder \(--wsj0\) does not exist"):
        prepare_wsj(tmp_path / "nowhere", wsj1, tmp_path / "data")
    with pytest.raises(AsrkitError, match=r"11-2\.1: no WSJ disk folder 13-34\.1 here or one level down"):
        prepare_wsj(wsj0, wsj0.parent / "wsj0" / "11-2.1", tmp_path / "data")
    (wsj1 / "13-34.1/wsj1/doc/indices/h1_p0.ndx").unlink()
    with pytest.raises(AsrkitError, match=r"h1_p0\.ndx: index for test_dev93 does not exist"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["test_dev93"])


def test_prepare_wsj_reports_missing_audio_and_transcripts(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    (wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0202.wv1").unlink()
    with pytest.raises(DataDirError, match=r"train_si84 \(.*tr_s_wv1\.ndx\): listed audio not on disk: "
                                           r"1 \(first: 011c0202\)"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["train_si84"])
    _pcm_sphere(wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0202.wv1", 1600)
    (wsj0 / "11-2.1/wsj0/si_tr_s/012/012c0200.dot").unlink()
    (wsj0 / "11-2.1/wsj0/si_tr_s/011/011c0200.dot").write_text(DOT_011.replace("(011c0202)", "(011c0209)"))
    with pytest.raises(DataDirError, match=r"audio without transcript \(no line in a <session>00\.dot file\): "
                                           r"2 \(first: 011c0202, 012c0201\)"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["train_si84"])
    assert not (tmp_path / "data" / "train_si84").exists()


def test_prepare_wsj_bad_index_and_dot_lines(tmp_path):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    ndx = wsj0 / "11-13.1/wsj0/doc/indices/test/nvp/si_et_20.ndx"
    ndx.write_text(ndx.read_text() + "11_99_1:wsj0/si_et_20/440/440c0203\n")
    with pytest.raises(FormatError, match=r"si_et_20\.ndx:4: disk 11-99\.1 \(id 11_99_1\) not found"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["test_eval92"])
    ndx.write_text("garbage line\n")
    with pytest.raises(FormatError, match=r"si_et_20\.ndx:1: expected '<disk_id>:<path>'"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["test_eval92"])
    ndx.write_text("11_14_1:wsj0/si_et_20/440/440c0201\n")
    (wsj0 / "11-14.1/wsj0/si_et_20/440/440c0200.dot").write_text("no id here\n")
    with pytest.raises(FormatError, match=r"440c0200\.dot:1: expected '<transcript> \(<8-character utterance id>\)'"):
        prepare_wsj(wsj0, wsj1, tmp_path / "data", sets=["test_eval92"])


def test_cli_wsj(tmp_path, asrkit_cli):
    wsj0, wsj1 = make_wsj_tree(tmp_path / "ldc")
    prog = fake_sph2pipe(tmp_path)
    out = tmp_path / "data"
    proc = asrkit_cli("prepare", "wsj", "--wsj0", wsj0, "--wsj1", wsj1, "--set", "test_dev93",
                      "--set", "test_eval92", out, env={"PATH": f"{prog.parent}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "test_eval92"), str(out / "test_dev93")]
    assert (out / "test_dev93/wav.scp").read_text().splitlines()[1].startswith(f"4k0c0302 {prog} -f wav ")
    proc = asrkit_cli("prepare", "wsj", "--wsj0", wsj0, "--wsj1", wsj1, "--set", "test_dev93", tmp_path / "d2",
                      env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith("asrkit prepare wsj: error: 1 WSJ file(s) are shorten-compressed")
