"""Incident record operations. Each opens one transaction, audits it, writes its timeline entry, and
publishes its event only after the commit, so nobody hears of a change that did not happen."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from switchboard.core.audit import service as audit
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.divisions import check_area_code, full_name
from switchboard.core.errors import Conflict, InvalidInput, NotFound
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.incidents import timeline
from switchboard.incidents.models import (
    LEVEL_NAMES,
    NEXT_STATUS,
    REPORT_NAMES,
    STATUS_NAMES,
    Incident,
    IncidentCreate,
    IncidentUpdate,
    Report,
    ReportCreate,
    ReportKind,
    Status,
)

WATCHERS = frozenset({"duty_officer", "leader"})


async def create(ctx: Context, actor: str, data: IncidentCreate) -> Incident:
    check_area_code(data.area_code)
    now = utcnow()
    reported_at = data.reported_at or now
    if reported_at > now + timedelta(minutes=5):
        raise InvalidInput("接报时间不能晚于当前时间", field="reported_at")
    if data.occurred_at and data.occurred_at > reported_at:
        raise InvalidInput("事发时间不能晚于接报时间", field="occurred_at")
    incident = Incident(
        id=new_id(),
        **data.model_dump(exclude={"reported_at"}),
        reported_at=reported_at,
        status=Status.reported,
        first_report_due_at=first_report_due(ctx.settings, data.level, data.occurred_at, reported_at),
        created_by=actor,
    )
    async with ctx.db.session() as session:
        session.add(incident)
        event = Event("incident.created", incident_id=incident.id, actor=actor, data=_brief(incident))
        await timeline.append(session, incident.id, event, f"接报：{incident.title}（{LEVEL_NAMES[incident.level]}）")
        await audit.record(session, actor, "incident.create", "incident", incident.id, data.model_dump(mode="json"))
    await ctx.bus.publish(event)
    return incident


def first_report_due(
    settings: Settings, level: str, occurred_at: datetime | None, reported_at: datetime
) -> datetime | None:
    """The 初报 deadline: `first_report_hours` from 事发时间 when known, else from 接报时间; levels not in
    `first_report_levels` (by default IV, 一般) have none."""
    if level not in settings.incidents.first_report_levels:
        return None
    return (occurred_at or reported_at) + timedelta(hours=settings.incidents.first_report_hours)


async def get(ctx: Context, incident_id: str) -> Incident:
    async with ctx.db.reader() as session:
        return await _load(session, incident_id)


async def filed_under(ctx: Context, incident_id: str | None) -> Incident | None:
    """The incident an action (call, bridge, fax, consultation, warning) is filed under: none, or one that exists,
    else a 422 on `incident_id` (the request is wrong, not the URL)."""
    if not incident_id:
        return None
    async with ctx.db.reader() as session:
        found = await session.get(Incident, incident_id)
    if found is None:
        raise InvalidInput(f"事件 {incident_id} 不存在", field="incident_id")
    return found


async def _load(session: Any, incident_id: str, *, lock: bool = False) -> Incident:
    return await get_or_404(session, Incident, incident_id, what="事件", field="incident_id", lock=lock)


async def search(
    ctx: Context, *, status: Status | None, area_code: str | None, q: str | None, before: str | None, limit: int
) -> list[Incident]:
    """Newest first; `before` is the last id of the previous page (ids sort by creation)."""
    query = select(Incident)
    if status:
        query = query.where(Incident.status == status)
    if area_code:
        query = query.where(Incident.area_code.startswith(area_code.rstrip("0") or area_code))
    if q:
        query = query.where(Incident.title.contains(q) | Incident.location.contains(q))
    if before:
        query = query.where(Incident.id < before)
    async with ctx.db.reader() as session:
        return list((await session.scalars(query.order_by(Incident.id.desc()).limit(limit))).all())


async def change(ctx: Context, actor: str, incident_id: str, data: IncidentUpdate) -> Incident:
    changes = data.model_dump(exclude_unset=True)
    if changes.get("area_code"):
        check_area_code(changes["area_code"])
    for key in ("title", "category", "level", "area_code", "status"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} 不能为空", field=key)
    async with ctx.db.session() as session:
        incident = await _load(session, incident_id, lock=True)
        new_status = changes.get("status")
        if new_status and new_status != incident.status and new_status not in NEXT_STATUS.get(incident.status, ()):
            raise Conflict(
                f"事件状态不能从“{STATUS_NAMES[incident.status]}”改为“{STATUS_NAMES[new_status]}”", field="status"
            )
        if changes.get("occurred_at") and changes["occurred_at"] > incident.reported_at:
            raise InvalidInput("事发时间不能晚于接报时间", field="occurred_at")
        before = {key: getattr(incident, key) for key in changes}
        diff = {key: value for key, value in changes.items() if before[key] != value}
        if not diff:
            return incident
        for key, value in diff.items():
            setattr(incident, key, value)
        if incident.first_report_at is None and {"level", "occurred_at"} & diff.keys():
            due = first_report_due(ctx.settings, incident.level, incident.occurred_at, incident.reported_at)
            if due != incident.first_report_due_at:  # a new clock: its warnings are owed afresh
                incident.first_report_due_at = due
                incident.due_soon_notified_at = incident.overdue_notified_at = None
        detail = {key: {"from": before[key], "to": value} for key, value in diff.items()}
        event_type = "incident.status_changed" if "status" in diff else "incident.updated"
        event = Event(event_type, incident_id=incident.id, actor=actor, data={"changes": detail})
        await timeline.append(session, incident.id, event, _describe_changes(diff))
        await audit.record(session, actor, "incident.update", "incident", incident.id, detail)
    await ctx.bus.publish(event)
    return incident


def _describe_changes(diff: dict[str, Any]) -> str:
    if "status" in diff:
        return f"状态变更为“{STATUS_NAMES[diff['status']]}”"
    if "level" in diff:
        return f"级别调整为{LEVEL_NAMES[diff['level']]}（{diff['level']}级）"
    return "更新事件信息：" + "、".join(diff)


async def add_note(ctx: Context, actor: str, incident_id: str, text: str) -> None:
    async with ctx.db.session() as session:
        await _load(session, incident_id)
        event = Event("note.added", incident_id=incident_id, actor=actor, data={"text": text})
        await timeline.append(session, incident_id, event, text)
        await audit.record(session, actor, "incident.note", "incident", incident_id, {"text": text})
    await ctx.bus.publish(event)


async def submit_report(ctx: Context, actor: str, incident_id: str, data: ReportCreate) -> Report:
    now = utcnow()
    async with ctx.db.session() as session:
        incident = await _load(session, incident_id, lock=True)
        kinds = [k for k in await session.scalars(select(Report.kind).where(Report.incident_id == incident_id))]
        if data.kind == ReportKind.first and ReportKind.first in kinds:
            raise Conflict("该事件已提交初报，请提交续报或终报", field="kind")
        if data.kind != ReportKind.first and ReportKind.first not in kinds:
            raise Conflict("请先提交初报", field="kind")
        if ReportKind.final in kinds:
            raise Conflict("该事件已提交终报", field="kind")
        occurred_at = data.occurred_at or incident.occurred_at
        if occurred_at is None:
            raise InvalidInput("事发时间必填（事件记录中也没有）", field="occurred_at")
        if occurred_at > (data.received_at or incident.reported_at):
            raise InvalidInput("事发时间不能晚于接报时间", field="occurred_at")
        report = Report(
            id=new_id(),
            **data.model_dump(exclude={"received_at", "occurred_at", "location"}),
            incident_id=incident_id,
            seq=len(kinds) + 1,
            received_at=data.received_at or incident.reported_at,
            occurred_at=occurred_at,
            location=data.location or incident.location or full_name(incident.area_code),
            submitted_by=actor,
            submitted_at=now,
            late=data.kind == ReportKind.first
            and incident.first_report_due_at is not None
            and now > incident.first_report_due_at,
        )
        session.add(report)
        if data.kind == ReportKind.first:
            incident.first_report_at = now
        name = REPORT_NAMES[data.kind]
        event = Event(
            "report.submitted",
            incident_id=incident_id,
            actor=actor,
            data={"report_id": report.id, "kind": data.kind, "seq": report.seq, "late": report.late},
        )
        await timeline.append(
            session, incident_id, event, f"提交{name}" + ("（已超时）" if report.late else ""), [report.id]
        )
        await audit.record(
            session, actor, "report.submit", "report", report.id, {"incident_id": incident_id, "kind": data.kind}
        )
    await ctx.bus.publish(event)
    return report


async def get_report(ctx: Context, incident_id: str, report_id: str) -> tuple[Incident, Report]:
    async with ctx.db.reader() as session:
        incident = await _load(session, incident_id)
        report = await session.get(Report, report_id)
        if report is None or report.incident_id != incident_id:
            raise NotFound(f"报告 {report_id} 不存在", field="report_id")
        return incident, report


async def check_deadlines(ctx: Context) -> list[Event]:
    """Fire report.due_soon and report.overdue once per incident, claimed in the database so several
    workers, or a restart, never fire one twice."""
    now = utcnow()
    soon = now + timedelta(minutes=ctx.settings.incidents.due_soon_minutes)
    pending = (Incident.first_report_at.is_(None), Incident.status != Status.closed)
    minutes = ctx.settings.incidents.due_soon_minutes
    claims = [
        ("report.overdue", Incident.overdue_notified_at, Incident.first_report_due_at <= now, "初报已超时"),
        (
            "report.due_soon",
            Incident.due_soon_notified_at,
            Incident.first_report_due_at <= soon,
            f"初报将在 {minutes} 分钟内到期",
        ),
    ]
    events: list[Event] = []
    async with ctx.db.session() as session:
        for event_type, flag, condition, summary in claims:
            rows = await session.execute(
                update(Incident)
                .where(*pending, flag.is_(None), condition)
                .values({flag: now})
                .returning(Incident.id, Incident.title, Incident.first_report_due_at)
            )
            for incident_id, title, due_at in rows.all():
                if event_type == "report.due_soon" and due_at <= now:
                    continue  # already overdue: the overdue event said it
                event = Event(
                    event_type,
                    incident_id=incident_id,
                    actor="system",
                    data={"title": title, "due_at": due_at.isoformat()},
                    audience=WATCHERS,
                )
                await timeline.append(session, incident_id, event, f"{summary}：{title}")  # the banner names it
                await audit.record(session, "system", event_type, "incident", incident_id, {"due_at": due_at})
                events.append(event)
    for event in events:
        await ctx.bus.publish(event)
    return events


def _brief(incident: Incident) -> dict[str, Any]:
    return {
        "title": incident.title,
        "level": incident.level,
        "category": incident.category,
        "area_code": incident.area_code,
        "status": incident.status,
        "first_report_due_at": incident.first_report_due_at.isoformat() if incident.first_report_due_at else None,
    }
