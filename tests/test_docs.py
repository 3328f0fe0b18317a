"""The documentation in docs/ against the command line it documents.

Every command registered in `asrkit.cli.main.COMMANDS` (and every subcommand of the groups `data`
and `prepare`) must appear in a fenced code block of some docs page as an example invocation
(a line starting with `asrkit <command>`), and every `--option` such an example uses must be an
option of that command. Relative links between pages must point at existing pages and headings.
"""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from asrkit.cli.main import COMMANDS

DOCS = Path(__file__).resolve().parents[1] / "docs"
GROUPS = ("data", "prepare")
_FENCE = re.compile(r"^\s*(```|~~~)")
# Shell tokens that end the asrkit command on a line (pipes, redirections, command separators).
_SHELL_STOP = ("|", "||", "&&", ";", "&", "<")
_REDIRECT = re.compile(r"^(\d*>|&>)")


@dataclass(frozen=True)
class Example:
    """One `asrkit ...` line of a fenced code block."""

    page: str
    line: int
    tokens: tuple[str, ...]  # shell words, starting with "asrkit", cut at the first pipe/redirection

    def where(self) -> str:
        return f"{self.page}:{self.line}: {' '.join(self.tokens)}"


def code_lines(text: str) -> list[tuple[int, str]]:
    """`(line number, logical line)` of every line inside fenced code blocks; backslash
    continuations are joined, the number is that of the first physical line."""
    out: list[tuple[int, str]] = []
    inside = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            inside = not inside
            pending = None
            continue
        if not inside:
            continue
        if pending is not None:
            start, head = pending
            line, number = head + " " + line.strip(), start
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        pending = None
        out.append((number, line))
    return out


def examples_in(text: str, page: str) -> list[Example]:
    """The `asrkit ...` invocations in a page's code blocks (not its output lines such as
    `asrkit decode: error: ...`)."""
    found = []
    for number, line in code_lines(text):
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:].lstrip()
        if not stripped.startswith("asrkit ") and stripped != "asrkit":
            continue
        if any(w.endswith(":") for w in stripped.split()[1:3]):
            continue  # a message asrkit printed, e.g. `asrkit data validate: error: ...`
        try:
            words = shlex.split(stripped, comments=True)
        except ValueError as e:  # an unbalanced quote: the example would not run either
            raise AssertionError(f"{page}:{number}: cannot parse as a shell command ({e}): {stripped}") from None
        tokens = []
        for w in words:
            if w in _SHELL_STOP or _REDIRECT.match(w):
                break
            tokens.append(w)
        found.append(Example(page, number, tuple(tokens)))
    return found


def load_commands() -> dict[tuple[str, ...], click.Command]:
    """Every leaf command by its path: `("train",)`, `("data", "validate")`, `("prepare", "wsj")`.

    Imports each module named in COMMANDS directly (not through the lazy group, which hides a
    module that is missing), so a registered command without an implementation fails here.
    """
    commands: dict[tuple[str, ...], click.Command] = {}
    for name, (module, attr) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for sub in command.list_commands(ctx):
                commands[(name, sub)] = command.get_command(ctx, sub)
        else:
            commands[(name,)] = command
    return commands


def _option_names(command: click.Command) -> dict[str, click.Parameter]:
    names: dict[str, click.Parameter] = {"--help": None, "-h": None}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                names[opt] = param
    return names


def _takes_value(param: click.Parameter | None) -> bool:
    return isinstance(param, click.Option) and not param.is_flag and not param.count and param.nargs == 1


def resolve(example: Example, commands: dict[tuple[str, ...], click.Command]) -> tuple[tuple[str, ...] | None, str | None]:
    """The command path an example invokes, or `(None, problem)`; `(None, None)` for `asrkit --help`."""
    words = example.tokens[1:]
    if not words or words[0] in ("--help", "-h", "--version"):
        return None, None
    name = words[0]
    if name not in COMMANDS:
        return None, f"unknown command 'asrkit {name}'"
    if name in GROUPS:
        if len(words) < 2 or words[1] in ("--help", "-h"):
            return None, None if len(words) >= 2 else f"'asrkit {name}' without a subcommand"
        if (name, words[1]) not in commands:
            return None, f"unknown command 'asrkit {name} {words[1]}'"
        return (name, words[1]), None
    return (name,), None


def check_example(example: Example, commands: dict[tuple[str, ...], click.Command]) -> list[str]:
    """Problems of one example: an unknown command, or options its command does not have.

    Synopsis notation is understood: `[--opt VALUE]` brackets and `--a|--b` alternatives.
    """
    path, problem = resolve(example, commands)
    if path is None:
        return [f"{example.where()}\n    {problem}"] if problem else []
    names = _option_names(commands[path])
    problems = []
    words = list(example.tokens[1 + len(path):])
    i = 0
    while i < len(words):
        word = words[i].lstrip("[").rstrip("]")
        i += 1
        if not word.startswith("-") or word in ("-", "--", "...") or re.fullmatch(r"-\d.*", word):
            continue
        name, has_value = (word.split("=", 1)[0], True) if "=" in word else (word, False)
        alternatives = [a for a in name.split("|") if a.startswith("-")]
        unknown = [a for a in alternatives if a not in names]
        if unknown:
            problems.append(f"{example.where()}\n    'asrkit {' '.join(path)}' has no option "
                            f"{', '.join(unknown)}")
            continue
        if len(alternatives) == 1 and not has_value and _takes_value(names[alternatives[0]]):
            i += 1  # its value, which may itself start with '-'
    return problems


def all_examples() -> list[Example]:
    examples = []
    for page in sorted(DOCS.glob("*.md")):
        examples += examples_in(page.read_text(encoding="utf-8"), page.name)
    return examples


COMMAND_PATHS = sorted(load_commands())


@pytest.fixture(scope="module")
def commands() -> dict[tuple[str, ...], click.Command]:
    return load_commands()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return all_examples()


def test_docs_exist_with_an_index():
    assert (DOCS / "index.md").is_file()
    pages = {p.name for p in DOCS.glob("*.md")}
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    unlinked = sorted(p for p in pages - {"index.md"} if f"]({p}" not in index)
    assert not unlinked, f"docs/index.md does not link to {', '.join(unlinked)}"


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_every_command_has_an_example(path, commands, examples):
    invoked = {resolve(e, commands)[0] for e in examples}
    assert path in invoked, (f"'asrkit {' '.join(path)}' has no example invocation in a fenced code block "
                             f"of any page in {DOCS}")


def test_examples_use_only_existing_commands_and_options(commands, examples):
    assert examples, f"no `asrkit ...` examples found in {DOCS}"
    problems = [p for e in examples for p in check_example(e, commands)]
    assert not problems, "docs examples that would not run:\n" + "\n".join(problems)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    inside = False
    for line in text.splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        m = None if inside else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = github_slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_links_between_pages_resolve():
    pages = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")}
    problems = []
    for name, text in sorted(pages.items()):
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            line = text.count("\n", 0, m.start()) + 1
            if file and file.endswith(".md") and "/" not in file:
                if file not in pages:
                    problems.append(f"{name}:{line}: link to missing page {file}")
                    continue
            elif file:
                if not (DOCS / file).exists():
                    problems.append(f"{name}:{line}: link to missing file {file}")
                continue
            if anchor and anchor not in anchors(pages[file or name]):
                problems.append(f"{name}:{line}: no heading for #{anchor} in {file or name}")
    assert not problems, "\n".join(problems)


# The checks themselves must fail on bad docs.

_BAD_PAGE = """
Intro `asrkit train --no-such-option` outside a code block is not an example.

```sh
asrkit train --config c.yaml --train-data data/train --out-dir exp/x --bogus 3
asrkit data validate --no-feats data/train
asrkit data frobnicate data/train
asrkit make-feats [--type fbank|mfcc] [--nj N] [--gpu] DATA_DIR
asrkit decode --model m.pt --data d --out-dir o --search beam \\
    --beam 4 --beem 8
asrkit no-such-command --x
asrkit data validate: error: data/train/utt2spk:2: not sorted
asrkit score --data d --decode-dir o | tee log    # --not-checked after the pipe
```
"""


def test_checker_reports_unknown_commands_and_options(commands):
    examples = examples_in(_BAD_PAGE, "bad.md")
    assert [e.line for e in examples] == [5, 6, 7, 8, 9, 11, 13]
    problems = [p for e in examples for p in check_example(e, commands)]
    text = "\n".join(problems)
    assert len(problems) == 5, text
    assert "bad.md:5:" in text and "'asrkit train' has no option --bogus" in text
    assert "unknown command 'asrkit data frobnicate'" in text
    assert "'asrkit make-feats' has no option --gpu" in text
    assert "bad.md:9:" in text and "'asrkit decode' has no option --beem" in text
    assert "unknown command 'asrkit no-such-command'" in text


def test_checker_reports_undocumented_commands(commands):
    examples = examples_in("```\nasrkit train --config c.yaml\nasrkit data info data/x\n```\n", "one.md")
    invoked = {resolve(e, commands)[0] for e in examples}
    assert invoked == {("train",), ("data", "info")}
    missing = [p for p in COMMAND_PATHS if p not in invoked]
    assert ("decode",) in missing and ("data", "validate") in missing and ("prepare", "wsj") in missing


def test_option_values_are_not_taken_for_options(commands):
    # `--set` takes a value; a value starting with '-' is not an option.
    good = examples_in("```\nasrkit train --out-dir x --train-data d --set -1\n```\n", "v.md")
    assert check_example(good[0], commands) == []
    bad = examples_in("```\nasrkit train --resume --no-resume\n```\n", "v.md")
    assert "has no option --no-resume" in "\n".join(check_example(bad[0], commands))


def test_anchor_slugs():
    assert github_slug("EMA: `training.ema: {decay, start_step}`") == "ema-trainingema-decay-start_step"
    assert github_slug("`asrkit prepare <corpus>`") == "asrkit-prepare-corpus"
    assert github_slug("Cross-language transfer: `--init-from`, `--freeze`") == "cross-language-transfer---init-from---freeze"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}
