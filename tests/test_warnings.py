"""Public warnings over the API: compose, four-eyes approval, issue into the outbox, update and cancel with CAP
references, the CAP document (schema-valid, parsed by capparselib), previews, delivery reports and progress.

Issued warnings go out through the app's own outbox to real peers (`warning_channels`: an SMSC process and an
aiosmtpd server); the tests read what those peers received."""

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from capparselib.parsers import CAPParser
from sqlalchemy import select

from broadcast.channels.wecom import WeComAppChannel
from broadcast.identifier import prefix
from broadcast.models import PublicWarning
from broadcast.schema import validate
from broadcast.workflow import Issuer
from switchboard.auth.models import User
from switchboard.auth.service import issue_token
from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.directory.models import ContactPoint, Group, GroupMember, Organisation, Person
from tests.conftest import _HASH
from tests.support.channel_peers import WarningChannels
from tests.support.peers import wecom_api
from tests.support.peers.standin import StandInProcess
from tests.support.wait import until

BASE = "/api/v1/warnings"
SQUARE = "37.70,112.50 37.80,112.50 37.80,112.70 37.70,112.70 37.70,112.50"


async def add_group(ctx: Context, members: int, *, kinds: tuple[str, ...] = ("mobile", "email")) -> str:
    """A directory group whose members each have a mobile number and an e-mail address."""
    async with ctx.db.session() as session:
        org = Organisation(code=f"org-{members}", name="小店区应急管理局", level="county", area_code="140105")
        group = Group(name=f"预警接收-{members}")
        session.add_all([org, group])
        await session.flush()
        for i in range(members):
            person = Person(org_id=org.id, name=f"接收人{i:03d}", roles=[])
            session.add(person)
            await session.flush()
            for kind in kinds:
                value = {
                    "mobile": f"1390000{i:04d}",
                    "email": f"r{i:03d}@example.cn",
                    "telegram": str(10_000 + i),
                    "wecom": ("zhangsan", "lisi", "wangwu", f"user{i}")[min(i, 3)],  # the stand-in knows the first 3
                }[kind]
                session.add(ContactPoint(person_id=person.id, kind=kind, value=value))
            session.add(GroupMember(group_id=group.id, person_id=person.id))
    return group.id


def content(group_id: str, **changes: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "event": "暴雨",
        "headline": "太原市气象台发布暴雨橙色预警信号",
        "description": "预计未来 3 小时内小店区降雨量将达 50 毫米以上，伴有雷电、短时大风。",
        "instruction": "停止户外作业，转移低洼地带人员。",
        "category": ["Met"],
        "urgency": "Immediate",
        "certainty": "Likely",
        "colour": "orange",
        "areas": [{"code": "140105"}, {"desc": "汾河东岸低洼地带", "polygon": [SQUARE], "circle": ["37.75,112.60 5"]}],
        "audiences": {"groups": [group_id], "channels": ["sms", "email"]},
        "expires": (now + timedelta(hours=12)).isoformat(),
        "sender_name": "太原市应急管理局",
    } | changes


async def incident(client: httpx.AsyncClient, tokens: dict) -> str:
    body = {"title": "小店区暴雨", "category": "natural_disaster", "level": "III", "area_code": "140105"}
    response = await client.post("/api/v1/incidents", json=body, headers=tokens["duty_officer"])
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def draft(client: httpx.AsyncClient, tokens: dict, incident_id: str, group_id: str, **changes: Any) -> dict:
    body = content(group_id, **changes) | {"incident_id": incident_id}
    response = await client.post(BASE, json=body, headers=tokens["alert_officer"])
    assert response.status_code == 201, response.text
    return response.json()


async def step(client: httpx.AsyncClient, headers: dict, warning_id: str, action: str, status: int = 200) -> dict:
    response = await client.post(f"{BASE}/{warning_id}/{action}", headers=headers)
    assert response.status_code == status, response.text
    return response.json()


async def issued(client: httpx.AsyncClient, tokens: dict, warning_id: str) -> dict:
    await step(client, tokens["alert_officer"], warning_id, "submit")
    await step(client, tokens["approver"], warning_id, "approve")
    return await step(client, tokens["alert_officer"], warning_id, "issue")


async def settled(client: httpx.AsyncClient, tokens: dict, warning_id: str, timeout: float = 20) -> dict:
    """The delivery report once every row is settled (the warning says it completed) and every SMS receipted."""

    async def report() -> dict | None:
        got = (await client.get(f"{BASE}/{warning_id}/deliveries", headers=tokens["leader"])).json()
        return got if got["completed_at"] and not got["counts"].get("sms", {}).get("sent") else None

    return await until(report, timeout=timeout, what=f"every delivery of {warning_id} to settle")


async def test_workflow_writes_every_delivery_before_answering(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 5)
    incident_id = await incident(client, tokens)
    warning = await draft(client, tokens, incident_id, group)
    assert warning["state"] == "draft" and warning["identifier"] is None

    # Issue before approval is refused; the approver role is required to approve.
    await step(client, tokens["alert_officer"], warning["id"], "issue", 409)
    await step(client, tokens["alert_officer"], warning["id"], "submit")
    refused = await step(client, tokens["alert_officer"], warning["id"], "approve", 403)
    assert "审核人" in refused["message"]
    await step(client, tokens["approver"], warning["id"], "approve")
    out = await step(client, tokens["alert_officer"], warning["id"], "issue")
    assert out["state"] == "issued" and out["msg_type"] == "Alert" and out["deliveries"] == 10
    assert re.fullmatch(r"14000041600000_\d{14}_0", out["identifier"])  # GB/T 35965.1 Appendix A, [warnings] unit

    report = (await client.get(f"{BASE}/{warning['id']}/deliveries", headers=tokens["leader"])).json()
    assert sum(report["counts"]["sms"].values()) == 5 and sum(report["counts"]["email"].values()) == 5
    assert {item["recipient"] for item in report["items"] if item["channel"] == "email"} == {
        f"r{i:03d}@example.cn" for i in range(5)
    }

    timeline = await client.get(f"/api/v1/incidents/{incident_id}/timeline?kind=warning", headers=tokens["leader"])
    types = [entry["type"] for entry in timeline.json()["items"]]
    assert types == ["warning.created", "warning.submitted", "warning.approved", "warning.issued"]
    async with app_ctx.db.reader() as session:
        audit_actions = set((await session.scalars(select(AuditEntry.action))).all())
    assert {"warning.created", "warning.submitted", "warning.approved", "warning.issued"} <= audit_actions

    # The peers received exactly the audience: five SMS (receipted: delivered) and five mails.
    done = await settled(client, tokens, warning["id"])
    assert done["counts"] == {"sms": {"delivered": 5}, "email": {"sent": 5}} and done["stuck"] == []
    assert sorted(_texts(warning_channels.smsc.submits())) == [f"1390000{i:04d}" for i in range(5)]
    assert sorted(warning_channels.mailbox.recipients()) == [f"r{i:03d}@example.cn" for i in range(5)]


async def test_an_eleventh_warning_in_one_second_is_sent_in_the_next(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    """GB/T 35965.1: the sequence is one digit. With the unit's ten identifiers of this second and the next three
    taken, the warning is stamped with the first second that has one free, and its sent time says so."""
    group = await add_group(app_ctx, 1)
    incident_id = await incident(client, tokens)
    warning = await draft(client, tokens, incident_id, group)
    now = utcnow().replace(microsecond=0)
    unit = Issuer.from_settings(app_ctx.settings).code
    async with app_ctx.db.session() as session:
        for second in range(4):
            start = prefix(unit, now + timedelta(seconds=second))
            session.add_all(
                PublicWarning(
                    incident_id=incident_id,
                    state="issued",
                    msg_type="Alert",
                    colour="blue",
                    content=warning["content"],
                    references=[],
                    identifier=f"{start}{n}",
                    created_by="alert_officer",
                )
                for n in range(10)
            )
    out = await issued(client, tokens, warning["id"])
    sent = datetime.fromisoformat(out["sent_at"])
    assert sent >= now + timedelta(seconds=4) and out["identifier"] == f"{prefix(unit, sent)}0"


async def test_four_eyes_refuses_approving_ones_own_warning(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict
) -> None:
    both = User(username="both", password_hash=_HASH, roles=["alert_officer", "approver"])
    async with app_ctx.db.session() as session:
        session.add(both)
    headers = {"Authorization": f"Bearer {issue_token(app_ctx.settings, both)}"}
    group = await add_group(app_ctx, 1)
    incident_id = await incident(client, tokens)
    body = content(group) | {"incident_id": incident_id}
    warning = (await client.post(BASE, json=body, headers=headers)).json()
    await step(client, headers, warning["id"], "submit")
    refused = await step(client, headers, warning["id"], "approve", 403)
    assert refused["error"] == "forbidden" and "双人审核" in refused["message"]
    # A submitter other than the author may not approve either; a third person may.
    approved = await step(client, tokens["approver"], warning["id"], "approve")
    assert approved["approved_by"] == "approver" and approved["created_by"] == "both"
    # Roles: a duty officer may neither compose nor approve.
    assert (await client.post(BASE, json=body, headers=tokens["duty_officer"])).status_code == 403


async def test_bad_input_names_the_field(app_ctx: Context, client: httpx.AsyncClient, tokens: dict) -> None:
    group = await add_group(app_ctx, 1)
    incident_id = await incident(client, tokens)
    open_polygon = "37.70,112.50 37.80,112.50 37.80,112.70 37.70,112.70"
    cases = [
        ({"areas": [{"polygon": [open_polygon]}]}, "areas.0.polygon.0"),
        ({"expires": (utcnow() - timedelta(hours=1)).isoformat()}, "expires"),
        ({"areas": [{"code": "999999"}]}, "areas.0.code"),
        ({"colour": "purple"}, "colour"),
        ({"audiences": {"groups": ["nope"]}}, "audiences.groups.0"),
        ({"languages": ["en-US"]}, "languages.0"),
    ]
    for changes, field in cases:
        body = content(group, **changes) | {"incident_id": incident_id}
        response = await client.post(BASE, json=body, headers=tokens["alert_officer"])
        assert response.status_code == 422, (changes, response.text)
        assert response.json()["field"] == field, (changes, response.json())
    body = content(group) | {"incident_id": "01JDX3Q0000000000000000000"}
    response = await client.post(BASE, json=body, headers=tokens["alert_officer"])
    assert response.status_code == 422 and response.json()["field"] == "incident_id"


async def test_cap_document_validates_and_parses(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 2)
    incident_id = await incident(client, tokens)
    warning = await draft(client, tokens, incident_id, group)
    assert (await client.get(f"{BASE}/{warning['id']}/cap", headers=tokens["leader"])).status_code == 409
    out = await issued(client, tokens, warning["id"])
    response = await client.get(f"{BASE}/{warning['id']}/cap", headers=tokens["leader"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/cap+xml")
    validate(response.content)
    [alert] = CAPParser(response.content.decode()).as_dict()
    assert str(alert["cap_id"]) == out["identifier"] and str(alert["cap_message_type"]) == "Alert"
    [info] = alert["cap_info"]
    assert str(info["cap_severity"]) == "Severe" and str(info["cap_event"]) == "暴雨"
    assert incident_id in response.text


async def test_members_wecom_userids_get_application_messages(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    """A group whose members have a WeCom userid in the directory, audience channel wecom_app: each userid gets
    the application message, as the WeCom stand-in (tests/support/peers/wecom_api.py: the real API is not reachable
    offline) accepted it."""
    async with StandInProcess("tests.support.peers.wecom_api") as api:
        app = WeComAppChannel(
            wecom_api.CORP_ID, wecom_api.CORP_SECRET, wecom_api.AGENT_ID, base_url=f"{api.base_url}/cgi-bin"
        )
        await warning_channels.outbox.add(app)
        group = await add_group(app_ctx, 3, kinds=("mobile", "wecom"))
        audiences = {"groups": [group], "channels": ["wecom_app"]}
        warning = await draft(client, tokens, await incident(client, tokens), group, audiences=audiences)
        assert (await issued(client, tokens, warning["id"]))["deliveries"] == 3
        report = await settled(client, tokens, warning["id"])
        accepted = [a for a in await api.accepted() if a["api"] == "message/send"]
    assert report["counts"] == {"wecom_app": {"sent": 3}}
    assert sorted(a["body"]["touser"] for a in accepted) == ["lisi", "wangwu", "zhangsan"]
    assert all("太原市气象台发布暴雨橙色预警信号" in a["body"]["markdown"]["content"] for a in accepted)


async def test_issuing_onto_a_channel_that_cannot_carry_it_is_refused(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 2, kinds=("mobile", "email", "telegram"))
    incident_id = await incident(client, tokens)
    states = {c["channel"]: c for c in (await client.get(f"{BASE}/channels", headers=tokens["leader"])).json()}
    assert states["sms"]["ready"] and states["email"]["ready"]
    assert not states["telegram"]["configured"] and "未配置" in states["telegram"]["trouble"]
    health = (await client.get("/healthz")).json()
    assert health["components"]["channel:telegram"]["status"] == "off" and health["status"] == "ok"

    # A channel that is not configured: refused, naming it; the warning stays approved, nothing is written.
    audiences = {"groups": [group], "channels": ["sms", "telegram"]}
    unconfigured = (await draft(client, tokens, incident_id, group, audiences=audiences))["id"]
    await step(client, tokens["alert_officer"], unconfigured, "submit")
    await step(client, tokens["approver"], unconfigured, "approve")
    refused = await step(client, tokens["alert_officer"], unconfigured, "issue", 409)
    assert refused["field"] == "audiences.channels.1" and "“Telegram”渠道未配置" in refused["message"]
    assert (await client.get(f"{BASE}/{unconfigured}", headers=tokens["leader"])).json()["state"] == "approved"

    # The SMS gateway goes away: /healthz says so and issuing onto SMS is refused until its link is back.
    warning_channels.smsc.kill()
    outbox = warning_channels.outbox
    await until(lambda: outbox.health()["sms"]["status"] != "ok", timeout=10, what="the SMPP link to drop")
    assert (await client.get("/healthz")).json()["components"]["channel:sms"]["status"] == "down"
    waiting = (await draft(client, tokens, incident_id, group))["id"]
    await step(client, tokens["alert_officer"], waiting, "submit")
    await step(client, tokens["approver"], waiting, "approve")
    refused = await step(client, tokens["alert_officer"], waiting, "issue", 409)
    assert refused["field"] == "audiences.channels.0" and "“短信”渠道不可用" in refused["message"]
    warning_channels.smsc.start()
    await until(lambda: outbox.health()["sms"]["status"] == "ok", timeout=20, what="the SMPP link to bind again")
    assert (await step(client, tokens["alert_officer"], waiting, "issue"))["deliveries"] == 4
    await settled(client, tokens, waiting)


async def test_deliveries_waiting_for_a_retry_say_why(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    """A mailbox the relay keeps answering 451 for: the row waits for its retry and the report says why."""
    group = await add_group(app_ctx, 1)
    async with app_ctx.db.session() as session:
        person = (await session.scalars(select(Person).where(Person.name == "接收人000"))).one()
        session.add(ContactPoint(person_id=person.id, kind="email", value="busy@example.cn"))
    audiences = {"groups": [group], "channels": ["email"]}
    warning = await issued(
        client, tokens, (await draft(client, tokens, await incident(client, tokens), group, audiences=audiences))["id"]
    )

    async def waiting() -> list | None:
        """The busy row waiting for its retry once r000@ has gone: on a loaded machine the report may first be read
        while r000@'s row is still in its first attempt, and then the channel has two rows open."""
        report = (await client.get(f"{BASE}/{warning['id']}/deliveries", headers=tokens["leader"])).json()
        return report["stuck"] if report["stuck"] and report["stuck"][0]["rows"] == 1 else None

    [stuck] = await until(waiting, timeout=20, what="the busy mailbox's row alone to wait for a retry")
    assert stuck["channel"] == "email"
    assert "1 条等待重试" in stuck["reason"] and "SMTP 451" in stuck["reason"]
    report = (await client.get(f"{BASE}/{warning['id']}/deliveries?q=busy", headers=tokens["leader"])).json()
    [row] = report["items"]
    assert row["name"] == "接收人000" and row["state_name"] in ("待发送", "发送中") and report["completed_at"] is None


async def test_update_and_cancel_reference_the_chain(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 3)
    incident_id = await incident(client, tokens)
    first = await issued(client, tokens, (await draft(client, tokens, incident_id, group))["id"])
    await settled(client, tokens, first["id"])

    changed = content(group, colour="red", headline="太原市气象台升级发布暴雨红色预警信号")
    response = await client.post(f"{BASE}/{first['id']}/update", json=changed, headers=tokens["alert_officer"])
    assert response.status_code == 201, response.text
    update = response.json()
    assert update["msg_type"] == "Update" and update["state"] == "draft" and update["replaces_id"] == first["id"]
    second = await issued(client, tokens, update["id"])
    assert second["identifier"] != first["identifier"]
    assert len(second["references"]) == 1 and first["identifier"] in second["references"][0]
    cap = (await client.get(f"{BASE}/{second['id']}/cap", headers=tokens["leader"])).content
    validate(cap)
    [parsed] = CAPParser(cap.decode()).as_dict()
    assert str(parsed["cap_message_type"]) == "Update" and first["identifier"] in str(parsed["cap_references"])

    # The first warning had reached everyone before the update: nothing of it was left to retire.
    report = (await client.get(f"{BASE}/{first['id']}/deliveries", headers=tokens["leader"])).json()
    assert report["counts"] == {"sms": {"delivered": 3}, "email": {"sent": 3}}
    # Only the newest message of the chain can be updated or cancelled.
    stale = await client.post(f"{BASE}/{first['id']}/cancel", headers=tokens["alert_officer"])
    assert stale.status_code == 409

    # Cancelled at once: whatever of the update had not gone out never goes; the Cancel goes to everyone the chain
    # may have reached (the first warning reached all six addresses).
    cancelled = (await client.post(f"{BASE}/{second['id']}/cancel", headers=tokens["approver"])).json()
    notice = cancelled["notice"]
    assert cancelled["warning"]["state"] == "cancelled" and cancelled["notices"] == 6
    assert notice["msg_type"] == "Cancel" and notice["identifier"] not in (first["identifier"], second["identifier"])
    assert [first["identifier"] in notice["references"][0], second["identifier"] in notice["references"][1]] == [
        True,
        True,
    ]
    cap = (await client.get(f"{BASE}/{notice['id']}/cap", headers=tokens["leader"])).content
    validate(cap)
    assert str(CAPParser(cap.decode()).as_dict()[0]["cap_message_type"]) == "Cancel"
    update_rows = (await settled(client, tokens, second["id"]))["counts"]
    assert sum(update_rows[c].get("cancelled", 0) for c in update_rows) == cancelled["retired"]
    assert all(set(update_rows[c]) <= {"cancelled", "sent", "delivered"} for c in update_rows)
    notices = await settled(client, tokens, notice["id"])
    assert notices["counts"] == {"sms": {"delivered": 3}, "email": {"sent": 3}}
    # The group's confirmation follows the chain: the first message's stopped at the update, the update's here.
    for warning_id, why in ((first["id"], "预警已更新，请确认新的一条"), (second["id"], "预警已撤销")):
        [linked] = (await client.get(f"/api/v1/notices?warning_id={warning_id}", headers=tokens["leader"])).json()
        assert linked["state"] == "completed" and f"停止确认：{why}" in linked["summary"], linked
    cancel_sms = [to for to, text in _texts(warning_channels.smsc.submits()).items() if "预警已解除" in text]
    assert sorted(cancel_sms) == [f"1390000{i:04d}" for i in range(3)]
    # The Cancel names when the message it withdraws was sent, not its own time.
    beijing = datetime.fromisoformat(second["sent_at"]).astimezone(timezone(timedelta(hours=8)))
    assert (
        f"预警已解除（原预警发布于{beijing:%Y年%m月%d日 %H:%M}）"
        in _texts(warning_channels.smsc.submits())["13900000000"]
    )

    timeline = await client.get(f"/api/v1/incidents/{incident_id}/timeline?kind=warning", headers=tokens["leader"])
    types = [e["type"] for e in timeline.json()["items"]]
    assert "warning.cancelled" in types and types[-1] == "warning.sent"  # the Cancel's own deliveries finished


async def test_cancelling_a_draft_sends_nothing(app_ctx: Context, client: httpx.AsyncClient, tokens: dict) -> None:
    group = await add_group(app_ctx, 1)
    warning = await draft(client, tokens, await incident(client, tokens), group)
    out = await step(client, tokens["alert_officer"], warning["id"], "cancel")
    assert out["warning"]["state"] == "cancelled" and out["notice"] is None
    await step(client, tokens["alert_officer"], warning["id"], "submit", 409)


async def test_preview_shows_every_channel_and_sms_segments(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict
) -> None:
    group = await add_group(app_ctx, 1)
    warning = await draft(client, tokens, await incident(client, tokens), group)
    response = await client.post(f"{BASE}/{warning['id']}/preview", headers=tokens["approver"])
    assert response.status_code == 200, response.text
    renderings = {r["channel"]: r for r in response.json()["renderings"]}
    assert set(renderings) == {"sms", "email", "telegram", "tts", "wecom", "dingtalk", "fax"}
    assert renderings["fax"]["text"].startswith("太原市气象台发布暴雨橙色预警信号\n预警级别：橙色")
    sms = renderings["sms"]
    assert sms["encoding"] == "UCS-2" and sms["text"].startswith("【太原市应急管理局】")
    assert sms["segments"] == (1 if sms["length"] <= 70 else -(-sms["length"] // 67)) and sms["segments"] >= 2
    email = renderings["email"]
    assert "橙色" in email["subject"] and "<h2" in email["html"] and email["attachments"] == ["draft.xml"]
    assert "<b>" in renderings["telegram"]["text"] and "暴雨橙色预警" in renderings["tts"]["text"]
    assert (
        renderings["wecom"]["text"].startswith("### ")
        and '<font color="warning">橙色</font>' in renderings["wecom"]["text"]
    )
    assert "**橙色**" in renderings["dingtalk"]["text"] and renderings["dingtalk"]["subject"] == email["subject"]
    # HTML renderings escape what the office typed.
    hostile = await draft(client, tokens, warning["incident_id"], group, headline="<script>x</script>")
    response = await client.post(f"{BASE}/{hostile['id']}/preview", headers=tokens["approver"])
    renderings = {r["channel"]: r for r in response.json()["renderings"]}
    assert "<script>" not in renderings["email"]["html"] and "<script>" not in renderings["telegram"]["text"]

    # A 10,000-character description: the SMS is cut to six parts with an ellipsis, keeping the headline and the
    # validity; the e-mail keeps every word.
    long = content(group, description="汾河水位持续上涨，" * 1112, web="https://yj.example.cn/w/1")
    long_sms = await client.post(f"{BASE}/preview", json=long, headers=tokens["alert_officer"])
    shown = {r["channel"]: r for r in long_sms.json()["renderings"]}
    assert shown["sms"]["segments"] == 6 and "有效期至" in shown["sms"]["text"]
    assert "……（全文见 https://yj.example.cn/w/1）" in shown["sms"]["text"]  # where to read the rest
    assert shown["sms"]["text"].startswith("【太原市应急管理局】太原市气象台发布暴雨橙色预警信号")
    assert long["description"] in shown["email"]["text"]

    # The composer's live preview of content not yet saved, and its errors naming the field.
    live = await client.post(f"{BASE}/preview", json=content(group, headline="短"), headers=tokens["alert_officer"])
    assert live.status_code == 200, live.text
    assert {r["channel"]: r for r in live.json()["renderings"]}["sms"]["segments"] >= 1
    bad = await client.post(f"{BASE}/preview", json=content(group, colour="purple"), headers=tokens["alert_officer"])
    assert bad.status_code == 422 and bad.json()["field"] == "colour"


def _texts(submits: list[dict]) -> dict[str, str]:
    """Everything each number received, as the SMSC recorded it: UCS-2, concatenation headers taken off."""
    received: dict[str, str] = {}
    for record in submits:
        raw = bytes.fromhex(record["short_message"])
        body = raw[raw[0] + 1 :] if record["esm_class"] & 0x40 else raw
        received[record["destination"]] = received.get(record["destination"], "") + body.decode("utf-16-be")
    return received


async def test_delivery_report_filters_explains_and_exports(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    group = await add_group(app_ctx, 4)
    async with app_ctx.db.session() as session:  # one mobile the SMSC reports undeliverable (13999…)
        point = (await session.scalars(select(ContactPoint).where(ContactPoint.value == "13900000003"))).one()
        point.value = "13999000003"
    warning = await draft(client, tokens, await incident(client, tokens), group)
    await issued(client, tokens, warning["id"])
    report = await settled(client, tokens, warning["id"])
    assert report["counts"] == {"sms": {"delivered": 3, "failed": 1}, "email": {"sent": 4}} and report["stuck"] == []

    failed = (await client.get(f"{BASE}/{warning['id']}/deliveries?state=failed", headers=tokens["leader"])).json()
    [row] = failed["items"]
    assert (row["recipient"], row["name"], row["channel_name"], row["state_name"]) == (
        "13999000003",
        "接收人003",
        "短信",
        "失败",
    )
    assert row["last_error"] == "回执：未送达（状态 UNDELIV，错误码 001）" and row["via"] == "smpp"
    named = (await client.get(f"{BASE}/{warning['id']}/deliveries?q=接收人001", headers=tokens["leader"])).json()
    assert sorted(r["recipient"] for r in named["items"]) == ["13900000001", "r001@example.cn"]
    only_mail = await client.get(f"{BASE}/{warning['id']}/deliveries?channel=email&limit=3", headers=tokens["leader"])
    assert len(only_mail.json()["items"]) == 3 and only_mail.json()["next_cursor"]

    response = await client.get(f"{BASE}/{warning['id']}/deliveries?format=csv", headers=tokens["leader"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["渠道", "接收方", "姓名", "状态", "尝试次数", "网关"] and len(rows) == 9
    assert sorted(row[5] for row in rows[1:]) == [""] * 4 + ["smpp"] * 4  # e-mail has one relay, SMS a gateway
    assert sorted(row[3] for row in rows[1:]) == ["失败"] + ["已发送"] * 4 + ["已送达"] * 3

    # The chart's series: everything pending at the issue, everything settled at the end.
    series = (await client.get(f"{BASE}/{warning['id']}/progress", headers=tokens["leader"])).json()["series"]
    assert series["sms"][0][1:] == [4, 0, 0, 0, 0] and series["sms"][-1][1:] == [0, 0, 3, 1, 0]
    assert series["email"][-1][1:] == [0, 4, 0, 0, 0]


async def test_a_group_not_asked_to_confirm_gets_plain_deliveries(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, warning_channels: WarningChannels
) -> None:
    """A mass list (`confirm` false): its members' rows are the warning's plain deliveries, no notice follows them.
    Asked to confirm, a list beyond `[warnings] confirm_max` people is refused at the draft, naming the field."""
    group = await add_group(app_ctx, 2)
    incident_id = await incident(client, tokens)
    app_ctx.settings.warnings.confirm_max = 1
    asked = content(group, audiences={"groups": [group], "channels": ["sms"]}) | {"incident_id": incident_id}
    refused = await client.post(BASE, json=asked, headers=tokens["alert_officer"])
    assert refused.status_code == 422 and refused.json()["field"] == "audiences.confirm", refused.text
    assert "共 2 人，超过上限 1 人" in refused.json()["message"]
    audiences = {"groups": [group], "channels": ["sms"], "confirm": False}
    drafted = await draft(client, tokens, incident_id, group, audiences=audiences)
    warning = await issued(client, tokens, drafted["id"])
    assert warning["deliveries"] == 2
    assert (await client.get(f"/api/v1/notices?warning_id={warning['id']}", headers=tokens["leader"])).json() == []
    assert (await settled(client, tokens, warning["id"]))["counts"] == {"sms": {"delivered": 2}}
    assert "收到请回复" not in _texts(warning_channels.smsc.submits())["13900000000"]
