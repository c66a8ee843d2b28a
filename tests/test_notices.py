"""Notices with confirmation over SMS and e-mail against real peers (the test SMSC, an SMTP server): the issue is
durable before the answer and refused with the field named; an SMS reply "收到" sent by the SMSC confirms; a number
with several open notices confirms only with the short code; the signed link confirms by POST only, and a tampered
or expired one is refused; an unconfirmed recipient is escalated to the parent organisation's desk; the board, its
CSV and the incident's timeline say who confirmed, how, and who never did and why."""

import csv
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message as Mail
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from broadcast.channels.email import EmailChannel
from broadcast.outbox import Outbox
from switchboard.api.app import create_app
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.notices import flows, links
from switchboard.notices.live import Notices
from tests.conftest import add_users, fresh_database_url, headers_for, settings_for
from tests.support.channel_peers import Recorder, Smsc, sms_gateway
from tests.support.wait import until

NOTICES = {
    "SWITCHBOARD_NOTICES_CHECK_SECONDS": "0.2",
    "SWITCHBOARD_NOTICES_WAIT_SECONDS": "2",
    "SWITCHBOARD_NOTICES_POLICIES": "告知=parent:sms@1",
    "SWITCHBOARD_SERVER_PUBLIC_URL": "https://yjzh.example.cn",
}
REPLYING = "13800000001"  # 王强's mobile: the SMSC has it reply 收到
DIRECTORY = (
    "organisation,department,name,title,mobile,email\n"
    f"140105,应急管理局,王强,值班员,{REPLYING},wangqiang@example.cn\n"
    "140105,应急管理局,李明,科员,13800000002,liming@example.cn\n"
    "140100,应急管理局,周敏,值班员,13800000009,\n"
)


@dataclass
class Room:
    """The switchboard with SMS and e-mail channels on real peers, a directory and signed-in users."""

    ctx: Context
    http: httpx.AsyncClient
    tokens: dict[str, dict[str, str]]
    outbox: Outbox
    smsc: Smsc
    mailbox: Recorder
    people: dict[str, str]  # name -> contact id
    notices: Notices  # the app's: its on_reply is what the SMS gateways hand replies to

    async def issue(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/api/v1/notices", json=body, headers=self.tokens["duty_officer"])
        assert response.status_code == 201, response.text
        return response.json()

    async def board(self, notice_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/notices/{notice_id}/confirmations", headers=self.tokens["leader"])
        assert response.status_code == 200, response.text
        return response.json()

    async def row(self, notice_id: str, name: str, state: str | None, timeout: float = 20) -> dict[str, Any]:
        """`name`'s row on the board once it is in `state` (None: once it is there)."""

        async def found() -> dict[str, Any] | None:
            row = next((i for i in (await self.board(notice_id))["items"] if i["name"] == name), None)
            return row if row and state in (None, row["state"]) else None

        return await until(found, timeout=timeout, what=f"{name} to be {state}")


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def room(
    request: pytest.FixtureRequest, tmp_path: Path, smsc_factory: Any, smtp_server: Any
) -> AsyncIterator[Room]:
    url = await fresh_database_url(request.param, request, tmp_path)
    ctx = Context.from_settings(settings_for(tmp_path, url, **NOTICES))
    app = create_app(ctx)
    smsc = smsc_factory(receipt_delay=0.1, reply=f"{REPLYING}=收到")
    controller, mailbox = smtp_server
    async with app.router.lifespan_context(app):
        services = app.state.services
        outbox: Outbox = services.outbox
        await sms_gateway(outbox, smsc, services.notices.on_reply)
        await outbox.add(EmailChannel("127.0.0.1", controller.port, "yjglj@switchboard.local", rate_per_second=50))
        tokens = headers_for(ctx, await add_users(ctx))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            files = {"file": ("contacts.csv", DIRECTORY.encode(), "text/csv")}
            imported = await http.post("/api/v1/directory/import", files=files, headers=tokens["duty_officer"])
            assert imported.json()["created"] == 3, imported.text
            found = (await http.get("/api/v1/directory/contacts?q=", headers=tokens["leader"])).json()
            people = {c["name"]: c["id"] for c in found}
            yield Room(ctx, http, tokens, outbox, smsc, mailbox, people, services.notices)
        await outbox.stop()
    await ctx.db.close()


async def incident(room: Room) -> str:
    body = {"title": "小店区暴雨", "category": "natural_disaster", "level": "III", "area_code": "140105"}
    response = await room.http.post("/api/v1/incidents", json=body, headers=room.tokens["duty_officer"])
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_an_sms_reply_confirms_and_the_other_channels_are_withdrawn(room: Room) -> None:
    """王强 gets the notice by SMS and e-mail; the SMSC has him reply 收到: confirmed by SMS on his mobile, his
    e-mail not chased further, the board and CSV say so, and the incident's timeline has the issue, the
    confirmation and the completion."""
    incident_id = await incident(room)
    notice = await room.issue(
        subject="防汛会商",
        text="请于 15:00 到指挥中心参加防汛会商。",
        incident_id=incident_id,
        contact_ids=[room.people["王强"]],
        channels=["sms", "email"],
    )
    assert notice["recipients"] == 1 and notice["deliveries"] == 2 and re.fullmatch(r"[0-9]{4}", notice["code"])
    row = await room.row(notice["id"], "王强", "confirmed")
    assert row["confirmed_channel"] == "sms" and row["confirmed_address"] == REPLYING
    assert row["confirmed_by"] == "王强" and row["confirmed_at"]
    sms = next(d for d in row["deliveries"] if d["channel"] == "sms")
    assert sms["state"] == "confirmed"
    said = sms_to(room.smsc, REPLYING)
    assert "【通知】防汛会商" in said and f"收到请回复1或“收到”（通知编号 {notice['code']}）" in said
    board = await until(
        lambda: _complete(room, notice["id"]), timeout=20, what="the notice to complete once everyone confirmed"
    )
    assert board["counts"]["confirmed"] == 1 and board["counts"]["total"] == 1 and board["never_confirmed"] == []
    csv_answer = await room.http.get(
        f"/api/v1/notices/{notice['id']}/confirmations?format=csv", headers=room.tokens["leader"]
    )
    assert csv_answer.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(csv_answer.content.decode("utf-8-sig"))))
    assert lines[0][:4] == ["姓名", "单位", "角色", "状态"] and lines[1][0] == "王强" and lines[1][3] == "已确认"
    assert lines[1][6] == "短信" and lines[1][7] == REPLYING
    entries = (
        await room.http.get(f"/api/v1/incidents/{incident_id}/timeline?kind=notice", headers=room.tokens["leader"])
    ).json()["items"]
    summaries = [e["summary"] for e in entries]
    assert summaries[0].startswith("发出通知《防汛会商》：1 人，待发送 2 条")
    assert any(s.startswith("王强 确认收到通知《防汛会商》：短信 13800000001，短信回复“收到”") for s in summaries)
    assert summaries[-1] == "通知《防汛会商》完成：1 人中 1 人确认"


def sms_to(smsc: Smsc, number: str) -> str:
    """The text of the SMS sent to `number` (its parts joined; UCS-2)."""
    parts = sorted(
        (s for s in smsc.submits() if s["destination"] == number), key=lambda s: (s["udh"] or {}).get("part", 1)
    )
    said = [bytes.fromhex(s["short_message"]) for s in parts]
    return "".join((m[m[0] + 1 :] if s["udh"] else m).decode("utf-16-be") for s, m in zip(parts, said, strict=True))


async def _complete(room: Room, notice_id: str) -> dict[str, Any] | None:
    board = await room.board(notice_id)
    return board if board["complete"] else None


async def test_several_open_notices_on_one_number_need_the_short_code(room: Room) -> None:
    """李明 has two open notices: a bare "收到" cannot say which and confirms neither (it is put on record); a reply
    with the second notice's code confirms that one only."""
    first = await room.issue(subject="通知一", text="一", contact_ids=[room.people["李明"]], channels=["sms"])
    second = await room.issue(subject="通知二", text="二", contact_ids=[room.people["李明"]], channels=["sms"])
    await room.row(second["id"], "李明", "notified")
    await room.row(first["id"], "李明", "notified")
    await room.notices.on_reply("+8613800000002", "收到")
    for notice in (first, second):
        row = await room.row(notice["id"], "李明", "notified")
        assert row["confirmed_at"] is None
    await room.notices.on_reply("8613800000002", f"收到 {second['code']}")
    confirmed = await room.row(second["id"], "李明", "confirmed")
    assert confirmed["confirmed_channel"] == "sms"
    assert (await room.row(first["id"], "李明", "notified"))["confirmed_at"] is None


async def test_a_signed_link_confirms_by_post_and_a_tampered_or_expired_one_is_refused(room: Room) -> None:
    notice = await room.issue(
        subject="值班调整", text="明日起值班电话改为 8008。", contact_ids=[room.people["李明"]], channels=["email"]
    )
    mail = await until(lambda: _mail_to(room.mailbox, "liming@example.cn"), timeout=20, what="the notice's e-mail")
    text = _body(mail)
    [link] = re.findall(r"https://yjzh\.example\.cn(/notices/confirm/\S+)", text)
    token = link.rsplit("/", 1)[1]
    page = await room.http.get(link)  # what a mail scanner does: nothing is confirmed
    assert page.status_code == 200 and "确认收到" in page.text and 'method="post"' in page.text
    assert (await room.board(notice["id"]))["items"][0]["state"] != "confirmed"
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = await room.http.post(f"/notices/confirm/{tampered}")
    assert refused.status_code == 422 and "签名不符" in refused.text
    delivery_id = token.split(".")[0]
    expired = links.token(room.ctx.settings, delivery_id, now=time.time() - 80 * 3600)
    gone = await room.http.post(f"/notices/confirm/{expired}")
    assert gone.status_code == 410 and "已过期" in gone.text
    assert (await room.board(notice["id"]))["items"][0]["state"] != "confirmed"
    done = await room.http.post(link)
    assert done.status_code == 200 and "已确认" in done.text
    row = await room.row(notice["id"], "李明", "confirmed")
    assert row["confirmed_channel"] == "email" and row["confirmed_address"] == "liming@example.cn"


def _mail_to(mailbox: Recorder, address: str) -> Mail | None:
    return next((message_from_bytes(raw) for to, raw in mailbox.received if address in to), None)


def _body(mail: Mail) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


async def test_an_unconfirmed_recipient_is_escalated_to_the_parent_desk_and_named_at_completion(room: Room) -> None:
    """李明 never replies. A second on, the policy 告知 tells the duty officer on the roster of the parent
    organisation (太原市) by SMS that he is unreachable; when his wait is over he is unconfirmed, and the notice
    completes naming him and why."""
    now = utcnow()
    shift = {
        "org_code": "140100",
        "person_id": room.people["周敏"],
        "role": "值班员",
        "starts_at": (now.replace(microsecond=0)).isoformat(),
        "ends_at": now.replace(year=now.year + 1).isoformat(),
    }
    added = await room.http.post("/api/v1/directory/roster", json=shift, headers=room.tokens["duty_officer"])
    assert added.status_code == 201, added.text
    notice = await room.issue(
        subject="雨情报送", text="请立即报送雨情。", contact_ids=[room.people["李明"]], channels=["sms"], policy="告知"
    )
    told = await room.row(notice["id"], "周敏", None)
    assert told["role"] == "desk" and told["tier"] == 2
    said = await until(lambda: sms_to(room.smsc, "13800000009"), timeout=20, what="the parent desk's SMS")
    assert "李明未确认通知《雨情报送》" in said
    board = await until(lambda: _complete(room, notice["id"]), timeout=30, what="the notice to complete")
    assert board["counts"]["unconfirmed"] == 1 and board["counts"]["total"] == 1
    [never] = board["never_confirmed"]
    assert never["name"] == "李明" and "短信 13800000002" in never["reason"]
    assert board["notice"]["summary"].startswith("通知《雨情报送》完成：1 人中 0 人确认；未确认：")


async def test_bad_notices_are_refused_naming_the_field(room: Room) -> None:
    async def refused(body: dict[str, Any], role: str = "duty_officer") -> httpx.Response:
        return await room.http.post("/api/v1/notices", json=body, headers=room.tokens[role])

    base = {"subject": "测试", "text": "测试", "contact_ids": [room.people["李明"]], "channels": ["sms"]}
    assert (await refused(base, "alert_officer")).status_code == 403
    bad = await refused(base | {"channels": ["pigeon"]})
    assert bad.status_code == 422 and bad.json()["field"] == "channels.0"
    off = await refused(base | {"channels": ["voice"]})
    assert off.status_code == 409 and off.json()["field"] == "channels.0" and "语音电话" in off.json()["message"]
    policy = await refused(base | {"policy": "没有"})
    assert policy.status_code == 422 and policy.json()["field"] == "policy"
    nobody = await refused(base | {"contact_ids": [room.people["周敏"]], "channels": ["email"]})
    assert nobody.status_code == 422 and nobody.json()["field"] == "channels"
    unknown = await refused(base | {"contact_ids": ["0" * 26]})
    assert unknown.status_code in (404, 422) and unknown.json()["field"] == "contact_ids.0"
    listed = (await room.http.get("/api/v1/notices", headers=room.tokens["leader"])).json()
    assert listed == []  # nothing refused was written


async def test_a_tier_due_while_the_server_was_down_fires_at_its_start(
    request: pytest.FixtureRequest, tmp_path: Path, smsc_factory: Any
) -> None:
    """The server stops right after the issue; the tier falls due while it is down; the next server takes it on its
    first look (the rows are the whole state), and puts it on record."""
    url = await fresh_database_url("sqlite", request, tmp_path)
    settings = settings_for(tmp_path, url, **NOTICES | {"SWITCHBOARD_NOTICES_POLICIES": "告知=parent:sms@3"})
    smsc = smsc_factory(receipt_delay=0.1)
    first = Context.from_settings(settings)
    app = create_app(first)
    async with app.router.lifespan_context(app):
        outbox: Outbox = app.state.services.outbox
        await sms_gateway(outbox, smsc)
        tokens = headers_for(first, await add_users(first))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
            files = {"file": ("contacts.csv", DIRECTORY.encode(), "text/csv")}
            await http.post("/api/v1/directory/import", files=files, headers=tokens["duty_officer"])
            found = {
                c["name"]: c["id"]
                for c in (await http.get("/api/v1/directory/contacts", headers=tokens["leader"])).json()
            }
            now = utcnow().replace(microsecond=0)
            shift = {"org_code": "140100", "person_id": found["周敏"], "role": "值班员", "starts_at": now.isoformat()}
            shift["ends_at"] = now.replace(year=now.year + 1).isoformat()
            await http.post("/api/v1/directory/roster", json=shift, headers=tokens["duty_officer"])
            body = {"subject": "停机", "text": "停机维护。", "contact_ids": [found["李明"]], "channels": ["sms"]}
            answer = await http.post("/api/v1/notices", json=body | {"policy": "告知"}, headers=tokens["duty_officer"])
            assert answer.status_code == 201, answer.text
            notice = answer.json()
        await outbox.stop()
    await first.db.close()
    due = datetime.fromisoformat(notice["created_at"]) + timedelta(seconds=3)
    await until(lambda: utcnow() > due, timeout=10, what="the tier to fall due while no server runs")
    second = Context.from_settings(settings)
    before = await flows.board(second, notice["id"])
    assert [i["name"] for i in before.model_dump()["items"]] == ["李明"] and before.items[0].tier == 1
    app = create_app(second)
    async with app.router.lifespan_context(app):

        async def escalated() -> Any:
            board = await flows.board(second, notice["id"])
            return board if len(board.items) == 2 else None

        board = await until(escalated, timeout=10, what="the overdue tier to fire at the start")
    await second.db.close()
    told = next(i for i in board.items if i.role == "desk")
    assert told.name == "周敏" and board.items[0].tier == 2
    assert [d.channel for d in told.deliveries] == ["sms"]
