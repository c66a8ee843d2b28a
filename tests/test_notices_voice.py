"""Notices by voice against the real Asterisk with real SIP phones (pjsua2, a process each): a desk answers, hears
the notice and presses 1 -> confirmed with who, which number, when; one presses 2, hears it again, then 1; one never
answers -> the escalation policy calls the leader the roster has on duty for that desk's unit, whose 1 confirms for
the desk; a person who confirms by replying to the SMS (sent by the test SMSC) is not called again."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from switchboard.core.db import utcnow
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.channel_peers import sms_gateway
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on
from tests.support.wait import until
from tests.test_voice import answered, hears_speech

REPLYING = "13800000001"  # 陈静's mobile: the SMSC has her reply 收到
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile\n"
    "140105,应急管理局,王强,局长,8002,\n"
    "140105,应急管理局,李明,值班员,8003,\n"
    "140105,应急管理局,赵刚,科员,8004,\n"
    "140105,应急管理局,孙华,副局长,8005,\n"
    f"140105,应急管理局,陈静,科员,8006,{REPLYING}\n"
)
SETTINGS = {
    "SWITCHBOARD_VOICE_LINES": "4",
    "SWITCHBOARD_VOICE_REPLAYS": "1",
    "SWITCHBOARD_VOICE_DIGIT_SECONDS": "3",
    "SWITCHBOARD_VOICE_RING_SECONDS": "5",
    "SWITCHBOARD_VOICE_ROUNDS": "2",
    "SWITCHBOARD_VOICE_RETRY_SECONDS": "0",
    "SWITCHBOARD_NOTICES_CHECK_SECONDS": "0.2",
    "SWITCHBOARD_NOTICES_POLICIES": "升级=leader:voice@14",
}


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=5, **SETTINGS) as desk:
        yield desk


async def people(desk: Desk) -> dict[str, dict[str, Any]]:
    found = (await desk.http.get("/api/v1/directory/contacts?q=", headers=desk.tokens["leader"])).json()
    return {c["name"]: c for c in found}


async def board(desk: Desk, notice_id: str) -> dict[str, Any]:
    url = f"/api/v1/notices/{notice_id}/confirmations"
    return (await desk.http.get(url, headers=desk.tokens["leader"])).json()


async def confirms(phone: PhoneProcess, number: str, heard: Path, *keys: str) -> None:
    """The phone answers the notice's call, hears it read out, and presses `keys` in turn, hearing it again after
    each key but the last."""
    call = await answered(phone, number, heard)
    listened = await hears_speech(heard)
    for key in keys[:-1]:
        await phone.command("dtmf", call=call, digits=key)
        listened = await hears_speech(heard, after=listened)
    await phone.command("dtmf", call=call, digits=keys[-1])


@pytest.mark.timeout(240)
async def test_desks_confirm_by_key_and_an_unanswered_desk_is_escalated_to_its_leader(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    found = await people(desk)
    now = utcnow().replace(microsecond=0)
    shift = {
        "org_code": found["孙华"]["org_code"],
        "person_id": found["孙华"]["id"],
        "role": "带班领导",
        "starts_at": now.isoformat(),
        "ends_at": now.replace(year=now.year + 1).isoformat(),
    }
    added = await desk.http.post("/api/v1/directory/roster", json=shift, headers=desk.tokens["duty_officer"])
    assert added.status_code == 201, added.text
    incident_id = await desk.open_incident("小店区内涝", "natural_disaster", "III", "140105")
    async with contextlib.AsyncExitStack() as stack:
        phones = {n: await stack.enter_async_context(PhoneProcess()) for n in ("8002", "8003", "8004", "8005")}
        for number, phone in phones.items():
            await register(phone, asterisk, number, "never" if number == "8004" else "auto")
        body = {
            "subject": "防汛紧急会商",
            "text": "请立即到指挥中心参加防汛会商。",
            "incident_id": incident_id,
            "contact_ids": [found[n]["id"] for n in ("王强", "李明", "赵刚")],
            "channels": ["voice"],
            "policy": "升级",
        }
        issued = await desk.http.post("/api/v1/notices", json=body, headers=desk.tokens["duty_officer"])
        assert issued.status_code == 201, issued.text
        notice = issued.json()
        await asyncio.gather(
            confirms(phones["8002"], "8002", tmp_path / "8002.wav", "1"),
            confirms(phones["8003"], "8003", tmp_path / "8003.wav", "2", "1"),
            confirms(phones["8005"], "8005", tmp_path / "8005.wav", "1"),  # the leader, once 赵刚 is escalated
        )

        async def complete() -> dict[str, Any] | None:
            got = await board(desk, notice["id"])
            return got if got["complete"] else None

        done = await until(complete, timeout=60, what="every desk confirmed and the notice complete")
        assert len(phones["8004"].find("incoming_call")) == 2  # rang out in both rounds
    rows = {item["name"]: item for item in done["items"]}
    assert done["counts"]["confirmed"] == 3 and done["counts"]["total"] == 3 and done["never_confirmed"] == []
    for name, number in (("王强", "8002"), ("李明", "8003")):
        row = rows[name]
        assert (row["confirmed_channel"], row["confirmed_address"], row["confirmed_by"]) == ("voice", number, name)
        assert row["tier"] == 1 and row["confirmed_at"]
    zhao = rows["赵刚"]
    assert (zhao["confirmed_address"], zhao["confirmed_by"], zhao["tier"]) == ("8005", "带班领导 孙华", 2)
    assert zhao["escalated_to"] == ["带班领导 孙华"]
    li = next(d for d in rows["李明"]["deliveries"] if d["channel"] == "voice")
    assert li["state"] == "confirmed" and "播放 2 遍" in li["last_error"]
    entries = (
        await desk.http.get(f"/api/v1/incidents/{incident_id}/timeline?kind=notice", headers=desk.tokens["leader"])
    ).json()["items"]
    summaries = [e["summary"] for e in entries]
    assert any(
        re.fullmatch(r"通知《防汛紧急会商》：\S+赵刚 1[0-9] 秒未确认，第 2 级：转带班领导 孙华（8005）代为确认", s)
        for s in summaries
    ), summaries
    assert any(
        s.startswith("赵刚 确认收到通知《防汛紧急会商》：语音电话 8005，按1") and s.endswith("由带班领导 孙华代为确认")
        for s in summaries
    ), summaries
    assert summaries[-1] == "通知《防汛紧急会商》完成：3 人中 3 人确认"


@pytest.mark.timeout(120)
async def test_a_person_confirmed_by_sms_is_not_called_again(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path, smsc_factory: Any
) -> None:
    """陈静 gets the notice by SMS and voice; her desk phone rings unanswered while she replies 收到 to the SMS:
    confirmed by SMS, the ringing call hung up and its second round never placed (her voice delivery withdrawn)."""
    outbox = desk.app.state.services.outbox
    smsc = smsc_factory(receipt_delay=0.1, reply=f"{REPLYING}=收到")
    await sms_gateway(outbox, smsc, desk.app.state.services.notices.on_reply)
    found = await people(desk)
    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8006", "never")
        body = {"subject": "停电通知", "text": "今晚 20:00 起机房停电检修。", "contact_ids": [found["陈静"]["id"]]}
        issued = await desk.http.post("/api/v1/notices", json=body, headers=desk.tokens["duty_officer"])
        assert issued.status_code == 201, issued.text
        notice = issued.json()

        async def confirmed() -> dict[str, Any] | None:
            row = (await board(desk, notice["id"]))["items"][0]
            return row if row["state"] == "confirmed" else None

        row = await until(confirmed, timeout=30, what="陈静 to confirm by SMS")
        await phone.wait_for("incoming_call", timeout=15)
        await asyncio.wait_for(outbox.lanes["voice"].channel._calls.drain(), 30)  # her voice rounds are over
        assert len(phone.find("incoming_call")) == 1  # two rounds configured: the second was never placed
        await phone.wait_for("call_state", state="disconnected", timeout=15)
    hung_up = [e for e in desk.switchboard.bus.recent if e.type == "call.hangup_requested"]
    assert [e.actor for e in hung_up] == ["system"]  # the ringing round was hung up, not left to ring out
    assert (row["confirmed_channel"], row["confirmed_address"]) == ("sms", REPLYING)
    voice = next(d for d in (await board(desk, notice["id"]))["items"][0]["deliveries"] if d["channel"] == "voice")
    assert voice["state"] == "cancelled" and voice["last_error"].startswith("已通过短信确认，撤回")
    await outbox.stop()
