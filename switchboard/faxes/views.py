"""Fax routes. Sending answers 201 once every recipient's job is written (the document already converted); each
fax's progress follows over WS /api/v1/events (fax.queued, fax.retrying, fax.sent, fax.failed, fax.received)."""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from switchboard.api.deps import Ctx, Faxes, Officer, Recordings
from switchboard.core.errors import InvalidInput, NotFound
from switchboard.core.fields import ShortText
from switchboard.faxes import flows
from switchboard.faxes.models import BatchOut, FaxOut

router = APIRouter(prefix="/api/v1/faxes", tags=["faxes"])


@router.post("", status_code=201, response_model=BatchOut)
async def send(
    ctx: Ctx,
    faxes: Faxes,
    who: Officer,
    file: Annotated[UploadFile, File(description="PDF, JPEG, PNG or TIFF")],
    numbers: Annotated[str, Form(max_length=4000, description="fax numbers, separated by commas or spaces")] = "",
    contact_ids: Annotated[str, Form(max_length=4000, description="directory contacts (their fax number)")] = "",
    group_ids: Annotated[str, Form(max_length=2000, description="directory groups (each member's fax number)")] = "",
    incident_id: Annotated[str | None, Form(max_length=26)] = None,
    cover: Annotated[bool, Form(description="put a cover page in front")] = False,
    subject: Annotated[ShortText, Form()] = "",  # type: ignore[valid-type]
    note: Annotated[str, Form(max_length=2000)] = "",
) -> BatchOut:
    limit = ctx.settings.fax.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"文件超过 {ctx.settings.fax.max_upload_mb} MB", field="file")
    sent, skipped = await flows.send(
        ctx,
        faxes,
        who.username,
        data,
        document_name=file.filename or "",
        to_numbers=flows.items(numbers),
        contact_ids=flows.items(contact_ids),
        group_ids=flows.items(group_ids),
        incident_id=incident_id,
        cover={"subject": subject, "note": note} if cover else None,
    )
    return BatchOut(
        batch_id=sent[0].batch_id or "",
        pages=sent[0].pages_total,
        faxes=[FaxOut.model_validate(f) for f in sent],
        skipped=skipped,
    )


@router.get("", response_model=list[FaxOut])
async def search(
    faxes: Faxes,
    _: Officer,
    direction: Literal["in", "out"] | None = None,
    incident_id: Annotated[str | None, Query(max_length=26)] = None,
    batch_id: Annotated[str | None, Query(max_length=26)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FaxOut]:
    """Newest first; `direction=in` is the inbox."""
    found = await faxes.search(
        direction=direction, incident_id=incident_id, batch_id=batch_id, state=state, limit=limit
    )
    return [FaxOut.model_validate(f) for f in found]


@router.get("/{fax_id}", response_model=FaxOut)
async def get(faxes: Faxes, _: Officer, fax_id: str) -> FaxOut:
    return FaxOut.model_validate(await faxes.get(fax_id))


@router.get("/{fax_id}/document", response_class=FileResponse)
async def document(faxes: Faxes, store: Recordings, _: Officer, fax_id: str) -> FileResponse:
    """A received fax as its PDF (from the recording store); a sent one as the TIFF-F that went out."""
    fax = await faxes.get(fax_id)
    if fax.direction == "in":
        if not fax.recording_id:
            raise NotFound("该传真没有接收到文件", field="fax_id")
        path = store.path_of(await store.get(fax.recording_id))
        # Shown inside the console's fax page: this one response may be framed by this server's own pages.
        framed = {"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "frame-ancestors 'self'"}
        return FileResponse(
            path,
            media_type="application/pdf",
            filename=f"{fax.id}.pdf",
            headers=framed,
            content_disposition_type="inline",
        )
    path = faxes.document_path(fax)
    if not path.is_file():
        raise NotFound("发送的文档已不存在", field="fax_id")
    return FileResponse(path, media_type="image/tiff", filename=f"{fax.id}.tif")
