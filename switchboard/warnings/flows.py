"""Warning flows: the alert office's actions across the broadcast workflow, the directory and the incident record.

Each opens one transaction, runs the broadcast workflow step in it, audits it and writes its timeline entry there
too, and publishes its event only after the commit. At issue the recipients are resolved from the directory and the
delivery rows are written in that same transaction: once the API has answered, the outbox has every send on record
(and, woken by the warning.issued event, is sending)."""

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast import workflow
from broadcast.channels import voice
from broadcast.channels.weather import NAME as WEATHER
from broadcast.channels.weather import SCHEMES as WEATHER_SCHEMES
from broadcast.models import (
    CHANNEL_NAMES,
    COLOUR_NAMES,
    DELIVERY_STATE_NAMES,
    Delivery,
    DeliveryState,
    PublicWarning,
    WarningContent,
)
from broadcast.outbox import Outbox
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.errors import Conflict, InvalidInput
from switchboard.core.events import Event
from switchboard.core.outbound import OutboundPolicy
from switchboard.core.spreadsheet import neutralised
from switchboard.directory.models import ContactOut, ContactPoint, Group, GroupMember, Person
from switchboard.incidents import service as incidents
from switchboard.incidents import timeline
from switchboard.notices import addresses, policies
from switchboard.notices import flows as notices
from switchboard.warnings.links import Links, trouble

# Public outlets whose recipient is an address the server posts to: checked against the outbound policy at compose.
POSTED_OUTLETS = {WEATHER, "wecom_robot", "dingtalk"}
T = TypeVar("T")


def _title(warning: PublicWarning) -> str:
    content = warning.content
    return f"{content['event']}{COLOUR_NAMES[warning.colour]}预警"


def _data(warning: PublicWarning, **extra: Any) -> dict[str, Any]:
    return {
        "warning_id": warning.id,
        "state": warning.state,
        "msg_type": warning.msg_type,
        "colour": warning.colour,
        "headline": warning.content["headline"],
        "identifier": warning.identifier,
    } | extra


async def _step(
    ctx: Context,
    actor: str,
    action: str,
    work: Callable[[AsyncSession], Awaitable[T]],
    describe: Callable[[T], tuple[PublicWarning, str, dict[str, Any]]],
) -> T:
    """Run one workflow step, audit it and put it on the incident timeline, all in one transaction."""
    async with ctx.db.session() as session:
        result = await work(session)
        warning, summary, extra = describe(result)
        event = Event(f"warning.{action}", incident_id=warning.incident_id, actor=actor, data=_data(warning, **extra))
        await timeline.append(session, warning.incident_id, event, summary, [warning.id])
        await audit.record(session, actor, f"warning.{action}", "warning", warning.id, event.data)
    await ctx.bus.publish(event)
    return result


async def create(ctx: Context, actor: str, incident_id: str, content: WarningContent) -> PublicWarning:
    await incidents.filed_under(ctx, incident_id)
    await _check_outlets(ctx, content)

    async def work(session: AsyncSession) -> PublicWarning:
        await _check_audience(ctx, session, content)
        return await workflow.create(session, actor, incident_id, content)

    return await _step(ctx, actor, "created", work, lambda w: (w, f"起草{_title(w)}：{w.content['headline']}", {}))


async def submit(ctx: Context, actor: str, warning_id: str) -> PublicWarning:
    return await _step(
        ctx,
        actor,
        "submitted",
        lambda s: workflow.submit(s, actor, warning_id),
        lambda w: (w, f"提交审核：{_title(w)}", {}),
    )


async def approve(ctx: Context, actor: str, warning_id: str) -> PublicWarning:
    return await _step(
        ctx,
        actor,
        "approved",
        lambda s: workflow.approve(s, actor, warning_id),
        lambda w: (w, f"审核通过：{_title(w)}（审核人 {actor}）", {}),
    )


async def issue(
    ctx: Context, actor: str, warning_id: str, links: Links, outbox: Outbox | None = None
) -> tuple[PublicWarning, int]:
    """`links` is each configured channel's health: a warning is not issued onto a channel that cannot carry it,
    where its deliveries would wait unseen (the office picks another channel or waits for the link).

    The directory groups' members get it as a notice linked to the warning (switchboard/notices: confirmation asked,
    escalated by the warning's policy, on the same board as any notice); the public outlets as plain deliveries.
    Both are written in the issue's transaction, and an address goes out once. A warning whose groups are not asked
    to confirm (`audiences.confirm` false: a mass list) writes their addresses as plain deliveries. An Update retires
    the notice of the warning it replaces (its people confirm the new one)."""
    content = WarningContent.model_validate((await get(ctx, warning_id)).content)
    policy = content.audiences.policy or ctx.settings.warnings.policy
    steps = policies.steps_of(ctx.settings.notices.policies, policy, field="audiences.policy")
    groups, channels = content.audiences.groups, content.audiences.channels
    internal: list[tuple[ContactOut, list[tuple[str, str]]]] = []
    if content.audiences.confirm:  # at most [warnings] confirm_max people (checked at the draft)
        people = await notices.members(ctx, groups, field="audiences.groups")
        internal = [(p, addresses.of_contact(p, channels)) for p in people]
        to_people = list(dict.fromkeys(found for _, each in internal for found in each))
    else:  # nobody asked to confirm (a mass list): the groups' addresses are plain deliveries too
        to_people = await notices.addresses_of_groups(ctx, groups, channels, field="audiences.groups")
    taken = set(to_people)
    public = [(p.channel, p.recipient) for p in content.audiences.public if (p.channel, p.recipient) not in taken]
    if not content.audiences.confirm:
        public = [*to_people, *public]
    _check_links(content, {channel for channel, _ in [*to_people, *public]}, links)
    if internal:
        notices.check_policy(steps, links, field="audiences.policy")
    later: list[Event] = []
    voices: list[str] = []

    async def work(session: AsyncSession) -> tuple[PublicWarning, int]:
        issuer = workflow.Issuer.from_settings(ctx.settings)
        warning, count = await workflow.issue(session, actor, warning_id, public, issuer)
        if warning.replaces_id:
            retired = await notices.retire(session, [warning.replaces_id], actor, "预警已更新，请确认新的一条")
            later.extend(retired.events)
            voices.extend(retired.voices)
        added, issued = await notices.for_warning(session, warning, _title(warning), internal, policy, actor)
        later.extend([issued] if issued else [])
        return warning, count + added

    def describe(result: tuple[PublicWarning, int]) -> tuple[PublicWarning, str, dict[str, Any]]:
        warning, count = result
        verb = "发布更新" if warning.msg_type == "Update" else "发布"
        return warning, f"{verb}{_title(warning)}（{warning.identifier}），待发送 {count} 条", {"deliveries": count}

    result = await _step(ctx, actor, "issued", work, describe)
    await _told(ctx, outbox, later, voices)
    return result


async def _told(ctx: Context, outbox: Outbox | None, happened: list[Event], voices: list[str]) -> None:
    """After the commit: the linked notices' events, and the voice calls withdrawn from them stopped."""
    for one in happened:
        await ctx.bus.publish(one)
    if outbox is not None:
        outbox.withdrawn(voices)


async def update(ctx: Context, actor: str, warning_id: str, content: WarningContent) -> PublicWarning:
    await _check_outlets(ctx, content)

    async def work(session: AsyncSession) -> PublicWarning:
        await _check_audience(ctx, session, content)
        return await workflow.update(session, actor, warning_id, content)

    return await _step(ctx, actor, "updated", work, lambda w: (w, f"起草更新：{_title(w)}（替代 {w.replaces_id}）", {}))


def _check_links(content: WarningContent, channels: set[str], links: Links) -> None:
    for channel in sorted(channels):
        if reason := trouble(channel, links):
            where = [f"audiences.channels.{i}" for i, c in enumerate(content.audiences.channels) if c == channel]
            where += [f"audiences.public.{i}" for i, p in enumerate(content.audiences.public) if p.channel == channel]
            raise Conflict(
                f"{reason}，不能发布：请待该渠道恢复后再发布，或撤销此稿、另拟不经该渠道的预警",
                field=where[0] if where else None,
            )


async def _check_outlets(ctx: Context, content: WarningContent) -> None:
    """Weather-service endpoints are addresses the server will POST to: only where configuration allows."""
    policy = OutboundPolicy.from_settings(ctx.settings)
    for i, outlet in enumerate(content.audiences.public):
        if outlet.channel == WEATHER or (outlet.channel in POSTED_OUTLETS and "://" in outlet.recipient):
            await policy.check(outlet.recipient, schemes=WEATHER_SCHEMES, field=f"audiences.public.{i}.recipient")


async def cancel(ctx: Context, actor: str, warning_id: str, outbox: Outbox | None = None) -> workflow.Cancelled:
    """A draft is dropped; an issued warning gets its CAP Cancel, and its directory groups' notice stops asking."""

    def describe(result: workflow.Cancelled) -> tuple[PublicWarning, str, dict[str, Any]]:
        if result.notice is None:
            return result.warning, f"撤销预警草稿：{_title(result.warning)}", {}
        summary = (
            f"撤销{_title(result.warning)}（撤销消息 {result.notice.identifier}），"
            f"取消未发出的 {result.retired} 条，向已送达的 {result.notices} 个对象发送撤销通知"
        )
        extra = {"notice_id": result.notice.id, "retired": result.retired, "notices": result.notices}
        return result.warning, summary, extra

    issuer = workflow.Issuer.from_settings(ctx.settings)
    later: list[Event] = []
    voices: list[str] = []

    async def work(session: AsyncSession) -> workflow.Cancelled:
        cancelled = await workflow.cancel(session, actor, warning_id, issuer)
        if cancelled.notice is not None:  # (the messages it replaced retired their notices when it was issued)
            retired = await notices.retire(session, [cancelled.warning.id], actor, "预警已撤销")
            later.extend(retired.events)
            voices.extend(retired.voices)
            cancelled.retired += retired.of_warnings
        return cancelled

    result = await _step(ctx, actor, "cancelled", work, describe)
    await _told(ctx, outbox, later, voices)
    return result


async def listed(ctx: Context, state: str | None, incident_id: str | None, limit: int) -> list[PublicWarning]:
    query = select(PublicWarning).order_by(PublicWarning.created_at.desc(), PublicWarning.id.desc()).limit(limit)
    if state:
        query = query.where(PublicWarning.state == state)
    if incident_id:
        query = query.where(PublicWarning.incident_id == incident_id)
    async with ctx.db.reader() as session:
        return list((await session.scalars(query)).all())


async def deliveries_by_channel(ctx: Context, since: datetime) -> dict[str, dict[str, int]]:
    issued_since = Delivery.warning_id.in_(select(PublicWarning.id).where(PublicWarning.issued_at >= since))
    async with ctx.db.reader() as session:
        return await _counts(session, issued_since)


async def _counts(session: AsyncSession, which: Any) -> dict[str, dict[str, int]]:
    """Channel -> state -> deliveries, of the rows `which` selects."""
    query = select(Delivery.channel, Delivery.state, func.count()).where(which)
    counts: dict[str, dict[str, int]] = {}
    for channel, state, n in (await session.execute(query.group_by(Delivery.channel, Delivery.state))).all():
        counts.setdefault(channel, {})[state] = n
    return counts


async def get(ctx: Context, warning_id: str) -> PublicWarning:
    async with ctx.db.reader() as session:
        return await workflow.load(session, warning_id)


async def _check_audience(ctx: Context, session: AsyncSession, content: WarningContent) -> None:
    policies.steps_of(ctx.settings.notices.policies, content.audiences.policy, field="audiences.policy")
    for i, group_id in enumerate(content.audiences.groups):
        if await session.get(Group, group_id) is None:
            raise InvalidInput(f"通讯录分组 {group_id} 不存在", field=f"audiences.groups.{i}")
    limit = ctx.settings.warnings.confirm_max
    if content.audiences.confirm and content.audiences.groups:
        members = select(func.count(func.distinct(GroupMember.person_id))).where(
            GroupMember.group_id.in_(content.audiences.groups)
        )
        if (people := await session.scalar(members) or 0) > limit:
            raise InvalidInput(
                f"须确认收到的群组成员共 {people} 人，超过上限 {limit} 人：大量名单请不勾选“群组成员须确认收到”",
                field="audiences.confirm",
            )
    for i, channel in enumerate(content.audiences.channels):
        if channel not in addresses.CHANNELS:
            names = "、".join(addresses.CHANNELS)
            raise InvalidInput(f"通讯录成员不能经 {channel} 接收，可选：{names}", field=f"audiences.channels.{i}")


async def deliveries(
    ctx: Context,
    warning_id: str,
    *,
    after: str | None,
    limit: int | None,
    channel: str | None = None,
    state: str | None = None,
    search: str = "",
) -> tuple[dict[str, dict[str, int]], list[Delivery], dict[str, str]]:
    """Counts per channel and state (of every row), one page of the rows the filters keep, and the directory name of
    each page row's recipient where the directory knows the address."""
    async with ctx.db.reader() as session:
        await workflow.load(session, warning_id)
        counts = await _counts(session, Delivery.warning_id == warning_id)
        query = select(Delivery).where(Delivery.warning_id == warning_id)
        if channel:
            query = query.where(Delivery.channel == channel)
        if state:
            query = query.where(Delivery.state == state)
        if search:
            named = select(ContactPoint.value).join(Person).where(Person.name.contains(search, autoescape=True))
            query = query.where(Delivery.recipient.contains(search, autoescape=True) | Delivery.recipient.in_(named))
        if after:
            query = query.where(Delivery.id > after)
        query = query.order_by(Delivery.id)
        if limit:
            query = query.limit(limit)
        rows = list((await session.scalars(query)).all())
        names = await _names(session, {row.recipient for row in rows})
        return counts, rows, names


async def _names(session: AsyncSession, addresses: set[str]) -> dict[str, str]:
    """Address -> the directory name of whoever has it; a call channel's recipient (a person's numbers) is named
    after its first number."""
    names: dict[str, str] = {}
    first = {address: address.split(voice.SEPARATOR)[0] for address in addresses}
    listed = sorted(set(first.values()))
    for start in range(0, len(listed), 500):
        query = (
            select(ContactPoint.value, Person.name)
            .join(Person)
            .where(ContactPoint.value.in_(listed[start : start + 500]))
        )
        for value, name in (await session.execute(query)).all():
            names.setdefault(value, name)
    return {address: names[number] for address, number in first.items() if number in names}


def deliveries_csv(rows: list[Delivery], names: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["渠道", "接收方", "姓名", "状态", "尝试次数", "网关", "对端编号", "原因", "发送时间", "送达时间"])
    for row in rows:
        writer.writerow(
            [
                CHANNEL_NAMES.get(row.channel, row.channel),
                neutralised(row.recipient),
                neutralised(names.get(row.recipient, "")),
                DELIVERY_STATE_NAMES[DeliveryState(row.state)],
                row.attempts,
                row.via,
                neutralised(row.remote_id or ""),
                neutralised(row.last_error),
                row.sent_at.isoformat() if row.sent_at else "",
                row.delivered_at.isoformat() if row.delivered_at else "",
            ]
        )
    return out.getvalue().encode("utf-8-sig")  # BOM: spreadsheet programs then read UTF-8
