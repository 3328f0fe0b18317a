"""`asrkit prepare wsj|mls|commonvoice|librispeech|yesno|fsdd`: Kaldi data dirs from corpora on disk.

Each command parses its options and calls one function of `asrkit.corpora.<corpus>`; the library
is imported inside the command so `asrkit --help` stays instant.
"""

from __future__ import annotations

import click

_jobs = click.option("--nj", "num_workers", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Threads reading audio headers (for utt2dur).")
_overwrite = click.option("--overwrite", is_flag=True, help="Replace data dirs that already exist (default: keep them).")
_out_dir = click.argument("out_dir", type=click.Path(file_okay=False))


def _start_log() -> None:
    from asrkit.logutil import command_line, get_logger, setup_logging, versions

    setup_logging()
    logger = get_logger()
    logger.info("%s", command_line())
    logger.info("%s", versions())


def _report(dirs) -> None:
    for d in dirs:
        click.echo(str(d))


@click.command("wsj")
@click.option("--wsj0", required=True, type=click.Path(file_okay=False), help="Folder holding the WSJ0 disks (11-13.1/, 11-2.1/, ...).")
@click.option("--wsj1", required=True, type=click.Path(file_okay=False), help="Folder holding the WSJ1 disks (13-34.1/, 13-16.1/, ...).")
@click.option("--sph2pipe", default="sph2pipe", show_default=True, help="sph2pipe program, for shorten-compressed .wv1 files.")
@click.option("--set", "sets", multiple=True, help="Prepare only this set (repeatable), e.g. --set train_si284.")
@click.option("--strip-marks", is_flag=True, help="Also remove * : ~ marks from words (Kaldi keeps them).")
@_jobs
@_overwrite
@_out_dir
def wsj(wsj0, wsj1, sph2pipe, sets, strip_marks, num_workers, overwrite, out_dir):
    """WSJ0+WSJ1 as Kaldi's wsj_data_prep.sh: train_si284, train_si84, test_dev93, test_eval92 (+ 5k/eval93 sets).

    Prints the data dirs written (or kept) under OUT_DIR.
    """
    from asrkit.corpora.wsj import prepare_wsj

    _start_log()
    _report(prepare_wsj(wsj0, wsj1, out_dir, sph2pipe=sph2pipe, sets=list(sets) or None,
                        strip_marks=strip_marks, overwrite=overwrite, num_workers=num_workers))


@click.command("mls")
@click.option("--lang", required=True, help="Language name or ISO code: english/en, german/de, dutch/nl, french/fr, "
                                            "spanish/es, italian/it, portuguese/pt, polish/pl.")
@click.option("--hours", type=click.Choice(["1", "9", "10", "all"]), default="all", show_default=True,
              help="Train on a limited-supervision subset (10 = 9 + 1) instead of all of train.")
@_jobs
@_overwrite
@click.argument("root", type=click.Path(file_okay=False))
@_out_dir
def mls(lang, hours, num_workers, overwrite, root, out_dir):
    """Multilingual LibriSpeech: OUT_DIR/mls_<iso>_{train,dev,test} from ROOT/mls_<language>/."""
    from asrkit.corpora.mls import prepare_mls

    _start_log()
    _report(prepare_mls(root, lang, out_dir, hours=hours, overwrite=overwrite, num_workers=num_workers))


@click.command("commonvoice")
@click.option("--lang", required=True, help="Common Voice locale, e.g. de, fr, zh-CN (also written to utt2lang).")
@_jobs
@_overwrite
@click.argument("root", type=click.Path(file_okay=False))
@_out_dir
def commonvoice(lang, num_workers, overwrite, root, out_dir):
    """Common Voice: OUT_DIR/cv_<lang>_{train,dev,test} from ROOT/<lang>/{train,dev,test}.tsv and clips/."""
    from asrkit.corpora.commonvoice import prepare_commonvoice

    _start_log()
    _report(prepare_commonvoice(root, lang, out_dir, overwrite=overwrite, num_workers=num_workers))


@click.command("librispeech")
@click.option("--subset", "subsets", multiple=True, help="Prepare only this subset (repeatable), e.g. --subset dev-clean.")
@_jobs
@_overwrite
@click.argument("root", type=click.Path(file_okay=False))
@_out_dir
def librispeech(subsets, num_workers, overwrite, root, out_dir):
    """LibriSpeech: OUT_DIR/train_clean_100, dev_clean, ... for every subset found in ROOT (or ROOT/LibriSpeech)."""
    from asrkit.corpora.librispeech import prepare_librispeech

    _start_log()
    _report(prepare_librispeech(root, out_dir, subsets=tuple(subsets) or None, overwrite=overwrite,
                                num_workers=num_workers))


@click.command("yesno")
@click.option("--num-train", type=click.IntRange(min=1), default=30, show_default=True,
              help="Train on this many files (the first by name), test on the rest.")
@_jobs
@_overwrite
@click.argument("root", type=click.Path(file_okay=False))
@_out_dir
def yesno(num_train, num_workers, overwrite, root, out_dir):
    """Kaldi's yesno corpus: OUT_DIR/train_yesno (first 30 files by name) and OUT_DIR/test_yesno (last 30).

    ROOT is the folder holding waves_yesno/ (or waves_yesno itself).
    """
    from asrkit.corpora.yesno import prepare_yesno

    _start_log()
    _report(prepare_yesno(root, out_dir, num_train=num_train, overwrite=overwrite, num_workers=num_workers))


@click.command("fsdd")
@click.option("--dev-takes", type=click.IntRange(min=0), default=5, show_default=True,
              help="Takes 0..N-1 of each digit of the training speakers form each fold's dev set (0: none).")
@click.option("--speaker", "speakers", multiple=True, help="Use only this speaker (repeatable; default: all found).")
@_jobs
@_overwrite
@click.argument("root", type=click.Path(file_okay=False))
@_out_dir
def fsdd(dev_takes, speakers, num_workers, overwrite, root, out_dir):
    """Free Spoken Digit Dataset: OUT_DIR/all and OUT_DIR/fold_<speaker>/{train,dev,test} per held-out speaker.

    ROOT is the folder holding recordings/ (or recordings itself); utterance ids are
    {speaker}-{digit}-{take}, transcripts the digit words (zero ... nine).
    """
    from asrkit.corpora.fsdd import prepare_fsdd

    _start_log()
    _report(prepare_fsdd(root, out_dir, dev_takes=dev_takes, speakers=tuple(speakers) or None,
                         overwrite=overwrite, num_workers=num_workers))
