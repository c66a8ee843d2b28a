"""Directory operations: division seeding, contact search and export, groups, duty roster.

Writes open one transaction, audit inside it, and publish their event only after the commit.
"""

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from functools import cache

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Select, bindparam, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, contains_eager

from switchboard.core import numbers
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import get_or_404
from switchboard.core.divisions import all_divisions, full_name
from switchboard.core.errors import InvalidInput, NotFound
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.core.spreadsheet import neutralised
from switchboard.directory.models import (
    CONTACT_KIND_NAMES,
    VOICE_KINDS,
    ContactKind,
    ContactOut,
    ContactPoint,
    ContactPointOut,
    DutyShift,
    Group,
    GroupMember,
    Organisation,
    OrgLevel,
    OrgOut,
    Person,
)

# The spreadsheet layout, shared by import and export so that an export imports back unchanged.
COLUMNS = (
    "organisation",
    "department",
    "name",
    "title",
    "roles",
    *(kind.value for kind in ContactKind),
    "groups",
    "call_order",
)
# The same columns under the names a Chinese spreadsheet gives them: the import takes either, the template uses these.
CHINESE_COLUMNS = {
    "organisation": "单位代码",
    "department": "部门",
    "name": "姓名",
    "title": "职务",
    "roles": "角色",
    **{kind.value: CONTACT_KIND_NAMES[kind] for kind in ContactKind},
    "groups": "分组",
    "call_order": "呼叫顺序",
}
_EXAMPLE = {
    "organisation": "140105",
    "department": "应急管理局",
    "name": "张三",
    "title": "科长",
    "roles": "值班员",
    "office_phone": "0351-4012345",
    "mobile": "13800138000",
    "email": "zhangsan@example.cn",
    "groups": "防汛组",
    "call_order": "手机;办公电话",
}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_LEVEL_RANK = {"province": 0, "city": 1, "county": 2}
_KIND_RANK = {kind: rank for rank, kind in enumerate(ContactKind)}
_LOCK_KEY = 0x5357_4449_5200  # "SWDIR": PostgreSQL advisory lock of directory writers


async def lock_directory(session: AsyncSession) -> None:
    """Serialise writers that create rows found by name (divisions, departments, groups, people have no unique
    key to race on). SQLite needs nothing: its write transactions start with BEGIN IMMEDIATE."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


async def ensure_divisions(ctx: Context) -> int:
    """Create the province, city and county organisations of the shipped GB/T 2260 dataset that are missing."""
    divisions = all_divisions()
    async with ctx.db.reader() as session:
        present = set(await session.scalars(select(Organisation.code).where(Organisation.code.in_(divisions))))
    if present >= divisions.keys():
        return 0
    async with ctx.db.session() as session:
        await lock_directory(session)
        ids = dict(
            (
                await session.execute(
                    select(Organisation.code, Organisation.id).where(Organisation.code.in_(divisions))
                )
            ).all()
        )
        rows = []
        for division in sorted(divisions.values(), key=lambda d: (_LEVEL_RANK[d.level], d.code)):
            if division.code in ids:
                continue
            ids[division.code] = new_id()
            rows.append(
                {
                    "id": ids[division.code],
                    "code": division.code,
                    "name": division.name,
                    "level": division.level,
                    "parent_id": ids.get(division.parent_code or ""),
                    "area_code": division.code,
                }
            )
        if rows:
            await session.execute(insert(Organisation), rows)
            detail = {"created": len(rows)}
            await audit.record(session, "system", "directory.seed_divisions", "organisation", "gb2260", detail)
    return len(rows)


@cache
def _area_full_names() -> dict[str, str]:
    return {code: full_name(code) for code in all_divisions()}


def org_display_name(org: Organisation) -> str:
    """Unambiguous across the province: 城区 exists in several cities, departments share names across areas."""
    area = _area_full_names().get(org.area_code, "")
    return f"{area}{org.name}" if org.level == OrgLevel.department else area or org.name


def _contact_rank(contact: ContactPoint | ContactPointOut) -> tuple[int, int, int]:
    """Voice contacts first in the order to call them, then fax, email, Telegram each by priority."""
    if contact.kind in VOICE_KINDS:
        return 0, contact.priority, _KIND_RANK[ContactKind(contact.kind)]
    return 1, _KIND_RANK[ContactKind(contact.kind)], contact.priority


def contact_out(person: Person) -> ContactOut:
    return ContactOut(
        id=person.id,
        name=person.name,
        title=person.title,
        roles=person.roles,
        org_code=person.org.code,
        org_name=org_display_name(person.org),
        contacts=[ContactPointOut.model_validate(c) for c in sorted(person.contacts, key=_contact_rank)],
    )


PHONES = (ContactKind.office_phone, ContactKind.mobile, ContactKind.home_phone)  # a SIP URI is no number


def dial_numbers(contact: ContactOut, kinds: tuple[ContactKind, ...] = PHONES) -> list[tuple[str, ContactKind]]:
    """(number, kind) of a contact's numbers of `kinds` as they reach a dial string, in the order to call them: the
    one way from the directory to a number, for dispatch and convene (their fallback order), fax and the duty desk."""
    return [(numbers.dialled(c.value), c.kind) for c in contact.contacts if c.kind in kinds]


def _people() -> Select[tuple[Person]]:
    return (
        select(Person)
        .join(Person.org)
        .options(contains_eager(Person.org))
        .order_by(Organisation.code, Person.name, Person.id)
    )


async def organisations(ctx: Context) -> list[OrgOut]:
    """The whole contact network's tree (province, cities, counties, departments) as a flat list with parents and
    head counts: a few hundred rows that the console folds into a tree; the people come per node, on demand."""
    counts = select(Person.org_id, func.count(Person.id).label("people")).group_by(Person.org_id).subquery()
    parent = aliased(Organisation)
    query = (
        select(Organisation, parent.code, func.coalesce(counts.c.people, 0))
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .outerjoin(counts, counts.c.org_id == Organisation.id)
        .order_by(Organisation.code)
    )
    async with ctx.db.reader() as session:
        rows = (await session.execute(query)).all()
    return [
        OrgOut(code=o.code, name=o.name, level=OrgLevel(o.level), parent_code=parent_code, people=people)
        for o, parent_code, people in rows
    ]


async def search_contacts(ctx: Context, q: str, limit: int, org_code: str | None = None) -> list[ContactOut]:
    """Match name, its pinyin initials ("zjg" finds 张建国), title, organisation (a division's name also finds the
    departments and counties within it) and contact values (a phone number matches however it is spaced or dashed)."""
    query = _people()
    if org_code:
        query = query.where(Organisation.code == org_code)
    q = q.strip()
    if q:
        values = [ContactPoint.value.icontains(q, autoescape=True)]
        if numbers.is_number(q) and (digits := numbers.cleaned(q)) != q:
            values.append(ContactPoint.value.contains(digits, autoescape=True))
        areas = [code for code, name in _area_full_names().items() if q in name]
        spelled = [Person.initials.contains(q.lower(), autoescape=True)] if q.isascii() and q.isalpha() else []
        query = query.where(
            or_(
                *spelled,
                Person.name.icontains(q, autoescape=True),
                Person.title.icontains(q, autoescape=True),
                Organisation.name.icontains(q, autoescape=True),
                Organisation.code.startswith(q, autoescape=True),
                Organisation.area_code.in_(areas),
                Person.id.in_(select(ContactPoint.person_id).where(or_(*values))),
            )
        )
    async with ctx.db.reader() as session:
        return [contact_out(p) for p in await session.scalars(query.limit(limit))]


async def callers(ctx: Context, number: str) -> list[ContactOut]:
    """Everyone one of whose phone contact points is exactly this number: a shared office line names several."""
    return (await _owners(ctx, [number], 20)).get(number, [])


async def find_by_number(ctx: Context, number: str) -> ContactOut | None:
    """Who is calling: the first of the people with this number."""
    return (await find_by_numbers(ctx, [number])).get(number)


async def find_by_numbers(ctx: Context, numbers: list[str]) -> dict[str, ContactOut]:
    """`find_by_number` for many numbers in one query (a convene names up to a bridge's worth)."""
    return {number: found[0] for number, found in (await _owners(ctx, numbers, 20 * len(numbers))).items()}


_PHONE_KINDS = [k.value for k in (*VOICE_KINDS, ContactKind.fax)]
_ANY_OWNER = select(
    select(ContactPoint.id)
    .where(ContactPoint.value.in_(bindparam("numbers", expanding=True)), ContactPoint.kind.in_(_PHONE_KINDS))
    .exists()
)


async def _owners(ctx: Context, numbers: list[str], limit: int) -> dict[str, list[ContactOut]]:
    """The people one of whose phone contact points is exactly each of `numbers`, in the directory's order."""
    found: dict[str, list[ContactOut]] = {}
    async with ctx.db.reader() as session:
        if not await session.scalar(_ANY_OWNER, {"numbers": numbers}):
            return found  # a number nobody in the directory has: no people to load (a third of placing a call)
        query = _people().add_columns(ContactPoint.value).join(ContactPoint, ContactPoint.person_id == Person.id)
        query = query.where(ContactPoint.value.in_(numbers), ContactPoint.kind.in_(_PHONE_KINDS)).limit(limit)
        for person, number in (await session.execute(query)).unique():
            people = found.setdefault(number, [])
            if all(p.id != person.id for p in people):
                people.append(contact_out(person))
    return found


async def caller(ctx: Context, number: str) -> dict[str, str] | None:
    """Who is calling from `number`, as inbound call and fax events name them."""
    contact = await find_by_number(ctx, number)
    return {"name": contact.name, "org": contact.org_name, "contact_id": contact.id} if contact else None


async def get_contact(ctx: Context, person_id: str) -> ContactOut:
    async with ctx.db.reader() as session:
        return contact_out(await get_or_404(session, Person, person_id, what="联系人", field="contact_id"))


async def contact_for(ctx: Context, person_id: str, *, field: str) -> ContactOut:
    """A contact a request body names: a 422 on `field` when there is none (the request is wrong, not the URL)."""
    try:
        return await get_contact(ctx, person_id)
    except NotFound:
        raise InvalidInput(f"联系人 {person_id} 不存在", field=field) from None


async def export(ctx: Context, fmt: str) -> bytes:
    """The whole directory as CSV (UTF-8 with BOM, so Excel reads the Chinese) or XLSX, in the import layout.

    Plain column queries, not ORM objects: 10,000 people export in about a second."""
    people_query = (
        select(Person.id, Organisation.area_code, Organisation.name, Organisation.level)
        .add_columns(Person.name, Person.title, Person.roles)
        .join(Organisation, Organisation.id == Person.org_id)
        .order_by(Organisation.code, Person.name, Person.id)
    )
    async with ctx.db.reader() as session:
        people = (await session.execute(people_query)).all()
        points = await session.execute(
            select(ContactPoint.person_id, ContactPoint.kind, ContactPoint.value).order_by(
                ContactPoint.priority, ContactPoint.id
            )
        )
        contacts: dict[str, list[tuple[str, str]]] = {}
        for person_id, kind, value in points:
            contacts.setdefault(person_id, []).append((kind, value))
        memberships = await session.execute(
            select(GroupMember.person_id, Group.name).join(Group, Group.id == GroupMember.group_id).order_by(Group.name)
        )
        groups: dict[str, list[str]] = {}
        for person_id, name in memberships:
            groups.setdefault(person_id, []).append(name)
    rows = []
    for person_id, area_code, org_name, level, name, title, roles in people:
        own = contacts.get(person_id, [])
        call_order = dict.fromkeys(kind for kind, _ in own if kind in VOICE_KINDS)
        rows.append(
            [
                area_code,
                org_name if level == OrgLevel.department else "",
                name,
                title,
                ";".join(roles),
                *(";".join(value for k, value in own if k == kind) for kind in ContactKind),
                ";".join(groups.get(person_id, [])),
                ";".join(call_order),
            ]
        )
    return await asyncio.to_thread(_to_csv if fmt == "csv" else _to_xlsx, COLUMNS, rows)


def template(fmt: str) -> bytes:
    """An empty directory to fill in: the Chinese headers and one example row."""
    headers = tuple(CHINESE_COLUMNS[column] for column in COLUMNS)
    example = [_EXAMPLE.get(column, "") for column in COLUMNS]
    return (_to_csv if fmt == "csv" else _to_xlsx)(headers, [example])


def _to_csv(headers: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows([neutralised(value) for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def _to_xlsx(headers: tuple[str, ...], rows: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("联络网")
    sheet.append(headers)
    for row in rows:
        sheet.append([_string_cell(sheet, value) if value.startswith("=") else value or None for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _string_cell(sheet: object, value: str) -> WriteOnlyCell:
    """Text, not a formula: openpyxl would otherwise write a string starting with = as one."""
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"
    return cell


async def list_groups(ctx: Context) -> list[tuple[Group, int]]:
    query = (
        select(Group, func.count(GroupMember.person_id))
        .outerjoin(GroupMember, GroupMember.group_id == Group.id)
        .group_by(Group.id)
        .order_by(Group.name)
    )
    async with ctx.db.reader() as session:
        return list((await session.execute(query)).all())


async def group_members(ctx: Context, group_id: str, *, field: str | None = None) -> list[ContactOut]:
    """The members of a group; a missing group is a 404, or a 422 on `field` when a request body named it."""
    return [contact async for batch in member_batches(ctx, group_id, field=field) for contact in batch]


async def member_batches(
    ctx: Context, group_id: str, *, field: str | None = None, size: int = 5000
) -> AsyncIterator[list[ContactOut]]:
    """A group's members `size` at a time, for a list too long to hold whole: a warning's group of 100,000 held as
    contacts peaked at 467 MB. Built from column rows, not ORM objects (as objects, 8 s at 20,000)."""
    member = select(GroupMember.person_id).where(GroupMember.group_id == group_id)
    async with ctx.db.reader() as session:
        if await session.get(Group, group_id) is None:
            error = InvalidInput if field else NotFound
            raise error(f"分组 {group_id} 不存在", field=field or "group_id")
        people = (
            await session.execute(
                select(Person.id, Person.name, Person.title, Person.roles, Person.org_id)
                .join(Organisation, Organisation.id == Person.org_id)
                .where(Person.id.in_(member))
                .order_by(Organisation.code, Person.name, Person.id)
            )
        ).all()
        orgs = select(Person.org_id).where(Person.id.in_(member))
        names = {
            o.id: (o.code, org_display_name(o))
            for o in await session.scalars(select(Organisation).where(Organisation.id.in_(orgs)))
        }
        for start in range(0, len(people), size):
            batch = people[start : start + size]
            points: dict[str, list[ContactPointOut]] = {}
            query = (
                select(ContactPoint.person_id, ContactPoint.kind, ContactPoint.value, ContactPoint.priority)
                .where(ContactPoint.person_id.in_([row[0] for row in batch]))
                .order_by(ContactPoint.priority)
            )
            for person_id, kind, value, priority in await session.execute(query):
                point = ContactPointOut.model_construct(kind=ContactKind(kind), value=value, priority=priority)
                points.setdefault(person_id, []).append(point)
            yield [
                ContactOut.model_construct(
                    id=person_id,
                    name=name,
                    title=title,
                    roles=roles,
                    org_code=names[org_id][0],
                    org_name=names[org_id][1],
                    contacts=sorted(points.get(person_id, []), key=_contact_rank),
                )
                for person_id, name, title, roles, org_id in batch
            ]


async def add_shift(
    ctx: Context, actor: str, org_code: str, person_id: str, role: str, starts_at: datetime, ends_at: datetime
) -> DutyShift:
    if ends_at <= starts_at:
        raise InvalidInput("值班结束时间必须晚于开始时间", field="ends_at")
    if org_code in all_divisions():
        await ensure_divisions(ctx)
    async with ctx.db.session() as session:
        org_id = await session.scalar(select(Organisation.id).where(Organisation.code == org_code))
        if org_id is None:
            raise InvalidInput(f"单位 {org_code} 不存在", field="org_code")
        name = await session.scalar(select(Person.name).where(Person.id == person_id))
        if name is None:
            raise InvalidInput(f"联系人 {person_id} 不存在", field="person_id")
        shift = DutyShift(org_id=org_id, person_id=person_id, role=role, starts_at=starts_at, ends_at=ends_at)
        session.add(shift)
        await session.flush()
        detail = {
            "org_code": org_code,
            "person_id": person_id,
            "name": name,
            "role": role,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
        }
        await audit.record(session, actor, "directory.shift_add", "duty_shift", shift.id, detail)
    await ctx.bus.publish(Event("directory.shift_added", actor=actor, data={"shift_id": shift.id, **detail}))
    return shift


async def on_duty(ctx: Context, org_code: str, at: datetime) -> list[tuple[DutyShift, ContactOut]]:
    """Shifts of the organisation covering the instant `at` (start inclusive, end exclusive), earliest first."""
    query = (
        select(DutyShift, Person)
        .join(Person, Person.id == DutyShift.person_id)
        .join(Organisation, Organisation.id == DutyShift.org_id)
        .where(Organisation.code == org_code, DutyShift.starts_at <= at, DutyShift.ends_at > at)
        .order_by(DutyShift.starts_at, DutyShift.id)
    )
    async with ctx.db.reader() as session:
        rows = (await session.execute(query)).all()
        if not rows and org_code not in all_divisions():
            if await session.scalar(select(Organisation.id).where(Organisation.code == org_code)) is None:
                raise NotFound(f"单位 {org_code} 不存在", field="org_code")
        return [(shift, contact_out(person)) for shift, person in rows]
