"""Consultation flows: each one user-visible action over the database, the room in Janus (through the live rooms)
and the event bus; join tokens, signed per invite."""

import contextlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select

from conference.gb28181.platform import CommandFailed
from conference.video.models import Consultation, Invite
from switchboard.auth.service import token_secret
from switchboard.cameras.flows import watchable
from switchboard.cameras.live import LiveCameras
from switchboard.cameras.models import CameraKind
from switchboard.consultations.live import LiveRooms
from switchboard.consultations.phones import PhoneSide
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, Forbidden, NotFound, Unauthorized, Unavailable
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.core.outbound import CAMERA_SCHEMES, OutboundPolicy
from switchboard.directory import service as directory
from switchboard.incidents import service as incidents

log = logging.getLogger(__name__)

AUDIENCE = "consultation"
_ALGORITHM = "HS256"


# Join tokens ----------------------------------------------------------------------------------------------------


def sign(ctx: Context, invite: Invite) -> str:
    claims = {"aud": AUDIENCE, "sub": invite.id, "cid": invite.consultation_id, "exp": invite.expires_at}
    return jwt.encode(claims, token_secret(ctx.settings), algorithm=_ALGORITHM)


def claims_of(ctx: Context, token: str) -> dict[str, Any]:
    try:
        return jwt.decode(
            token, token_secret(ctx.settings), algorithms=[_ALGORITHM], audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise Unauthorized("会商链接已过期，请向值班室索取新的链接") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("会商链接无效") from None


async def invite_of(ctx: Context, consultation_id: str, token: str) -> tuple[Consultation, Invite]:
    """The consultation and invite a join token admits to; refused when revoked, closed or for another room."""
    claims = claims_of(ctx, token)
    if claims.get("cid") != consultation_id:
        raise Unauthorized("会商链接无效")
    async with ctx.db.reader() as session:
        invite = await session.get(Invite, claims["sub"])
        consultation = await session.get(Consultation, consultation_id)
    if invite is None or consultation is None or invite.consultation_id != consultation_id:
        raise Unauthorized("会商链接无效")
    if invite.revoked_at is not None:
        raise Forbidden("您已被移出本次会商，链接已失效")
    if consultation.state != "open":
        raise Forbidden("本次会商已结束")
    return consultation, invite


# Flows ----------------------------------------------------------------------------------------------------------


async def get(ctx: Context, consultation_id: str) -> Consultation:
    async with ctx.db.reader() as session:
        return await get_or_404(session, Consultation, consultation_id, what="会商", field="consultation_id")


async def _open(ctx: Context, consultation_id: str) -> Consultation:
    consultation = await get(ctx, consultation_id)
    if consultation.state != "open":
        raise Conflict("会商已结束", field="consultation_id")
    return consultation


async def invites(ctx: Context, consultation_id: str) -> list[Invite]:
    async with ctx.db.reader() as session:
        query = select(Invite).where(Invite.consultation_id == consultation_id).order_by(Invite.created_at)
        return list((await session.scalars(query)).all())


async def open_under(ctx: Context, incident_id: str) -> list[Consultation]:
    """The open consultations filed under an incident, newest first."""
    async with ctx.db.reader() as session:
        query = select(Consultation).where(Consultation.incident_id == incident_id, Consultation.state == "open")
        return list((await session.scalars(query.order_by(Consultation.created_at.desc()))).all())


async def links(ctx: Context, consultation_id: str) -> list[tuple[Invite, str]]:
    """The join links still good (sites not removed, not expired; camera feeds have none), with their tokens."""
    consultation = await _open(ctx, consultation_id)
    now = utcnow()
    good = [
        i for i in await invites(ctx, consultation.id)
        if i.kind == "person" and i.revoked_at is None and i.expires_at > now
    ]  # fmt: skip
    return [(i, sign(ctx, i)) for i in good]


async def create(
    ctx: Context, live: LiveRooms, actor: str, title: str, incident_id: str | None, max_sites: int, pin: str
) -> Consultation:
    await incidents.filed_under(ctx, incident_id)
    consultation = Consultation(
        id=new_id(),
        title=title,
        incident_id=incident_id,
        max_sites=max_sites,
        pin=pin,
        room=secrets.randbelow(2**31 - 1_000_000) + 1_000_000,
        secret=secrets.token_hex(16),
        created_by=actor,
    )
    await live.rooms.create(live.spec(consultation, []))
    async with contextlib.AsyncExitStack() as held:
        if live.phones is not None:  # the dial-in number is taken once the row is written
            await held.enter_async_context(live.phones.allocating)
            consultation.dial_in = await live.phones.allocate()
        async with ctx.db.session() as session:
            session.add(consultation)
            await session.flush()
            detail = {"title": title, "incident_id": incident_id, "max_sites": max_sites, "room": consultation.room}
            detail |= {"dial_in": consultation.dial_in}
            await audit.record(session, actor, "consultation.create", "consultation", consultation.id, detail)
    if live.phones is not None:
        try:
            await live.phones.link(consultation)
        except Unavailable as exc:  # linked by the watch once Asterisk or Janus is back
            log.warning("phones of consultation %s not linked yet: %s", consultation.id, exc)
    await _publish(ctx, consultation, "consultation.created", f"发起视频会商《{title}》", actor)
    return consultation


async def invite(
    ctx: Context, live: LiveRooms, actor: str, consultation_id: str, invitees: list[dict[str, Any]], hours: float | None
) -> list[tuple[Invite, str]]:
    consultation = await _open(ctx, consultation_id)
    expires_at = utcnow() + timedelta(hours=hours or ctx.settings.janus.invite_hours)
    created = [_new_invite(consultation, actor, expires_at, **who) for who in invitees]
    if not consultation.locked:
        await live.rooms.allow(consultation.room, consultation.secret, [i.room_token for i in created])
    async with ctx.db.session() as session:
        session.add_all(created)
        await session.flush()
        detail = {"sites": [i.site for i in created], "expires_at": expires_at.isoformat()}
        await audit.record(session, actor, "consultation.invite", "consultation", consultation.id, detail)
    return [(i, sign(ctx, i)) for i in created]


def _new_invite(
    consultation: Consultation, actor: str, expires_at: datetime, site: str, person: str = "", moderator: bool = False,
    kind: str = "person", feed_url: str = "",
) -> Invite:  # fmt: skip
    return Invite(
        id=new_id(),
        consultation_id=consultation.id,
        site=site,
        person=person,
        moderator=moderator,
        kind=kind,
        feed_url=feed_url,
        participant_id=secrets.randbelow(2**31 - 1_000_000) + 1_000_000,
        room_token=secrets.token_urlsafe(24),
        expires_at=expires_at,
        created_by=actor,
    )


async def admitted(ctx: Context, live: LiveRooms, consultation_id: str, token: str) -> tuple[Consultation, Invite]:
    """The consultation and invite a join token lets into the room now: refused for an expired, revoked or foreign
    token, and while the consultation is locked to a site outside its room."""
    consultation, invite = await invite_of(ctx, consultation_id, token)
    if consultation.locked and invite.participant_id not in live.present.get(consultation.id, {}):
        raise Forbidden("会商已锁定，暂不能加入")
    return consultation, invite


async def join_details(ctx: Context, live: LiveRooms, consultation_id: str, token: str) -> dict[str, Any]:
    """What the join page shows before joining: the consultation, who the link admits, the sites' names."""
    consultation, invite = await admitted(ctx, live, consultation_id, token)
    sites = {str(i.participant_id): i.site for i in await invites(ctx, consultation.id)}
    return {
        "title": consultation.title,
        "participant_id": invite.participant_id,
        "site": invite.site,
        "person": invite.person,
        "moderator": invite.moderator,
        "pin_required": bool(consultation.pin),
        "recording": consultation.recording,
        "sites": sites,
    }


async def participants(ctx: Context, live: LiveRooms, consultation_id: str) -> list[dict[str, Any]]:
    """The sites in the room, then the phones in its audio conference (named from the directory by their number)."""
    consultation = await _open(ctx, consultation_id)
    by_participant = {i.participant_id: i for i in await invites(ctx, consultation.id)}
    sites = [
        {
            "kind": "site",
            "participant_id": p.id,
            "site": p.display,
            "invite_id": by_participant[p.id].id if p.id in by_participant else None,
            "talking": p.talking,
            "publisher": p.publisher,
        }
        for p in await live.rooms.participants(consultation.room)
    ]
    phones = await live.phones.listed(consultation) if live.phones else []
    return sites + [{"kind": "phone", "site": p["name"] or p["number"], **p} for p in phones]


def _phones(live: LiveRooms) -> PhoneSide:
    if live.phones is None:
        raise Unavailable("会商未接入电话（需要交换机和 [janus] phone_address）")
    return live.phones


async def mute_phone(
    ctx: Context, live: LiveRooms, actor: str, consultation_id: str, phone_id: str, muted: bool
) -> None:
    consultation = await _open(ctx, consultation_id)
    phones = _phones(live)
    phone = phones.phone(consultation, phone_id)
    await phones.phones.mute(consultation.dial_in, phone.uniqueid, muted)
    detail = {"phone": phone.number, "muted": muted}
    await audit.record_alone(ctx, actor, "consultation.phone_mute", "consultation", consultation.id, detail)


async def remove_phone(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, phone_id: str) -> None:
    """Hang the phone up (it may dial in again: the number is the consultation's, not the phone's)."""
    consultation = await _open(ctx, consultation_id)
    phones = _phones(live)
    phone = phones.phone(consultation, phone_id)
    await phones.phones.kick(consultation.dial_in, phone.uniqueid)
    detail = {"phone": phone.number}
    await audit.record_alone(ctx, actor, "consultation.phone_remove", "consultation", consultation.id, detail)


async def dial_out(
    ctx: Context, live: LiveRooms, actor: str, consultation_id: str, contact_id: str, ring_seconds: int
) -> dict[str, Any]:
    """Ring a directory contact's phones in their priority order (the dispatch loop); whoever answers joins the
    consultation as a phone."""
    consultation = await _open(ctx, consultation_id)
    phones = _phones(live)
    if not consultation.dial_in:
        raise Conflict("本次会商没有电话接入", field="consultation_id")
    contact = await directory.contact_for(ctx, contact_id, field="contact_id")
    numbers = [number for number, _ in directory.dial_numbers(contact)]
    if not numbers:
        raise Conflict(f"{contact.name} 没有可拨打的电话号码", field="contact_id")
    call_id = f"consult-{new_id()}"
    dialled = [phones.dial_string(n) for n in numbers]
    await phones.phones.dial_out(consultation.dial_in, call_id, dialled, ring_seconds, consultation.incident_id)
    detail = {"contact_id": contact.id, "name": contact.name, "numbers": numbers}
    await audit.record_alone(ctx, actor, "consultation.dial_out", "consultation", consultation.id, detail)
    await _publish(ctx, consultation, "consultation.dialing", f"视频会商呼叫 {contact.name}", actor)
    return {"call_id": call_id, "name": contact.name, "numbers": numbers}


async def _invite_for(ctx: Context, consultation: Consultation, invite_id: str) -> Invite:
    async with ctx.db.reader() as session:
        invite = await session.get(Invite, invite_id)
    if invite is None or invite.consultation_id != consultation.id:
        raise NotFound(f"参会方 {invite_id} 不存在", field="invite_id")
    return invite


async def mute(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, invite_id: str, muted: bool) -> None:
    consultation = await _open(ctx, consultation_id)
    invite = await _invite_for(ctx, consultation, invite_id)
    await live.rooms.mute(consultation.room, consultation.secret, invite.participant_id, muted)
    await audit.record_alone(
        ctx, actor, "consultation.mute", "consultation", consultation.id, {"site": invite.site, "muted": muted}
    )


async def remove(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, invite_id: str) -> None:
    """Revoke the invite, take its token out of the room's ACL, kick the site and close its pages' relays (Janus
    ends their sessions, subscriptions included, whatever the browser does): it sees nothing more, cannot come
    back."""
    consultation = await _open(ctx, consultation_id)
    invite = await _invite_for(ctx, consultation, invite_id)
    async with ctx.db.session() as session:
        row = await session.get(Invite, invite.id)
        assert row is not None
        row.revoked_at = utcnow()
        await audit.record(session, actor, "consultation.remove", "consultation", consultation.id, {"site": row.site})
    await live.rooms.allow(consultation.room, consultation.secret, [invite.room_token], "remove")
    if invite.participant_id in {p.id for p in await live.rooms.participants(consultation.room)}:
        await live.rooms.kick(consultation.room, consultation.secret, invite.participant_id)
    await live.cut_off([invite.id], "您已被主持人移出本次会商")
    await live.stop_feed(invite.id)
    await _publish(ctx, consultation, "consultation.removed", f"{invite.site} 被移出视频会商", actor)


async def lock(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, locked: bool) -> Consultation:
    """Locked: no site that is not in the room now can join (their tokens leave the room's ACL)."""
    consultation = await _open(ctx, consultation_id)
    everyone = [i for i in await invites(ctx, consultation.id) if i.revoked_at is None]
    present = {p.id for p in await live.rooms.participants(consultation.room)}
    outside = [i.room_token for i in everyone if i.participant_id not in present]
    if outside:
        await live.rooms.allow(consultation.room, consultation.secret, outside, "remove" if locked else "add")
    async with ctx.db.session() as session:
        row = await session.get(Consultation, consultation.id)
        assert row is not None
        row.locked = locked
        await audit.record(session, actor, "consultation.lock", "consultation", row.id, {"locked": locked})
    consultation.locked = locked
    await _publish(ctx, consultation, "consultation.locked", "会商已锁定" if locked else "会商已解除锁定", actor)
    return consultation


async def record(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, on: bool) -> Consultation:
    consultation = await _open(ctx, consultation_id)
    if consultation.recording == on:
        return consultation
    await live.rooms.record(consultation.room, consultation.secret, on)
    async with ctx.db.session() as session:
        row = await session.get(Consultation, consultation.id)
        assert row is not None
        row.recording = on
        await audit.record(session, actor, "consultation.record", "consultation", row.id, {"on": on})
    consultation.recording = on
    everyone = await invites(ctx, consultation.id)
    live.tell([i.id for i in everyone], {"recording": on})  # every site sees that it is being recorded
    if on:
        live.recording_started[consultation.id] = utcnow()
    else:
        sites = {i.participant_id: i.site for i in everyone}
        live.file_recordings(consultation, sites, live.recording_started.pop(consultation.id, utcnow()))
    await _publish(ctx, consultation, "consultation.recording", "开始会商录像" if on else "停止会商录像", actor)
    return consultation


async def add_feed(ctx: Context, live: LiveRooms, actor: str, consultation_id: str, url: str, site: str) -> Invite:
    """Publish an RTSP camera into the room as one more site (a feed process of its own, see conference.video)."""
    consultation = await _open(ctx, consultation_id)
    await OutboundPolicy.from_settings(ctx.settings).check(url, schemes=CAMERA_SCHEMES, field="url")
    feed = {"site": site, "kind": "feed", "feed_url": url}
    [(invite_row, _)] = await invite(ctx, live, actor, consultation.id, [feed], hours=24 * 365)
    live.start_feed(consultation, invite_row)
    await audit.record_alone(
        ctx, actor, "consultation.feed", "consultation", consultation.id, {"site": site, "url": url.split("@")[-1]}
    )
    return invite_row


async def add_camera(
    ctx: Context, live: LiveRooms, cameras: LiveCameras, actor: str, consultation_id: str, camera_id: str,
    channel_id: str,
) -> Invite:  # fmt: skip
    """A camera from the registry as one more site, in one action: an RTSP camera through its feed process
    (`add_feed`), a GB/T 28181 channel as its live stream (INVITEd unless already watched) forwarded by Janus."""
    consultation = await _open(ctx, consultation_id)
    camera = await watchable(ctx, camera_id, channel_id)
    if camera.kind == CameraKind.rtsp:
        return await add_feed(ctx, live, actor, consultation.id, camera.rtsp_url, camera.name)
    source = cameras.source(camera, channel_id)
    expires = utcnow() + timedelta(days=365)
    where = f"gb28181:{camera.id}/{channel_id}"  # what the site is, kept for the record (not restarted: docs)
    row = _new_invite(consultation, actor, expires, source.display[:100], kind="camera", feed_url=where)
    try:
        feed = await cameras.wall.running().into_room(
            source, consultation.room, consultation.secret, row.participant_id
        )
    except CommandFailed as exc:
        raise Unavailable(str(exc)) from None
    live.feeds[row.id] = feed
    async with ctx.db.session() as session:
        session.add(row)
        detail = {"site": row.site, "camera_id": camera.id, "channel_id": channel_id}
        await audit.record(session, actor, "consultation.camera", "consultation", consultation.id, detail)
    await _publish(ctx, consultation, "consultation.camera", f"摄像机 {row.site} 接入视频会商", actor)
    return row


async def close(ctx: Context, live: LiveRooms, actor: str, consultation_id: str) -> Consultation:
    consultation = await _open(ctx, consultation_id)
    if consultation.recording:
        consultation = await record(ctx, live, actor, consultation_id, False)
    everyone = await invites(ctx, consultation.id)
    await live.cut_off([i.id for i in everyone], "本次会商已结束")
    for invite_row in everyone:
        await live.stop_feed(invite_row.id)
    if live.phones is not None:
        await live.phones.unlink(consultation)  # its phones are hung up with the link
    await live.rooms.destroy(consultation.room, consultation.secret)
    async with ctx.db.session() as session:
        row = await session.get(Consultation, consultation.id)
        assert row is not None
        row.state, row.closed_at = "closed", utcnow()
        await audit.record(session, actor, "consultation.close", "consultation", row.id, {})
    live.present.pop(consultation.id, None)
    await _publish(ctx, consultation, "consultation.closed", f"视频会商《{consultation.title}》结束", actor)
    return await get(ctx, consultation_id)


async def _publish(ctx: Context, consultation: Consultation, kind: str, summary: str, actor: str) -> None:
    data = {"summary": summary, "consultation_id": consultation.id, "refs": [consultation.id]}
    await ctx.bus.publish(Event(kind, data=data, incident_id=consultation.incident_id, actor=actor))
