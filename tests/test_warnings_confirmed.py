"""A warning's directory group asked to confirm it, against the real Asterisk, a real SIP phone (pjsua2) and the test
SMSC: the group's members get the warning as a notice linked to it; a desk answers the voice call and presses 1,
another member replies 收到 to the SMS (her ringing desk phone is then hung up); both confirmed on the board the
warning's page shows, while the warning's own delivery report still counts every row."""

from pathlib import Path
from typing import Any

import pytest

from switchboard.core.events import Event
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.channel_peers import sms_gateway
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import register, switchboard_on
from tests.support.wait import until
from tests.test_notices import sms_to
from tests.test_notices_voice import confirms
from tests.test_warnings import content, incident, issued

GROUP = "防汛值班"
REPLYING = "13800000002"  # 陈静's mobile: the SMSC has her reply 收到
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,groups\n"
    f"140105,应急管理局,王强,局长,8002,,{GROUP}\n"
    f"140105,应急管理局,陈静,科员,8006,{REPLYING},{GROUP}\n"
)
SETTINGS = {
    "SWITCHBOARD_VOICE_LINES": "2",
    "SWITCHBOARD_VOICE_REPLAYS": "1",
    "SWITCHBOARD_VOICE_DIGIT_SECONDS": "3",
    "SWITCHBOARD_VOICE_RING_SECONDS": "20",
    "SWITCHBOARD_VOICE_ROUNDS": "2",
    "SWITCHBOARD_VOICE_RETRY_SECONDS": "0",
    "SWITCHBOARD_NOTICES_CHECK_SECONDS": "0.2",
}


@pytest.mark.timeout(180)
async def test_a_warnings_group_confirms_by_key_and_by_sms_reply(
    asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path, smsc_factory: Any
) -> None:
    async with (
        switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=2, **SETTINGS) as desk,
        PhoneProcess() as wang,
        PhoneProcess() as chen,
    ):
        outbox = desk.app.state.services.outbox
        smsc = smsc_factory(receipt_delay=0.1, reply=f"{REPLYING}=收到")
        await sms_gateway(outbox, smsc, desk.app.state.services.notices.on_reply)
        await register(wang, asterisk, "8002", "auto")
        await register(chen, asterisk, "8006", "never")
        groups = (await desk.http.get("/api/v1/directory/groups", headers=desk.tokens["leader"])).json()
        group_id = next(g["id"] for g in groups if g["name"] == GROUP)
        incident_id = await incident(desk.http, desk.tokens)
        audiences = {"groups": [group_id], "channels": ["voice", "sms"]}
        body = content(group_id, audiences=audiences) | {"incident_id": incident_id}
        created = await desk.http.post("/api/v1/warnings", json=body, headers=desk.tokens["alert_officer"])
        assert created.status_code == 201, created.text
        warning = await issued(desk.http, desk.tokens, created.json()["id"])
        assert warning["deliveries"] == 3  # 王强 and 陈静 by voice, 陈静 by SMS: written before the answer
        [notice] = (
            await desk.http.get(f"/api/v1/notices?warning_id={warning['id']}", headers=desk.tokens["leader"])
        ).json()
        assert notice["subject"] == "暴雨橙色预警" and notice["state"] == "open"

        await confirms(wang, "8002", tmp_path / "8002.wav", "1")

        async def complete() -> dict[str, Any] | None:
            url = f"/api/v1/notices/{notice['id']}/confirmations"
            got = (await desk.http.get(url, headers=desk.tokens["leader"])).json()
            return got if got["complete"] else None

        board = await until(complete, timeout=60, what="王强 and 陈静 to confirm the warning")
        await chen.wait_for("call_state", state="disconnected", timeout=30)  # her ringing phone hung up
        await until(lambda: not outbox.lanes["voice"].channel._rounds_under_way, timeout=30, what="no round left")
        assert len(chen.find("incoming_call")) == 1  # the second round never placed
        url = f"/api/v1/warnings/{warning['id']}/deliveries"
        report = (await desk.http.get(url, headers=desk.tokens["leader"])).json()
        timeline = (
            await desk.http.get(f"/api/v1/incidents/{incident_id}/timeline", headers=desk.tokens["leader"])
        ).json()["items"]

    rows = {item["name"]: item for item in board["items"]}
    assert board["counts"]["confirmed"] == 2 and board["counts"]["total"] == 2
    assert (rows["王强"]["confirmed_channel"], rows["王强"]["confirmed_address"]) == ("voice", "8002")
    assert (rows["陈静"]["confirmed_channel"], rows["陈静"]["confirmed_address"]) == ("sms", REPLYING)
    chen_voice = next(d for d in rows["陈静"]["deliveries"] if d["channel"] == "voice")
    assert chen_voice["state"] == "cancelled" and chen_voice["last_error"].startswith("已通过短信确认，撤回")
    said = sms_to(smsc, REPLYING)
    assert "太原市气象台发布暴雨橙色预警信号" in said
    assert said.endswith(f"收到请回复1或“收到”（通知编号 {notice['code']}）")
    # The warning's own report counts the group's rows, each in its state.
    assert board["notice"]["warning_id"] == warning["id"]
    assert report["counts"] == {"voice": {"confirmed": 1, "cancelled": 1}, "sms": {"confirmed": 1}}
    events: list[Event] = [e for e in desk.switchboard.bus.recent if e.type.startswith("notice.")]
    assert {e.type for e in events} >= {"notice.issued", "notice.confirmed", "notice.completed"}
    summaries = [e["summary"] for e in timeline]
    assert any(s.startswith("陈静 确认收到预警《暴雨橙色预警》：短信 13800000002，短信回复“收到”") for s in summaries)
    assert "预警《暴雨橙色预警》完成：2 人中 2 人确认" in summaries, summaries  # (the calls' recordings come later)
