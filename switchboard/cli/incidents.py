"""`switchboard incident create|list|show` and `switchboard report export`."""

import json
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from switchboard.cli.common import ConfigOption, actor, console, run
from switchboard.core.context import Context
from switchboard.incidents import document, service, timeline
from switchboard.incidents.models import (
    CATEGORY_NAMES,
    LEVEL_NAMES,
    STATUS_NAMES,
    Category,
    IncidentCreate,
    Level,
    Status,
)

app = typer.Typer(no_args_is_help=True)
report_app = typer.Typer(no_args_is_help=True)


@app.command("create", help="登记事件（接报）")
def create(
    title: Annotated[str, typer.Option(help="事件名称")],
    category: Annotated[Category, typer.Option(help="事件类别")],
    level: Annotated[Level, typer.Option(help="事件级别 I-IV")],
    area_code: Annotated[str, typer.Option(help="GB/T 2260 行政区划代码")],
    subtype: Annotated[str, typer.Option(help="事件子类")] = "",
    location: Annotated[str, typer.Option(help="事发地点")] = "",
    source: Annotated[str, typer.Option(help="信息来源")] = "",
    config_path: ConfigOption = None,
) -> None:
    try:
        data = IncidentCreate(
            title=title,
            category=category,
            level=level,
            area_code=area_code,
            subtype=subtype,
            location=location,
            source=source,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    incident = run(config_path, lambda ctx: service.create(ctx, actor(), data))
    due = incident.first_report_due_at.isoformat() if incident.first_report_due_at else "无（该级别不计初报时限）"
    console.print(f"已登记事件 {incident.id}，初报截止 {due}")


@app.command("list", help="列出事件（最新在前）")
def list_(
    status: Annotated[Status | None, typer.Option(help="按状态筛选")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    config_path: ConfigOption = None,
) -> None:
    incidents = run(
        config_path, lambda ctx: service.search(ctx, status=status, area_code=None, q=None, before=None, limit=limit)
    )
    table = Table("ID", "名称", "类别", "级别", "状态", "接报时间")
    for i in incidents:
        table.add_row(
            i.id,
            i.title,
            CATEGORY_NAMES[i.category],
            LEVEL_NAMES[i.level],
            STATUS_NAMES[i.status],
            i.reported_at.isoformat(),
        )
    console.print(table)


@app.command("show", help="显示事件及其时间线")
def show(incident_id: str, config_path: ConfigOption = None) -> None:
    async def work(ctx: Context) -> None:
        incident = await service.get(ctx, incident_id)
        console.print(f"[bold]{incident.title}[/bold]  {LEVEL_NAMES[incident.level]} · {STATUS_NAMES[incident.status]}")
        zone = ZoneInfo(ctx.settings.incidents.timezone)
        due_at = incident.first_report_due_at
        due = due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if due_at else "无时限"
        console.print(f"区划 {incident.area_code}  地点 {incident.location or '—'}  初报截止 {due}")
        table = Table("时间", "类型", "操作人")
        table.add_column("内容", overflow="fold")
        after = 0
        async with ctx.db.reader() as session:
            while entries := await timeline.page(session, incident_id, after, timeline.MAX_PAGE, None):
                for e in entries:
                    table.add_row(e.at.astimezone(zone).strftime("%m-%d %H:%M:%S"), e.type, e.actor, e.summary)
                after = entries[-1].id
        console.print(table)

    run(config_path, work)


@report_app.command("export", help="导出事件报告（JSON 或可打印的 HTML）")
def export(
    incident_id: str,
    report_id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="输出文件")],
    format: Annotated[str, typer.Option(help="json 或 html")] = "html",
    config_path: ConfigOption = None,
) -> None:
    if format not in ("json", "html"):
        raise typer.BadParameter("只支持 json 或 html", param_hint="--format")

    async def work(ctx: Context) -> str:
        incident, report = await service.get_report(ctx, incident_id, report_id)
        if format == "html":
            return await document.printable(ctx, incident, report)
        return json.dumps(document.report_json(incident, report), ensure_ascii=False, indent=2)

    output.write_text(run(config_path, work), "utf-8")
    console.print(f"已导出 {output}")
