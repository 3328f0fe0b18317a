"""A click group whose subcommands are imported only when used (keeps `asrkit --help` instant)."""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A group built from `{name: (module, attribute)}`; a module that does not exist is not listed."""

    def __init__(self, *args, lazy_commands: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        lazy = [n for n in self.lazy_commands if n not in eager and self._load(n) is not None]
        return sorted(eager + lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        return cmd if cmd is not None else self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        if name not in self.lazy_commands:
            return None
        module_name, attr = self.lazy_commands[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                return None
            raise
        return getattr(module, attr, None)
