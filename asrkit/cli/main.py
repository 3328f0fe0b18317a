"""The `asrkit` entry point: a lazily loaded click group and the one-line error handler.

Subcommands live in `asrkit/cli/<family>.py` and are imported only when named (or when `--help`
lists them); those modules import only click at top level, so `asrkit --help` stays instant.
"""

from __future__ import annotations

import sys

import click

from asrkit import __version__
from asrkit.cli.lazy import LazyGroup

# name -> (module, attribute), imported when the command runs or `--help` lists it.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("asrkit.cli.data", "data"),
    "prepare": ("asrkit.cli.prepare", "prepare"),
    "make-feats": ("asrkit.cli.features", "make_feats"),
    "compute-cmvn": ("asrkit.cli.features", "compute_cmvn"),
    "make-lang": ("asrkit.cli.lang", "make_lang"),
    "make-lm": ("asrkit.cli.lm", "make_lm"),
    "train": ("asrkit.cli.train", "train"),
    "average-checkpoints": ("asrkit.cli.train", "average_checkpoints"),
    "plot": ("asrkit.cli.train", "plot"),
    "prune": ("asrkit.cli.prune", "prune"),
    "prune-stats": ("asrkit.cli.prune", "prune_stats"),
    "export": ("asrkit.cli.prune", "export"),
    "dump-posteriors": ("asrkit.cli.distill", "dump_posteriors"),
    "decode": ("asrkit.cli.decode", "decode"),
    "score": ("asrkit.cli.score", "score"),
    "results": ("asrkit.cli.score", "results"),
}


def _user_error_types() -> tuple[type[BaseException], ...]:
    from asrkit.errors import AsrkitError

    return (AsrkitError, OSError)


class AsrkitGroup(LazyGroup):
    """Top-level group: lazy subcommands, and user errors turned into one line plus exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Pipeline order, not alphabetical: the help reads like a recipe.
        return list(self.lazy_commands)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _user_error_types() as e:
            if isinstance(e, BrokenPipeError):  # `asrkit ... | head` is not an error
                sys.stderr.close()
                ctx.exit(0)
            click.echo(f"asrkit {_subcommand_path(ctx)}: error: {format_error(e)}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("asrkit: interrupted", err=True)
            ctx.exit(130)


def _subcommand_path(ctx: click.Context) -> str:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    names = []
    group: click.Command | None = ctx.command
    for a in args:
        if not isinstance(group, click.Group):
            break
        sub = group.get_command(ctx, a)
        if sub is None:
            break
        names.append(a)
        group = sub
    return " ".join(names) or "asrkit"


def format_error(e: BaseException) -> str:
    """One line for a user error: OSError gets its file name, everything else its message."""
    if isinstance(e, OSError) and not isinstance(e, _user_error_types()[0]):
        if e.filename is not None:
            return f"{e.filename}: {e.strerror or e}"
        return str(e)
    return " ".join(str(e).split("\n"))


@click.group(cls=AsrkitGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="asrkit")
def cli() -> None:
    """asrkit: Kaldi-style multilingual speech recognition recipes.

    Each stage of a recipe is one subcommand; every stage reads and writes Kaldi-format files
    (data dirs, ark/scp), so Kaldi tools can read asrkit's outputs and asrkit can read Kaldi's.
    """


def main() -> None:  # pragma: no cover - exercised through `python -m asrkit`
    cli(prog_name="asrkit")
