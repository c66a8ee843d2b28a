"""`switchboard directory import` with a progress bar."""

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from switchboard.cli.common import ConfigOption, actor, console, err, run
from switchboard.core.context import Context
from switchboard.directory import importer
from switchboard.directory.models import ImportResult

app = typer.Typer(no_args_is_help=True)


@app.command("import", help="导入联络网（CSV 或 XLSX）；逐行报告被拒绝的行")
def import_(file: Path, config_path: ConfigOption = None) -> None:
    if not file.is_file():
        err.print(f"[red]文件不存在：{file}[/red]")
        raise typer.Exit(1)
    data = file.read_bytes()

    async def work(ctx: Context) -> ImportResult:
        columns = (TextColumn("导入联络网"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("import", total=None)
            return await importer.import_contacts(
                ctx,
                actor(),
                data,
                file.name,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

    result = run(config_path, work)
    console.print(f"新增 {result.created} 人，更新 {result.updated} 人，拒绝 {len(result.rejected)} 行")
    for row in result.rejected:
        console.print(f"[yellow]第 {row.row} 行{f'（{row.field}）' if row.field else ''}：{row.reason}[/yellow]")
    if result.rejected:
        raise typer.Exit(3)
