"""A click group whose subcommands are imported only when used (keeps `asrkit --help` instant)."""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A group built from `{name: (module, attribute)}`, each module imported when its command is needed.

    Every listed module is part of asrkit: one that fails to import is a bug, and its error is raised
    as it is, not hidden by leaving the command out.
    """

    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return sorted(eager + [n for n in self.lazy_commands if n not in eager])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        return cmd if cmd is not None else self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        if name not in self.lazy_commands:
            return None
        module_name, attr = self.lazy_commands[name]
        return getattr(importlib.import_module(module_name), attr)
