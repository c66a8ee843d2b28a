"""The incident record over the API: create, read, change, timeline, reports upward, deadlines."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.events import Event
from switchboard.incidents import service

BASE = "/api/v1/incidents"
FLOOD = {
    "title": "太原市小店区暴雨内涝",
    "category": "natural_disaster",
    "subtype": "暴雨",
    "level": "III",
    "location": "小店区北格镇",
    "area_code": "140105",
    "source": "县应急局值班电话",
}
FIRST_REPORT = {
    "kind": "first",
    "info_source": "小店区应急管理局",
    "occurred_at": "2026-07-20T06:30:00+08:00",
    "nature": "强降雨引发城市内涝",
    "impact_scope": "北格镇 3 个村",
    "casualties_losses": "暂无人员伤亡，农田受淹约 200 亩",
    "trend": "降雨持续，积水上涨",
    "measures_taken": "转移群众 120 人，调派排涝车 4 台",
    "reporting_unit": "太原市应急管理局",
    "signed_by": "周建华",
    "contact_phone": "0351-4012345",
}


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await client.post(BASE, json=FLOOD | changes, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_sets_the_first_report_deadline(client: httpx.AsyncClient, tokens: dict) -> None:
    reported = "2026-07-20T07:00:00+08:00"
    incident = await _create(client, tokens["duty_officer"], reported_at=reported)
    assert incident["status"] == "reported"
    assert incident["first_report_due_at"] == "2026-07-20T01:00:00Z"
    assert incident["created_by"] == "duty_officer"
    fetched = await client.get(f"{BASE}/{incident['id']}", headers=tokens["leader"])
    assert fetched.json() == incident
    entries = (await client.get(f"{BASE}/{incident['id']}/timeline", headers=tokens["leader"])).json()["items"]
    assert [(e["type"], e["summary"]) for e in entries] == [("incident.created", "接报：太原市小店区暴雨内涝（较大）")]


async def test_the_first_report_clock_runs_from_the_occurrence_and_only_for_levels_i_to_iii(
    client: httpx.AsyncClient, tokens: dict
) -> None:
    headers = tokens["duty_officer"]
    times = {"occurred_at": "2026-07-20T06:10:00+08:00", "reported_at": "2026-07-20T07:00:00+08:00"}
    incident = await _create(client, headers, **times)
    assert incident["first_report_due_at"] == "2026-07-20T00:10:00Z"  # 事发时间 + 2 h, not 接报时间 + 2 h
    minor = await _create(client, headers, level="IV", **times)
    assert minor["first_report_due_at"] is None
    raised = await client.patch(f"{BASE}/{minor['id']}", json={"level": "II"}, headers=headers)
    assert raised.json()["first_report_due_at"] == "2026-07-20T00:10:00Z"  # raised to II: now it has the clock
    entries = (await client.get(f"{BASE}/{minor['id']}/timeline", headers=tokens["leader"])).json()["items"]
    assert {e["actor_name"] for e in entries} == {"王建国"}  # the timeline names people, not usernames


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "V"}, "level"),
        ({"category": "weather"}, "category"),
        ({"area_code": "14010"}, "area_code"),
        ({"area_code": "140199"}, "area_code"),
        ({"title": ""}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"reported_at": "2026-07-20T07:00:00"}, "reported_at"),
        ({"reported_at": "2026-07-20T07:00:00+08:00", "occurred_at": "2026-07-20T08:00:00+08:00"}, "occurred_at"),
        ({"bogus": 1}, "bogus"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, tokens: dict, change: dict, field: str
) -> None:
    response = await client.post(BASE, json=FLOOD | change, headers=tokens["duty_officer"])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    assert body["field"] == field
    assert body["message"]


async def test_missing_field_is_named(client: httpx.AsyncClient, tokens: dict) -> None:
    body = {k: v for k, v in FLOOD.items() if k != "level"}
    response = await client.post(BASE, json=body, headers=tokens["duty_officer"])
    assert (response.status_code, response.json()["field"]) == (422, "level")
    assert "缺少必填字段" in response.json()["message"]


async def test_token_and_role_are_required(client: httpx.AsyncClient, tokens: dict) -> None:
    response = await client.post(BASE, json=FLOOD)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert (await client.get(BASE, headers={"Authorization": "Bearer forged.token.value"})).status_code == 401
    response = await client.post(BASE, json=FLOOD, headers=tokens["leader"])
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert (await client.post(BASE, json=FLOOD, headers=tokens["admin"])).status_code == 201
    assert (await client.get(BASE, headers=tokens["alert_officer"])).status_code == 200


async def test_list_pages_newest_first_and_filters(client: httpx.AsyncClient, tokens: dict) -> None:
    ids = [(await _create(client, tokens["duty_officer"], title=f"事件{i}"))["id"] for i in range(5)]
    await client.patch(f"{BASE}/{ids[0]}", json={"status": "responding"}, headers=tokens["duty_officer"])
    page1 = (await client.get(BASE, params={"limit": 3}, headers=tokens["leader"])).json()
    page2 = (
        await client.get(BASE, params={"limit": 3, "cursor": page1["next_cursor"]}, headers=tokens["leader"])
    ).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == ids[::-1]
    assert page2["next_cursor"] is None
    responding = (await client.get(BASE, params={"status": "responding"}, headers=tokens["leader"])).json()
    assert [i["id"] for i in responding["items"]] == [ids[0]]
    taiyuan = (await client.get(BASE, params={"area_code": "140100"}, headers=tokens["leader"])).json()
    assert len(taiyuan["items"]) == 5
    datong = (await client.get(BASE, params={"area_code": "140200"}, headers=tokens["leader"])).json()
    assert datong["items"] == []


async def test_status_moves_forward_only(client: httpx.AsyncClient, tokens: dict) -> None:
    incident = await _create(client, tokens["duty_officer"])
    url, headers = f"{BASE}/{incident['id']}", tokens["duty_officer"]
    assert (await client.patch(url, json={"status": "responding"}, headers=headers)).json()["status"] == "responding"
    back = await client.patch(url, json={"status": "reported"}, headers=headers)
    assert (back.status_code, back.json()["field"]) == (409, "status")
    assert (await client.patch(url, json={"status": "closed", "level": "II"}, headers=headers)).status_code == 200
    entries = (await client.get(f"{url}/timeline", headers=headers)).json()["items"]
    assert [e["type"] for e in entries] == ["incident.created", "incident.status_changed", "incident.status_changed"]
    assert entries[-1]["data"]["changes"]["level"] == {"from": "III", "to": "II"}
    assert (await client.patch(f"{BASE}/nope", json={"level": "I"}, headers=headers)).status_code == 404


async def test_first_report_then_followup_then_final(client: httpx.AsyncClient, tokens: dict) -> None:
    incident = await _create(client, tokens["duty_officer"])
    url, headers = f"{BASE}/{incident['id']}/reports", tokens["duty_officer"]
    followup = await client.post(url, json=FIRST_REPORT | {"kind": "followup"}, headers=headers)
    assert (followup.status_code, followup.json()["field"]) == (409, "kind")
    too_late = FIRST_REPORT | {"occurred_at": (utcnow() + timedelta(hours=1)).isoformat()}
    refused = await client.post(url, json=too_late, headers=headers)  # it cannot have happened after it was reported
    assert (refused.status_code, refused.json()["field"]) == (422, "occurred_at")
    missing = await client.post(url, json={k: v for k, v in FIRST_REPORT.items() if k != "trend"}, headers=headers)
    assert (missing.status_code, missing.json()["field"]) == (422, "trend")
    first = await client.post(url, json=FIRST_REPORT, headers=headers)
    assert first.status_code == 201, first.text
    report = first.json()
    assert (report["seq"], report["late"], report["location"]) == (1, False, "小店区北格镇")
    assert report["received_at"] == incident["reported_at"]
    assert (await client.post(url, json=FIRST_REPORT, headers=headers)).status_code == 409
    assert (await client.post(url, json=FIRST_REPORT | {"kind": "followup"}, headers=headers)).status_code == 201
    assert (await client.post(url, json=FIRST_REPORT | {"kind": "final"}, headers=headers)).json()["seq"] == 3
    assert (await client.post(url, json=FIRST_REPORT | {"kind": "followup"}, headers=headers)).status_code == 409
    after = (await client.get(f"{BASE}/{incident['id']}", headers=headers)).json()
    assert after["first_report_at"] is not None


async def test_report_exports_as_json_and_printable_html(client: httpx.AsyncClient, tokens: dict) -> None:
    incident = await _create(client, tokens["duty_officer"], title="<script>alert(1)</script>暴雨")
    report = (
        await client.post(f"{BASE}/{incident['id']}/reports", json=FIRST_REPORT, headers=tokens["duty_officer"])
    ).json()
    url = f"{BASE}/{incident['id']}/reports/{report['id']}"
    as_json = (await client.get(url, headers=tokens["leader"])).json()
    assert as_json["incident"]["id"] == incident["id"]
    assert as_json["measures_taken"] == FIRST_REPORT["measures_taken"]
    html = await client.get(url, params={"format": "html"}, headers=tokens["leader"])
    assert html.headers["content-type"].startswith("text/html")
    page = html.text
    for label in (
        "接报时间",
        "信息来源",
        "事发时间",
        "事发地点",
        "事件性质",
        "影响范围",
        "伤亡和损失",
        "发展趋势",
        "已采取措施",
    ):
        assert f"<th>{label}</th>" in page
    assert "2026年07月20日 06:30" in page  # shown in the duty room's zone
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "突发事件信息初报" in page
    for signed in ("报送单位：太原市应急管理局", "签发人：周建华", "联系电话：0351-4012345", "报送人：王建国"):
        assert signed in page  # the submitter by name, not as duty_officer
    other = await _create(client, tokens["duty_officer"])
    assert (
        await client.get(f"{BASE}/{other['id']}/reports/{report['id']}", headers=tokens["leader"])
    ).status_code == 404


async def test_timeline_pages_and_filters(client: httpx.AsyncClient, tokens: dict) -> None:
    incident = await _create(client, tokens["duty_officer"])
    url = f"{BASE}/{incident['id']}/timeline"
    for i in range(7):
        assert (
            await client.post(url, json={"text": f"第{i}条记录"}, headers=tokens["duty_officer"])
        ).status_code == 201
    seen, cursor = [], 0
    while cursor is not None:
        page = (await client.get(url, params={"after": cursor, "limit": 3}, headers=tokens["leader"])).json()
        seen += page["items"]
        cursor = page["next_cursor"]
    assert [e["summary"] for e in seen][1:] == [f"第{i}条记录" for i in range(7)]
    notes = (await client.get(url, params={"kind": "note"}, headers=tokens["leader"])).json()["items"]
    assert len(notes) == 7 and all(e["actor"] == "duty_officer" for e in notes)
    assert (await client.get(url, params={"kind": "gossip"}, headers=tokens["leader"])).json()["field"] == "kind"


async def test_other_subsystems_events_land_on_the_timeline(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict
) -> None:
    incident = await _create(client, tokens["duty_officer"])
    event = Event(
        "call.ended",
        incident_id=incident["id"],
        actor="duty_officer",
        data={"summary": "呼叫小店区值班室，通话 95 秒", "refs": ["call-1"], "duration": 95},
    )
    await app_ctx.bus.publish(event)
    await app_ctx.bus.publish(Event("call.ended", incident_id="01UNKNOWN", data={}))
    await app_ctx.bus.publish(Event("incident.created", incident_id=incident["id"], data={}))  # its own: not twice
    entries = (await client.get(f"{BASE}/{incident['id']}/timeline", headers=tokens["leader"])).json()["items"]
    assert [(e["kind"], e["summary"], e["refs"]) for e in entries[1:]] == [
        ("call", "呼叫小店区值班室，通话 95 秒", ["call-1"])
    ]


async def test_deadline_events_fire_once_each(app_ctx: Context, client: httpx.AsyncClient, tokens: dict) -> None:
    now = utcnow()
    soon = await _create(client, tokens["duty_officer"], reported_at=(now - timedelta(minutes=100)).isoformat())
    late = await _create(client, tokens["duty_officer"], reported_at=(now - timedelta(hours=3)).isoformat())
    fresh = await _create(client, tokens["duty_officer"])
    done = await _create(client, tokens["duty_officer"], reported_at=(now - timedelta(hours=3)).isoformat())
    await client.post(f"{BASE}/{done['id']}/reports", json=FIRST_REPORT, headers=tokens["duty_officer"])

    fired = {(e.type, e.incident_id) for e in await service.check_deadlines(app_ctx)}
    assert fired == {("report.due_soon", soon["id"]), ("report.overdue", late["id"])}
    assert await service.check_deadlines(app_ctx) == []
    assert fresh["id"] not in {i for _, i in fired}

    async with app_ctx.db.session() as session:  # time passes: the "soon" incident becomes overdue
        from switchboard.incidents.models import Incident

        (await session.get(Incident, soon["id"])).first_report_due_at = now - timedelta(seconds=1)
    assert [(e.type, e.incident_id) for e in await service.check_deadlines(app_ctx)] == [("report.overdue", soon["id"])]
    entries = (await client.get(f"{BASE}/{late['id']}/timeline", headers=tokens["leader"])).json()["items"]
    assert entries[-1]["summary"] == f"初报已超时：{FLOOD['title']}"
    late_report = await client.post(f"{BASE}/{late['id']}/reports", json=FIRST_REPORT, headers=tokens["duty_officer"])
    assert late_report.json()["late"] is True
