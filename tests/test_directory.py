"""Directory: import (CSV, GBK CSV, XLSX) with row-level rejections, idempotent re-import, search, export round
trip, call priorities, groups, duty roster, and the routes' authentication and input checks."""

import io
import time
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, func, select

from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context
from switchboard.core.errors import InvalidInput
from switchboard.directory import importer, service
from switchboard.directory.initials import initials
from switchboard.directory.models import ContactOut, ContactPoint, GroupMember, Person

HEADER = "organisation,department,name,title,roles,office_phone,mobile,home_phone,fax,email,telegram,wecom,sip_uri,groups,call_order"
MIXED = (
    "\n".join(
        [
            HEADER,
            "140100,,张三,局长,带班领导;值班员,0351-4012345,13800138000,,,zs@example.cn,,,,防汛组,",  # 2 good
            "140100,,王五,,,,1380013,,,,,,,,",  # 3 mobile too short
            "火星市,,赵六,,,,13800138002,,,,,,,,",  # 4 unknown organisation
            "",  # 5 empty: skipped, still counts as a row
            "140100,,,科员,,,13800138003,,,,,,,,",  # 6 name missing
            "140100,,张三,副局长,,,13900139000,,,,,,,,",  # 7 duplicate of row 2
            "小店区,应急管理局,李四,科长,值班员、联络员,,138 0013 8001,,,,-1001234567,,sip:8001@10.0.0.1,防汛组;抗震组,",  # 8 good
            "140100,,钱七,,,,,,,,,,,,",  # 9 no contact point
            "城区,,孙八,,,,13800138004,,,,,,,,",  # 10 ambiguous name: two cities have a 城区
            "140100,,周九,,,,,,,bad-email,,,,,",  # 11 malformed email
        ]
    )
    + "\n"
)


async def run_import(ctx: Context, data: bytes, filename: str = "contacts.csv") -> importer.ImportResult:
    return await importer.import_contacts(ctx, "tester", data, filename)


async def row_counts(ctx: Context) -> tuple[int, ...]:
    """People, contact points, group memberships."""
    async with ctx.db.reader() as session:
        columns = (Person.id, ContactPoint.id, GroupMember.group_id)
        return tuple([await session.scalar(select(func.count(c))) or 0 for c in columns])


def by_name(contacts: list[ContactOut]) -> dict[str, ContactOut]:
    return {c.name: c for c in contacts}


async def test_csv_import_reports_each_bad_row_and_keeps_the_good(ctx: Context) -> None:
    result = await run_import(ctx, MIXED.encode())

    assert (result.created, result.updated) == (2, 0)
    assert [(r.row, r.field) for r in result.rejected] == [
        (3, "mobile"),
        (4, "organisation"),
        (6, "name"),
        (7, "name"),
        (9, None),
        (10, "organisation"),
        (11, "email"),
    ]
    assert "第 2 行" in result.rejected[3].reason
    assert "140302" in result.rejected[5].reason  # the ambiguity names the candidates
    people = by_name(await service.search_contacts(ctx, "", 100))
    assert set(people) == {"张三", "李四"}
    li = people["李四"]
    assert li.org_code == "140105-应急管理局"
    assert li.org_name == "山西省太原市小店区应急管理局"
    assert li.roles == ["值班员", "联络员"]
    assert [(c.kind, c.value, c.priority) for c in li.contacts] == [
        ("mobile", "13800138001", 1),
        ("sip_uri", "sip:8001@10.0.0.1", 2),
        ("telegram", "-1001234567", 1),
    ]
    assert people["张三"].org_name == "山西省太原市"
    async with ctx.db.reader() as session:
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "directory.import"))).all()
    assert len(audits) == 1
    assert audits[0].detail["created"] == 2 and audits[0].detail["rejected"] == 7
    assert audits[0].detail["file"] == "contacts.csv"


async def test_xlsx_import_uses_sheet_row_numbers_and_chinese_headers(ctx: Context) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["单位代码", "部门", "姓名", "职务", "手机", "办公电话", "电子邮件", "呼叫顺序"])
    sheet.append(["140200", "", "周一", "主任", 13900139001, "0352-1234567", "", "办公电话;手机"])  # numeric cell
    sheet.append([None] * 8)  # row 3 empty
    sheet.append(["大同市", "", "吴二", "", "13900139002", "", "not-an-email", ""])  # row 4 bad email
    sheet.append(["140200", "", "郑三", "", "", "", "", "传真"])  # row 5 fax is no voice kind
    buffer = io.BytesIO()
    workbook.save(buffer)

    result = await run_import(ctx, buffer.getvalue(), "名单.xlsx")

    assert (result.created, result.updated) == (1, 0)
    assert [(r.row, r.field) for r in result.rejected] == [(4, "email"), (5, "call_order")]
    assert [r.column for r in result.rejected] == ["电子邮件", "呼叫顺序"]  # named as the file's header names them
    [zhou] = await service.search_contacts(ctx, "周一", 10)
    assert zhou.org_code == "140200"
    assert [(c.kind, c.value, c.priority) for c in zhou.contacts] == [
        ("office_phone", "03521234567", 1),
        ("mobile", "13900139001", 2),
    ]


async def test_gbk_csv_from_chinese_excel(ctx: Context) -> None:
    data = "单位代码,姓名,职务,手机\n140300,冯四,值班主任,13700137000\n".encode("gbk")
    result = await run_import(ctx, data)
    assert (result.created, result.rejected) == (1, [])
    [feng] = await service.search_contacts(ctx, "冯四", 10)
    assert feng.title == "值班主任"
    assert feng.org_name == "山西省阳泉市"


async def test_reimport_updates_instead_of_duplicating(ctx: Context) -> None:
    await run_import(ctx, MIXED.encode())
    before = await service.search_contacts(ctx, "", 100)
    totals = await row_counts(ctx)

    seen: list[tuple[int, int]] = []
    again = await importer.import_contacts(ctx, "tester", MIXED.encode(), "contacts.csv", lambda *p: seen.append(p))

    assert (again.created, again.updated, len(again.rejected)) == (0, 2, 7)
    assert await row_counts(ctx) == totals
    assert totals == (2, 6, 3)
    assert seen[-1] == (9, 9)  # the non-empty data rows, rejected ones included
    assert await service.search_contacts(ctx, "", 100) == before


async def test_search_by_name_organisation_and_phone(ctx: Context) -> None:
    await run_import(ctx, MIXED.encode())
    assert [c.name for c in await service.search_contacts(ctx, "李四", 10)] == ["李四"]
    # A city's name finds people of its own organisation and of departments in its counties.
    assert {c.name for c in await service.search_contacts(ctx, "太原市", 10)} == {"张三", "李四"}
    assert [c.name for c in await service.search_contacts(ctx, "小店区", 10)] == ["李四"]
    assert [c.name for c in await service.search_contacts(ctx, "138-0013-8001", 10)] == ["李四"]
    assert [c.name for c in await service.search_contacts(ctx, "4012345", 10)] == ["张三"]
    assert [c.name for c in await service.search_contacts(ctx, "ZS@EXAMPLE", 10)] == ["张三"]
    assert await service.search_contacts(ctx, "大同市", 10) == []
    assert await service.search_contacts(ctx, "%", 10) == []  # LIKE wildcards are literal


async def test_search_by_pinyin_initials(ctx: Context) -> None:
    await run_import(ctx, MIXED.encode())
    assert [c.name for c in await service.search_contacts(ctx, "ls", 10)] == ["李四"]
    assert [c.name for c in await service.search_contacts(ctx, "ZS", 10)] == ["张三"]  # any case
    assert await service.search_contacts(ctx, "xyz", 10) == []
    assert initials("单雄信").split() == ["cxs", "cxx", "dxs", "dxx", "sxs", "sxx"]  # 单 read as shan (a surname) too


async def test_the_tree_runs_from_province_to_department_with_people_on_demand(
    client: httpx.AsyncClient, ctx: Context, tokens: dict[str, dict[str, str]]
) -> None:
    await run_import(ctx, MIXED.encode())
    response = await client.get("/api/v1/directory/organisations", headers=tokens["duty_officer"])
    assert response.status_code == 200
    nodes = {n["code"]: n for n in response.json()}
    assert nodes["140000"]["parent_code"] is None and nodes["140000"]["level"] == "province"
    assert nodes["140100"]["parent_code"] == "140000" and nodes["140100"]["people"] == 1  # 张三
    assert nodes["140105"]["parent_code"] == "140100" and nodes["140105"]["level"] == "county"
    (department,) = [n for n in nodes.values() if n["parent_code"] == "140105"]
    assert department["name"] == "应急管理局" and department["people"] == 1
    people = await client.get(
        "/api/v1/directory/contacts", params={"org": department["code"]}, headers=tokens["duty_officer"]
    )
    assert [c["name"] for c in people.json()] == ["李四"]


async def test_export_reimports_to_identical_contacts(ctx: Context) -> None:
    await run_import(ctx, MIXED.encode())
    row = "140400,,陈五,,,0355-1111111;0355-2222222,13600136000,03553333333,03554444444,,,,,,mobile;home_phone"
    await run_import(ctx, f"{HEADER}\n{row}\n".encode())
    before = await service.search_contacts(ctx, "", 100)

    for fmt in ("csv", "xlsx"):
        exported = await service.export(ctx, fmt)
        result = await run_import(ctx, exported, f"export.{fmt}")
        assert (result.created, result.updated, result.rejected) == (0, 3, []), fmt
        assert await service.search_contacts(ctx, "", 100) == before, fmt
    rows = [line.split(",") for line in (await service.export(ctx, "csv")).decode("utf-8-sig").splitlines()]
    assert rows[0] == HEADER.split(",")
    chen = next(r for r in rows if r[2] == "陈五")
    assert chen[-1] == "mobile;home_phone;office_phone"
    sheet = load_workbook(io.BytesIO(await service.export(ctx, "xlsx")), read_only=True).worksheets[0]
    assert any(row[5] == "03551111111;03552222222" for row in sheet.iter_rows(values_only=True))


async def test_formulas_are_refused_on_import_and_written_as_text_on_export(ctx: Context) -> None:
    """The review's finding: `=2+5+cmd|' /C calc'!A0` in the e-mail and Telegram columns passed import and export."""
    formula = "=2+5+cmd|' /C calc'!A0"
    rows = [
        HEADER,
        f"140100,,甲,,,,13800138010,,,{formula}@x.cn,,,,,",
        f"140100,,乙,,,,13800138011,,,,{formula},,,,",
        "140100,,丙,,,,13800138012,,,,@duty_taiyuan,,,,",
    ]
    result = await run_import(ctx, ("\n".join(rows) + "\n").encode())
    assert [(r.row, r.field) for r in result.rejected] == [(2, "email"), (3, "telegram")]
    assert "公式" in result.rejected[0].reason
    # A value stored before the check (an older import) is written as text: opened in a spreadsheet it stays inert.
    bing = (await service.search_contacts(ctx, "丙", 1))[0]
    async with ctx.db.session() as session:
        session.add(ContactPoint(person_id=bing.id, kind="email", value=f"{formula}@x.cn", priority=9))
    exported = (await service.export(ctx, "csv")).decode("utf-8-sig")
    assert f"'{formula}@x.cn" in exported and f",{formula}" not in exported
    assert "'@duty_taiyuan" in exported
    async with ctx.db.session() as session:  # without it, the export imports back unchanged: the apostrophe comes off
        await session.execute(delete(ContactPoint).where(ContactPoint.kind == "email"))
    before = await service.search_contacts(ctx, "", 100)
    result = await run_import(ctx, (await service.export(ctx, "csv")), "export.csv")
    assert result.rejected == []
    assert await service.search_contacts(ctx, "", 100) == before


def _xlsx_with(member: str, content: bytes) -> bytes:
    """A real workbook (header row only) whose `member` is replaced by `content`, deflated as Excel would."""
    workbook = Workbook()
    workbook.active.append(HEADER.split(","))
    original = io.BytesIO()
    workbook.save(original)
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, content if item.filename == member else source.read(item.filename))
    return rebuilt.getvalue()


async def test_spreadsheet_bombs_are_refused_before_they_are_unpacked(ctx: Context) -> None:
    """The review's files: 3 million blank rows in a 92 KB XLSX took 16 s of CPU (blank rows skipped the row cap);
    a 412 KB XLSX with one huge shared string took 3.4 GB; a 56 KB file gave a 52 MB error response."""
    sheet = '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{}</sheetData></worksheet>'
    bomb = _xlsx_with("xl/worksheets/sheet1.xml", sheet.format("<row/>" * 3_000_000).encode())
    assert len(bomb) < 200 * 1024
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="压缩比异常") as refused:
        await run_import(ctx, bomb, "contacts.xlsx")
    assert refused.value.field == "file" and time.monotonic() - started < 5
    # Numbered blank rows compress less (about 8:1) and pass the ratio: the row limit stops them early.
    numbered = "".join(f'<row r="{n}"/>' for n in range(1, 3_000_000))
    long_sheet = _xlsx_with("xl/worksheets/sheet1.xml", sheet.format(numbered).encode())
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="超过 100000 行"):
        await run_import(ctx, long_sheet, "contacts.xlsx")
    assert time.monotonic() - started < 10

    cell = '<row r="1"><c r="A1" t="inlineStr"><is><t>{}</t></is></c></row>'.format("甲" * 10_000_000)
    with pytest.raises(InvalidInput, match="压缩比异常"):
        await run_import(ctx, _xlsx_with("xl/worksheets/sheet1.xml", sheet.format(cell).encode()), "contacts.xlsx")

    # Blank rows count towards the row limit in CSV too.
    with pytest.raises(InvalidInput, match="超过 100000 行"):
        await run_import(ctx, (HEADER + "\n" + ",\n" * 100_001).encode())

    # A huge unknown column name is quoted cut short, not echoed whole.
    with pytest.raises(InvalidInput) as refused:
        await run_import(ctx, ("x" * 60_000 + "\n").encode())
    assert len(refused.value.message) < 300


async def test_priorities_follow_call_order(ctx: Context) -> None:
    row = (
        "140400,,陈五,,,0355-1111111;0355-2222222,13600136000,03553333333,03554444444;03555555555,c@example.cn,,,,,"
        "mobile;home_phone"
    )
    await run_import(ctx, f"{HEADER}\n{row}\n".encode())
    [chen] = await service.search_contacts(ctx, "陈五", 10)
    assert [(c.kind, c.value, c.priority) for c in chen.contacts] == [
        ("mobile", "13600136000", 1),
        ("home_phone", "03553333333", 2),
        ("office_phone", "03551111111", 3),
        ("office_phone", "03552222222", 4),
        ("fax", "03554444444", 1),
        ("fax", "03555555555", 2),
        ("email", "c@example.cn", 1),
    ]


async def test_groups_and_members(client: httpx.AsyncClient, ctx: Context, tokens: dict[str, dict[str, str]]) -> None:
    await run_import(ctx, MIXED.encode())
    response = await client.get("/api/v1/directory/groups", headers=tokens["leader"])
    assert response.status_code == 200
    groups = {g["name"]: g for g in response.json()}
    assert {name: g["member_count"] for name, g in groups.items()} == {"抗震组": 1, "防汛组": 2}
    members = await client.get(f"/api/v1/directory/groups/{groups['防汛组']['id']}/members", headers=tokens["leader"])
    assert {m["name"] for m in members.json()} == {"张三", "李四"}
    missing = await client.get(f"/api/v1/directory/groups/{'0' * 26}/members", headers=tokens["leader"])
    assert missing.status_code == 404


async def test_roster_answers_who_is_on_duty_at_an_instant(
    client: httpx.AsyncClient, ctx: Context, tokens: dict[str, dict[str, str]]
) -> None:
    await run_import(ctx, MIXED.encode())
    [zhang] = await service.search_contacts(ctx, "张三", 10)
    start = datetime(2025, 7, 1, 8, tzinfo=UTC)
    shift = {
        "org_code": "140100",
        "person_id": zhang.id,
        "role": "带班领导",
        "starts_at": "2025-07-01T16:00:00+08:00",  # 08:00 UTC
        "ends_at": "2025-07-02T16:00:00+08:00",
    }
    created = await client.post("/api/v1/directory/roster", json=shift, headers=tokens["duty_officer"])
    assert created.status_code == 201, created.text
    assert created.json()["person"]["name"] == "张三"

    async def on_duty(at: datetime) -> list[str]:
        response = await client.get(
            "/api/v1/directory/roster", params={"org_code": "140100", "at": at.isoformat()}, headers=tokens["leader"]
        )
        assert response.status_code == 200, response.text
        return [s["person"]["name"] for s in response.json()]

    assert await on_duty(start) == ["张三"]
    assert await on_duty(start + timedelta(hours=23, minutes=59)) == ["张三"]
    assert await on_duty(start + timedelta(hours=24)) == []  # the end is exclusive
    assert await on_duty(start - timedelta(seconds=1)) == []
    assert [(s.role, p.name) for s, p in await service.on_duty(ctx, "140100", start)] == [("带班领导", "张三")]

    backwards = await client.post(
        "/api/v1/directory/roster", json={**shift, "ends_at": shift["starts_at"]}, headers=tokens["duty_officer"]
    )
    assert (backwards.status_code, backwards.json()["field"]) == (422, "ends_at")
    naive = await client.post(
        "/api/v1/directory/roster", json={**shift, "starts_at": "2025-07-01T08:00:00"}, headers=tokens["duty_officer"]
    )
    assert (naive.status_code, naive.json()["field"]) == (422, "starts_at")
    nobody = await client.post(
        "/api/v1/directory/roster", json={**shift, "person_id": "0" * 26}, headers=tokens["duty_officer"]
    )
    assert (nobody.status_code, nobody.json()["field"]) == (422, "person_id")
    unknown = await client.get("/api/v1/directory/roster", params={"org_code": "nowhere"}, headers=tokens["leader"])
    assert unknown.status_code == 404
    async with ctx.db.reader() as session:
        assert await session.scalar(select(func.count()).where(AuditEntry.action == "directory.shift_add")) == 1


async def test_import_and_export_over_http(client: httpx.AsyncClient, tokens: dict[str, dict[str, str]]) -> None:
    files = {"file": ("联络网.csv", MIXED.encode(), "text/csv")}
    response = await client.post("/api/v1/directory/import", files=files, headers=tokens["duty_officer"])
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2
    first = response.json()["rejected"][0]
    assert (first["row"], first["field"]) == (3, "mobile")
    assert "1380013" in first["reason"]

    found = await client.get("/api/v1/directory/contacts", params={"q": "李四"}, headers=tokens["leader"])
    [li] = found.json()
    one = await client.get(f"/api/v1/directory/contacts/{li['id']}", headers=tokens["approver"])
    assert one.json() == li
    assert (await client.get(f"/api/v1/directory/contacts/{'0' * 26}", headers=tokens["leader"])).status_code == 404

    xlsx = await client.get("/api/v1/directory/export", params={"format": "xlsx"}, headers=tokens["leader"])
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == service.XLSX_TYPE
    assert 'filename="directory-' in xlsx.headers["content-disposition"]
    assert xlsx.headers["content-disposition"].endswith('.xlsx"')
    csv_export = await client.get("/api/v1/directory/export", headers=tokens["leader"])
    assert csv_export.headers["content-type"].startswith("text/csv")
    assert csv_export.content.startswith(b"\xef\xbb\xbforganisation,")


async def test_routes_require_a_token_and_the_right_role(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    files = {"file": ("a.csv", MIXED.encode(), "text/csv")}
    for method, path in [
        ("GET", "/api/v1/directory/contacts"),
        ("GET", "/api/v1/directory/export"),
        ("GET", "/api/v1/directory/groups"),
        ("GET", "/api/v1/directory/roster?org_code=140100"),
    ]:
        assert (await client.request(method, path)).status_code == 401, path
    assert (await client.post("/api/v1/directory/import", files=files)).status_code == 401
    assert (await client.post("/api/v1/directory/roster", json={})).status_code == 401
    leader = await client.post("/api/v1/directory/import", files=files, headers=tokens["leader"])
    assert leader.status_code == 403
    assert (await client.post("/api/v1/directory/roster", json={}, headers=tokens["leader"])).status_code == 403
    assert (await client.post("/api/v1/directory/import", files=files, headers=tokens["admin"])).status_code == 200


async def test_bad_uploads_name_the_file_field(client: httpx.AsyncClient, tokens: dict[str, dict[str, str]]) -> None:
    headers = tokens["duty_officer"]
    cases = [
        ("notes.txt", b"organisation,name\n140100,a\n", "text/plain"),
        ("broken.xlsx", b"not a zip", "application/octet-stream"),
        ("empty.csv", b"", "text/csv"),
        ("header.csv", "单位代码,姓名,爱好\n140100,甲,读书\n".encode(), "text/csv"),  # unknown column
        ("noname.csv", b"organisation,mobile\n140100,13800138000\n", "text/csv"),  # required column missing
    ]
    for name, data, content_type in cases:
        files = {"file": (name, data, content_type)}
        response = await client.post("/api/v1/directory/import", files=files, headers=headers)
        assert (response.status_code, response.json()["field"]) == (422, "file"), name
    control = await client.get("/api/v1/directory/contacts", params={"q": "a\x00b"}, headers=headers)
    assert control.status_code == 422
    assert (await client.get("/api/v1/directory/contacts/x'--", headers=headers)).status_code == 422


def test_department_codes_fit_the_column_and_stay_distinct() -> None:
    assert importer.department_code("140100", "应急管理局") == "140100-应急管理局"
    long_a, long_b = "山西省" * 10 + "甲", "山西省" * 10 + "乙"
    codes = {importer.department_code("140100", long_a), importer.department_code("140100", long_b)}
    assert len(codes) == 2 and all(len(c) <= 40 for c in codes)


async def test_wecom_userids_are_checked_as_wecom_allows(ctx: Context) -> None:
    rows = [
        HEADER,
        "140100,,甲,,,,13800138020,,,,,zhang.san-01@yjj,,,",
        "140100,,乙,,,,13800138021,,,,,张三,,,",
        "140100,,丙,,,,13800138022,,,,,_lisi,,,",
    ]
    result = await run_import(ctx, ("\n".join(rows) + "\n").encode())
    assert [(r.row, r.field) for r in result.rejected] == [(3, "wecom"), (4, "wecom")]
    assert "企业微信账号" in result.rejected[0].reason
    [jia] = await service.search_contacts(ctx, "甲", 1)
    assert ("wecom", "zhang.san-01@yjj") in [(c.kind, c.value) for c in jia.contacts]
