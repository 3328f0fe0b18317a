"""CTC decoding with a word n-gram (`asrkit decode --lm`): the lexicon search on made-up posteriors,
and per-language LMs end to end on the toy task."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from asrkit.decoding.ctc import ctc_prefix_beam_search
from asrkit.decoding.lm import LexiconSearch, parse_lm_options
from asrkit.errors import ConfigError
from asrkit.text.lmdir import LmDir

pytest.importorskip("flashlight.lib.text.decoder", reason="--lm needs flashlight-text (not installed here)")

TOKENS = ["<blk>", "<unk>", "▁", "a", "b"]
WORDS = {"a": "▁ a", "b": "▁ b", "ab": "▁ a b", "ba": "▁ b a", "aa": "▁ a a", "bb": "▁ b b"}


def write_lm_dir(path, arpa: str, words=WORDS, tokens=TOKENS, language="xx") -> LmDir:
    path.mkdir(parents=True)
    (path / "lm.arpa").write_text(arpa)
    (path / "lexicon.txt").write_text("".join(f"{w} {s}\n" for w, s in words.items()))
    (path / "tokens.txt").write_text("".join(f"{t} {i}\n" for i, t in enumerate(tokens)))
    (path / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(["<eps>", *words, "#0", "<s>", "</s>"])))
    (path / "lm.yaml").write_text(yaml.safe_dump({"language": language, "order": 2, "counts": [8, 2],
                                                  "arpa_sha256": "0" * 64}))
    return LmDir.load(path)


def arpa(unigrams: dict[str, tuple[float, float | None]], bigrams: dict[str, float]) -> str:
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines += [f"{p}\t{w}" + (f"\t{b}" if b is not None else "") for w, (p, b) in unigrams.items()]
    lines += ["", "\\2-grams:"] + [f"{p}\t{g}" for g, p in bigrams.items()] + ["", "\\end\\", ""]
    return "\n".join(lines)


# A grammar: "<s> ba </s>" is the only sentence with a reasonable probability.
GRAMMAR = arpa({"<s>": (-99, -10.0), "</s>": (-10.0, None), **{w: (-10.0, -10.0) for w in WORDS}},
               {"<s> ba": 0.0, "ba </s>": 0.0})
# A flat unigram LM: every word equally likely.
FLAT = arpa({"<s>": (-99, 0.0), "</s>": (-math.log10(7), None), **{w: (-math.log10(7), 0.0) for w in WORDS}},
            {"<s> a": -math.log10(7), "a </s>": -math.log10(7)})


def posteriors(frames: list[dict[int, float]]) -> torch.Tensor:
    """(1, T, V) log posteriors: each frame's given probabilities, the rest spread evenly."""
    out = torch.zeros(1, len(frames), len(TOKENS))
    for t, probs in enumerate(frames):
        rest = (1.0 - sum(probs.values())) / (len(TOKENS) - len(probs))
        for v in range(len(TOKENS)):
            out[0, t, v] = math.log(probs.get(v, rest))
    return out


def test_grammar_forces_the_only_allowed_sentence_on_ambiguous_acoustics(tmp_path):
    lm = write_lm_dir(tmp_path / "lm", GRAMMAR)
    # "▁ (a|b) (b|a)", leaning to "ab": acoustics alone say "ab", the grammar allows only "ba".
    frames = [{2: 0.9}, {3: 0.5, 4: 0.45}, {0: 0.9}, {4: 0.5, 3: 0.45}]
    lp, lens = posteriors(frames), torch.tensor([4])
    assert LexiconSearch(lm, TOKENS, lm_weight=0.0, beam=20).search(lp, lens)[0][0].words == ("ab",)
    best = LexiconSearch(lm, TOKENS, lm_weight=1.0, beam=20).search(lp, lens)[0][0]
    assert best.words == ("ba",)
    assert best.lm_score == pytest.approx(0.0, abs=1e-5)  # log P(ba | <s>) + log P(</s> | ba) = 0


def test_scores_are_acoustic_plus_weighted_lm_minus_penalty(tmp_path):
    lm = write_lm_dir(tmp_path / "lm", FLAT)
    frames = [{2: 0.8}, {3: 0.7}, {0: 0.8}, {2: 0.8}, {4: 0.7}]
    hyps = LexiconSearch(lm, TOKENS, lm_weight=0.7, word_penalty=0.3, beam=30, nbest=5).search(
        posteriors(frames), torch.tensor([5]))[0]
    assert hyps[0].words == ("a", "b") and len(hyps) == 5
    assert len({h.words for h in hyps}) == 5  # distinct word sequences
    for h in hyps:
        assert h.score == pytest.approx(h.am_score + 0.7 * h.lm_score - 0.3 * len(h.words), abs=1e-4)
    # natural log: P(a | <s>) P(b) P(</s>) under the ARPA's backoff rules (bow 0 everywhere)
    assert hyps[0].lm_score == pytest.approx(3 * math.log(1 / 7), abs=1e-4)


def test_lm_weight_zero_is_lm_free_lexicon_search(tmp_path):
    lm = write_lm_dir(tmp_path / "lm", GRAMMAR)
    from torchaudio.models.decoder import ctc_decoder

    no_lm = ctc_decoder(lexicon=str(lm.lexicon), tokens=TOKENS, lm=None, beam_size=20, nbest=1,
                        blank_token="<blk>", sil_token="<blk>", unk_word="<unk>")
    search = LexiconSearch(lm, TOKENS, lm_weight=0.0, beam=20)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        lp = torch.randn(1, 8, len(TOKENS), generator=gen).mul(2).log_softmax(-1)
        ours = search.search(lp, torch.tensor([8]))[0][0]
        theirs = no_lm(lp.contiguous())[0][0]
        assert list(ours.words) == theirs.words and ours.am_score == pytest.approx(theirs.score, abs=1e-4)
    # Where the acoustics spell lexicon words, it is also what LM-free prefix beam search finds.
    for seed in range(5):
        gen.manual_seed(seed)
        words = [list(WORDS)[i] for i in torch.randint(0, len(WORDS), (3,), generator=gen)]
        frames = []
        for w in words:
            for tok in WORDS[w].split():
                frames += [{TOKENS.index(tok): 0.8}, {0: 0.8}]
        lp = posteriors(frames)
        ours = search.search(lp, torch.tensor([len(frames)]))[0][0]
        prefix = ctc_prefix_beam_search(lp, torch.tensor([len(frames)]), beam=8)[0][0][0]
        spelled = " ".join(TOKENS[i] for i in prefix)
        assert list(ours.words) == words and spelled == " ".join(WORDS[w] for w in words)


def test_lm_options_choose_per_language(tmp_path):
    en = write_lm_dir(tmp_path / "en", FLAT, language="en")
    write_lm_dir(tmp_path / "other", FLAT, language="en")
    lms = parse_lm_options([str(en.path), f"de={tmp_path / 'other'}"])
    assert {lang: lm.path for lang, lm in lms.items()} == {"en": en.path, "de": tmp_path / "other"}
    with pytest.raises(ConfigError, match="two LM dirs for language 'en'"):
        parse_lm_options([str(en.path), str(tmp_path / "other")])
    with pytest.raises(ConfigError, match="another token set"):
        LexiconSearch(en, TOKENS[:-1])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(model, test data dir, {lang: LM dir}, work dir): a DNN-CTC model of the toy task after one
    epoch (its accuracy does not matter here) and an LM per language from the test transcripts."""
    from asrkit.text.lmdir import make_lm_dir
    from asrkit.text.tokenizer import make_lang_dir
    from asrkit.training.config import load_config
    from asrkit.training.trainer import run_training
    from tests.training.conftest import make_toy_data_dir

    root = tmp_path_factory.mktemp("lm")
    train = make_toy_data_dir(root, "train", utts_per_lang=8, seed=1)
    test = make_toy_data_dir(root, "test", utts_per_lang=6, seed=5)
    make_lang_dir([train, test], root / "lang", token_type="char")
    conf = load_config(None, ["model.encoder={type: dnn, hidden_dims: [32], context: 1}", "training.epochs=1",
                              "training.device=cpu"])
    model = run_training(conf, train_dirs=[train], valid_dirs=[], lang_dir=str(root / "lang"), out_dir=root / "exp")
    lms = {lang: make_lm_dir(root / f"lm_{lang}", root / "lang", language=lang, data_dirs=[test], order=2).path
           for lang in ("de", "en")}
    return model, test, lms, root


def test_per_language_lms_are_chosen_from_utt2lang(toy):
    from asrkit.decoding.decoder import decode_data_dir
    from asrkit.kaldi.textio import read_table

    model, test, lms, root = toy
    out = root / "decode_lm"
    decode_data_dir(model, test, out, lm=[str(lms["en"]), f"de={lms['de']}"], beam=10, nbest=3, lm_weight=2.0)
    lexicons = {lang: {ln.split()[0] for ln in (lm / "lexicon.txt").read_text().splitlines()}
                for lang, lm in lms.items()}
    utt2lang = read_table(test / "utt2lang")
    hyps = read_table(out / "text")
    assert sorted(hyps) == sorted(utt2lang)
    # en and de have disjoint words (their toy alphabets differ): each utterance used its language's LM
    assert not lexicons["en"] & lexicons["de"]
    for utt, words in hyps.items():
        assert set(words.split()) <= lexicons[utt2lang[utt]], utt
    nbest = read_table(out / "nbest" / "text")
    ac, lm = read_table(out / "nbest" / "ac_cost"), read_table(out / "nbest" / "lm_cost")
    assert set(nbest) == set(ac) == set(lm) and {k.rsplit("-", 1)[0] for k in nbest} == set(utt2lang)
    assert all(nbest[f"{u}-1"] == hyps[u] for u in hyps)
    assert all(float(v) >= 0 for v in lm.values())  # costs: -log P
    # the same decode again is skipped; one without --lm drops the stale n-best lists
    assert decode_data_dir(model, test, out, lm=[str(lms["en"]), f"de={lms['de']}"], beam=10, nbest=3,
                           lm_weight=2.0).skipped
    decode_data_dir(model, test, out)
    assert not (out / "nbest").exists()
    # ... but only the tables it wrote: a file of the user's in nbest/ stays, and so does the folder
    decode_data_dir(model, test, out, lm=[str(lms["en"]), f"de={lms['de']}"], beam=10, nbest=3, lm_weight=2.0)
    (out / "nbest" / "notes.txt").write_text("mine\n")
    decode_data_dir(model, test, out, overwrite=True)
    assert sorted(p.name for p in (out / "nbest").iterdir()) == ["notes.txt"]


def test_a_changed_lm_dir_decodes_again(toy):
    import shutil

    from asrkit.decoding.decoder import decode_data_dir

    model, test, lms, root = toy
    lm_en = root / "lm_en_copy"
    shutil.copytree(lms["en"], lm_en)
    args = dict(lm=[str(lm_en), str(lms["de"])], beam=4)
    decode_data_dir(model, test, root / "decode_changed", **args)
    assert decode_data_dir(model, test, root / "decode_changed", **args).skipped
    lexicon = (lm_en / "lexicon.txt").read_text().splitlines()
    (lm_en / "lexicon.txt").write_text("\n".join(lexicon[1:]) + "\n")  # one word fewer, same ARPA
    assert not decode_data_dir(model, test, root / "decode_changed", **args).skipped


def test_lm_errors_are_one_line(toy):
    from asrkit.decoding.decoder import decode_data_dir
    from asrkit.errors import DataDirError

    model, test, lms, root = toy
    with pytest.raises(DataDirError, match=r"6 utterance\(s\) in language 'de' but no --lm for it"):
        decode_data_dir(model, test, root / "d1", lm=[str(lms["en"])])
    with pytest.raises(ConfigError, match="made with other tokens than model"):
        decode_data_dir(model, test, root / "d2", lm=[f"de={lms['en']}", str(lms["en"])], lang="de")
    with pytest.raises(ConfigError, match="does not go with --output loglikes"):
        decode_data_dir(model, test, root / "d3", lm=[str(lms["en"]), str(lms["de"])], output="loglikes")


def test_decode_cli_with_lm_and_score_over_weights(toy):
    from click.testing import CliRunner

    from asrkit.cli.main import cli

    model, test, lms, root = toy
    out = root / "decode_cli"
    result = CliRunner().invoke(cli, ["decode", "--model", str(model), "--data", str(test), "--out-dir", str(out),
                                      "--lm", f"en={lms['en']}", "--lm", f"de={lms['de']}", "--lm-weight", "0.5",
                                      "--word-penalty", "0.5", "--beam", "8", "--nbest", "4"])
    assert result.exit_code == 0, result.output
    log = (out / "log" / "decode.log").read_text()
    assert "lexicon beam with a word LM" in log and "lm-weight 0.5, word-penalty 0.5, nbest 4" in log
    assert "beam 8" in log  # as asked, not the --lm default
    result = CliRunner().invoke(cli, ["score", "--data", str(test), "--decode-dir", str(out), "--lm-weights", "0,0.5,1",
                                      "--word-penalties", "0,0.5"])
    assert result.exit_code == 0, result.output
    best = (out / "best_wer").read_text().split()
    assert result.output.splitlines()[-1].split()[-1] == best[-1] and best[-1].rsplit("/", 1)[1].startswith("wer_")
    assert len(list(out.glob("wer_*_*"))) == 6


def test_lm_decode_in_two_jobs_equals_one(toy):
    from asrkit.decoding.decoder import decode_data_dir

    model, test, lms, root = toy
    args = dict(lm=[str(lms["en"]), str(lms["de"])], beam=6, nbest=3, lm_weight=0.5)
    one = decode_data_dir(model, test, root / "decode_nj1", **args)
    two = decode_data_dir(model, test, root / "decode_nj2", nj=2, **args)
    for name in ("text", "nbest/text", "nbest/ac_cost", "nbest/lm_cost"):
        assert (two.out_dir / name).read_text() == (one.out_dir / name).read_text(), name


def test_kenlm_loading_messages_become_one_note(tmp_path, capfd):
    lm = write_lm_dir(tmp_path / "lm", GRAMMAR)  # a text ARPA without <unk>
    capfd.readouterr()
    search = LexiconSearch(lm, TOKENS, beam=4)
    err = capfd.readouterr().err
    assert "Loading the LM" not in err and "----5---10" not in err and "<unk>" not in err, err
    assert search.kenlm_note == (f"{lm.arpa} has no <unk>: KenLM gives words outside the LM log10 probability "
                                 "-100 (the lexicon search proposes only LM words)")
    # an ARPA file with <unk> leaves nothing to say
    with_unk = GRAMMAR.replace("ngram 1=8", "ngram 1=9").replace("\\1-grams:\n", "\\1-grams:\n-10.0\t<unk>\n")
    assert LexiconSearch(write_lm_dir(tmp_path / "lm_unk", with_unk), TOKENS, beam=4).kenlm_note == ""
    assert "Loading the LM" not in capfd.readouterr().err


def test_kenlm_errors_are_one_line(tmp_path):
    from asrkit.errors import FormatError

    unigram = "\\data\\\nngram 1=3\n\n\\1-grams:\n-99\t<s>\t0\n-0.5\t</s>\n-0.5\ta\t0\n\n\\end\\\n"
    lm = write_lm_dir(tmp_path / "lm", unigram, words={"a": "▁ a"})
    with pytest.raises(FormatError, match=r"lm.arpa: KenLM cannot read this ARPA file: This ngram implementation "
                                          r"assumes at least a bigram model\. Byte: \d+$"):
        LexiconSearch(lm, TOKENS)


def test_decode_cli_lm_beam_default_and_search_refused(toy):
    from click.testing import CliRunner

    from asrkit.cli.main import cli

    model, test, lms, root = toy
    out = root / "decode_cli_default_beam"
    args = ["decode", "--model", str(model), "--data", str(test), "--out-dir", str(out), "--lm", str(lms["en"]),
            "--lm", str(lms["de"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "search lexicon beam with a word LM, beam 50," in (out / "log" / "decode.log").read_text()
    result = CliRunner().invoke(cli, [*args, "--search", "beam", "--overwrite"])
    assert result.exit_code != 0
    assert "--search beam does not go with --lm: --lm decodes with its own search" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


YESNO = ["<blk>", "<unk>", "YES", "NO"]


@pytest.mark.parametrize("mark", ["", "▁"])
def test_word_tokens_held_over_frames_are_one_word(tmp_path, mark):
    # Flashlight's lexicon decoder read a one-token word held for 3 frames as the word twice
    # ([blk NO NO NO blk YES YES blk] -> "NO NO YES"; found on yesno): word token sets are searched
    # lexicon-free, so CTC's collapse rule holds. `make-lang --type word` writes the tokens with the
    # word-boundary mark (lexicon `NO ▁NO`): the same search, the LM scoring the words, not <unk>.
    words = {"YES": mark + "YES", "NO": mark + "NO"}
    flat = arpa({"<s>": (-99, 0.0), "</s>": (-math.log10(3), None), "YES": (-math.log10(3), 0.0),
                 "NO": (-math.log10(3), 0.0)}, {"<s> NO": -math.log10(2), "<s> YES": -math.log10(2)})
    tokens = YESNO[:2] + [mark + t for t in YESNO[2:]]
    lm = write_lm_dir(tmp_path / "lm", flat, words=words, tokens=tokens)
    b, y, n = 0, 2, 3

    def frames(ids):
        out = torch.full((1, len(ids), len(YESNO)), math.log(0.02))
        for t, i in enumerate(ids):
            out[0, t, i] = math.log(0.94)
        return out

    search = LexiconSearch(lm, tokens, lm_weight=1.0, word_penalty=0.5, beam=20, nbest=3)
    ids = [b, n, n, n, b, y, y, y, y, b]
    hyps = search.search(frames(ids), torch.tensor([len(ids)]))[0]
    assert hyps[0].words == ("NO", "YES")
    for h in hyps:
        assert h.score == pytest.approx(h.am_score + h.lm_score - 0.5 * len(h.words), abs=1e-4)
    assert hyps[0].lm_score == pytest.approx(math.log(1 / 2) + 2 * math.log(1 / 3), abs=1e-4)
    ids = [n, b, n, y]  # a blank between two equal tokens: two words, as CTC reads it
    assert search.search(frames(ids), torch.tensor([len(ids)]))[0][0].words == ("NO", "NO", "YES")
