"""Directory routes: import and export of the contact network, search, groups, duty roster."""

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response

from switchboard.api.deps import Ctx, DutyOfficer, Reader
from switchboard.core.db import utcnow
from switchboard.core.errors import InvalidInput
from switchboard.core.events import Event
from switchboard.core.fields import Instant, SearchText
from switchboard.directory import importer, service
from switchboard.directory.models import (
    ID_PATTERN,
    ContactOut,
    GroupOut,
    ImportResult,
    OrgCode,
    OrgOut,
    ShiftCreate,
    ShiftOut,
)

router = APIRouter(prefix="/api/v1/directory", tags=["directory"])

Id = Annotated[str, Path(pattern=ID_PATTERN)]
_IMPORTERS = frozenset({"duty_officer"})
_CSV_TYPES = {"text/csv", "application/csv", "application/vnd.ms-excel"}


@router.post("/import", response_model=ImportResult)
async def import_directory(
    ctx: Ctx,
    who: DutyOfficer,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX, at most 20 MB")],
) -> ImportResult:
    name = (file.filename or "").lower()
    content_type = (file.content_type or "").split(";")[0].strip().lower()
    is_known = name.endswith((".csv", ".xlsx")) or content_type in _CSV_TYPES | {service.XLSX_TYPE}
    if not is_known:
        raise InvalidInput("只能导入 .csv 或 .xlsx 文件", field="file")
    data = await file.read(importer.MAX_BYTES + 1)
    if len(data) > importer.MAX_BYTES:
        raise InvalidInput("文件超过 20 MB", field="file")
    if not data:
        raise InvalidInput("文件为空", field="file")
    filename = file.filename or ("contacts.xlsx" if content_type == service.XLSX_TYPE else "contacts.csv")

    def progress(done: int, total: int) -> None:  # to the importer's console, as each chunk of rows is written
        data = {"done": done, "total": total}
        ctx.bus.announce(Event("directory.import_progress", actor=who.username, data=data, audience=_IMPORTERS))

    return await importer.import_contacts(ctx, who.username, data, filename, progress)


@router.get("/contacts", response_model=list[ContactOut])
async def search_contacts(
    ctx: Ctx,
    _: Reader,
    q: Annotated[SearchText, Query(description="name, pinyin initials, title, organisation or contact value")] = "",
    org: Annotated[OrgCode | None, Query(description="only the people filed under this organisation code")] = None,  # type: ignore[valid-type]
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ContactOut]:
    return await service.search_contacts(ctx, q, limit, org)


@router.get("/callers", response_model=list[ContactOut])
async def callers(
    ctx: Ctx, _: Reader, number: Annotated[str, Query(min_length=2, max_length=40, pattern=r"^[0-9+]+$")]
) -> list[ContactOut]:
    """Who may be calling from `number`: every contact with it (an office line can be several people's)."""
    return await service.callers(ctx, number)


@router.get("/organisations", response_model=list[OrgOut])
async def organisations(ctx: Ctx, _: Reader) -> list[OrgOut]:
    return await service.organisations(ctx)


@router.get("/contacts/{contact_id}", response_model=ContactOut)
async def get_contact(ctx: Ctx, _: Reader, contact_id: Id) -> ContactOut:
    return await service.get_contact(ctx, contact_id)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, service.XLSX_TYPE: {}}, "description": "the import layout"}},
)
async def export_directory(ctx: Ctx, _: Reader, format: Literal["csv", "xlsx"] = "csv") -> Response:
    return _spreadsheet(await service.export(ctx, format), format, f"directory-{utcnow():%Y%m%d-%H%M%S}")


@router.get(
    "/template",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, service.XLSX_TYPE: {}}, "description": "headers and an example row"}},
)
async def import_template(_: Reader, format: Literal["csv", "xlsx"] = "xlsx") -> Response:
    """A file to fill in for the import: the Chinese column names and one example row."""
    return _spreadsheet(service.template(format), format, "directory-template")


def _spreadsheet(data: bytes, format: str, stem: str) -> Response:
    """A CSV or XLSX file as a download named `stem`.<format>."""
    media_type = "text/csv; charset=utf-8" if format == "csv" else service.XLSX_TYPE
    disposition = f'attachment; filename="{stem}.{format}"'
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/groups", response_model=list[GroupOut])
async def list_groups(ctx: Ctx, _: Reader) -> list[GroupOut]:
    return [
        GroupOut(id=g.id, name=g.name, description=g.description, member_count=count)
        for g, count in await service.list_groups(ctx)
    ]


@router.get("/groups/{group_id}/members", response_model=list[ContactOut])
async def group_members(ctx: Ctx, _: Reader, group_id: Id) -> list[ContactOut]:
    return await service.group_members(ctx, group_id)


@router.post("/roster", status_code=201, response_model=ShiftOut)
async def add_shift(ctx: Ctx, who: DutyOfficer, body: ShiftCreate) -> ShiftOut:
    shift = await service.add_shift(
        ctx, who.username, body.org_code, body.person_id, body.role, body.starts_at, body.ends_at
    )
    person = await service.get_contact(ctx, shift.person_id)
    return ShiftOut(
        id=shift.id,
        org_code=body.org_code,
        role=shift.role,
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        person=person,
    )


@router.get("/roster", response_model=list[ShiftOut])
async def on_duty(
    ctx: Ctx,
    _: Reader,
    org_code: Annotated[OrgCode, Query()],  # type: ignore[valid-type]
    at: Annotated[Instant | None, Query(description="the instant asked about; now when absent")] = None,
) -> list[ShiftOut]:
    return [
        ShiftOut(
            id=shift.id,
            org_code=org_code,
            role=shift.role,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            person=person,
        )
        for shift, person in await service.on_duty(ctx, org_code, at or utcnow())
    ]
