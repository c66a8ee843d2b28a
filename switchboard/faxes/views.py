"""Fax routes. Sending answers 201 once every recipient's job is written (the document already converted); each
fax's progress follows over WS /api/v1/events (fax.queued, fax.retrying, fax.sent, fax.failed, fax.received)."""

import contextlib
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from recording.store import RecordingStore
from sip.calls import normalise_number
from sip.fax.service import FaxService, Recipient
from switchboard.api.deps import Ctx, require, telephony_part
from switchboard.auth.models import Principal, Role
from switchboard.core.audit import service as audit
from switchboard.core.errors import InvalidInput, NotFound
from switchboard.core.fields import ShortText
from switchboard.directory import service as directory
from switchboard.directory.models import ContactKind, ContactOut
from switchboard.faxes.models import BatchOut, FaxOut
from switchboard.incidents import service as incidents

router = APIRouter(prefix="/api/v1/faxes", tags=["faxes"])
Officer = Annotated[Principal, Depends(require(Role.duty_officer, Role.leader))]
_SPLIT = re.compile(r"[\s,;，；、]+")


Faxes = Annotated[FaxService, Depends(telephony_part("faxes", "，无法收发传真"))]


def _items(text: str) -> list[str]:
    return [item for item in _SPLIT.split(text or "") if item]


def _fax_numbers(contact: ContactOut) -> list[str]:
    """The contact's fax numbers that can be dialled (a number reaches the dial string only in this form)."""
    numbers = []
    for point in contact.contacts:
        if point.kind == ContactKind.fax:
            with contextlib.suppress(InvalidInput):
                numbers.append(normalise_number(point.value.lstrip("+")))
    return numbers


async def _recipients(
    ctx: Ctx, numbers: str, contact_ids: str, group_ids: str
) -> tuple[list[Recipient], list[dict[str, str]]]:
    """Numbers as given, each contact's fax number, each group member's fax number; one job per number."""
    found: dict[str, Recipient] = {}
    skipped: list[dict[str, str]] = []
    for raw in _items(numbers):
        number = normalise_number(raw, field="numbers")
        known = await directory.find_by_number(ctx, number)
        found.setdefault(number, Recipient(number, known.name if known else "", known.id if known else None))
    people: list[ContactOut] = []
    for contact_id in _items(contact_ids):
        try:
            contact = await directory.get_contact(ctx, contact_id)
        except NotFound:
            raise InvalidInput(f"联系人 {contact_id} 不存在", field="contact_ids") from None
        if not _fax_numbers(contact):
            raise InvalidInput(f"联系人 {contact.name} 没有登记传真号码", field="contact_ids")
        people.append(contact)
    for group_id in _items(group_ids):
        try:
            members = await directory.group_members(ctx, group_id)
        except NotFound:
            raise InvalidInput(f"分组 {group_id} 不存在", field="group_ids") from None
        for member in members:
            if _fax_numbers(member):
                people.append(member)
            else:
                skipped.append({"name": member.name, "reason": "没有登记传真号码"})
    for person in people:
        number = _fax_numbers(person)[0]
        found.setdefault(number, Recipient(number, person.name, person.id))
    if not found:
        raise InvalidInput("请至少指定一个收件人（号码、联系人或分组）", field="numbers")
    return list(found.values()), skipped


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
    title = ""
    if incident_id:
        try:
            title = (await incidents.get(ctx, incident_id)).title
        except NotFound:
            raise InvalidInput(f"事件 {incident_id} 不存在", field="incident_id") from None
    recipients, skipped = await _recipients(ctx, numbers, contact_ids, group_ids)
    limit = ctx.settings.fax.max_upload_mb * 1024 * 1024
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"文件超过 {ctx.settings.fax.max_upload_mb} MB", field="file")
    cover_values = None
    if cover:
        names = "、".join(r.name or r.number for r in recipients[:5]) + ("等" if len(recipients) > 5 else "")
        cover_values = {
            "recipients": names,
            "incident": title,
            "subject": subject,
            "note": note,
        }
    sent = await faxes.submit(
        who.username,
        data,
        recipients,
        document_name=file.filename or "",
        incident_id=incident_id,
        cover=cover_values,
    )
    async with ctx.db.session() as session:
        detail = {"numbers": [r.number for r in recipients], "pages": sent[0].pages_total, "incident_id": incident_id}
        await audit.record(session, who.username, "fax.send", "fax_batch", sent[0].batch_id or "", detail)
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
async def document(request: Request, faxes: Faxes, _: Officer, fax_id: str) -> FileResponse:
    """A received fax as its PDF (from the recording store); a sent one as the TIFF-F that went out."""
    fax = await faxes.get(fax_id)
    if fax.direction == "in":
        if not fax.recording_id:
            raise NotFound("该传真没有接收到文件", field="fax_id")
        store: RecordingStore = request.app.state.recordings
        path = store.path_of(await store.get(fax.recording_id))
        return FileResponse(path, media_type="application/pdf", filename=f"{fax.id}.pdf")
    path = faxes.document_path(fax)
    if not path.is_file():
        raise NotFound("发送的文档已不存在", field="fax_id")
    return FileResponse(path, media_type="image/tiff", filename=f"{fax.id}.tif")
