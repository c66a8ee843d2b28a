"""Notice flows: issue one (recipients, their deliveries, durable before the answer), confirm a recipient (from any
channel: the voice key, an SMS reply, the signed link), and the confirmation board.

Issuing writes the notice, one recipient row per person or number and one delivery row per channel and address in
one transaction, audits it and puts it on the incident's timeline there too; the outbox (woken) sends them. A
confirmation is one transaction as well: the recipient row confirmed (who, channel, address, when), the delivery it
came on marked confirmed, the recipient's other deliveries not yet sent withdrawn (cancelled, and a voice call's
later rounds stopped), audited, on the timeline."""

import csv
import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast import workflow
from broadcast.channels import voice
from broadcast.models import CHANNEL_NAMES, Delivery, DeliveryState, PublicWarning, WarningContent
from broadcast.outbox import Outbox
from broadcast.values import BEIJING
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.core.spreadsheet import neutralised
from switchboard.directory import service as directory
from switchboard.directory.models import ContactOut
from switchboard.incidents import service as incidents
from switchboard.incidents import timeline
from switchboard.notices import addresses, policies
from switchboard.notices.models import (
    NEVER_CONFIRMED,
    RECIPIENT_STATE_NAMES,
    Board,
    Confirmation,
    DeliveryLine,
    Issued,
    Notice,
    NoticeCreate,
    NoticeOut,
    NoticeRecipient,
    NoticeState,
    RecipientState,
)
from switchboard.warnings.links import Links, trouble

SYSTEM = "system"


def title(notice: Notice) -> str:
    return f"{'预警' if notice.warning_id else '通知'}《{notice.subject}》"


def event(notice: Notice, kind: str, actor: str, summary: str = "", **data: Any) -> Event:
    """A notice event; one with a summary goes on its incident's timeline (where it has one)."""
    body = {"notice_id": notice.id, "subject": notice.subject} | data
    if summary:
        body["summary"] = summary
    return Event(f"notice.{kind}", incident_id=notice.incident_id, actor=actor, data=body)


async def record(session: AsyncSession, notice: Notice, happened: Event, target: tuple[str, str]) -> None:
    """Audit a change and put it on the incident's timeline, in the change's own transaction."""
    if notice.incident_id and happened.data.get("summary"):
        await timeline.append(session, notice.incident_id, happened, happened.data["summary"], [notice.id])
    await audit.record(session, happened.actor or SYSTEM, happened.type, target[0], target[1], happened.data)


# --- issue ---------------------------------------------------------------------------------------------------------


async def issue(ctx: Context, actor: str, body: NoticeCreate, links: Links) -> Issued:
    await incidents.filed_under(ctx, body.incident_id)
    steps = policies.steps_of(ctx.settings.notices.policies, body.policy)
    _check_channels(body.channels, links)
    check_policy(steps, links, field="policy")
    people = await _people(ctx, body)
    async with ctx.db.session() as session:
        notice = Notice(
            incident_id=body.incident_id,
            subject=body.subject,
            text=body.text,
            channels=list(dict.fromkeys(body.channels)),
            policy=body.policy,
            confirm=body.confirm,
            confirm_by=body.confirm_by,
            code=await _short_code(session),
            created_by=actor,
        )
        session.add(notice)
        await session.flush()
        addressed = [(contact, addresses.of_contact(contact, notice.channels)) for contact in people]
        numbers = [(number, addresses.of_number(number, notice.channels)) for number in dict.fromkeys(body.numbers)]
        rows, deliveries, skipped = await _write(session, notice, addressed, numbers)
        if not rows:
            raise InvalidInput("没有可送达的接收人：所选人员在所选渠道上都没有联系方式", field="channels")
        issued = await _issued(session, notice, actor, rows, deliveries)
        out = Issued.model_validate(
            NoticeOut.model_validate(notice).model_dump()
            | {"recipients": rows, "deliveries": deliveries}
            | {"skipped": skipped}
        )
    await ctx.bus.publish(issued)
    return out


async def _issued(session: AsyncSession, notice: Notice, actor: str, rows: int, deliveries: int) -> Event:
    summary = f"发出{title(notice)}：{rows} 人，待发送 {deliveries} 条"
    if notice.confirm:
        summary += f"，要求确认（短信回复编号 {notice.code}）"
    issued = event(notice, "issued", actor, summary, recipients=rows, deliveries=deliveries)
    await record(session, notice, issued, ("notice", notice.id))
    return issued


def check_policy(steps: tuple[policies.Step, ...], links: Links, *, field: str) -> None:
    """Every channel a later tier calls on must be able to carry it now, as the first tier's must."""
    for step in steps:
        _check_channels(list(step.channels), links, field=field)


def _check_channels(channels: list[str], links: Links, field: str = "channels") -> None:
    for i, channel in enumerate(channels):
        if channel not in addresses.CHANNELS:
            names = "、".join(addresses.CHANNELS)
            raise InvalidInput(
                f"通知不能经 {channel!r} 发送，可选：{names}", field=f"{field}.{i}" if field == "channels" else field
            )
        if reason := trouble(channel, links):
            raise Conflict(
                f"{reason}，不能发出通知：请待该渠道恢复，或改选其他渠道",
                field=f"{field}.{i}" if field == "channels" else field,
            )


async def _people(ctx: Context, body: NoticeCreate) -> list[ContactOut]:
    """The contacts and the groups' members, each person once, in the order given."""
    people: dict[str, ContactOut] = {}
    for i, person_id in enumerate(body.contact_ids):
        contact = await directory.contact_for(ctx, person_id, field=f"contact_ids.{i}")
        people.setdefault(contact.id, contact)
    people |= {c.id: c for c in await members(ctx, body.group_ids) if c.id not in people}
    return list(people.values())


async def members(ctx: Context, group_ids: list[str], field: str = "group_ids") -> list[ContactOut]:
    """The groups' members, each person once, in the order given."""
    people: dict[str, ContactOut] = {}
    for i, group_id in enumerate(group_ids):
        for contact in await directory.group_members(ctx, group_id, field=f"{field}.{i}"):
            people.setdefault(contact.id, contact)
    return list(people.values())


async def addresses_of_groups(
    ctx: Context, group_ids: list[str], channels: list[str], field: str = "group_ids"
) -> list[tuple[str, str]]:
    """(channel, address) of the groups' members, each once, read a batch of members at a time: all a mass list
    sent without confirmation needs, without holding its members whole."""
    seen: set[str] = set()
    found: dict[tuple[str, str], None] = {}
    for i, group_id in enumerate(group_ids):
        async for batch in directory.member_batches(ctx, group_id, field=f"{field}.{i}"):
            for contact in batch:
                if contact.id not in seen:
                    seen.add(contact.id)
                    found.update(dict.fromkeys(addresses.of_contact(contact, channels)))
    return list(found)


async def _short_code(session: AsyncSession) -> str:
    """Four digits no open notice has: what an SMS reply names when a number has several notices open."""
    taken = set((await session.scalars(select(Notice.code).where(Notice.state == NoticeState.open))).all())
    while (code := f"{secrets.randbelow(9000) + 1000}") in taken:
        pass
    return code


Found = list[tuple[str, str]]  # (channel, address)


async def _write(
    session: AsyncSession,
    notice: Notice,
    people: Iterable[tuple[ContactOut, Found]],
    numbers: Iterable[tuple[str, Found]] = (),
) -> tuple[int, int, list[str]]:
    """A recipient row per person or number with an address, and their pending deliveries, in bulk; (rows,
    deliveries, skipped by name). A warning's deliveries carry its id too (its delivery report counts them), and
    an address goes out once per warning: a person whose every address an earlier one has is skipped."""
    now = utcnow()
    recipients: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    skipped: list[str] = []
    taken: set[tuple[str, str]] = set()
    blank = {"person_id": None, "org_code": "", "org_name": ""}
    whom = [(c.name, {"person_id": c.id, "org_code": c.org_code, "org_name": c.org_name}, f) for c, f in people]
    for name, values, found in [*whom, *((number, {}, f) for number, f in numbers)]:
        if notice.warning_id:
            found = [f for f in found if f not in taken]
            taken.update(found)
        if not found:
            skipped.append(name)
            continue
        recipients.append(_recipient_values(notice.id, now) | blank | values | {"name": name})
        deliveries += [
            {"notice_recipient_id": recipients[-1]["id"], "warning_id": notice.warning_id, "channel": c, "recipient": a}
            for c, a in dict.fromkeys(found)
        ]
    await session.flush()
    connection = await session.connection()
    for start in range(0, len(recipients), 1000):
        await connection.execute(insert(NoticeRecipient.__table__), recipients[start : start + 1000])
    return len(recipients), await workflow.insert_deliveries(session, deliveries, now), skipped


def _recipient_values(notice_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "notice_id": notice_id,
        "about_id": None,
        "state": RecipientState.pending,
        "tier": 1,
        "attempts": 0,
        "escalated": {},
        "reason": "",
        "updated_at": now,
    }


# --- a warning's internal audience ---------------------------------------------------------------------------------


async def for_warning(
    session: AsyncSession,
    warning: PublicWarning,
    subject: str,
    people: list[tuple[ContactOut, Found]],
    policy: str,
    actor: str,
) -> tuple[int, Event | None]:
    """The notice that asks a warning's directory groups to confirm it, written in the issue's transaction:
    (deliveries written, its event to publish after the commit)."""
    if not people:
        return 0, None
    content = WarningContent.model_validate(warning.content)
    notice = Notice(
        incident_id=warning.incident_id,
        warning_id=warning.id,
        subject=subject,
        text=content.headline,
        channels=list(dict.fromkeys(content.audiences.channels)),
        policy=policy,
        confirm=True,
        code=await _short_code(session),
        created_by=actor,
    )
    session.add(notice)
    await session.flush()
    rows, deliveries, _ = await _write(session, notice, people)
    if not rows:
        return 0, None
    return deliveries, await _issued(session, notice, actor, rows, deliveries)


@dataclass
class Retired:
    """What retiring a warning's notices did, for the caller to finish after the commit."""

    events: list[Event] = field(default_factory=list)  # to publish
    voices: list[str] = field(default_factory=list)  # voice deliveries withdrawn: the outbox stops their rounds
    of_warnings: int = 0  # withdrawn deliveries that were the warnings' own (not a later tier's)


async def retire(session: AsyncSession, warning_ids: list[str], actor: str, why: str) -> Retired:
    """The notices of warnings cancelled or superseded: nobody is asked to confirm any longer (their deliveries not
    sent yet withdrawn, voice rounds stopped, no tier fired) and the notice completes saying why."""
    found = await session.scalars(
        select(Notice).where(Notice.warning_id.in_(warning_ids), Notice.state == NoticeState.open).with_for_update()
    )
    retired = Retired()
    for notice in found.all():
        recipients = select(NoticeRecipient.id).where(NoticeRecipient.notice_id == notice.id)
        withdrawn = await _withdraw(session, Delivery.notice_recipient_id.in_(recipients), why)
        notice.state, notice.completed_at = NoticeState.completed, utcnow()
        notice.summary = f"{title(notice)}停止确认：{why}"
        if withdrawn:
            notice.summary += f"，撤回未发出的 {len(withdrawn)} 条"
        completed = event(notice, "completed", actor, notice.summary, withdrawn=len(withdrawn))
        await record(session, notice, completed, ("notice", notice.id))
        retired.events.append(completed)
        retired.voices += [w.id for w in withdrawn if w.channel == voice.NAME]
        retired.of_warnings += sum(1 for w in withdrawn if w.warning_id)
    return retired


def recipient_row(notice_id: str, contact: ContactOut, **values: Any) -> NoticeRecipient:
    return NoticeRecipient(
        notice_id=notice_id,
        person_id=contact.id,
        name=contact.name,
        org_code=contact.org_code,
        org_name=contact.org_name,
        escalated={},
        **values,
    )


async def add_deliveries(session: AsyncSession, row: NoticeRecipient, found: Iterable[tuple[str, str]]) -> int:
    """The row (added if new) and a pending delivery per (channel, address) it has none for yet."""
    session.add(row)
    await session.flush()
    have = set(
        (
            await session.execute(
                select(Delivery.channel, Delivery.recipient).where(Delivery.notice_recipient_id == row.id)
            )
        ).all()
    )
    now = utcnow()
    added = [
        Delivery(
            notice_recipient_id=row.id,
            channel=channel,
            recipient=address,
            state=DeliveryState.pending,
            next_attempt_at=now,
        )
        for channel, address in dict.fromkeys(found)
        if (channel, address) not in have
    ]
    session.add_all(added)
    return len(added)


# --- confirm -------------------------------------------------------------------------------------------------------


async def confirm(
    ctx: Context,
    outbox: Outbox | None,
    recipient_id: str,
    *,
    channel: str,
    address: str,
    at: datetime,
    delivery_id: str | None,
    how: str,
) -> bool:
    """Confirm a recipient (once: False when already confirmed). `how` is the channel's word for it ("按1",
    "短信回复“收到”", "确认链接"). Their deliveries not sent yet are withdrawn."""
    async with ctx.db.session() as session:
        row = await session.get(NoticeRecipient, recipient_id, with_for_update=True)
        if row is None or row.state == RecipientState.confirmed:
            return False
        notice = await session.get(Notice, row.notice_id)
        assert notice is not None
        came_on = await session.get(Delivery, delivery_id) if delivery_id else None
        by = str(row.escalated.get(came_on.recipient if came_on else address) or row.name)
        row.state, row.confirmed_channel, row.confirmed_address = RecipientState.confirmed, channel, address
        row.confirmed_by, row.confirmed_at, row.reason, row.updated_at = by, at, "", utcnow()
        if delivery_id:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(state=DeliveryState.confirmed, delivered_at=at, updated_at=utcnow())
            )
        name = CHANNEL_NAMES.get(channel, channel)
        withdrawn = await _withdraw(session, Delivery.notice_recipient_id == row.id, f"已通过{name}确认，撤回")
        summary = f"{row.name} 确认收到{title(notice)}：{name} {address}，{how}，{_clock(at)}"
        if by != row.name:
            summary += f"，由{by}代为确认"
        if withdrawn:
            summary += f"；撤回其他渠道未发出的 {len(withdrawn)} 条"
        confirmed = event(
            notice,
            "confirmed",
            SYSTEM,
            summary,
            recipient_id=row.id,
            name=row.name,
            confirmed_by=by,
            channel=channel,
            address=address,
            at=at.isoformat(),
            withdrawn=len(withdrawn),
        )
        await record(session, notice, confirmed, ("notice_recipient", row.id))
    await ctx.bus.publish(confirmed)
    if outbox is not None:
        outbox.withdrawn(w.id for w in withdrawn if w.channel == voice.NAME)
    return True


async def _withdraw(session: AsyncSession, whose: Any, why: str) -> list[Row[tuple[str, str, str | None]]]:
    """Cancel the deliveries `whose` selects that have not gone out: pending, claimed by a worker and not sent yet
    (the worker reads the row again right before the send, and before each voice round, and finds it cancelled),
    and voice calls still in their rounds; (id, channel, warning_id) of each."""
    waiting = Delivery.state.in_((DeliveryState.pending, DeliveryState.sending)) | (
        (Delivery.channel == voice.NAME) & (Delivery.state == DeliveryState.sent)
    )
    result = await session.execute(
        update(Delivery)
        .where(whose, waiting)
        .values(state=DeliveryState.cancelled, last_error=why, updated_at=utcnow())
        .returning(Delivery.id, Delivery.channel, Delivery.warning_id)
        .execution_options(synchronize_session=False)
    )
    return list(result.all())


def _clock(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%H:%M:%S}"


# --- reading -------------------------------------------------------------------------------------------------------


async def get(ctx: Context, notice_id: str) -> Notice:
    async with ctx.db.reader() as session:
        return await get_or_404(session, Notice, notice_id, what="通知", field="notice_id")


async def listed(
    ctx: Context, incident_id: str | None, state: str | None, limit: int, *, warning_id: str | None = None
) -> list[Notice]:
    query = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit)
    if warning_id:
        query = query.where(Notice.warning_id == warning_id)
    if incident_id:
        query = query.where(Notice.incident_id == incident_id)
    if state:
        query = query.where(Notice.state == state)
    async with ctx.db.reader() as session:
        return list((await session.scalars(query)).all())


async def board(ctx: Context, notice_id: str) -> Board:
    """Every recipient with their state, channel, time and attempts; counts; who never confirmed and why."""
    async with ctx.db.reader() as session:
        notice = await get_or_404(session, Notice, notice_id, what="通知", field="notice_id")
        rows = list(
            (
                await session.scalars(
                    select(NoticeRecipient).where(NoticeRecipient.notice_id == notice_id).order_by(NoticeRecipient.id)
                )
            ).all()
        )
        lines: dict[str, list[DeliveryLine]] = {}
        query = select(Delivery).where(Delivery.notice_recipient_id.in_([r.id for r in rows])).order_by(Delivery.id)
        for d in (await session.scalars(query)).all():
            lines.setdefault(d.notice_recipient_id or "", []).append(
                DeliveryLine(
                    channel=d.channel,
                    recipient=d.recipient,
                    state=d.state,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    updated_at=d.updated_at,
                )
            )
    items = [_confirmation(row, lines.get(row.id, [])) for row in rows]
    primary = [row for row in rows if row.about_id is None]
    counts = dict.fromkeys([s.value for s in RecipientState], 0) | {"total": len(primary)}
    for row in primary:
        counts[row.state] += 1
    complete = notice.state == NoticeState.completed
    never = [
        {"name": r.name, "org_name": r.org_name, "reason": r.reason} for r in primary if r.state in NEVER_CONFIRMED
    ]
    return Board(
        notice=NoticeOut.model_validate(notice), counts=counts, complete=complete, never_confirmed=never, items=items
    )


def _confirmation(row: NoticeRecipient, lines: list[DeliveryLine]) -> Confirmation:
    return Confirmation(
        id=row.id,
        name=row.name,
        org_name=row.org_name,
        role="desk" if row.about_id else "recipient",
        about_id=row.about_id,
        state=RecipientState(row.state),
        state_name=RECIPIENT_STATE_NAMES[RecipientState(row.state)],
        tier=row.tier,
        attempts=row.attempts,
        confirmed_channel=row.confirmed_channel,
        confirmed_address=row.confirmed_address,
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        escalated_to=sorted(set(row.escalated.values())),
        reason=row.reason,
        deliveries=lines,
    )


def board_csv(board: Board) -> bytes:
    """The board for Excel: UTF-8 with a BOM, Chinese headers, formula-like cells written as text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "姓名",
            "单位",
            "角色",
            "状态",
            "层级",
            "尝试次数",
            "确认渠道",
            "确认号码/地址",
            "确认人",
            "确认时间",
            "升级至",
            "原因",
        ]
    )
    for item in board.items:
        writer.writerow(
            [
                neutralised(item.name),
                neutralised(item.org_name),
                "上级值班室（告知）" if item.about_id else "接收人",
                item.state_name,
                item.tier,
                item.attempts,
                CHANNEL_NAMES.get(item.confirmed_channel or "", item.confirmed_channel or ""),
                neutralised(item.confirmed_address or ""),
                neutralised(item.confirmed_by or ""),
                f"{item.confirmed_at.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}" if item.confirmed_at else "",
                neutralised("、".join(item.escalated_to)),
                neutralised(item.reason),
            ]
        )
    return out.getvalue().encode("utf-8-sig")
