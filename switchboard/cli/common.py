"""What every subcommand shares: loading settings, running async work, reporting errors."""

import asyncio
import getpass
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from switchboard.core import config
from switchboard.core.context import Context
from switchboard.core.errors import SwitchboardError

T = TypeVar("T")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML file (default: $SWITCHBOARD_CONFIG or ./switchboard.toml)")
]


def actor() -> str:
    """CLI actions are audited under the operating-system account that ran them."""
    return f"cli:{getpass.getuser()}"


def load_settings(path: Path | None) -> config.Settings:
    try:
        return config.load(path)
    except config.ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def run(path: Path | None, work: Callable[[Context], Coroutine[Any, Any, T]]) -> T:
    """Open a migrated context, run one piece of work in it, and turn domain errors into a clear exit."""
    ctx = Context.from_settings(load_settings(path))

    async def main() -> T:
        try:
            await ctx.db.migrate()
            return await work(ctx)
        finally:
            await ctx.db.close()

    return run_plain(main())


def run_plain(work: Coroutine[Any, Any, T]) -> T:
    """Run async work without opening a context (restore must not create files in the var/ it fills)."""
    try:
        return asyncio.run(work)
    except SwitchboardError as exc:
        where = f"（{exc.field}）" if exc.field else ""
        err.print(f"[red]错误{where}：{exc.message}[/red]")
        raise typer.Exit(1) from None
