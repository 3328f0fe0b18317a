"""Kaldi table I/O against real Kaldi outputs (tests/fixtures/kaldi, see KALDI_COMMANDS.txt)."""

from __future__ import annotations

import gzip
import io
import shutil
import struct

import numpy as np
import pytest

from asrkit.errors import AsrkitError, FormatError
from asrkit.kaldi.table import iter_table, load_table_scp, read_int_vectors_text
from asrkit.kaldi.writer import ArkScpWriter, merge_scp, write_int_vectors_gz

UTTS = ["spkA-en-001", "spkA-en-002", "spkB-de-001", "spkB-de-002", "spkC-fr-001", "spkC-fr-002"]
NUM_FRAMES = [318, 261, 202, 242, 211, 114]  # the fixture's utt2num_frames (feat-to-len)


def _kaldi_scp(ark_path, tmp_path):
    """An scp for a Kaldi ark, offsets found by searching for `<key> \\0B` in its bytes."""
    raw = ark_path.read_bytes()
    lines = []
    for utt in UTTS:
        pos = raw.index(utt.encode() + b" \0B")
        lines.append(f"{utt} {ark_path}:{pos + len(utt) + 1}\n")
    scp = tmp_path / "feats.scp"
    scp.write_text("".join(lines))
    return scp


@pytest.fixture
def fbank80(kaldi_fixtures):
    return dict(iter_table(f"ark:{kaldi_fixtures / 'fbank80.ark'}"))


def test_read_kaldi_fbank_ark(fbank80):
    assert list(fbank80) == UTTS
    for utt, n in zip(UTTS, NUM_FRAMES):
        assert fbank80[utt].shape == (n, 80)
        assert fbank80[utt].dtype == np.float32


def test_ark_pipe_and_scp_give_the_same_matrices(kaldi_fixtures, tmp_path, fbank80):
    piped = dict(iter_table(f"ark:cat {kaldi_fixtures / 'fbank80.ark'} |"))
    scp = _kaldi_scp(kaldi_fixtures / "fbank80.ark", tmp_path)
    by_scp = dict(iter_table(f"scp:{scp}"))
    table = load_table_scp(scp)
    assert list(piped) == list(by_scp) == list(table) == UTTS
    for utt in UTTS:
        np.testing.assert_array_equal(piped[utt], fbank80[utt])
        np.testing.assert_array_equal(by_scp[utt], fbank80[utt])
        np.testing.assert_array_equal(table[utt], fbank80[utt])
    table.close()


def test_text_ark_matches_binary(kaldi_fixtures, fbank80):
    text = dict(iter_table(f"ark,t:{kaldi_fixtures / 'fbank80.txt'}"))
    assert list(text) == UTTS
    for utt in UTTS:
        # Kaldi's text form keeps 7 significant digits.
        np.testing.assert_allclose(text[utt], fbank80[utt], rtol=1e-6, atol=1e-5)


def test_compressed_ark_decodes_exactly_as_kaldi(kaldi_fixtures):
    compressed = dict(iter_table(f"ark:{kaldi_fixtures / 'fbank80_compressed.ark'}"))
    decompressed = dict(iter_table(f"ark:{kaldi_fixtures / 'fbank80_decompressed.ark'}"))
    assert list(compressed) == UTTS
    for utt in UTTS:
        assert compressed[utt].dtype == np.float32
        np.testing.assert_array_equal(compressed[utt], decompressed[utt])


def test_row_ranges(kaldi_fixtures, tmp_path, fbank80):
    scp = _kaldi_scp(kaldi_fixtures / "fbank80.ark", tmp_path)
    first = scp.read_text().splitlines()[0].split()[1]
    ranged = tmp_path / "ranged.scp"
    ranged.write_text(f"a {first}[10:19]\nb {first}[0:0,5:7]\nc {first}[:,79:79]\nd {first}[300:400]\n")
    table = load_table_scp(ranged)
    np.testing.assert_array_equal(table["a"], fbank80["spkA-en-001"][10:20])
    np.testing.assert_array_equal(table["b"], fbank80["spkA-en-001"][0:1, 5:8])
    assert table["c"].shape == (318, 1)
    with pytest.raises(FormatError, match=r"ranged.scp:4: key 'd': .*outside the matrix \(318 rows\)"):
        table["d"]


def test_alignments_gz_pipe_ark_and_text_agree(kaldi_fixtures):
    text = read_int_vectors_text(kaldi_fixtures / "ali.txt")
    gz = dict(iter_table(f"ark:gunzip -c {kaldi_fixtures / 'ali.1.gz'}|"))
    ark = dict(iter_table(f"ark:{kaldi_fixtures / 'ali.ark'}"))
    text_ark = dict(iter_table(f"ark,t:{kaldi_fixtures / 'ali.txt'}"))
    assert list(text) == list(gz) == list(ark) == list(text_ark) == UTTS
    for utt in UTTS:
        assert gz[utt].dtype == np.int32
        assert text[utt].tolist() == gz[utt].tolist() == ark[utt].tolist() == text_ark[utt].tolist()
    assert text["spkA-en-001"][:5].tolist() == [1, 8, 4, 0, 7]


def test_write_int_vectors_gz_is_kaldis_archive(kaldi_fixtures, tmp_path):
    out = tmp_path / "ali.1.gz"
    write_int_vectors_gz(out, read_int_vectors_text(kaldi_fixtures / "ali.txt"))
    # Same bytes as `copy-int-vector ark,t:ali.txt ark:ali.ark` once unzipped.
    assert gzip.decompress(out.read_bytes()) == (kaldi_fixtures / "ali.ark").read_bytes()
    with pytest.raises(AsrkitError, match="key 'u1': alignments must be integers"):
        write_int_vectors_gz(tmp_path / "bad.gz", {"u1": np.zeros(3, dtype=np.float32)})
    assert not (tmp_path / "bad.gz").exists()


def test_writer_round_trip_and_kaldi_bytes(tmp_path, fbank80):
    ark, scp = tmp_path / "feats.ark", tmp_path / "feats.scp"
    cmvn = np.arange(2 * 81, dtype=np.float64).reshape(2, 81)
    with ArkScpWriter(ark, scp) as w:
        for utt in UTTS:
            w.write(utt, fbank80[utt])
        w.write("cmvn", cmvn)
        w.write("fvec", np.array([1.5, -2.0], dtype=np.float32))
        w.write("dvec", np.array([0.25], dtype=np.float64))
        w.write("ali", np.array([3, 1, 2], dtype=np.int64))
    raw = ark.read_bytes()
    lines = scp.read_text().splitlines()
    assert len(lines) == 10
    offsets = {}
    for line in lines:
        key, value = line.split()
        path, offset = value.rsplit(":", 1)
        assert path == str(ark)
        offsets[key] = int(offset)
        assert raw[offsets[key] - len(key) - 1 : offsets[key]] == key.encode() + b" "
        assert raw[offsets[key] : offsets[key] + 2] == b"\0B"
    o = offsets["spkA-en-001"]
    assert raw[o : o + 15] == b"\0BFM \x04" + struct.pack("<i", 318) + b"\x04" + struct.pack("<i", 80)
    o = offsets["cmvn"]
    assert raw[o : o + 15] == b"\0BDM \x04" + struct.pack("<i", 2) + b"\x04" + struct.pack("<i", 81)
    o = offsets["fvec"]
    assert raw[o : o + 10] == b"\0BFV \x04" + struct.pack("<i", 2)
    assert raw[offsets["dvec"] : offsets["dvec"] + 5] == b"\0BDV "
    o = offsets["ali"]
    assert raw[o : o + 17] == b"\0B\x04" + struct.pack("<i", 3) + b"\x04" + struct.pack("<i", 3) + b"\x04" + struct.pack("<i", 1)
    # The first key starts the file: Kaldi's archive layout, no header.
    assert raw.startswith(b"spkA-en-001 \0BFM ")

    with load_table_scp(scp) as table:
        for utt in UTTS:
            np.testing.assert_array_equal(table[utt], fbank80[utt])
        np.testing.assert_array_equal(table["cmvn"], cmvn)
        assert table["cmvn"].dtype == np.float64
        assert table["fvec"].dtype == np.float32 and table["fvec"].tolist() == [1.5, -2.0]
        assert table["dvec"].dtype == np.float64
        assert table["ali"].dtype == np.int32 and table["ali"].tolist() == [3, 1, 2]


def test_compressed_writer_is_kaldis_byte_for_byte(kaldi_fixtures, tmp_path, fbank80):
    """Issue 17 F: `--compress` writes what `copy-feats --compress=true` writes (kaldiio's encoder
    differed in 47 of 64 matrices)."""
    ark, scp = tmp_path / "cm.ark", tmp_path / "cm.scp"
    with ArkScpWriter(ark, scp, compress=True) as w:
        for utt in UTTS:
            w.write(utt, fbank80[utt])
    assert ark.read_bytes() == (kaldi_fixtures / "fbank80_compressed.ark").read_bytes()
    kaldi_cm = dict(iter_table(f"ark:{kaldi_fixtures / 'fbank80_compressed.ark'}"))
    with load_table_scp(scp) as table:
        for utt in UTTS:
            np.testing.assert_array_equal(table[utt], kaldi_cm[utt])


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 9])
def test_compressed_column_headers_stay_increasing_for_few_or_constant_rows(rows):
    """Kaldi's pathological cases: fewer than 5 rows, and a constant matrix (range 1 + |min|)."""
    from asrkit.kaldi.compressed import SPEECH_FEATURE, compress_matrix
    from asrkit.kaldi.objects import _decompress

    for mat in (np.full((rows, 3), -2.5, dtype=np.float32),
                np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)):
        blob = compress_matrix(mat, SPEECH_FEATURE)
        assert blob.startswith(b"CM ")
        headers = np.frombuffer(blob[3 + 16:3 + 16 + 8 * 3], dtype="<u2").reshape(3, 4)
        assert (np.diff(headers.astype(int), axis=1) > 0).all()
        back = _decompress(b"CM", io.BytesIO(blob[3:]))
        np.testing.assert_allclose(back, mat, atol=0.05 * (1 + np.abs(mat).max()))


def test_small_matrix_compresses_to_cm2(tmp_path):
    ark = tmp_path / "small.ark"
    m = np.linspace(-3, 3, 8 * 4, dtype=np.float32).reshape(8, 4)
    with ArkScpWriter(ark, tmp_path / "small.scp", compress=True) as w:
        w.write("small", m)
    assert ark.read_bytes().startswith(b"small \0BCM2 ")
    (key, back), = iter_table(f"ark:{ark}")
    np.testing.assert_allclose(back, m, atol=6 / 65535)


def test_failing_pipe_is_an_error(tmp_path):
    with pytest.raises(AsrkitError, match=r"command 'gunzip -c .*missing.gz' failed with exit status 1: .*No such file"):
        list(iter_table(f"ark:gunzip -c {tmp_path / 'missing.gz'}|"))
    # Output that is fine but a command that fails still fails.
    with pytest.raises(AsrkitError, match="exit status 3"):
        list(iter_table("ark:printf ''; exit 3 |"))


def test_truncated_ark_names_the_key(kaldi_fixtures, tmp_path):
    raw = (kaldi_fixtures / "fbank80.ark").read_bytes()
    second = raw.index(b"spkA-en-002 ")
    cut = tmp_path / "cut.ark"
    cut.write_bytes(raw[: second + 500])
    with pytest.raises(FormatError, match=r"cut.ark: key 'spkA-en-002': truncated or corrupted data"):
        list(iter_table(f"ark:{cut}"))
    # Through an scp: key and scp file:line.
    scp = tmp_path / "cut.scp"
    scp.write_text(f"spkA-en-001 {cut}:12\nspkA-en-002 {cut}:{second + 12}\n")
    table = load_table_scp(scp)
    assert table["spkA-en-001"].shape == (318, 80)
    with pytest.raises(FormatError, match=r"cut.scp:2: key 'spkA-en-002': truncated or corrupted data"):
        table["spkA-en-002"]
    with pytest.raises(FormatError, match=r"cut.scp:2: key 'spkA-en-002'"):
        list(iter_table(f"scp:{scp}"))
    # Permissive reading skips the bad entry.
    assert [k for k, _ in iter_table(f"scp,p:{scp}")] == ["spkA-en-001"]


def test_scp_offset_past_end_and_missing_ark(kaldi_fixtures, tmp_path):
    ark = tmp_path / "f.ark"
    shutil.copy(kaldi_fixtures / "fbank80.ark", ark)
    size = ark.stat().st_size
    scp = tmp_path / "bad.scp"
    scp.write_text(f"spkA-en-001 {ark}:12\nspkZ {ark}:{size + 10}\nspkY {tmp_path / 'gone.ark'}:12\n")
    table = load_table_scp(scp)
    with pytest.raises(FormatError, match=rf"bad.scp:2: key 'spkZ': .*offset {size + 10} is past the end"):
        table["spkZ"]
    with pytest.raises(FormatError, match=r"bad.scp:3: key 'spkY': cannot open '.*gone.ark': no such file"):
        table["spkY"]
    # An offset that does not point at an object.
    scp.write_text(f"spkX {ark}:3\n")
    with pytest.raises(FormatError, match=r"bad.scp:1: key 'spkX': corrupted data"):
        load_table_scp(scp)["spkX"]


def test_nan_and_inf_are_rejected_naming_the_key(tmp_path):
    m = np.zeros((3, 2), dtype=np.float32)
    m[1, 1] = np.nan
    with pytest.raises(AsrkitError, match=r"key 'bad-utt': non-finite value \(NaN or Inf\) at index \(1, 1\)"):
        with ArkScpWriter(tmp_path / "a.ark", tmp_path / "a.scp") as w:
            w.write("good", np.ones((2, 2), dtype=np.float32))
            w.write("bad-utt", m)
    assert list(tmp_path.iterdir()) == []
    with ArkScpWriter(tmp_path / "b.ark", tmp_path / "b.scp") as w:
        with pytest.raises(AsrkitError, match="key 'inf': non-finite"):
            w.write("inf", np.array([1.0, np.inf]))


def test_interrupted_writer_leaves_no_files_and_keeps_old_ones(tmp_path):
    with pytest.raises(RuntimeError):
        with ArkScpWriter(tmp_path / "x.ark", tmp_path / "x.scp") as w:
            w.write("a", np.ones((2, 2), dtype=np.float32))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.ark").write_bytes(b"old")
    (tmp_path / "x.scp").write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with ArkScpWriter(tmp_path / "x.ark", tmp_path / "x.scp") as w:
            w.write("a", np.ones((2, 2), dtype=np.float32))
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ark", "x.scp"]
    assert (tmp_path / "x.ark").read_bytes() == b"old"


def test_writer_under_a_staged_name_names_the_final_ark(tmp_path):
    """A job writes `.x.ark.staged` (asrkit.jobs) and renames it later: its scp and messages name x.ark."""
    staged, final = tmp_path / ".x.ark.staged", tmp_path / "x.ark"
    mat = np.arange(6, dtype=np.float32).reshape(3, 2)
    with ArkScpWriter(staged, tmp_path / ".x.scp.staged", final_ark=final) as w:
        w.write("utt1", mat)
        with pytest.raises(AsrkitError, match=rf"^{final}: duplicate key 'utt1'$"):
            w.write("utt1", mat)
    assert (tmp_path / ".x.scp.staged").read_text() == f"utt1 {final}:5\n" and not final.exists()
    staged.rename(final)
    np.testing.assert_array_equal(load_table_scp(tmp_path / ".x.scp.staged")["utt1"], mat)


def test_writer_key_checks(tmp_path):
    with ArkScpWriter(tmp_path / "s.ark", tmp_path / "s.scp", sorted=True) as w:
        w.write("b", np.ones(2, dtype=np.float32))
        with pytest.raises(AsrkitError, match="key 'a' is not after 'b' in C order"):
            w.write("a", np.ones(2, dtype=np.float32))
        with pytest.raises(AsrkitError, match="duplicate key 'b'"):
            w.write("b", np.ones(2, dtype=np.float32))
        with pytest.raises(AsrkitError, match="invalid key 'a b'"):
            w.write("a b", np.ones(2, dtype=np.float32))
        with pytest.raises(AsrkitError, match="key 'c': integer data must be a 1-D vector"):
            w.write("c", np.ones((2, 2), dtype=np.int32))
    # Unsorted writing is allowed by default, and the scp keeps write order.
    with ArkScpWriter(tmp_path / "u.ark", tmp_path / "u.scp") as w:
        w.write("b", np.ones(1, dtype=np.float32))
        w.write("a", np.ones(1, dtype=np.float32))
    assert [ln.split()[0] for ln in (tmp_path / "u.scp").read_text().splitlines()] == ["b", "a"]


def test_merge_scp(tmp_path):
    (tmp_path / "1.scp").write_text("utt3 f.1.ark:10\nutt1 f.1.ark:99\n")
    (tmp_path / "2.scp").write_text("utt2 f.2.ark:10\n")
    merge_scp([tmp_path / "1.scp", tmp_path / "2.scp"], tmp_path / "all.scp")
    assert (tmp_path / "all.scp").read_text() == "utt1 f.1.ark:99\nutt2 f.2.ark:10\nutt3 f.1.ark:10\n"
    (tmp_path / "3.scp").write_text("utt0 f.3.ark:10\nutt2 f.3.ark:40\n")
    with pytest.raises(FormatError, match=r"3.scp:2: duplicate key 'utt2' \(also in .*2.scp:1\)"):
        merge_scp([tmp_path / "1.scp", tmp_path / "2.scp", tmp_path / "3.scp"], tmp_path / "bad.scp")
    assert not (tmp_path / "bad.scp").exists()


def test_read_int_vectors_text_errors(tmp_path):
    f = tmp_path / "ali.txt"
    f.write_text("u1 1 2 3\nu2 4 x 6\n")
    with pytest.raises(FormatError, match=r"ali.txt:2: key 'u2': 'x' is not an integer"):
        read_int_vectors_text(f)


def test_bad_rspecifier():
    with pytest.raises(AsrkitError, match="give exactly one of ark or scp"):
        list(iter_table("feats.ark"[0:0] + "foo:bar"))
