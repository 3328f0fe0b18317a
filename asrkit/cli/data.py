"""`asrkit data <verb>`: Kaldi's utils/ data-dir helpers (validate, fix, subset, split, combine,
perturb-speed, info). Each command parses options and calls one function of asrkit.kaldi.datadir."""

from __future__ import annotations

import click


@click.group("data")
def data() -> None:
    """Check and reshape Kaldi data directories (the `utils/*data*` scripts of Kaldi)."""


@data.command("validate")
@click.option("--no-feats", is_flag=True, help="Do not require feats.scp (still checked if present).")
@click.option("--no-text", is_flag=True, help="Do not require text (still checked if present).")
@click.option("--no-wav", is_flag=True, help="Do not require wav.scp (still checked if present).")
@click.option("--no-spk-sort", is_flag=True, help="Do not require utt2spk to be sorted by speaker as well.")
@click.option("--non-print", is_flag=True, help="Allow non-printable characters in text.")
@click.argument("data_dir", type=click.Path())
def validate(no_feats: bool, no_text: bool, no_wav: bool, no_spk_sort: bool, non_print: bool, data_dir: str) -> None:
    """Check DATA_DIR with every rule of Kaldi's utils/validate_data_dir.sh; exit 1 on the first failure.

    \b
    Example:
      asrkit data validate --no-feats data/train
    """
    from asrkit.kaldi.datadir import validate_data_dir

    warnings = validate_data_dir(data_dir, no_feats=no_feats, no_text=no_text, no_wav=no_wav,
                                 no_spk_sort=no_spk_sort, non_print=non_print)
    for w in warnings:
        click.echo(f"asrkit data validate: warning: {w}", err=True)
    click.echo(f"asrkit data validate: Successfully validated data-directory {data_dir}")


def _file_list(value: str) -> list[str]:
    return value.split()


@data.command("fix")
@click.option("--utt-extra-files", default="", metavar='"F1 F2"', help="More files indexed by utterance to filter.")
@click.option("--spk-extra-files", default="", metavar='"F1 F2"', help="More files indexed by speaker to filter.")
@click.argument("data_dir", type=click.Path())
def fix(utt_extra_files: str, spk_extra_files: str, data_dir: str) -> None:
    """Sort DATA_DIR and keep only utterances present in every file (Kaldi's utils/fix_data_dir.sh).

    The original files are copied to DATA_DIR/.backup/ first.
    """
    from asrkit.kaldi.datadir import fix_data_dir
    from asrkit.logutil import setup_logging

    setup_logging()
    fix_data_dir(data_dir, utt_extra_files=_file_list(utt_extra_files), spk_extra_files=_file_list(spk_extra_files))


@data.command("subset")
@click.option("--first", type=int, help="The first N utterances of utt2spk.")
@click.option("--last", type=int, help="The last N utterances of utt2spk.")
@click.option("--shortest", type=int, help="The N shortest utterances.")
@click.option("--per-spk", type=int, help="N utterances per speaker, evenly spaced.")
@click.option("--speakers", type=int, help="Random whole speakers until at least N utterances (Kaldi's rule).")
@click.option("--random", "random_utts", type=int, help="N random utterances.")
@click.option("--spk-list", type=click.Path(exists=True, dir_okay=False), help="The speakers listed in this file.")
@click.option("--utt-list", type=click.Path(exists=True, dir_okay=False),
              help="The utterances listed in this file (a pipe works too: --utt-list <(grep ...)).")
@click.option("--exclude", is_flag=True,
              help="With --utt-list or --spk-list: every utterance except those (Kaldi's filter_scp.pl --exclude).")
@click.option("--hours", type=float, help="A random subset of about H hours (utt2dur or segments).")
@click.option("--lang", metavar="L", help="The utterances whose utt2lang entry is L (asrkit's addition).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random selectors.")
@click.option("--overwrite", is_flag=True, help="Replace DST even if asrkit did not make it (it is never an input).")
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
def subset(first, last, shortest, per_spk, speakers, random_utts, spk_list, utt_list, exclude, hours, lang, seed,
           overwrite,
           src, dst) -> None:
    """Copy a subset of the data dir SRC to DST (Kaldi's utils/subset_data_dir.sh); give exactly one selector.

    \b
    Examples:
      asrkit data subset --shortest 2000 data/train_si84 data/train_si84_2kshort   # WSJ's 2kshort
      asrkit data subset --lang de data/test data/test_de                          # one language
      asrkit data subset --utt-list dev.list --exclude data/train data/train_nodev  # all but dev.list
    """
    given = {"--first": first, "--last": last, "--shortest": shortest, "--per-spk": per_spk, "--speakers": speakers,
             "--random": random_utts, "--spk-list": spk_list, "--utt-list": utt_list, "--hours": hours,
             "--lang": lang}
    chosen = [name for name, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise click.UsageError(f"give exactly one of {', '.join(given)} (got {', '.join(chosen) or 'none'})")
    if exclude and chosen[0] not in ("--utt-list", "--spk-list"):
        raise click.UsageError(f"--exclude goes with --utt-list or --spk-list, not {chosen[0]}")
    from asrkit.kaldi.datadir import subset_data_dir
    from asrkit.logutil import setup_logging

    setup_logging()
    subset_data_dir(src, dst, first=first, last=last, shortest=shortest, per_spk=per_spk, speakers=speakers,
                    spk_list=spk_list, utt_list=utt_list, hours=hours, random_utts=random_utts, lang=lang,
                    exclude=exclude, seed=seed, overwrite=overwrite)


@data.command("split")
@click.option("--per-utt", is_flag=True, help="Split by utterance (split{N}utt) instead of by speaker.")
@click.argument("data_dir", type=click.Path())
@click.argument("num_parts", type=int)
def split(per_utt: bool, data_dir: str, num_parts: int) -> None:
    """Split DATA_DIR into DATA_DIR/split{N}/{1..N} (Kaldi's utils/split_data.sh); a no-op when up to date."""
    from asrkit.kaldi.datadir import split_data_dir
    from asrkit.logutil import setup_logging

    setup_logging()
    split_data_dir(data_dir, num_parts, per_utt=per_utt)


@data.command("combine")
@click.option("--extra-files", default="", metavar='"F1 F2"', help="More files to concatenate.")
@click.option("--overwrite", is_flag=True, help="Replace DST even if asrkit did not make it (it is never an input).")
@click.argument("dst", type=click.Path())
@click.argument("srcs", nargs=-1, required=True, type=click.Path())
def combine(extra_files: str, overwrite: bool, dst: str, srcs: tuple[str, ...]) -> None:
    """Concatenate the data dirs SRCS into DST (Kaldi's utils/combine_data.sh), then validate it.

    \b
    Example:
      asrkit data combine data/train_all data/train_en data/train_de data/train_fr
    """
    from asrkit.kaldi.datadir import combine_data_dirs
    from asrkit.logutil import setup_logging

    setup_logging()
    combine_data_dirs(dst, srcs, extra_files=_file_list(extra_files), overwrite=overwrite)


@data.command("perturb-speed")
@click.option("--factors", default="0.9,1.0,1.1", show_default=True, help="Comma-separated speed factors.")
@click.option("--overwrite", is_flag=True, help="Replace DST even if asrkit did not make it (it is never an input).")
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
def perturb_speed(factors: str, overwrite: bool, src: str, dst: str) -> None:
    """Make DST with copies of SRC at each speed factor, ids prefixed sp<f>- (Kaldi's perturb_data_dir_speed_3way.sh)."""
    try:
        values = [float(f) for f in factors.split(",") if f.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got '{factors}'",
                                 param_hint="--factors") from None
    if not values or any(v <= 0 for v in values):
        raise click.BadParameter(f"expected positive numbers, got '{factors}'", param_hint="--factors")
    from asrkit.kaldi.perturb import perturb_data_dir_speed
    from asrkit.logutil import setup_logging

    setup_logging()
    perturb_data_dir_speed(src, dst, values, overwrite=overwrite)


@data.command("get-utt2dur")
@click.option("--overwrite", is_flag=True, help="Compute utt2dur again even if DATA_DIR has one.")
@click.argument("data_dir", type=click.Path(file_okay=False))
def get_utt2dur(overwrite: bool, data_dir: str) -> None:
    """Write DATA_DIR/utt2dur from the audio of wav.scp (and segments): Kaldi's utils/data/get_utt2dur.sh.

    Durations let `data info` count hours and `data subset --hours` select by time.
    """
    from asrkit.kaldi.durations import write_utt2dur
    from asrkit.logutil import setup_logging

    setup_logging()
    click.echo(str(write_utt2dur(data_dir, overwrite=overwrite)))


@data.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@click.argument("data_dir", type=click.Path())
def info(as_json: bool, data_dir: str) -> None:
    """Print the number of utterances, speakers and hours of DATA_DIR, per language where utt2lang exists."""
    from asrkit.kaldi.datadir import data_dir_info

    summary = data_dir_info(data_dir)
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(_format_info(summary))


def _format_info(s: dict) -> str:
    def hours(entry: dict) -> str:
        return "? hours" if entry.get("hours") is None else f"{entry['hours']:.3f} hours ({entry['seconds']:.2f} s)"

    source = (f", from {s['duration_source']}" if s["duration_source"]
              else " (no utt2dur: `asrkit data get-utt2dur DIR` writes it)")
    lines = [f"{s['path']}: {s['utterances']} utterances, {s['speakers']} speakers, {hours(s)}{source}"]
    if s["recordings"] is not None:
        lines.append(f"  recordings: {s['recordings']}")
    for lang, entry in s["languages"].items():
        lines.append(f"  {lang}: {entry['utterances']} utterances, {hours(entry)}")
    feats = "no" if not s["has_feats"] else ("yes" if s["feat_dim"] is None else f"yes (dim {s['feat_dim']})")
    lines.append(f"  text: {'yes' if s['has_text'] else 'no'}, feats: {feats}, "
                 f"cmvn: {'yes' if s['has_cmvn'] else 'no'}")
    return "\n".join(lines)
