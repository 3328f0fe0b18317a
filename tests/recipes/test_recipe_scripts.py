"""Static and command-line checks of every recipe (recipes/*/run.sh and its local/*.sh), without training.

Each script must parse (`bash -n`), answer `--help`, reject unknown options and `--opt=value`; every
`asrkit <cmd> --option` a script uses (directly, through a wrapper function that passes "$@", or
through an options array) must be an option of that command; every `local/*.sh --option` must be
a variable of that script; every recipe config must load and build. The last part pins down the
semantics of recipes/utils/parse_options.sh on a tiny script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
PARSE_OPTIONS = RECIPES / "utils" / "parse_options.sh"
RECIPE_FUNCTIONS = RECIPES / "utils" / "recipe_functions.sh"  # the shell functions every recipe shares
RUN_SCRIPTS = sorted(RECIPES.glob("*/run.sh"))
RECIPE_DIRS = [p.parent for p in RUN_SCRIPTS]


def _ids(paths):
    return [p.relative_to(RECIPES).as_posix() for p in paths]


def recipe_scripts(recipe: Path) -> list[Path]:
    """run.sh and the recipe's local/*.sh (symlinks to another recipe's scripts included)."""
    return [recipe / "run.sh", *sorted((recipe / "local").glob("*.sh"))]


ALL_SCRIPTS = [s for r in RECIPE_DIRS for s in recipe_scripts(r)]
SHELL_FILES = [*ALL_SCRIPTS, RECIPE_FUNCTIONS]


def sources_recipe_functions(text: str) -> bool:
    return re.search(r"^\. \./utils/recipe_functions\.sh$", text, re.M) is not None


def script_env() -> dict[str, str]:
    """The environment of a recipe run: this interpreter's bin folder (where `asrkit` is) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("KALDI_ROOT", None)
    return env


def run_bash(*args: str | os.PathLike, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, env=script_env(), capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------------
# A small shell lexer: enough of bash's word splitting to find commands and their options.
# --------------------------------------------------------------------------------------------------

_OPERATORS = ("&&", "||", ";;", ";", "|", "&", "(", ")")
_WORD_END = set(" \t\n;&|()<>")


@dataclass
class Lexed:
    """Tokens of a script: ('word', text) and ('op', text); command substitutions are lexed apart."""

    tokens: list[tuple[str, str]] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)


def _skip_quoted(text: str, i: int, subs: list[str]) -> int:
    """Index after the quoted string, `$(...)`, `${...}` or backquote starting at text[i]."""
    c = text[i]
    if c == "'":
        return text.index("'", i + 1) + 1
    if c == '"':
        i += 1
        while text[i] != '"':
            if text[i] == "\\":
                i += 2
            elif text.startswith("$(", i) or text.startswith("${", i) or text[i] == "`":
                i = _skip_quoted(text, i, subs)
            else:
                i += 1
        return i + 1
    if c == "`":
        end = text.index("`", i + 1)
        subs.append(text[i + 1:end])
        return end + 1
    if text.startswith("${", i):
        depth, i = 1, i + 2
        while depth:
            if text[i] in "'\"":
                i = _skip_quoted(text, i, subs)
                continue
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        return i
    if text.startswith("$(", i):
        start, depth, i = i + 2, 1, i + 2
        while depth:
            if text[i] in "'\"`" or text.startswith("${", i) or text.startswith("$(", i):
                i = _skip_quoted(text, i, subs)
                continue
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        subs.append(text[start:i - 1])
        return i
    raise AssertionError(f"not a quote at {i}")


def lex(text: str) -> Lexed:
    """Split shell text into words and operators (newlines are `;`), skipping comments and redirections."""
    out = Lexed()
    i, n = 0, len(text)
    skip_next_word = False
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif text.startswith("\\\n", i):
            i += 2
        elif c == "\n":
            out.tokens.append(("op", ";"))
            i += 1
        elif c == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c in "<>":
            # Redirection: the operator, an optional &N, then the target word (not an argument).
            m = re.compile(r"[<>]+&?-?\d*").match(text, i)
            i = m.end()
            skip_next_word = not m.group().endswith(tuple("0123456789-"))
        elif any(text.startswith(op, i) for op in _OPERATORS):
            op = next(op for op in _OPERATORS if text.startswith(op, i))
            out.tokens.append(("op", op))
            i += len(op)
        else:
            start = i
            while i < n and text[i] not in _WORD_END:
                if text[i] == "\\":
                    i += 2
                elif text[i] in "'\"`" or text.startswith("${", i) or text.startswith("$(", i):
                    i = _skip_quoted(text, i, out.substitutions)
                elif text[i] == "=" and i + 1 < n and text[i + 1] == "(" and re.fullmatch(r"\w+\+?", text[start:i]):
                    # name=( ... ): an array assignment is one word, newlines included.
                    depth, i = 1, i + 2
                    while depth:
                        if text[i] in "'\"`" or text.startswith("${", i) or text.startswith("$(", i):
                            i = _skip_quoted(text, i, out.substitutions)
                            continue
                        if text[i] == "#" and text[i - 1] in " \t\n":
                            i = text.index("\n", i)
                            continue
                        depth += {"(": 1, ")": -1}.get(text[i], 0)
                        i += 1
                else:
                    i += 1
            word = text[start:i]
            if skip_next_word:
                skip_next_word = False
            else:
                out.tokens.append(("word", word))
    for sub in list(out.substitutions):
        inner = lex(sub)
        out.substitutions.extend(inner.substitutions)
    return out


def simple_commands(tokens: list[tuple[str, str]]) -> list[list[str]]:
    """The words of each simple command (split at every operator)."""
    commands, current = [], []
    for kind, text in tokens:
        if kind == "op":
            if current:
                commands.append(current)
            current = []
        else:
            current.append(text)
    if current:
        commands.append(current)
    return commands


_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
             "local", "export", "exec"}
_PREFIX = re.compile(r"\$\{?\w+\}?|\w+=.*")  # `$train_cmd asrkit ...`, `FOO=1 asrkit ...`


def command_words(words: list[str]) -> list[str]:
    """The words from the command name on: leading keywords, assignments and `$cmd` prefixes dropped."""
    i = 0
    while i < len(words) and (words[i] in _KEYWORDS or _PREFIX.fullmatch(words[i])):
        i += 1
    return words[i:]


def unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def option_names(words: list[str], arrays: dict[str, set[str]]) -> set[str]:
    """`--name` of every option word (`--name=value` counts as `--name`), options arrays expanded."""
    names = set()
    for w in words:
        u = unquote(w)
        if re.match(r"--[A-Za-z0-9]", u):
            names.add(u.split("=", 1)[0])
        for array in re.findall(r"\$\{(\w+)\[@\]\}", w):
            names |= arrays.get(array, set())
    return names


@dataclass
class ScriptCalls:
    """What a script runs: asrkit invocations and local script calls, each with its option names."""

    asrkit: list[tuple[tuple[str, ...], set[str], str]] = field(default_factory=list)  # (words, options, text)
    local: list[tuple[str, set[str], str]] = field(default_factory=list)


def _all_tokens(text: str) -> list[tuple[str, str]]:
    """Tokens of the script, then of each command substitution in it (after a `;`)."""
    lexed = lex(text)
    tokens = list(lexed.tokens)
    for sub in lexed.substitutions:
        tokens += [("op", ";"), *lex(sub).tokens]
    return tokens


def _without_function_names(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`name ( )` of a function definition is not a call of `name`."""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i][0] == "word" and tokens[i + 1:i + 3] == [("op", "("), ("op", ")")]:
            out.append(("op", ";"))
            i += 3
        else:
            out.append(tokens[i])
            i += 1
    return out


def _arrays(tokens: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Option words of every `name=(...)` / `name+=(...)` assignment, by array name (all branches merged)."""
    arrays: dict[str, set[str]] = {}
    for kind, text in tokens:
        m = re.fullmatch(r"(\w+)\+?=\((.*)\)", text, re.S) if kind == "word" else None
        if m:
            inner = [w for k, w in lex(m.group(2)).tokens if k == "word"]
            arrays.setdefault(m.group(1), set()).update(option_names(inner, {}))
    return arrays


def _wrappers(tokens: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Shell functions whose body runs `asrkit <cmd> ... "$@"`, or passes "$@" on to such a
    function: function name -> the asrkit words."""
    wrappers: dict[str, tuple[str, ...]] = {}
    while True:
        found = _wrappers_once(tokens, wrappers)
        if found == wrappers:
            return wrappers
        wrappers = found


def _wrappers_once(tokens: list[tuple[str, str]], known: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    wrappers = dict(known)
    for i in range(len(tokens) - 3):
        (k0, name), (k1, o1), (k2, o2) = tokens[i], tokens[i + 1], tokens[i + 2]
        if not (k0 == "word" and re.fullmatch(r"[A-Za-z_]\w*", name) and (k1, o1) == ("op", "(") and (k2, o2) == ("op", ")")):
            continue
        depth, j = 0, i + 3
        body = []
        while j < len(tokens):
            kind, text = tokens[j]
            if kind == "word" and text == "{":
                depth += 1
            elif kind == "word" and text == "}":
                depth -= 1
                if depth == 0:
                    break
            body.append(tokens[j])
            j += 1
        for words in simple_commands(body):
            cw = command_words(words)
            if cw and cw[0] == "asrkit" and '"$@"' in cw:
                wrappers[name] = tuple(w for w in cw[1:] if not w.startswith(("-", "$", '"')))[:2]
            elif cw and cw[0] in known and cw[0] != name and '"$@"' in cw:
                wrappers[name] = known[cw[0]]
    return wrappers


def script_calls(path: Path) -> ScriptCalls:
    """Every asrkit invocation (and wrapper call, and local script call) of a shell script; the
    wrappers of utils/recipe_functions.sh count where the script sources it."""
    text = path.read_text()
    tokens = _all_tokens(text)
    arrays = _arrays(tokens)
    shared = _all_tokens(RECIPE_FUNCTIONS.read_text()) + [("op", ";")] if sources_recipe_functions(text) else []
    wrappers = _wrappers(shared + tokens)
    calls = ScriptCalls()
    for words in simple_commands(_without_function_names(tokens)):
        cw = command_words(words)
        if not cw:
            continue
        head = unquote(cw[0])
        if head == "asrkit":
            calls.asrkit.append((tuple(cw[1:]), option_names(cw[1:], arrays), " ".join(cw)))
        elif head in wrappers:
            calls.asrkit.append((wrappers[head], option_names(cw[1:], arrays), " ".join(cw)))
        elif re.fullmatch(r"(\./)?local/[\w.-]+\.sh", head):
            calls.local.append((head.removeprefix("./"), option_names(cw[1:], arrays), " ".join(cw)))
    return calls


def resolve_asrkit(words: tuple[str, ...]) -> click.Command:
    """The click command that `asrkit WORDS...` runs (groups followed down to a leaf)."""
    from asrkit.cli.main import cli

    ctx = click.Context(cli)
    cmd: click.Command = cli
    path = []
    for w in words:
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(ctx, unquote(w))
        assert sub is not None, f"'asrkit {' '.join([*path, w])}' is not an asrkit command"
        path.append(w)
        cmd = sub
    assert not isinstance(cmd, click.Group), f"'asrkit {' '.join(path)}' names a group, not a command"
    return cmd


def click_options(cmd: click.Command) -> set[str]:
    names = {"--help"}
    for p in cmd.params:
        if isinstance(p, click.Option):
            names.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("--"))
    return names


def script_variables(path: Path) -> set[str]:
    """Variables a script defines before it sources parse_options.sh: the options it accepts."""
    text = path.read_text()
    head = text.split("utils/parse_options.sh", 1)[0]
    return set(re.findall(r"^(\w+)=", head, re.M))


# --------------------------------------------------------------------------------------------------
# The lexer itself (so that a broken lexer cannot make the option checks pass vacuously)
# --------------------------------------------------------------------------------------------------


def test_script_calls_finds_options_through_continuations_wrappers_and_arrays(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(
        '#!/usr/bin/env bash\n'
        'opts=(--set a=1\n'
        '      --nproc 2)  # a comment (with parens)\n'
        'train() {  # train NAME [options]\n'
        '  $train_cmd asrkit train --out-dir "exp/$1" "${opts[@]}" "$@"\n'
        '}\n'
        'if true; then\n'
        '  asrkit make-feats "data/$d" --conf conf/fbank.conf \\\n'
        '    --nj "$(nproc --all)" --feat-dir fbank 2>&1 | tee log  # --not-an-option\n'
        '  x=$(asrkit data info data/train --bogus)\n'
        'fi\n'
        'train m --config "c.yaml" --lang=data/lang\n'
        './local/pathways.sh --lang-dir data/lang --device "$device"\n'
        'echo "asrkit train --quoted"\n')
    calls = script_calls(script)
    found = {(" ".join(w[:2]) if w[0] == "data" else w[0]): opts for w, opts, _ in calls.asrkit}
    assert found["make-feats"] == {"--conf", "--nj", "--feat-dir"}
    assert found["data info"] == {"--bogus"}
    train_calls = [opts for w, opts, _ in calls.asrkit if w[0] == "train"]
    assert {"--out-dir", "--set", "--nproc"} in train_calls  # the wrapper's own line, array expanded
    assert {"--config", "--lang"} in train_calls             # the wrapper's call site
    assert len(train_calls) == 2                             # `train() {` itself is not a call
    assert calls.local == [("local/pathways.sh", {"--lang-dir", "--device"},
                            './local/pathways.sh --lang-dir data/lang --device "$device"')]


# --------------------------------------------------------------------------------------------------
# Every recipe
# --------------------------------------------------------------------------------------------------


def test_every_recipe_is_found():
    names = {p.name for p in RECIPE_DIRS}
    assert {"synth", "wsj", "mls", "commonvoice"} <= names


@pytest.mark.parametrize("script", SHELL_FILES, ids=_ids(SHELL_FILES))
def test_bash_syntax(script):
    proc = run_bash("-n", script)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", RUN_SCRIPTS, ids=_ids(RUN_SCRIPTS))
def test_help_prints_usage(script, tmp_path):
    proc = run_bash(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "Usage:" in out and "--stage" in out
    assert not any(tmp_path.iterdir()), "--help must not create anything"


@pytest.mark.parametrize("script", RUN_SCRIPTS, ids=_ids(RUN_SCRIPTS))
def test_unknown_option_is_an_error(script, tmp_path):
    proc = run_bash(script, "--no-such-option", "1", cwd=tmp_path)
    assert proc.returncode != 0
    assert "invalid option '--no-such-option'" in proc.stderr


@pytest.mark.parametrize("script", RUN_SCRIPTS, ids=_ids(RUN_SCRIPTS))
def test_option_with_equals_is_rejected(script, tmp_path):
    proc = run_bash(script, "--stage=3", cwd=tmp_path)
    assert proc.returncode != 0
    assert "--name value" in proc.stderr and "'--stage=3'" in proc.stderr


@pytest.mark.parametrize("script", SHELL_FILES, ids=_ids(SHELL_FILES))
def test_asrkit_options_exist(script):
    calls = script_calls(script)
    if script.name == "run.sh":
        assert calls.asrkit, f"{script}: no asrkit command found"
    problems = []
    for words, options, text in calls.asrkit:
        cmd = resolve_asrkit(words)
        unknown = sorted(options - click_options(cmd))
        if unknown:
            problems.append(f"{text}\n    unknown: {', '.join(unknown)}")
    assert not problems, f"{script.relative_to(REPO)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=_ids(ALL_SCRIPTS))
def test_local_script_options_exist(script):
    recipe = script.parent if script.name == "run.sh" else script.parent.parent
    problems = []
    for local, options, text in script_calls(script).local:
        target = recipe / local
        assert target.is_file(), f"{script}: calls {local}, which does not exist"
        known = {"--" + v.replace("_", "-") for v in script_variables(target)} | {"--config", "--help"}
        unknown = sorted(options - known)
        if unknown:
            problems.append(f"{text}\n    unknown: {', '.join(unknown)}")
        # parse_options.sh sources a --config FILE as shell: a YAML training config there is a bug.
        if re.search(r"--config\s+\S+\.ya?ml\b", text):
            problems.append(f"{text}\n    --config is sourced as a shell file by parse_options.sh, not a YAML config")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("recipe", RECIPE_DIRS, ids=_ids(RECIPE_DIRS))
def test_recipe_layout(recipe):
    assert (recipe / "utils").is_symlink() and os.readlink(recipe / "utils") == "../utils"
    cmd = (recipe / "cmd.sh").read_text()
    assert re.search(r"^export train_cmd=", cmd, re.M) and re.search(r"^export decode_cmd=", cmd, re.M)
    assert re.search(r"^# export train_cmd=\"srun ", cmd, re.M), "cmd.sh: no commented Slurm alternative"
    # One path.sh for every recipe (utils/path.sh), linked as Kaldi recipes expect it: ./path.sh.
    assert (recipe / "path.sh").is_symlink() and os.readlink(recipe / "path.sh") == "../utils/path.sh"
    assert "LC_ALL=C" in (recipe / "path.sh").read_text()
    assert (recipe / "RESULTS.md").is_file()
    run = (recipe / "run.sh").read_text()
    assert os.access(recipe / "run.sh", os.X_OK)
    # The header documents the stages that the script gates.
    gated = set(re.findall(r"stage_on (\d+)", run))
    header = run.split("set -euo pipefail", 1)[0]
    # `#   3  MTL ...      4  LRMF ...`: a number after the comment mark or a wide gap, then two spaces.
    documented = set(re.findall(r"(?:^#|\s{2})\s*(\d{1,2})\s{2}\S", header, re.M))
    assert gated and gated <= documented, f"stages {sorted(gated - documented)} are not described at the top"


def test_recipes_use_the_shared_functions():
    """log, stage_on, train, decode_score ... are written once, in utils/recipe_functions.sh: no
    recipe script defines them again, and every script that calls one sources the file."""
    shared = set(re.findall(r"^(\w+)\(\) *\{", RECIPE_FUNCTIONS.read_text(), re.M))
    assert {"log", "die", "stage_on", "abspath", "hours_of", "make_fbank_cmvn", "subset_by_language", "train", "decode_score",
            "decode_score_monolingual"} <= shared
    problems = []
    for script in ALL_SCRIPTS:
        text = script.read_text()
        tokens = _all_tokens(text)
        again = sorted(shared & set(re.findall(r"^\s*(\w+)\(\) *\{", text, re.M)))
        if again:
            problems.append(f"{script.relative_to(REPO)}: defines {', '.join(again)} again")
        called = sorted({cw[0] for cw in map(command_words, simple_commands(_without_function_names(tokens)))
                         if cw and cw[0] in shared})
        if called and not sources_recipe_functions(text):
            problems.append(f"{script.relative_to(REPO)}: calls {', '.join(called)} without sourcing "
                            "./utils/recipe_functions.sh")
    assert not problems, "\n".join(problems)
    for script in RUN_SCRIPTS:
        assert sources_recipe_functions(script.read_text()), script
    # The shared wrappers are followed: the recipes' train and decode_score calls are option-checked.
    wsj_train = [opts for words, opts, _ in script_calls(RECIPES / "wsj" / "run.sh").asrkit if words[:1] == ("train",)]
    assert {"--train-data", "--valid-data", "--lang"} in wsj_train
    synth_score = [opts for words, opts, _ in script_calls(RECIPES / "synth" / "run.sh").asrkit if words[:1] == ("score",)]
    assert {"--cer"} in synth_score  # decode_score_monolingual -> decode_score -> asrkit score "$@"


RECIPE_CONFIGS = sorted(RECIPES.glob("*/conf/*.yaml"))
RECIPE_FEATURE_CONFS = sorted(RECIPES.glob("*/conf/*.conf"))


@pytest.mark.parametrize("conf", RECIPE_FEATURE_CONFS, ids=_ids(RECIPE_FEATURE_CONFS))
def test_feature_conf_is_valid(conf):
    from asrkit.features.kaldi_feats import load_feature_options

    opts = load_feature_options("mfcc" if "mfcc" in conf.name else "fbank", conf)
    assert opts.frame_shift == 10.0  # every recipe works on Kaldi's 10 ms frames


@pytest.mark.parametrize("config", RECIPE_CONFIGS, ids=_ids(RECIPE_CONFIGS))
def test_training_config_loads_and_builds(config):
    from asrkit.features.kaldi_feats import load_feature_options
    from asrkit.models import build_model
    from asrkit.training.config import load_config

    text = config.read_text()
    assert text.startswith("#"), f"{config}: no header comment saying what the config is"
    # ce/kl configs get their targets from run.sh; stand-ins let the config be checked here.
    overrides = []
    if re.search(r"^objective:\s*(\{\s*type:\s*(ce|kl)|\n\s+type:\s*(ce|kl))", text, re.M):
        overrides = ["objective.targets=targets.scp", "objective.valid_targets=valid.scp"]
    if re.search(r"^\s+mix:\s*\{\s*type:\s*ce", text, re.M):  # and a frame CE mix, its alignment
        overrides += ["objective.mix.targets=ali.scp", "objective.mix.valid_targets=ali.scp"]
    conf = load_config(config, overrides)
    fbank = config.parent / "fbank.conf"  # the recipe's features: fbank, or MFCCs (recipes/digits)
    feat_dim = (load_feature_options("fbank", fbank).num_mel_bins if fbank.is_file()
                else load_feature_options("mfcc", config.parent / "mfcc.conf").num_ceps)
    model = build_model(conf.model, feat_dim=feat_dim, vocab_sizes={"aa": 40, "bb": 40})
    assert sum(p.numel() for p in model.parameters()) > 0


SYNTH_CONF = RECIPES / "synth" / "conf"
SIZES = ("tiny", "demo", "small", "full")
# The --config layers of each `asrkit train` of recipes/synth (run.sh and local/pathways.sh); the
# size preset files are laid over the stage's config.
SYNTH_RUNS = {
    "mtl_conformer": ("mtl_conformer.yaml", "{size}/conformer.yaml"),
    "lrmf_conformer": ("lrmf_conformer.yaml", "{size}/conformer.yaml", "{size}/lrmf.yaml"),
    "transfer": ("transfer.yaml", "{size}/conformer.yaml", "{size}/transfer.yaml"),
    "mtl_conformer_dist": ("mtl_conformer.yaml", "{size}/conformer.yaml", "model_averaging.yaml",
                           "{size}/model_averaging.yaml"),
    "teacher_blstm": ("teacher_lstm.yaml", "{size}/teacher.yaml"),
    "student_dnn": ("student_dnn.yaml", "{size}/student.yaml"),
    "hard_dnn": ("hard_dnn.yaml", "{size}/student.yaml"),
    "rnnt_dense": ("rnnt_emformer.yaml", "{size}/rnnt.yaml"),
}


def test_synth_size_presets_are_the_files_the_recipe_uses():
    scripts = (RECIPES / "synth" / "run.sh").read_text() + (RECIPES / "synth" / "local" / "pathways.sh").read_text()
    used = {name for name in re.findall(r"size_\$size/(\w+\.yaml)|\$preset/(\w+\.yaml)", scripts) for name in name if name}
    for size in SIZES:
        assert {p.name for p in (SYNTH_CONF / f"size_{size}").glob("*.yaml")} == used, size
    assert used == {layer.split("/")[1] for layers in SYNTH_RUNS.values() for layer in layers if "/" in layer}


@pytest.mark.parametrize("size", SIZES)
def test_synth_size_presets_load(size):
    from asrkit.training.config import load_config

    for name, layers in SYNTH_RUNS.items():
        paths = [SYNTH_CONF / layer.format(size=f"size_{size}") for layer in layers]
        assert all(p.read_text().startswith("#") for p in paths), name
        overrides = ["objective.targets=post.scp"] if name == "student_dnn" else []
        conf = load_config(paths, overrides)
        assert conf.training.epochs >= 1, name


def test_synth_demo_preset_values():
    """The demo's values (RESULTS.md, docs/recipes.md): they moved from run.sh's --set arrays into conf/size_demo;
    the closed-vocabulary demo with word tokens (issue 18.4) changed the batches, epochs, front end and blank bias."""
    from asrkit.training.config import load_config

    def conf(name):
        return load_config([SYNTH_CONF / layer.format(size="size_demo") for layer in SYNTH_RUNS[name]],
                           ["objective.targets=post.scp"] if name == "student_dnn" else [])

    mtl = conf("mtl_conformer")
    enc = mtl.model.encoder
    assert (enc.d_model, enc.num_layers, enc.ffn_dim, enc.num_heads) == (96, 2, 256, 4)
    assert enc.subsampling_channels == 32 and mtl.model.head.blank_bias == 4
    assert (mtl.data.max_frames, mtl.optim.lr, mtl.scheduler.warmup_steps, mtl.training.epochs) == (1000, 6e-3, 100, 40)
    assert mtl.data.max_padding == 0.1 and mtl.data.specaugment.num_time_masks == 2
    lrmf = conf("lrmf_conformer")
    assert lrmf.model.head.rank == 39
    # From stage 3's model by SVD, 10 epochs (RESULTS.md: 10.06 +- 0.44% dev against 12.83 +- 0.44% from scratch).
    assert (lrmf.training.init_from, lrmf.training.init_lrmf_svd) == ("exp/mtl_conformer/final.pt", True)
    assert (lrmf.optim.lr, lrmf.scheduler.warmup_steps, lrmf.training.epochs) == (2e-3, 50, 10)
    transfer = conf("transfer")
    assert (transfer.optim.lr, transfer.scheduler.warmup_steps, transfer.training.epochs) == (6e-3, 100, 10)
    dist = conf("mtl_conformer_dist").training
    assert (dist.strategy, dist.sync_interval, dist.ema.decay, dist.ema.start_step) == ("model-averaging", 4, 0.9, 20)
    teacher = conf("teacher_blstm")
    assert teacher.model.head.blank_bias == 4 and conf("student_dnn").model.head.blank_bias == 4
    assert (teacher.model.encoder.hidden_dim, teacher.model.encoder.num_layers, teacher.data.max_frames) == (160, 2, 3000)
    assert (teacher.optim.lr, teacher.training.epochs) == (6e-3, 8)
    for name in ("student_dnn", "hard_dnn"):
        dnn = conf(name)
        assert dnn.model.encoder.hidden_dims == [128, 128] and dnn.model.head.blank_bias == 4
        assert (dnn.data.max_frames, dnn.training.epochs) == (1500, 9)
    rnnt = conf("rnnt_dense")
    enc = rnnt.model.encoder
    assert (enc.d_model, rnnt.model.predictor.hidden_dim, rnnt.model.joiner.dim) == (96, 128, 128)
    assert (enc.stride, enc.segment_length, enc.left_context, enc.right_context) == (12, 8, 16, 2)
    assert rnnt.model.head.blank_bias == 4 and rnnt.model.aux_ctc.weight == 0.3
    assert (rnnt.data.max_frames, rnnt.optim.lr, rnnt.training.epochs) == (1000, 6e-3, 18)


# --------------------------------------------------------------------------------------------------
# parse_options.sh semantics
# --------------------------------------------------------------------------------------------------

DEMO = """#!/usr/bin/env bash
set -euo pipefail
foo_bar=default
use_gpu=false
stage=0
cmd=run.pl
help_message="Usage: demo.sh [--foo-bar X] [--use-gpu true|false] [--stage N] ARGS"
. {parse_options}
echo "foo_bar=[$foo_bar] use_gpu=$use_gpu stage=$stage cmd=$cmd args=[$*]"
"""


@pytest.fixture
def demo(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(DEMO.replace("{parse_options}", str(PARSE_OPTIONS)))

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_bash(script, *args, cwd=tmp_path)

    return run


def test_parse_options_defaults(demo):
    proc = demo()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "foo_bar=[default] use_gpu=false stage=0 cmd=run.pl args=[]\n"


def test_parse_options_sets_variables_and_keeps_arguments(demo):
    proc = demo("--foo-bar", "a value", "--stage", "3", "--use-gpu", "true", "x", "y")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "foo_bar=[a value] use_gpu=true stage=3 cmd=run.pl args=[x y]\n"


def test_parse_options_stops_at_the_first_argument(demo):
    proc = demo("x", "--stage", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "foo_bar=[default] use_gpu=false stage=0 cmd=run.pl args=[x --stage 3]\n"


@pytest.mark.parametrize("args, message", [
    (("--nope", "1"), "invalid option '--nope'"),
    (("--foo-bar=v",), "must be of the form --name value, got '--foo-bar=v'"),
    (("--use-gpu", "yes"), "option '--use-gpu' takes true or false, not 'yes'"),
    (("--stage",), "option '--stage' needs a value"),
    (("--cmd", ""), "empty argument to --cmd"),
    (("--config", "missing.conf"), "cannot read config file 'missing.conf'"),
])
def test_parse_options_errors(demo, args, message):
    proc = demo(*args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stdout == "", "the script must not go on after a bad option"


def test_parse_options_config_file_is_overridden_by_the_command_line(demo, tmp_path):
    (tmp_path / "my.conf").write_text("foo_bar=from_conf\nstage=7\n")
    proc = demo("--config", "my.conf")
    assert proc.stdout == "foo_bar=[from_conf] use_gpu=false stage=7 cmd=run.pl args=[]\n", proc.stderr
    # The config is read first wherever it appears, so --stage wins even when it comes before.
    proc = demo("--stage", "2", "--config", "my.conf")
    assert proc.stdout == "foo_bar=[from_conf] use_gpu=false stage=2 cmd=run.pl args=[]\n", proc.stderr


def test_parse_options_help(demo):
    proc = demo("--help")
    assert proc.returncode == 0
    assert "Usage: demo.sh [--foo-bar X] [--use-gpu true|false] [--stage N] ARGS" in proc.stdout + proc.stderr
    assert "foo_bar=" not in proc.stdout
