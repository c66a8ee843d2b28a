"""Recording routes. Playback streams the stored file (FileResponse answers Range requests with 206)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard.api.deps import Officer, Recordings, require
from switchboard.auth.models import Principal, Role
from switchboard.core.fields import SearchText, text

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])
MEDIA_TYPES = {"wav": "audio/wav", "gsm": "audio/x-gsm", "pdf": "application/pdf", "mp4": "video/mp4"}
MEDIA_TYPES |= {"webm": "video/webm", "opus": "audio/ogg"}  # consultation recordings (VP8 video, Opus audio)
MEDIA_TYPES["jpg"] = "image/jpeg"  # camera wall snapshots
# Holding overrides the retention policy and releasing lets a recording go: a decision for whoever answers for the
# duty room's record (leaders; admins always), not for the officer on shift whose own calls are in it.
Leader = Annotated[Principal, Depends(require(Role.leader))]


class RecordingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    incident_id: str | None
    kind: str
    source_id: str | None
    parties: list[dict[str, Any]]
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    format: str
    video: bool
    label: str = Field(description="what the record calls it: 通话录音, 会商录像 (a site's video), 会商录音 ...")
    size: int
    sha256: str
    held: bool
    hold_reason: str
    held_by: str | None
    held_at: datetime | None


class HoldIn(BaseModel):
    reason: text(500, min_length=2)  # type: ignore[valid-type]


@router.get("", response_model=list[RecordingOut])
async def search(
    store: Recordings,
    _: Officer,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    party: Annotated[SearchText | None, Query(description="a party's name, number or contact id")] = None,  # type: ignore[valid-type]
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RecordingOut]:
    found = await store.search(incident_id=incident_id, party=party, since=since, until=until, limit=limit)
    return [RecordingOut.model_validate(r) for r in found]


@router.get("/export", response_class=Response, responses={200: {"content": {"application/zip": {}}}})
async def export(
    store: Recordings, _: Officer, incident_id: Annotated[str, Query(min_length=1, max_length=26)]
) -> Response:
    archive = await store.export(incident_id)
    headers = {"Content-Disposition": f'attachment; filename="recordings-{incident_id}.zip"'}
    return Response(archive, media_type="application/zip", headers=headers)


@router.get("/{recording_id}", response_model=RecordingOut)
async def get(store: Recordings, _: Officer, recording_id: str) -> RecordingOut:
    return RecordingOut.model_validate(await store.get(recording_id))


@router.get("/{recording_id}/audio", response_class=FileResponse, responses={206: {"description": "a byte range"}})
async def audio(store: Recordings, _: Officer, recording_id: str) -> FileResponse:
    recording = await store.get(recording_id)
    media_type = MEDIA_TYPES.get(recording.format, "application/octet-stream")
    return FileResponse(store.path_of(recording), media_type=media_type, filename=f"{recording.id}.{recording.format}")


@router.post("/{recording_id}/hold", response_model=RecordingOut)
async def hold(store: Recordings, who: Leader, recording_id: str, body: HoldIn) -> RecordingOut:
    """Keep the recording past its retention term (audited with the reason) until released."""
    return RecordingOut.model_validate(await store.hold(recording_id, who.username, body.reason))


@router.delete("/{recording_id}/hold", response_model=RecordingOut)
async def release(store: Recordings, who: Leader, recording_id: str, body: HoldIn) -> RecordingOut:
    """Release the hold (audited with the reason): retention applies again."""
    return RecordingOut.model_validate(await store.hold(recording_id, who.username, body.reason, held=False))
