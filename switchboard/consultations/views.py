"""Consultation routes. Officers (duty officer, leader) run them with their access token; a moderator's join
link also admits its holder to the moderation routes of that one consultation."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from conference.video.models import Invite
from switchboard.api.deps import BearerToken, CameraRegistry, Ctx, Officer, SignIn, VideoRooms, require
from switchboard.auth.models import Role
from switchboard.consultations import flows
from switchboard.consultations.models import (
    CameraCreate,
    ConsultationCreate,
    ConsultationOut,
    FeedCreate,
    InviteCreate,
    InviteOut,
    ParticipantOut,
    PhoneDial,
    PhoneDialOut,
    Switch,
)
from switchboard.core.errors import Forbidden, Unauthorized

router = APIRouter(prefix="/api/v1/consultations", tags=["consultations"])
_officer = require(Role.duty_officer, Role.leader)


async def moderator(ctx: Ctx, sessions: SignIn, token: BearerToken, consultation_id: str) -> str:
    """An officer, or the holder of a moderator's join link of this consultation: the actor's name."""
    try:
        return (await _officer(sessions, token)).username
    except Unauthorized:
        if token.count(".") != 2:
            raise
    _, invite = await flows.invite_of(ctx, consultation_id, token)
    if not invite.moderator:
        raise Forbidden("只有主持人可以执行此操作")
    return f"{invite.site}（主持人）"


Moderator = Annotated[str, Depends(moderator)]


@router.post("", status_code=201, response_model=ConsultationOut)
async def create(ctx: Ctx, live: VideoRooms, who: Officer, body: ConsultationCreate) -> ConsultationOut:
    consultation = await flows.create(ctx, live, who.username, body.title, body.incident_id, body.max_sites, body.pin)
    return ConsultationOut.model_validate(consultation)


@router.get("", response_model=list[ConsultationOut])
async def open_under(
    ctx: Ctx, _: Officer, incident_id: Annotated[str, Query(min_length=1, max_length=26)]
) -> list[ConsultationOut]:
    """The open consultations of an incident, newest first."""
    return [ConsultationOut.model_validate(c) for c in await flows.open_under(ctx, incident_id)]


@router.get("/{consultation_id}", response_model=ConsultationOut)
async def get(ctx: Ctx, _: Officer, consultation_id: str) -> ConsultationOut:
    return ConsultationOut.model_validate(await flows.get(ctx, consultation_id))


@router.delete("/{consultation_id}", response_model=ConsultationOut)
async def close(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str) -> ConsultationOut:
    return ConsultationOut.model_validate(await flows.close(ctx, live, who, consultation_id))


@router.post("/{consultation_id}/invites", status_code=201, response_model=list[InviteOut])
async def invite(ctx: Ctx, live: VideoRooms, who: Officer, consultation_id: str, body: InviteCreate) -> list[InviteOut]:
    invitees = [i.model_dump() for i in body.invitees]
    created = await flows.invite(ctx, live, who.username, consultation_id, invitees, body.hours)
    return _links(ctx.settings.server.link_base, consultation_id, created)


@router.get("/{consultation_id}/invites", response_model=list[InviteOut])
async def links(ctx: Ctx, _: Officer, consultation_id: str) -> list[InviteOut]:
    """The join links still good: the console hands them out again, or opens the moderator's, after a reload."""
    return _links(ctx.settings.server.link_base, consultation_id, await flows.links(ctx, consultation_id))


def _links(base: str, consultation_id: str, invites: list[tuple[Invite, str]]) -> list[InviteOut]:
    return [
        InviteOut(
            invite_id=i.id,
            site=i.site,
            person=i.person,
            moderator=i.moderator,
            participant_id=i.participant_id,
            url=f"{base}/consult/{consultation_id}?token={token}",
            token=token,
            expires_at=i.expires_at,
        )
        for i, token in invites
    ]


@router.get("/{consultation_id}/participants", response_model=list[ParticipantOut])
async def participants(ctx: Ctx, live: VideoRooms, _: Moderator, consultation_id: str) -> list[dict[str, Any]]:
    return await flows.participants(ctx, live, consultation_id)


@router.post("/{consultation_id}/participants/{invite_id}/mute", status_code=204)
async def mute(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, invite_id: str, body: Switch) -> None:
    await flows.mute(ctx, live, who, consultation_id, invite_id, body.on)


@router.delete("/{consultation_id}/participants/{invite_id}", status_code=204)
async def remove(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, invite_id: str) -> None:
    await flows.remove(ctx, live, who, consultation_id, invite_id)


@router.post("/{consultation_id}/lock", response_model=ConsultationOut)
async def lock(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, body: Switch) -> ConsultationOut:
    return ConsultationOut.model_validate(await flows.lock(ctx, live, who, consultation_id, body.on))


@router.post("/{consultation_id}/recording", response_model=ConsultationOut)
async def recording(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, body: Switch) -> ConsultationOut:
    return ConsultationOut.model_validate(await flows.record(ctx, live, who, consultation_id, body.on))


@router.post("/{consultation_id}/feeds", status_code=201, response_model=ParticipantOut)
async def add_feed(ctx: Ctx, live: VideoRooms, who: Officer, consultation_id: str, body: FeedCreate) -> ParticipantOut:
    invite = await flows.add_feed(ctx, live, who.username, consultation_id, body.url, body.site)
    return ParticipantOut(
        participant_id=invite.participant_id, site=invite.site, invite_id=invite.id, talking=False, publisher=False
    )


@router.post("/{consultation_id}/cameras", status_code=201, response_model=ParticipantOut)
async def add_camera(
    ctx: Ctx, live: VideoRooms, cameras: CameraRegistry, who: Officer, consultation_id: str, body: CameraCreate
) -> ParticipantOut:
    """A camera of the registry as a site of the room in one action (RTSP: its feed; GB/T 28181: the channel's live
    stream, shared with the camera wall)."""
    invite = await flows.add_camera(ctx, live, cameras, who.username, consultation_id, body.camera_id, body.channel_id)
    return ParticipantOut(
        participant_id=invite.participant_id, site=invite.site, invite_id=invite.id, talking=False, publisher=False
    )


@router.post("/{consultation_id}/phones", status_code=201, response_model=PhoneDialOut)
async def dial_out(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, body: PhoneDial) -> PhoneDialOut:
    """Call a directory contact into the consultation: their numbers in priority order, the first to answer joins."""
    dialled = await flows.dial_out(ctx, live, who, consultation_id, body.contact_id, body.ring_seconds)
    return PhoneDialOut(**dialled)


@router.post("/{consultation_id}/phones/{phone_id}/mute", status_code=204)
async def mute_phone(
    ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, phone_id: str, body: Switch
) -> None:
    await flows.mute_phone(ctx, live, who, consultation_id, phone_id, body.on)


@router.delete("/{consultation_id}/phones/{phone_id}", status_code=204)
async def remove_phone(ctx: Ctx, live: VideoRooms, who: Moderator, consultation_id: str, phone_id: str) -> None:
    await flows.remove_phone(ctx, live, who, consultation_id, phone_id)
