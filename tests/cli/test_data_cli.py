"""`asrkit data <verb>` through the real command line: exit codes, one-line errors, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UTTS = ["spkA-en-001", "spkA-en-002", "spkB-de-001", "spkB-de-002", "spkC-fr-001", "spkC-fr-002"]


def rewrite(d: Path, name: str, fn) -> None:
    ls = (d / name).read_text().splitlines()
    (d / name).write_text("".join(x + "\n" for x in fn(ls)))


def assert_one_line_error(proc, command: str, expected: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert err[0].startswith(f"asrkit {command}: error: "), err[0]
    assert expected in err[0], err[0]


def test_validate_success(asrkit_cli, fixture_datadir):
    proc = asrkit_cli("data", "validate", "--no-feats", fixture_datadir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"asrkit data validate: Successfully validated data-directory {fixture_datadir}"
    assert proc.stderr == ""


@pytest.mark.parametrize("name,fn,expected", [
    ("utt2spk", lambda ls: [ls[1], ls[0], *ls[2:]], "utt2spk:2: not sorted: 'spkA-en-001' after 'spkA-en-002'"),
    ("text", lambda ls: [ls[0], "spkA-en-002 <s> hello", *ls[2:]], "text:2: illegal symbol '<s>'"),
    ("utt2lang", lambda ls: ls[:-1], "utt2lang: keys are not the utterances of utt2spk (first: 'spkC-fr-002')"),
    ("utt2dur", lambda ls: [*ls[:2], "spkB-de-001 0", *ls[3:]], "utt2dur:3: duration 0 is not > 0"),
])
def test_validate_failure_is_one_line(asrkit_cli, fixture_datadir, name, fn, expected):
    rewrite(fixture_datadir, name, fn)
    proc = asrkit_cli("data", "validate", "--no-feats", fixture_datadir)
    assert_one_line_error(proc, "data validate", f"{fixture_datadir}/{expected}")
    assert proc.stdout == ""


def test_validate_requires_feats_and_cmvn_by_speaker(asrkit_cli, fixture_datadir):
    proc = asrkit_cli("data", "validate", fixture_datadir)
    assert_one_line_error(proc, "data validate", f"{fixture_datadir}/feats.scp: no such file")
    (fixture_datadir / "cmvn.scp").write_text("".join(f"{u} cmvn.ark:{i}\n" for i, u in enumerate(UTTS)))
    proc = asrkit_cli("data", "validate", "--no-feats", fixture_datadir)
    assert_one_line_error(proc, "data validate",
                          f"{fixture_datadir}/cmvn.scp: keys are not the speakers of spk2utt (first: 'spkA')")


def test_validate_non_print_option(asrkit_cli, fixture_datadir):
    rewrite(fixture_datadir, "text", lambda ls: [ls[0], "spkA-en-002 seven\x7f", *ls[2:]])
    assert_one_line_error(asrkit_cli("data", "validate", "--no-feats", fixture_datadir), "data validate",
                          "text:2: non-printable character U+007F")
    assert asrkit_cli("data", "validate", "--no-feats", "--non-print", fixture_datadir).returncode == 0


def test_fix(asrkit_cli, fixture_datadir):
    rewrite(fixture_datadir, "text", lambda ls: ls[:3] + ls[4:])
    proc = asrkit_cli("data", "fix", fixture_datadir)
    assert proc.returncode == 0, proc.stderr
    assert "fix_data_dir: kept 5 utterances out of 6" in proc.stderr
    assert "spkB-de-002" not in (fixture_datadir / "utt2spk").read_text()
    assert "spkB-de-002" in (fixture_datadir / ".backup" / "utt2spk").read_text()
    assert asrkit_cli("data", "validate", "--no-feats", fixture_datadir).returncode == 0


def test_subset_split_combine_info(asrkit_cli, fixture_datadir, tmp_path):
    sub = tmp_path / "short"
    proc = asrkit_cli("data", "subset", "--shortest", "2", fixture_datadir, sub)
    assert proc.returncode == 0, proc.stderr
    assert (sub / "utt2spk").read_text() == "spkB-de-001 spkB\nspkC-fr-002 spkC\n"

    proc = asrkit_cli("data", "split", fixture_datadir, "3")
    assert proc.returncode == 0, proc.stderr
    assert [(fixture_datadir / "split3" / str(i) / "spk2utt").read_text().split()[0] for i in (1, 2, 3)] == \
        ["spkA", "spkB", "spkC"]
    proc = asrkit_cli("data", "split", "--per-utt", fixture_datadir, "6")
    assert proc.returncode == 0 and (fixture_datadir / "split6utt" / "6" / "utt2spk").read_text() == "spkC-fr-002 spkC\n"

    parts = [fixture_datadir / "split3" / str(i) for i in (1, 2, 3)]
    proc = asrkit_cli("data", "combine", tmp_path / "all", *parts)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "all" / "utt2lang").read_text() == (fixture_datadir / "utt2lang").read_text()

    proc = asrkit_cli("data", "info", "--json", tmp_path / "all")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["utterances"], info["speakers"]) == (6, 3)
    assert info["seconds"] == pytest.approx(13.60925)
    assert {k: v["utterances"] for k, v in info["languages"].items()} == {"de": 2, "en": 2, "fr": 2}
    proc = asrkit_cli("data", "info", fixture_datadir)
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == f"{fixture_datadir}: 6 utterances, 3 speakers, 0.004 hours (13.61 s), from utt2dur"
    assert "  en: 2 utterances, 0.002 hours (5.84 s)" in proc.stdout.splitlines()


def test_subset_by_language(asrkit_cli, fixture_datadir, tmp_path):
    proc = asrkit_cli("data", "subset", "--lang", "fr", fixture_datadir, tmp_path / "fr")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fr" / "utt2spk").read_text() == "spkC-fr-001 spkC\nspkC-fr-002 spkC\n"
    assert_one_line_error(asrkit_cli("data", "subset", "--lang", "it", fixture_datadir, tmp_path / "it"),
                          "data subset", "has language 'it' in utt2lang (languages there: de, en, fr)")
    proc = asrkit_cli("data", "subset", "--lang", "fr", "--first", "1", fixture_datadir, tmp_path / "y")
    assert proc.returncode == 2 and "--hours, --lang (got --first, --lang)" in proc.stderr


def test_user_errors_are_one_line(asrkit_cli, fixture_datadir, tmp_path):
    assert_one_line_error(asrkit_cli("data", "split", fixture_datadir, "4"), "data split",
                          "number of speakers 3 is less than the number of parts 4")
    assert_one_line_error(asrkit_cli("data", "combine", tmp_path / "x", fixture_datadir, fixture_datadir),
                          "data combine", f"utterance 'spkA-en-001' is in both {fixture_datadir} and {fixture_datadir}")
    assert_one_line_error(asrkit_cli("data", "info", tmp_path / "nowhere"), "data info", "no such data directory")
    proc = asrkit_cli("data", "subset", "--first", "1", "--last", "1", fixture_datadir, tmp_path / "y")
    assert proc.returncode == 2 and "give exactly one of --first" in proc.stderr
    proc = asrkit_cli("data", "perturb-speed", "--factors", "0.9,fast", fixture_datadir, tmp_path / "sp")
    assert proc.returncode == 2 and "--factors" in proc.stderr and "Traceback" not in proc.stderr


def test_perturb_speed_passes_factors_through(asrkit_cli, fixture_datadir, tmp_path):
    proc = asrkit_cli("data", "perturb-speed", "--factors", "0.9,1.1", fixture_datadir, tmp_path / "sp")
    assert proc.returncode == 0, proc.stderr
    utts = [x.split()[0] for x in (tmp_path / "sp" / "utt2spk").read_text().splitlines()]
    assert utts == [f"sp{f}-{u}" for f in ("0.9", "1.1") for u in UTTS]


def test_subset_utt_list_from_process_substitution(fixture_datadir, tmp_path):
    # Issue 21: `--utt-list <(...)` failed with "File or stream is not seekable." naming no file.
    script = (f'"{sys.executable}" -m asrkit data subset --utt-list <(printf "spkC-fr-002\\n") '
              f'"{fixture_datadir}" "{tmp_path / "one"}"')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "one" / "utt2spk").read_text() == "spkC-fr-002 spkC\n"


def test_subset_exclude_needs_a_list(asrkit_cli, fixture_datadir, tmp_path):
    (tmp_path / "dev.list").write_text("spkA-en-001\nspkB-de-001\n")
    proc = asrkit_cli("data", "subset", "--utt-list", tmp_path / "dev.list", "--exclude", fixture_datadir,
                      tmp_path / "train")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "train" / "utt2spk").read_text().split()[::2] == [u for u in UTTS if u not in
                                                                          ("spkA-en-001", "spkB-de-001")]
    proc = asrkit_cli("data", "subset", "--first", "2", "--exclude", fixture_datadir, tmp_path / "x")
    assert proc.returncode == 2 and "--exclude goes with --utt-list or --spk-list" in proc.stderr


def test_get_utt2dur_lets_info_count_hours(asrkit_cli, fixture_datadir):
    # Kaldi's wav-to-duration output (its text archives end each line in a space).
    expected = [line.split() for line in (fixture_datadir / "utt2dur").read_text().splitlines()]
    (fixture_datadir / "utt2dur").unlink()
    proc = asrkit_cli("data", "info", fixture_datadir)
    assert "? hours (no utt2dur: `asrkit data get-utt2dur DIR` writes it)" in proc.stdout.splitlines()[0]
    proc = asrkit_cli("data", "get-utt2dur", fixture_datadir)
    assert proc.returncode == 0, proc.stderr
    assert [line.split() for line in (fixture_datadir / "utt2dur").read_text().splitlines()] == expected
    proc = asrkit_cli("data", "info", fixture_datadir)
    assert proc.stdout.splitlines()[0].endswith("0.004 hours (13.61 s), from utt2dur")
