"""Tests for asrkit/cli/lazy.py: subcommands imported when used, and a broken one is never hidden."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from asrkit.cli.lazy import LazyGroup


def _group(commands):
    @click.group(cls=LazyGroup, lazy_commands=commands)
    def group() -> None:
        """A test group."""

    return group


def test_commands_are_listed_and_run_from_their_modules():
    group = _group({"subset": ("asrkit.cli.data", "data")})
    result = CliRunner().invoke(group, ["--help"])
    assert result.exit_code == 0 and "subset" in result.output
    assert CliRunner().invoke(group, ["subset", "--help"]).exit_code == 0


def test_a_missing_module_of_asrkit_is_an_error_not_a_missing_command():
    # A command whose module cannot be imported is a bug in asrkit: it used to vanish from the help.
    group = _group({"gone": ("asrkit.cli.no_such_module", "gone"), "data": ("asrkit.cli.data", "data")})
    assert group.list_commands(click.Context(group)) == ["data", "gone"]
    with pytest.raises(ModuleNotFoundError, match="asrkit.cli.no_such_module"):
        group.get_command(click.Context(group), "gone")
    result = CliRunner().invoke(group, ["--help"])
    assert isinstance(result.exception, ModuleNotFoundError)
