"""`switchboard audit verify`."""

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import func, select

from switchboard.cli.common import ConfigOption, console, err, run
from switchboard.core.audit import service
from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context

app = typer.Typer(no_args_is_help=True)


@app.command("verify", help="校验审计日志哈希链；发现篡改时退出码为 1")
def verify(config_path: ConfigOption = None) -> None:
    async def work(ctx: Context) -> list[service.Finding]:
        findings: list[service.Finding] = []
        async with ctx.db.reader() as session:
            total = await session.scalar(select(func.count(AuditEntry.seq))) or 0
        async with ctx.db.snapshot() as session:
            with Progress(TextColumn("校验审计日志"), BarColumn(), MofNCompleteColumn(), console=err) as progress:
                task = progress.add_task("verify", total=total)
                async for checked, finding in service.verify(session):
                    progress.update(task, completed=checked)
                    if finding:
                        findings.append(finding)
        return findings

    findings = run(config_path, work)
    for finding in findings:
        console.print(f"[red]第 {finding.seq} 条：{finding.describe()}[/red]")
    if findings:
        raise typer.Exit(1)
    console.print("[green]审计日志完整，未发现篡改[/green]")
