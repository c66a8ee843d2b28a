"""Contact-network import from CSV or XLSX.

Every row is validated and every rejection reported by the row number a spreadsheet user sees (header = 1);
good rows still import. Parsing runs off the event loop; the writes are batched (lookups preloaded into dicts,
bulk inserts per chunk) in one transaction, so 10,000 rows take seconds, not a query per row.
"""

import asyncio
import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from itertools import islice
from pathlib import PureWindowsPath
from typing import IO, Any

from openpyxl import load_workbook
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.core import numbers, spreadsheet
from switchboard.core.audit import service as audit
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.divisions import all_divisions, full_name
from switchboard.core.errors import InvalidInput, quoted
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.directory import service
from switchboard.directory.initials import initials
from switchboard.directory.models import (
    CONTACT_KIND_NAMES,
    VOICE_KINDS,
    ContactKind,
    ContactPoint,
    Group,
    GroupMember,
    ImportResult,
    Organisation,
    OrgLevel,
    Person,
    RejectedRow,
)

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
# An XLSX is a ZIP archive. Sheet XML compresses 5 to 20 times; a bomb (millions of blank rows, one huge shared
# string) thousands of times. Both limits are read from the archive's directory before anything is unpacked, and
# Python's zipfile never inflates a member past its declared size.
MAX_UNPACKED = 256 * 1024 * 1024
MAX_RATIO = 100
_ROW_TAG = re.compile(rb"<row[\s/>]")
CHUNK = 1000

Progress = Callable[[int, int], None]

HEADER_ALIASES = (
    {column: column for column in service.COLUMNS}
    | {chinese.lower(): column for column, chinese in service.CHINESE_COLUMNS.items()}
    | {"sip": "sip_uri"}
)
_CALL_ORDER_NAMES = (
    {kind.value: kind for kind in VOICE_KINDS}
    | {CONTACT_KIND_NAMES[kind].lower(): kind for kind in VOICE_KINDS}
    | {"sip": ContactKind.sip_uri}
)

_SPLIT_VALUES = re.compile(r"[;；]")
_SPLIT_NAMES = re.compile(r"[;；、，,]")
_EMAIL = re.compile(r"^[^@\s;,<>\"]+@[^@\s;,<>\"]+\.[^@\s;,<>\"]+$")
_TELEGRAM = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
# WeCom: 1-64 of letters, digits and _-@., beginning with a letter or digit (成员 UserID as the admin console allows)
_WECOM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-@.]{0,63}$")
_SIP = re.compile(r"^sips?:[A-Za-z0-9._~+\-]+@[A-Za-z0-9.\-]+(:\d{1,5})?$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NON_VOICE = tuple(kind for kind in ContactKind if kind not in VOICE_KINDS)
_KIND_COLUMNS = tuple((kind, kind.value) for kind in ContactKind)
_PHONE_KINDS = (ContactKind.office_phone, ContactKind.mobile, ContactKind.home_phone, ContactKind.fax)
_FORMATS = {
    ContactKind.email: (_EMAIL, "例如 name@example.cn"),
    ContactKind.telegram: (_TELEGRAM, "应为数字 chat id（可为负）或 @用户名"),
    ContactKind.wecom: (_WECOM, "应为企业微信账号（userid）：字母、数字和 _-@.，以字母或数字开头，至多 64 个字符"),
    ContactKind.sip_uri: (_SIP, "例如 sip:8001@10.0.0.1"),
}


class RowError(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class Entry:
    """One valid row, ready to write."""

    area_code: str
    department: str
    name: str
    title: str
    roles: list[str]
    contacts: list[tuple[ContactKind, str, int]]
    groups: list[str]


@dataclass
class Batch:
    entries: list[Entry] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    total: int = 0


async def import_contacts(
    ctx: Context, actor: str, data: bytes, filename: str, progress: Progress | None = None
) -> ImportResult:
    """Create or update a person per good row, matched by (organisation, name): a re-import replaces their
    contact points and groups instead of duplicating them."""
    filename = _safe_name(filename)
    batch = await asyncio.to_thread(read, data, filename)
    await service.ensure_divisions(ctx)
    async with ctx.db.session() as session:
        await service.lock_directory(session)
        writer = _Writer(session)
        await writer.prepare(batch.entries)
        done = len(batch.rejected)
        for start in range(0, len(batch.entries), CHUNK):
            chunk = batch.entries[start : start + CHUNK]
            await writer.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, batch.total)
        detail = {
            "file": filename,
            "created": writer.created,
            "updated": writer.updated,
            "rejected": len(batch.rejected),
            "departments_created": writer.departments_created,
            "groups_created": writer.groups_created,
        }
        await audit.record(session, actor, "directory.import", "directory", "contacts", detail)
    await ctx.bus.publish(Event("directory.imported", actor=actor, data=detail))
    if progress and not batch.entries:
        progress(batch.total, batch.total)
    return ImportResult(created=writer.created, updated=writer.updated, rejected=batch.rejected)


def _safe_name(filename: str) -> str:
    """The base name only, without control characters: it lands in the audit log."""
    return _CONTROL.sub("", PureWindowsPath(filename or "").name)[:200]


def read(data: bytes, filename: str) -> Batch:
    """Parse and validate the whole file; file-level problems (format, header) raise InvalidInput on "file"."""
    records = _xlsx_records(data) if _is_xlsx(data, filename) else _csv_records(data)
    columns: list[str | None] | None = None
    written: dict[str, str] = {}  # each column as the file's header names it (姓名, 手机 ...), for the errors
    batch = Batch()
    seen: dict[tuple[str, str, str], int] = {}
    for number, values in records:
        if number > MAX_ROWS + 1:  # every row counts, blank ones too: a sheet of empty rows is no cheaper to read
            raise InvalidInput(f"文件超过 {MAX_ROWS} 行，请分批导入", field="file")
        cells = [_cell_text(v) for v in values]
        if not any(cells):
            continue
        if columns is None:
            columns = _header(cells)
            written = {column: cell for column, cell in zip(columns, cells, strict=False) if column}
            continue
        batch.total += 1
        row = {name: cell for name, cell in zip(columns, cells, strict=False) if name}
        try:
            entry = _validate(row)
            key = (entry.area_code, entry.department, entry.name)
            if key in seen:
                raise RowError("name", f"与第 {seen[key]} 行重复（同一单位同名人员）")
            seen[key] = number
            batch.entries.append(entry)
        except RowError as exc:
            column = written.get(exc.field or "", exc.field or "")
            batch.rejected.append(RejectedRow(row=number, field=exc.field, column=column, reason=exc.reason))
    if columns is None:
        raise InvalidInput("文件为空：没有表头行", field="file")
    return batch


def _is_xlsx(data: bytes, filename: str) -> bool:
    """By content: an XLSX is a ZIP archive, whatever the name says."""
    return data.startswith(b"PK\x03\x04") or filename.lower().endswith(".xlsx")


def _csv_records(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            content = data.decode("gb18030")  # Excel on Chinese Windows saves CSV in GBK, a subset
        except UnicodeDecodeError:
            raise InvalidInput("无法识别文件编码：请保存为 UTF-8 或 GBK 编码的 CSV", field="file") from None
    try:
        # Row numbers count records, as a spreadsheet shows them, not lines: a quoted cell may span lines.
        yield from enumerate(csv.reader(io.StringIO(content, newline="")), start=1)
    except csv.Error as exc:
        raise InvalidInput(f"CSV 格式错误：{exc}", field="file") from None


def _check_archive(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise InvalidInput("不是有效的 XLSX 文件", field="file") from None
    if sum(m.file_size for m in members) > MAX_UNPACKED:
        raise InvalidInput(f"XLSX 解压后超过 {MAX_UNPACKED // 1024 // 1024} MB，请分批导入", field="file")
    if any(m.file_size > 1024 * 1024 and m.file_size > MAX_RATIO * max(m.compress_size, 1) for m in members):
        raise InvalidInput("XLSX 文件的压缩比异常（疑似压缩炸弹），已拒绝", field="file")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in members:
            if member.filename.startswith("xl/worksheets/") and _rows_over(archive.open(member), MAX_ROWS + 1):
                raise InvalidInput(f"文件超过 {MAX_ROWS} 行，请分批导入", field="file")


def _rows_over(sheet: IO[bytes], limit: int) -> bool:
    """Whether the sheet XML has more than `limit` rows, counted as it inflates and stopped as soon as it does:
    openpyxl parses a whole sheet that lacks a <dimension> before yielding its first row."""
    count, tail = 0, b""
    with sheet:
        while chunk := sheet.read(1024 * 1024):
            window = tail + chunk
            count += len(_ROW_TAG.findall(window)) - len(_ROW_TAG.findall(tail))
            if count > limit:
                return True
            tail = window[-8:]
    return False


def _xlsx_records(data: bytes) -> Iterator[tuple[int, tuple[Any, ...]]]:
    _check_archive(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many types for a damaged or foreign file
        raise InvalidInput("不是有效的 XLSX 文件", field="file") from None
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # some writers record wrong dimensions, which would cut rows off
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    except InvalidInput:
        raise
    except Exception:  # noqa: BLE001 - as above, while streaming the sheet
        raise InvalidInput("XLSX 文件已损坏，无法读取", field="file") from None
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return spreadsheet.restored(value.strip())
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number typed into a numeric cell
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _header(cells: list[str]) -> list[str | None]:
    columns: list[str | None] = []
    for cell in cells:
        if not cell:
            columns.append(None)
            continue
        column = HEADER_ALIASES.get(cell.lower())
        if column is None:
            raise InvalidInput(f"未知的列“{quoted(cell)}”；可用的列：{'、'.join(service.COLUMNS)}", field="file")
        if column in columns:
            raise InvalidInput(f"列“{quoted(cell)}”重复", field="file")
        columns.append(column)
    missing = [c for c in ("organisation", "name") if c not in columns]
    if missing:
        raise InvalidInput(f"缺少必需的列：{'、'.join(missing)}", field="file")
    return columns


def _validate(row: dict[str, str]) -> Entry:
    area_code = _organisation(row.get("organisation", ""))
    department = _text(row, "department", 100)
    name = _text(row, "name", 100)
    if not name:
        raise RowError("name", "姓名不能为空")
    title = _text(row, "title", 100)
    roles = _names(row, "roles", 50)
    values = {kind: _contact_values(kind, row.get(column, "")) for kind, column in _KIND_COLUMNS}
    groups = _names(row, "groups", 100)
    order = _call_order(row.get("call_order", ""))
    if not any(values.values()):
        raise RowError(None, "没有任何联系方式（电话、手机、传真、电子邮件、Telegram 或 SIP 至少填一项）")
    voice = [(kind, value) for kind in order + [k for k in VOICE_KINDS if k not in order] for value in values[kind]]
    contacts = [(kind, value, priority) for priority, (kind, value) in enumerate(voice, start=1)]
    for kind in _NON_VOICE:
        contacts += [(kind, value, priority) for priority, value in enumerate(values[kind], start=1)]
    return Entry(area_code, department, name, title, roles, contacts, groups)


@cache
def _division_lookup() -> dict[str, list[str]]:
    """Names and full names (山西省太原市小店区) to codes; a bare name such as 城区 may name several."""
    lookup: dict[str, list[str]] = {}
    for code, division in all_divisions().items():
        lookup.setdefault(division.name, []).append(code)
        if (long := full_name(code)) != division.name:
            lookup.setdefault(long, []).append(code)
            lookup.setdefault(long.removeprefix(full_name(code[:2] + "0000")), []).append(code)
    return {name: sorted(set(codes)) for name, codes in lookup.items()}


def _organisation(value: str) -> str:
    if not value:
        raise RowError("organisation", "单位不能为空（填写行政区划代码或名称，例如 140100 或 太原市）")
    if value in all_divisions():
        return value
    codes = _division_lookup().get(value, [])
    if len(codes) == 1:
        return codes[0]
    if codes:
        choices = "、".join(f"{full_name(c)} {c}" for c in codes)
        raise RowError("organisation", f"单位名称“{quoted(value)}”不唯一（{choices}），请填写行政区划代码")
    raise RowError("organisation", f"未知的单位“{quoted(value)}”：应为山西省的行政区划代码或名称")


def _text(row: dict[str, str], column: str, max_length: int) -> str:
    value = row.get(column, "")
    _check_text(column, value, max_length)
    return value


def _check_text(column: str, value: str, max_length: int) -> None:
    if _CONTROL.search(value):
        raise RowError(column, "不能包含控制字符或换行")
    if len(value) > max_length:
        raise RowError(column, f"超过 {max_length} 个字符")
    if spreadsheet.is_formula(value):
        raise RowError(column, "不能以 = + - @ 开头（防止表格公式注入）")


def _names(row: dict[str, str], column: str, max_length: int) -> list[str]:
    cell = row.get(column, "")
    if not cell:
        return []
    names = [part.strip() for part in _SPLIT_NAMES.split(cell)]
    for name in names:
        _check_text(column, name, max_length)
    return list(dict.fromkeys(name for name in names if name))


def _contact_values(kind: ContactKind, cell: str) -> list[str]:
    if not cell:
        return []
    values = [_contact_value(kind, part.strip()) for part in _SPLIT_VALUES.split(cell) if part.strip()]
    return list(dict.fromkeys(values))


def _contact_value(kind: ContactKind, value: str) -> str:
    label = CONTACT_KIND_NAMES[kind]
    shown = quoted(value)
    if _CONTROL.search(value) or len(value) > 200:
        raise RowError(kind.value, f"{label}格式错误")
    if value.startswith("=") or (kind == ContactKind.email and spreadsheet.is_formula(value)):
        raise RowError(kind.value, f"{label}“{shown}”不能以 = + - @ 开头（防止表格公式注入）")
    if kind in _PHONE_KINDS:
        if not numbers.is_number(value):
            raise RowError(kind.value, f"{label}号码“{shown}”格式错误：应为 3 到 20 位数字，可带 + 前缀")
        number = numbers.cleaned(value)
        if kind == ContactKind.mobile and not numbers.is_domestic_mobile_ok(number):
            raise RowError(
                kind.value, f"手机号码“{shown}”格式错误：应为以 1 开头的 11 位数字（境外号码请加 + 和国家代码）"
            )
        return number
    pattern, hint = _FORMATS[kind]
    if not pattern.match(value):
        raise RowError(kind.value, f"{label}“{shown}”格式错误：{hint}")
    return value


def _call_order(cell: str) -> list[ContactKind]:
    order: list[ContactKind] = []
    for token in (t.strip() for t in _SPLIT_NAMES.split(cell)):
        if not token:
            continue
        kind = _CALL_ORDER_NAMES.get(token.lower())
        if kind is None:
            names = "、".join(kind.value for kind in VOICE_KINDS)
            raise RowError("call_order", f"呼叫顺序中的“{token[:20]}”无效：可用 {names}")
        if kind in order:
            raise RowError("call_order", f"呼叫顺序中“{token}”重复")
        order.append(kind)
    return order


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    iterator = iter(items)
    while part := list(islice(iterator, size)):
        yield part


def department_code(area_code: str, name: str) -> str:
    """f"{area}-{name}", within the 40 characters of Organisation.code; long names end in a short hash so that
    two long names sharing a prefix keep distinct codes."""
    code = f"{area_code}-{name}"
    if len(code) <= 40:
        return code
    return f"{area_code}-{name[:24]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class _Writer:
    """Lookups loaded once, then chunks of rows written with bulk statements."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.orgs: dict[tuple[str, str], str] = {}  # (area code, department or "") -> organisation id
        self.people: dict[tuple[str, str], str] = {}  # (organisation id, name) -> person id
        self.groups: dict[str, str] = {}
        self.created = self.updated = self.departments_created = self.groups_created = 0

    async def prepare(self, entries: list[Entry]) -> None:
        rows = await self.session.execute(
            select(Organisation.code, Organisation.area_code, Organisation.name, Organisation.level, Organisation.id)
        )
        for code, area_code, name, level, org_id in rows:
            if level == OrgLevel.department:
                self.orgs[(area_code, name)] = org_id
            elif code == area_code:
                self.orgs[(area_code, "")] = org_id
        await self._create_departments(entries)
        org_ids = list({self.orgs[(e.area_code, e.department)] for e in entries})
        for part in _chunks(org_ids):
            found = await self.session.execute(
                select(Person.org_id, Person.name, Person.id).where(Person.org_id.in_(part)).order_by(Person.id.desc())
            )
            self.people.update({(org_id, name): person_id for org_id, name, person_id in found})
        self.groups = dict((await self.session.execute(select(Group.name, Group.id))).all())
        wanted = dict.fromkeys(g for e in entries for g in e.groups if g not in self.groups)
        if wanted:
            new = [{"id": new_id(), "name": name, "description": ""} for name in wanted]
            await self.session.execute(insert(Group), new)
            self.groups.update({g["name"]: g["id"] for g in new})
            self.groups_created = len(new)

    async def _create_departments(self, entries: list[Entry]) -> None:
        new = []
        for entry in entries:
            key = (entry.area_code, entry.department)
            if entry.department and key not in self.orgs:
                self.orgs[key] = new_id()
                new.append(
                    {
                        "id": self.orgs[key],
                        "code": department_code(*key),
                        "name": entry.department,
                        "level": OrgLevel.department,
                        "parent_id": self.orgs[(entry.area_code, "")],
                        "area_code": entry.area_code,
                    }
                )
        if new:
            await self.session.execute(insert(Organisation), new)
            self.departments_created = len(new)

    async def write(self, entries: list[Entry]) -> None:
        now = utcnow()
        new_people: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        for entry in entries:
            org_id = self.orgs[(entry.area_code, entry.department)]
            fields = {"title": entry.title, "roles": entry.roles, "updated_at": now}
            person_id = self.people.get((org_id, entry.name))
            if person_id:
                changes.append({"id": person_id, **fields})
            else:
                person_id = self.people[(org_id, entry.name)] = new_id()
                spelled = {"name": entry.name, "initials": initials(entry.name)}
                new_people.append({"id": person_id, "org_id": org_id, **spelled, **fields})
            contacts += [
                {"id": new_id(), "person_id": person_id, "kind": kind.value, "value": value, "priority": priority}
                for kind, value, priority in entry.contacts
            ]
            members += [{"group_id": self.groups[g], "person_id": person_id} for g in entry.groups]
        for part in _chunks([c["id"] for c in changes]):
            for table in (ContactPoint.__table__, GroupMember.__table__):
                await self.session.execute(delete(table).where(table.c.person_id.in_(part)))
        # Core inserts on the tables: the ORM's per-row bookkeeping would double the time.
        writes = (
            (update(Person), changes),
            (insert(Person.__table__), new_people),
            (insert(ContactPoint.__table__), contacts),
            (insert(GroupMember.__table__), members),
        )
        for statement, rows in writes:
            if rows:
                await self.session.execute(statement, rows)
        self.created += len(new_people)
        self.updated += len(changes)
