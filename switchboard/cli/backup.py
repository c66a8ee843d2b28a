"""`switchboard backup` and `switchboard restore`."""

import os
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from switchboard.backup import service
from switchboard.backup.archive import Manifest
from switchboard.cli.common import ConfigOption, console, err, load_settings, run, run_plain
from switchboard.core import config
from switchboard.core.context import Context
from switchboard.core.db import utcnow


class Bars:
    """One rich progress bar per step (a spinner-like bar when the step cannot be counted), on stderr."""

    def __init__(self) -> None:
        self.rich = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(), console=err
        )
        self.task: TaskID | None = None

    def start(self, what: str, total: int | None) -> None:
        self.task = self.rich.add_task(what, total=total)

    def advance(self, amount: int) -> None:
        assert self.task is not None
        if self.rich.tasks[self.task].total is None:
            self.rich.update(self.task, total=1, completed=1)
        else:
            self.rich.advance(self.task, amount)

    def __enter__(self) -> "Bars":
        self.rich.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.rich.stop()


def _config_in_use(path: Path | None) -> Path | None:
    """The TOML file the settings were read from, as config.load finds it, if it exists."""
    found = Path(path or os.environ.get(config.CONFIG_PATH_ENV) or config.DEFAULT_CONFIG_FILE)
    return found.resolve() if found.is_file() else None


def backup(
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="归档文件（默认 switchboard-backup-<时间>.tar）")
    ] = None,
    config_path: ConfigOption = None,
) -> None:
    async def work(ctx: Context) -> Manifest:
        with Bars() as bars:
            return await service.backup(ctx.settings, target, _config_in_use(config_path), bars)

    target = out or Path(f"switchboard-backup-{utcnow():%Y%m%dT%H%M%SZ}.tar")
    manifest = run(config_path, work)
    size = target.stat().st_size
    rows = sum(manifest.tables.values())
    console.print(
        f"[green]已写入备份 {target}：{len(manifest.files)} 个文件，{rows} 行数据，{size / 1e6:.1f} MB[/green]"
    )


def restore(
    archive: Annotated[Path, typer.Argument(help="switchboard backup 写出的归档", exists=True, dir_okay=False)],
    config_path: ConfigOption = None,
) -> None:
    settings = load_settings(config_path)
    with Bars() as bars:
        restored = run_plain(service.restore(settings, archive, bars))
    manifest = restored.manifest
    console.print(
        f"[green]已从 {archive} 还原到 {settings.var_path}（备份于 {manifest.created_at}，"
        f"{sum(manifest.tables.values())} 行数据，校验通过）[/green]"
    )
    if restored.config:
        console.print(f"原配置文件已还原为 {restored.config}：核对其中的路径与数据库地址后再启用")
    console.print("请运行 switchboard audit verify 与 switchboard recordings verify 确认")
