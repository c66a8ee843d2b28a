"""`switchboard recordings verify`."""

import typer

from recording.store import Finding, RecordingStore
from switchboard.cli.common import ConfigOption, console, err, run
from switchboard.core.context import Context

app = typer.Typer(no_args_is_help=True)


@app.command("verify", help="核对录音文件与登记、审计账本；发现改动、缺失或多出的文件时退出码为 1")
def verify(config_path: ConfigOption = None) -> None:
    async def work(ctx: Context) -> list[Finding]:
        with err.status("正在计算录音文件的 SHA-256…"):
            return await RecordingStore(ctx).verify()

    findings = run(config_path, work)
    for finding in findings:
        console.print(f"[red]{finding.path}：{finding.describe()}[/red]")
    if findings:
        raise typer.Exit(1)
    console.print("[green]录音完整：文件、登记与账本一致[/green]")
