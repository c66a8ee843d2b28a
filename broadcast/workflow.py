"""The approval workflow: draft -> submitted -> approved (by someone else) -> issued; update; cancel.

Each step is a plain function over the caller's session, so that the control plane commits the state change,
its audit entry, its timeline entry and (at issue) every delivery row in one transaction. Recipients arrive as
data: the control plane resolves directory groups into (channel, address) pairs; this module never looks.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core.config import Settings
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.divisions import check_area_code
from switchboard.core.errors import Conflict, Forbidden, InvalidInput
from switchboard.core.ids import new_id

from .alert import Alert, Reference
from .area import GB_T_2260, Area, area_for
from .identifier import UnitCode, next_identifier, prefix
from .info import Info
from .models import STATE_NAMES, Delivery, DeliveryState, PublicWarning, WarningContent, WarningState
from .values import ValuePair, cap_time

LANGUAGES = ("zh-CN",)  # languages with templates; zh-CN comes first in every warning


@dataclass(frozen=True)
class Issuer:
    """Who signs the CAP documents: the sender address and the GB/T 35965.1 issuing unit code ([warnings] config)."""

    sender: str
    code: UnitCode

    @classmethod
    def from_settings(cls, settings: Settings) -> "Issuer":
        w = settings.warnings
        return cls(w.sender, UnitCode(w.unit_area, w.unit_industry, w.unit_internal, w.unit_extension))


DRAFT_SENDER = "draft@switchboard.invalid"  # only in trial documents of drafts, never in an issued one


# --- building the CAP document --------------------------------------------------------------------------------------


def areas_of(content: WarningContent) -> list[Area]:
    areas = []
    for target in content.areas:
        if target.code and not (target.polygon or target.circle):
            area = area_for(target.code)
            areas.append(area.model_copy(update={"areaDesc": target.desc or area.areaDesc}))
            continue
        geocode = [ValuePair(valueName=GB_T_2260, value=target.code)] if target.code else []
        desc = target.desc or "预警区域"
        areas.append(Area(areaDesc=desc, polygon=target.polygon, circle=target.circle, geocode=geocode))
    return areas


def info_of(content: WarningContent, colour: str) -> Info:
    return Info(
        language="zh-CN",
        category=content.category,
        event=content.event,
        responseType=content.response_type,
        urgency=content.urgency,
        colour=colour,
        certainty=content.certainty,
        effective=content.effective,
        onset=content.onset,
        expires=content.expires,
        senderName=content.sender_name or None,
        headline=content.headline,
        description=content.description,
        instruction=content.instruction or None,
        web=content.web,
        contact=content.contact,
        area=areas_of(content),
    )


def alert_of(warning: PublicWarning) -> Alert:
    """The CAP alert of an issued warning (or, before issue, a trial one sent now)."""
    content = WarningContent.model_validate(warning.content)
    return Alert(
        identifier=warning.identifier or "draft",
        sender=warning.sender or DRAFT_SENDER,
        sent=warning.sent_at or utcnow(),
        status="Actual",
        msgType=warning.msg_type,  # type: ignore[arg-type]
        scope="Public",
        code=["GB/T 35965.1"],
        references=[Reference.model_validate(r) for r in warning.references],
        incidents=[warning.incident_id],
        info=[info_of(content, warning.colour)],
    )


_INFO_AREA = re.compile(r"^info\.0\.area\.(\d+)(.*)$")


def check_content(content: WarningContent) -> None:
    """Apply every CAP rule to the content as if it were sent now; errors name the request's own field."""
    if not content.languages or content.languages[0] != "zh-CN":
        raise InvalidInput("第一种语言必须是中文（zh-CN）", field="languages.0")
    for i, language in enumerate(content.languages):
        if language not in LANGUAGES:
            raise InvalidInput(f"暂无 {language} 的预警模板，目前支持：{'、'.join(LANGUAGES)}", field=f"languages.{i}")
    for i, public in enumerate(content.audiences.public):
        if public.channel not in content.audiences.channels and not public.recipient:
            raise InvalidInput("公共渠道须给出接收地址", field=f"audiences.public.{i}.recipient")
    if not (content.audiences.groups or content.audiences.public):
        raise InvalidInput("请至少选择一个通讯录群组或公共渠道", field="audiences")
    for i, target in enumerate(content.areas):
        if target.code:
            check_area_code(target.code, field=f"areas.{i}.code")
    try:
        info = info_of(content, content.colour)
        Alert(identifier="draft", sender=DRAFT_SENDER, sent=utcnow(), info=[info])
    except InvalidInput as error:
        raise InvalidInput(error.message, field=_content_field(error.field)) from None


def _content_field(field: str | None) -> str | None:
    """ "info.0.area.1.polygon.0" -> "areas.1.polygon.0"; "info.0.expires" -> "expires"."""
    if not field:
        return field
    if match := _INFO_AREA.match(field):
        rest = match.group(2)
        return f"areas.{match.group(1)}" + (".code" if rest.startswith(".geocode") else rest)
    return field.removeprefix("info.0.")


# --- steps ---------------------------------------------------------------------------------------------------------


async def load(session: AsyncSession, warning_id: str, *, lock: bool = False) -> PublicWarning:
    return await get_or_404(session, PublicWarning, warning_id, what="预警", field="warning_id", lock=lock)


def _expect(warning: PublicWarning, *states: WarningState) -> None:
    if warning.state not in states:
        wanted = "或".join(f"“{STATE_NAMES[s]}”" for s in states)
        raise Conflict(f"预警当前为“{STATE_NAMES[WarningState(warning.state)]}”，此操作需要{wanted}", field="state")


async def create(
    session: AsyncSession,
    actor: str,
    incident_id: str,
    content: WarningContent,
    *,
    replaces: PublicWarning | None = None,
) -> PublicWarning:
    check_content(content)
    warning = PublicWarning(
        id=new_id(),
        incident_id=incident_id,
        state=WarningState.draft,
        msg_type="Update" if replaces else "Alert",
        colour=content.colour,
        content=content.model_dump(mode="json"),
        references=[],
        replaces_id=replaces.id if replaces else None,
        created_by=actor,
    )
    session.add(warning)
    await session.flush()
    return warning


async def submit(session: AsyncSession, actor: str, warning_id: str) -> PublicWarning:
    warning = await load(session, warning_id, lock=True)
    _expect(warning, WarningState.draft)
    check_content(WarningContent.model_validate(warning.content))
    warning.state, warning.submitted_by, warning.submitted_at = WarningState.submitted, actor, utcnow()
    return warning


async def approve(session: AsyncSession, actor: str, warning_id: str) -> PublicWarning:
    """Four eyes: whoever drafted or submitted the warning may not approve it (the role is checked by the API)."""
    warning = await load(session, warning_id, lock=True)
    _expect(warning, WarningState.submitted)
    if actor in (warning.created_by, warning.submitted_by):
        raise Forbidden("不能审核本人起草或提交的预警：须由另一位审核人审核（双人审核）", field="approved_by")
    warning.state, warning.approved_by, warning.approved_at = WarningState.approved, actor, utcnow()
    return warning


async def issue(
    session: AsyncSession,
    actor: str,
    warning_id: str,
    recipients: Iterable[tuple[str, str]],
    issuer: Issuer,
) -> tuple[PublicWarning, int]:
    """Give the warning its CAP identifier and sent time, and write one pending delivery per recipient and channel.
    An Update retires the message it replaces: that one's unsent deliveries are cancelled."""
    warning = await load(session, warning_id, lock=True)
    _expect(warning, WarningState.approved)
    replaced = await _replaceable(session, warning.replaces_id) if warning.replaces_id else None
    now = utcnow().replace(microsecond=0)
    await _stamp(session, warning, issuer, now, replaced)
    warning.state, warning.issued_by, warning.issued_at = WarningState.issued, actor, now
    alert_of(warning)  # every CAP rule once more, against the real sent time
    if replaced is not None:
        replaced.superseded_by_id = warning.id
        await _cancel_pending(session, [replaced.id])
    count = await _add_deliveries(session, warning.id, recipients, now)
    return warning, count


async def update(session: AsyncSession, actor: str, warning_id: str, content: WarningContent) -> PublicWarning:
    """A draft Update of an issued warning; it goes through submit and approve like the first issue."""
    original = await _replaceable(session, warning_id)
    return await create(session, actor, original.incident_id, content, replaces=original)


@dataclass
class Cancelled:
    warning: PublicWarning  # the warning that was cancelled
    notice: PublicWarning | None  # the CAP Cancel message, when the warning had been issued
    retired: int  # deliveries that had not gone out and never will
    notices: int  # Cancel deliveries written (to those the warning may have reached)


async def cancel(session: AsyncSession, actor: str, warning_id: str, issuer: Issuer) -> Cancelled:
    """Before issue: the draft is dropped. After issue: a CAP Cancel with a new identifier, referencing the whole
    chain; every unsent delivery of the chain is cancelled, and whoever may have received it gets the Cancel."""
    warning = await load(session, warning_id, lock=True)
    now = utcnow().replace(microsecond=0)
    if warning.state in (WarningState.draft, WarningState.submitted, WarningState.approved):
        warning.state, warning.cancelled_by, warning.cancelled_at = WarningState.cancelled, actor, now
        return Cancelled(warning, None, 0, 0)
    original = await _replaceable(session, warning_id)
    chain = await _chain(session, original)
    notice = PublicWarning(
        id=new_id(),
        incident_id=original.incident_id,
        state=WarningState.issued,
        msg_type="Cancel",
        colour=original.colour,
        content=original.content,
        replaces_id=original.id,
        created_by=actor,
        issued_by=actor,
        issued_at=now,
    )
    await _stamp(session, notice, issuer, now, original)
    session.add(notice)
    alert_of(notice)
    for member in chain:
        member.state, member.cancelled_by, member.cancelled_at = WarningState.cancelled, actor, now
    original.superseded_by_id = notice.id
    ids = [member.id for member in chain]
    retired = await _cancel_pending(session, ids)
    await session.flush()
    reached = await session.execute(
        select(Delivery.channel, Delivery.recipient)
        .where(Delivery.warning_id.in_(ids), Delivery.state.in_(_MAY_HAVE_REACHED))
        .distinct()
    )
    notices = await _add_deliveries(session, notice.id, [(c, r) for c, r in reached.all()], now)
    return Cancelled(original, notice, retired, notices)


_MAY_HAVE_REACHED = (
    DeliveryState.sending,
    DeliveryState.sent,
    DeliveryState.delivered,
    DeliveryState.unconfirmed,
    DeliveryState.confirmed,  # a desk of the internal audience that confirmed it (switchboard/notices)
)


async def _replaceable(session: AsyncSession, warning_id: str) -> PublicWarning:
    warning = await load(session, warning_id, lock=True)
    if warning.msg_type == "Cancel":
        raise Conflict("撤销消息不能再更新或撤销", field="msg_type")
    _expect(warning, WarningState.issued)
    if warning.superseded_by_id:
        raise Conflict(f"该预警已被 {warning.superseded_by_id} 取代，请对最新的一条操作", field="superseded_by_id")
    return warning


async def _chain(session: AsyncSession, latest: PublicWarning) -> list[PublicWarning]:
    chain = [latest]
    while chain[-1].replaces_id:
        chain.append(await load(session, chain[-1].replaces_id, lock=True))
    return chain


async def _stamp(
    session: AsyncSession, warning: PublicWarning, issuer: Issuer, now: datetime, replaced: PublicWarning | None
) -> None:
    """Sender, sent time and identifier; the identifier's sequence digit is the first one not yet issued by this
    unit in this second, and past 9 the message is sent in the next second (GB/T 35965.1 Appendix A). The table's
    unique identifier settles a race between two workers."""
    sent = now
    while True:
        start = prefix(issuer.code, sent)
        query = select(PublicWarning.identifier).where(PublicWarning.identifier.startswith(start))
        if identifier := next_identifier(issuer.code, sent, set((await session.scalars(query)).all())):
            break
        sent += timedelta(seconds=1)
    warning.sender = issuer.sender
    warning.sent_at = sent
    warning.identifier = identifier
    if replaced is not None:
        assert replaced.sent_at and replaced.identifier
        warning.references = [
            *replaced.references,
            f"{replaced.sender},{replaced.identifier},{cap_time(replaced.sent_at)}",
        ]


async def _cancel_pending(session: AsyncSession, warning_ids: list[str]) -> int:
    result = await session.execute(
        sql_update(Delivery)
        .where(Delivery.warning_id.in_(warning_ids), Delivery.state == DeliveryState.pending)
        .values(state=DeliveryState.cancelled, updated_at=utcnow(), last_error="预警已撤销或被更新")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def _add_deliveries(
    session: AsyncSession, warning_id: str, recipients: Iterable[tuple[str, str]], now: datetime
) -> int:
    rows = [{"warning_id": warning_id, "channel": c, "recipient": r} for c, r in dict.fromkeys(recipients)]
    return await insert_deliveries(session, rows, now)


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]], now: datetime) -> int:
    """Pending delivery rows in bulk, 1,000 a statement (an ORM object each is the issue's cost at 100,000): each
    names its channel, recipient and owner (`warning_id`, `notice_recipient_id`, or both for a warning's internal
    audience); the session's pending objects are flushed first, the rows they belong to among them."""
    owners = {"warning_id": None, "notice_recipient_id": None}
    full = [
        owners
        | row
        | {
            "id": new_id(),
            "state": DeliveryState.pending,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    await session.flush()
    connection = await session.connection()
    for start in range(0, len(full), 1000):
        await connection.execute(insert(Delivery.__table__), full[start : start + 1000])
    return len(full)
