"""The notices' reactive part, started by the wiring: what each notice delivery says (the outbox's composer), the
SMS replies that confirm, and the watch over open notices (confirmations by key, tiers, completion).

The watch reads the open notices' rows every `[notices] check_seconds` and derives what is due from them alone, so
a restart loses nothing: a tier that fell due while the server was down fires on the first look after the start.
A tier is taken by raising the recipient row's `tier` in the transaction that writes the tier's deliveries (an
UPDATE guarded on the old tier), so it fires once even with two processes looking.

SMS replies. A reply from a number is matched to the open notices that number was sent by SMS (on any tier) and
the recipient has not confirmed: "1", "收到", "确认" or the notice's four-digit short code (alone or in the text).
With one such notice, any of them confirms it; with several, only the short code decides, and a reply without one
confirms nothing and is put on each notice's record as 无法对应 (the duty room sees it and calls back)."""

import asyncio
import contextlib
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.channel import Message
from broadcast.channels import voice
from broadcast.models import CHANNEL_NAMES, DELIVERY_STATE_NAMES, Delivery, DeliveryState, PublicWarning
from broadcast.outbox import Compose, Outbox
from broadcast.render import MessageFactory
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.events import Event
from switchboard.directory import service as directory
from switchboard.directory.models import Organisation
from switchboard.notices import addresses, flows, links, policies
from switchboard.notices.models import FINAL, NEVER_CONFIRMED, Notice, NoticeRecipient, NoticeState, RecipientState

log = logging.getLogger(__name__)

CONFIRMING_WORDS = {"1", "收到", "确认", "已收到", "收到了"}
UNSETTLED = (DeliveryState.pending, DeliveryState.sending)
REACHED = (DeliveryState.sent, DeliveryState.delivered, DeliveryState.unconfirmed, DeliveryState.confirmed)
LEADER_ROLE = "领导"  # a roster shift whose role names it ("带班领导") is the organisation's leader on duty
_CODE = re.compile(r"(?<![0-9])([0-9]{4})(?![0-9])")


class Notices:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.outbox: Outbox | None = None  # set by the wiring: the outbox these notices' deliveries go through
        self._task: asyncio.Task[None] | None = None
        parts = ctx.settings.channels.sms_max_parts
        self._messages = MessageFactory(parts)  # a warning's rendering for its directory groups, once per channel
        self._sms_messages = MessageFactory(max(parts - 1, 1))  # leaves a part for the line asking for the reply

    # --- life cycle ---

    def start(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._task = asyncio.create_task(self._watch(), name="notices")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("notice check failed; trying again")
            await asyncio.sleep(self.ctx.settings.notices.check_seconds)

    # --- the outbox's composer ---

    async def compose(self, delivery_id: str, recipient_id: str, channel: str, address: str) -> Message | None:
        """What one notice delivery says on its channel: the notice (or the warning, rendered as for its public,
        when the notice is a warning's directory groups), how to confirm, and for a leader or a parent desk, for
        whom. None when the row was withdrawn after an outbox claimed it (confirmed elsewhere, the warning
        cancelled): read here, right before the send, in whichever process claimed it."""
        async with self.ctx.db.reader() as session:
            if await session.scalar(select(Delivery.state).where(Delivery.id == delivery_id)) != DeliveryState.sending:
                return None
            row = await session.get(NoticeRecipient, recipient_id)
            assert row is not None
            notice = await session.get(Notice, row.notice_id)
            assert notice is not None
            about = await session.get(NoticeRecipient, row.about_id) if row.about_id else None
            warning = await session.get(PublicWarning, notice.warning_id) if notice.warning_id else None
        preface = ""
        if about is not None:
            preface = (
                f"{about.org_name}{about.name}未确认{flows.title(notice)}（{about.reason or '多次联系未果'}），"
                "请协助联系落实。\n原通知："
            )
        elif address in row.escalated:
            preface = f"因{row.org_name}{row.name}未确认，请您代为确认。\n"
        how = ""
        if notice.confirm:
            how = {
                voice.NAME: "",
                "sms": f"收到请回复1或“收到”（通知编号 {notice.code}）",
                "fax": f"收到请致电值班室或短信回复编号 {notice.code}",
            }.get(channel, f"收到请点击确认：{links.url(self.ctx.settings, delivery_id)}")
        if warning is not None:
            return self._warning(warning, delivery_id, channel, address, preface, how)
        body = f"{preface}{notice.subject}\n{notice.text}"
        text = f"【通知】{body}" + (f"\n{how}" if how else "")
        if channel == voice.NAME:  # read out, then the dialplan's "收到请按1，重听请按2"
            text = "通知：" + body.replace("\n", "。")
        html = None
        if channel == "email" and notice.confirm:
            html = _email_html(body, links.url(self.ctx.settings, delivery_id))
        return Message(
            delivery_id=delivery_id,
            recipient=address,
            text=text,
            subject=f"【通知】{notice.subject}",
            html=html,
            incident_id=notice.incident_id,
        )

    def _warning(
        self, warning: PublicWarning, delivery_id: str, channel: str, address: str, preface: str, how: str
    ) -> Message:
        """The warning as its channel renders it for the public, with the preface and how to confirm: the SMS
        rendered a part shorter, so that the line asking for the reply still fits in `sms_max_parts`."""
        factory = self._sms_messages if channel == "sms" else self._messages
        message = factory.message(warning, channel, delivery_id, address)
        text = f"{preface}{message.text}" + (f"\n{how}" if how else "")
        html = message.html
        if html is not None and how:
            html = html.replace("</body>", f"{_confirm_paragraphs(links.url(self.ctx.settings, delivery_id))}</body>")
        return replace(message, text=text, html=html)

    # --- SMS replies ---

    async def on_reply(self, source: str, text: str) -> None:
        """A message a phone sent to our SMS number (the gateways' MO callback)."""
        number = addresses.mobile(source)
        said = text.strip().replace(" ", "")
        async with self.ctx.db.reader() as session:
            query = (
                select(Delivery.id, NoticeRecipient.id, Notice.code)
                .join(NoticeRecipient, NoticeRecipient.id == Delivery.notice_recipient_id)
                .join(Notice, Notice.id == NoticeRecipient.notice_id)
                .where(
                    Delivery.channel == "sms",
                    Delivery.recipient == number,
                    Delivery.state.in_(REACHED),
                    NoticeRecipient.state != RecipientState.confirmed,
                    Notice.confirm.is_(True),
                    Notice.state == NoticeState.open,
                )
            )
            open_ = [(d, r, code) for d, r, code in (await session.execute(query)).all()]
        codes = set(_CODE.findall(said))
        chosen = [o for o in open_ if o[2] in codes]
        if not chosen and len({code for _, _, code in open_}) == 1 and (said in CONFIRMING_WORDS or codes):
            chosen = open_
        if not chosen:
            await self._unmatched(number, text, open_)
            return
        for delivery_id, recipient_id, _ in chosen:
            await flows.confirm(
                self.ctx,
                self.outbox,
                recipient_id,
                channel="sms",
                address=number,
                at=utcnow(),
                delivery_id=delivery_id,
                how=f"短信回复“{text.strip()[:20]}”",
            )

    async def _unmatched(self, number: str, text: str, open_: list[tuple[str, str, str]]) -> None:
        """A reply that confirms nothing: on the record of each notice it might have meant."""
        recipient_ids = {r for _, r, _ in open_}
        if not recipient_ids:
            log.info("SMS from %s matches no open notice", number)
            return
        async with self.ctx.db.session() as session:
            rows = (
                await session.execute(
                    select(Notice, NoticeRecipient)
                    .join(NoticeRecipient, NoticeRecipient.notice_id == Notice.id)
                    .where(NoticeRecipient.id.in_(recipient_ids))
                )
            ).all()
            codes = "、".join(sorted({n.code for n, _ in rows}))
            happened = []
            for notice, row in rows:
                summary = (
                    f"{row.name}（{number}）短信回复“{text.strip()[:20]}”无法对应：该号码有多条待确认通知"
                    f"（编号 {codes}），回复须含通知编号"
                )
                unmatched = flows.event(notice, "reply_unmatched", flows.SYSTEM, summary, recipient_id=row.id)
                await flows.record(session, notice, unmatched, ("notice_recipient", row.id))
                happened.append(unmatched)
        for unmatched in happened:
            await self.ctx.bus.publish(unmatched)

    # --- the watch ---

    async def check(self) -> None:
        """One look at every open notice."""
        async with self.ctx.db.reader() as session:
            notices = list((await session.scalars(select(Notice).where(Notice.state == NoticeState.open))).all())
        for notice in notices:
            await self._check(notice)

    async def _check(self, notice: Notice) -> None:
        async with self.ctx.db.reader() as session:
            rows = list(
                (await session.scalars(select(NoticeRecipient).where(NoticeRecipient.notice_id == notice.id))).all()
            )
            found = await session.scalars(
                select(Delivery).where(Delivery.notice_recipient_id.in_([r.id for r in rows]))
            )
            deliveries: dict[str, list[Delivery]] = {}
            for d in found.all():
                deliveries.setdefault(d.notice_recipient_id or "", []).append(d)
        steps = policies.steps_of(self.ctx.settings.notices.policies, notice.policy) if notice.confirm else ()
        now = utcnow()
        moved: list[tuple[NoticeRecipient, Event, bool]] = []
        for row in rows:
            mine = deliveries.get(row.id, [])
            if row.state == RecipientState.confirmed:
                continue
            if notice.confirm and (key := _voice_confirmed(mine)):
                at = key.delivered_at or now
                await flows.confirm(
                    self.ctx,
                    self.outbox,
                    row.id,
                    channel=voice.NAME,
                    address=key.via or key.recipient,
                    at=at,
                    delivery_id=key.id,
                    how="按1",
                )
                continue
            if row.state in FINAL:
                continue
            if (progress := _progress(notice, row, mine)) is not None:
                moved.append((row, *progress))
            due = next((s for s in steps if s.tier == row.tier + 1), None) if row.about_id is None else None
            if due is not None:
                if now >= notice.created_at + timedelta(seconds=due.after_seconds):
                    await self._escalate(notice, row, due, mine)
                continue
            await self._settle(notice, row, mine, steps, now)
        await self._moved(notice, moved)
        await self._complete(notice)

    async def _moved(self, notice: Notice, moved: list[tuple[NoticeRecipient, Event, bool]]) -> None:
        """The look's progress (state and attempts) in one transaction, not one per recipient (a warning's group may
        be thousands of people reached within seconds); a state change audited, each change published. A row settled
        in the same look is left to its settlement."""
        moved = [one for one in moved if one[0].state not in FINAL]
        if not moved:
            return
        now = utcnow()
        async with self.ctx.db.session() as session:
            await session.execute(
                _PROGRESS,
                [
                    {"b_id": row.id, "b_state": p.data["state"], "b_attempts": p.data["attempts"], "b_at": now}
                    for row, p, _ in moved
                ],
            )
            for row, progress, changed in moved:
                if changed:
                    await flows.record(session, notice, progress, ("notice_recipient", row.id))
        for _, progress, _ in moved:
            await self.ctx.bus.publish(progress)

    async def _settle(
        self,
        notice: Notice,
        row: NoticeRecipient,
        mine: list[Delivery],
        steps: tuple[policies.Step, ...],
        now: datetime,
    ) -> None:
        """No tier left: once the deliveries have run their course, the row is final; one still able to confirm
        waits until the notice's confirm_by, or `wait_seconds` after its last tier began."""
        if any(d.state in UNSETTLED or (d.channel == voice.NAME and d.state == DeliveryState.sent) for d in mine):
            if not (notice.confirm_by and now >= notice.confirm_by):
                return
        reached = any(_reached(d) for d in mine)
        if notice.confirm and reached:
            last_tier = max((s.after_seconds for s in steps if s.tier <= row.tier), default=0.0)
            wait = timedelta(seconds=last_tier + self.ctx.settings.notices.wait_seconds)
            deadline = notice.confirm_by or notice.created_at + wait
            if now < deadline:
                return
        if not reached:
            state = RecipientState.failed
        else:
            state = RecipientState.unconfirmed if notice.confirm else RecipientState.reached
        reason = "" if state == RecipientState.reached else _reason(row, mine)
        settled = flows.event(
            notice, "progress", flows.SYSTEM, recipient_id=row.id, name=row.name, state=state, reason=reason
        )
        async with self.ctx.db.session() as session:
            done = await session.execute(
                update(NoticeRecipient)
                .where(NoticeRecipient.id == row.id, NoticeRecipient.state.not_in(FINAL))
                .values(state=state, reason=reason, updated_at=utcnow())
            )
            if not done.rowcount:
                return
            await session.execute(  # confirm_by passed with sends still waiting: they are no longer wanted
                update(Delivery)
                .where(Delivery.notice_recipient_id == row.id, Delivery.state == DeliveryState.pending)
                .values(state=DeliveryState.cancelled, last_error="确认时限已过，不再发送", updated_at=utcnow())
            )
            await flows.record(session, notice, settled, ("notice_recipient", row.id))
        row.state, row.reason = state, reason
        await self.ctx.bus.publish(settled)

    async def _escalate(self, notice: Notice, row: NoticeRecipient, step: policies.Step, mine: list[Delivery]) -> None:
        """Take the tier: the leader's deliveries on this row, or a desk row told who is unreachable."""
        now = utcnow()
        seconds = (now - notice.created_at).total_seconds()
        waited = f"{seconds:.0f} 秒" if seconds < 120 else f"{seconds // 60:.0f} 分钟"
        reason = _reason(row, mine) or "未确认"
        async with self.ctx.db.session() as session:
            taken = await session.execute(
                update(NoticeRecipient)
                .where(NoticeRecipient.id == row.id, NoticeRecipient.tier == row.tier)
                .values(tier=step.tier, reason=reason, updated_at=now)
            )
            if not taken.rowcount:
                return
            row.tier, row.reason = step.tier, reason
            if step.who == "leader":
                summary, added = await self._to_leader(session, notice, row, step)
            else:
                summary, added = await self._to_parent(session, notice, row, step)
            summary = f"{title_of(notice, row)} {waited}未确认，第 {step.tier} 级：{summary}"
            escalated = flows.event(
                notice,
                "escalated",
                flows.SYSTEM,
                summary,
                recipient_id=row.id,
                tier=step.tier,
                who=step.who,
                deliveries=added,
            )
            await flows.record(session, notice, escalated, ("notice_recipient", row.id))
        await self.ctx.bus.publish(escalated)
        if added and self.outbox is not None:
            self.outbox.wake()

    async def _to_leader(
        self, session: AsyncSession, notice: Notice, row: NoticeRecipient, step: policies.Step
    ) -> tuple[str, int]:
        """The leaders on duty now for the recipient's own unit (its department, else its division)."""
        own, _ = await _units(session, row.org_code)
        leaders = []
        for org in own:
            shifts = await directory.on_duty(self.ctx, org.code, utcnow())
            if leaders := [contact for shift, contact in shifts if LEADER_ROLE in shift.role]:
                break
        if not leaders:
            return f"{row.org_name or row.name}值班表中此刻无带班领导，未能升级", 0
        added, named = 0, []
        for leader in leaders:
            found = addresses.of_contact(leader, step.channels)
            row.escalated = row.escalated | {address: f"带班领导 {leader.name}" for _, address in found}
            added += await flows.add_deliveries(session, row, found)
            named.append(f"{leader.name}（{'、'.join(a for _, a in found) or '无联系方式'}）")
        return f"转带班领导 {'、'.join(named)}代为确认", added

    async def _to_parent(
        self, session: AsyncSession, notice: Notice, row: NoticeRecipient, step: policies.Step
    ) -> tuple[str, int]:
        """The first on duty now at the parent organisation (the division above the recipient's, or one of its
        departments), told who is unreachable."""
        _, parents = await _units(session, row.org_code)
        for org in parents:
            if desk := await directory.on_duty(self.ctx, org.code, utcnow()):
                _, contact = desk[0]
                found = addresses.of_contact(contact, step.channels)
                told = flows.recipient_row(notice.id, contact, about_id=row.id, tier=step.tier)
                added = await flows.add_deliveries(session, told, found)
                return f"告知上级单位 {contact.org_name} {contact.name}：{row.name} 联系不上", added
        if not parents:
            return "无上级单位，未能告知", 0
        return f"上级单位 {parents[0].name} 值班表中此刻无人值班，未能告知", 0

    async def _complete(self, notice: Notice) -> None:
        """Everyone confirmed or every tier exhausted: the notice completes, saying who never confirmed and why."""
        async with self.ctx.db.session() as session:
            rows = list(
                (
                    await session.scalars(
                        select(NoticeRecipient).where(
                            NoticeRecipient.notice_id == notice.id, NoticeRecipient.about_id.is_(None)
                        )
                    )
                ).all()
            )
            if not rows or any(r.state not in FINAL for r in rows):
                return
            confirmed = [r for r in rows if r.state == RecipientState.confirmed]
            never = [r for r in rows if r.state in NEVER_CONFIRMED]
            summary = f"{flows.title(notice)}完成：{len(rows)} 人中 {len(confirmed)} 人确认"
            if never:
                summary += "；未确认：" + "；".join(f"{r.org_name}{r.name}（{r.reason}）" for r in never)
            claimed = await session.execute(
                update(Notice)
                .where(Notice.id == notice.id, Notice.state == NoticeState.open)
                .values(state=NoticeState.completed, completed_at=utcnow(), summary=summary)
            )
            if not claimed.rowcount:
                return
            completed = flows.event(
                notice,
                "completed",
                flows.SYSTEM,
                summary,
                confirmed=len(confirmed),
                total=len(rows),
                never_confirmed=[{"name": r.name, "reason": r.reason} for r in never],
            )
            await flows.record(session, notice, completed, ("notice", notice.id))
        await self.ctx.bus.publish(completed)


def composer(ctx: Context) -> Compose:
    """The notices' composer for an outbox of its own (`python -m broadcast.worker --compose
    switchboard.notices.live:composer`): it renders notice rows and reads them right before each send."""
    return Notices(ctx).compose


async def _units(session: AsyncSession, org_code: str) -> tuple[list[Organisation], list[Organisation]]:
    """The recipient's own unit (its organisation, and upward those of the same area: a department, then its
    division), and the parent organisation (the next division up, then its departments)."""
    own: list[Organisation] = []
    org = await session.scalar(select(Organisation).where(Organisation.code == org_code)) if org_code else None
    while org is not None and (not own or org.area_code == own[0].area_code):
        own.append(org)
        org = await session.get(Organisation, org.parent_id) if org.parent_id else None
    if org is None:
        return own, []
    departments = await session.scalars(select(Organisation).where(Organisation.parent_id == org.id))
    return own, [org, *sorted(departments.all(), key=lambda d: d.code)]


def title_of(notice: Notice, row: NoticeRecipient) -> str:
    return f"{flows.title(notice)}：{row.org_name}{row.name}"


_T = NoticeRecipient.__table__
_PROGRESS = (  # executemany; a row made final meanwhile (confirmed, settled) keeps its state
    update(_T)
    .where(_T.c.id == bindparam("b_id"), *(_T.c.state != state for state in FINAL))
    .values(state=bindparam("b_state"), attempts=bindparam("b_attempts"), updated_at=bindparam("b_at"))
)


def _progress(notice: Notice, row: NoticeRecipient, mine: list[Delivery]) -> tuple[Event, bool] | None:
    """Reached on some channel: notified; attempts counted. When either changed, the event and whether the state did
    (which is audited); the row in memory follows."""
    state = RecipientState.notified if any(_reached(d) for d in mine) else RecipientState.pending
    attempts = sum(d.attempts for d in mine)
    if (state, attempts) == (row.state, row.attempts):
        return None
    progress = flows.event(
        notice, "progress", flows.SYSTEM, recipient_id=row.id, name=row.name, state=state, attempts=attempts
    )
    changed = state != row.state
    row.state, row.attempts = state, attempts
    return progress, changed


def _reached(delivery: Delivery) -> bool:
    """The delivery reached its recipient (a voice row merely sent is a call still ringing)."""
    return delivery.state in REACHED and not (delivery.channel == voice.NAME and delivery.state == DeliveryState.sent)


def _voice_confirmed(mine: list[Delivery]) -> Delivery | None:
    """The voice delivery whose call was answered with 1 (the channel's receipt: delivered)."""
    return next((d for d in mine if d.channel == voice.NAME and d.state == DeliveryState.delivered), None)


def _reason(row: NoticeRecipient, mine: list[Delivery]) -> str:
    """Why the recipient has not confirmed: each delivery's last word."""
    said = []
    for d in mine:
        who = row.escalated.get(d.recipient)
        word = d.last_error or DELIVERY_STATE_NAMES[DeliveryState(d.state)]
        said.append(f"{who + ' ' if who else ''}{CHANNEL_NAMES.get(d.channel, d.channel)} {d.recipient}：{word}")
    return "；".join(said)


def _email_html(body: str, link: str) -> str:
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in body.splitlines())
    return f"<html><body>{paragraphs}{_confirm_paragraphs(link)}</body></html>"


def _confirm_paragraphs(link: str) -> str:
    return f'<p><a href="{escape(link)}">收到，点此确认</a></p><p>链接打开后需再点击“确认收到”按钮。</p>'
