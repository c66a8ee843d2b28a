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
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.channels import voice
from broadcast.models import CHANNEL_NAMES, Delivery, DeliveryState
from broadcast.outbox import Outbox
from broadcast.values import BEIJING
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput
from switchboard.core.events import Event
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
    return f"通知《{notice.subject}》"


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
    for step in steps:
        _check_channels(list(step.channels), links, field="policy")
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
        rows, deliveries, skipped = 0, 0, []
        for contact in people:
            found = addresses.of_contact(contact, notice.channels)
            if not found:
                skipped.append(contact.name)
                continue
            row = recipient_row(notice.id, contact)
            deliveries += await add_deliveries(session, row, found)
            rows += 1
        for number in dict.fromkeys(body.numbers):
            found = addresses.of_number(number, notice.channels)
            if not found:
                skipped.append(number)
                continue
            row = NoticeRecipient(notice_id=notice.id, name=number, escalated={})
            deliveries += await add_deliveries(session, row, found)
            rows += 1
        if not rows:
            raise InvalidInput("没有可送达的接收人：所选人员在所选渠道上都没有联系方式", field="channels")
        summary = f"发出{title(notice)}：{rows} 人，待发送 {deliveries} 条"
        if notice.confirm:
            summary += f"，要求确认（短信回复编号 {notice.code}）"
        issued = event(notice, "issued", actor, summary, recipients=rows, deliveries=deliveries)
        await record(session, notice, issued, ("notice", notice.id))
        out = Issued.model_validate(
            NoticeOut.model_validate(notice).model_dump()
            | {"recipients": rows, "deliveries": deliveries}
            | {"skipped": skipped}
        )
    await ctx.bus.publish(issued)
    return out


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
    for i, group_id in enumerate(body.group_ids):
        for contact in await directory.group_members(ctx, group_id, field=f"group_ids.{i}"):
            people.setdefault(contact.id, contact)
    return list(people.values())


async def _short_code(session: AsyncSession) -> str:
    """Four digits no open notice has: what an SMS reply names when a number has several notices open."""
    taken = set((await session.scalars(select(Notice.code).where(Notice.state == NoticeState.open))).all())
    while (code := f"{secrets.randbelow(9000) + 1000}") in taken:
        pass
    return code


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
        withdrawn = await _withdraw(session, row.id, f"已通过{name}确认，撤回")
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
        outbox.withdrawn(d for d, c in withdrawn if c == voice.NAME)
    return True


async def _withdraw(session: AsyncSession, recipient_id: str, why: str) -> list[tuple[str, str]]:
    """Cancel a recipient's deliveries not sent yet, and its voice calls still in their rounds; (id, channel) of
    each."""
    waiting = (Delivery.state == DeliveryState.pending) | (
        (Delivery.channel == voice.NAME) & (Delivery.state == DeliveryState.sent)
    )
    result = await session.execute(
        update(Delivery)
        .where(Delivery.notice_recipient_id == recipient_id, waiting)
        .values(state=DeliveryState.cancelled, last_error=why, updated_at=utcnow())
        .returning(Delivery.id, Delivery.channel)
        .execution_options(synchronize_session=False)
    )
    return [(d, c) for d, c in result.all()]


def _clock(at: datetime) -> str:
    return f"{at.astimezone(BEIJING):%H:%M:%S}"


# --- reading -------------------------------------------------------------------------------------------------------


async def get(ctx: Context, notice_id: str) -> Notice:
    async with ctx.db.reader() as session:
        return await get_or_404(session, Notice, notice_id, what="通知", field="notice_id")


async def listed(ctx: Context, incident_id: str | None, state: str | None, limit: int) -> list[Notice]:
    query = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit)
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
