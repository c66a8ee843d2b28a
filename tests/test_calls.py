"""Telephone dispatch against a real Asterisk with real SIP phones (pjsua2 processes): the desk rings first,
then the party's numbers in priority order; audio crosses both ways (each side detects the other's tone), DTMF
arrives, the call lands on the incident's timeline, inbound hotline callers are looked up, and the AMI link
recovers when Asterisk is killed mid-call."""

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sip.models import Call
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on
from tests.support.tones import load, recorded_so_far, tone_present, tone_seconds
from tests.support.wait import until

OUTSIDE_CALLER = "13800138000"  # in the directory: the inbound test expects the console to name him
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,home_phone,call_order\n"
    "140105,应急管理局,王强,局长,8002;8004,13912345678,8003,office_phone;home_phone;mobile\n"
    f"140105,应急管理局,李明,值班员,,{OUTSIDE_CALLER},,\n"
)


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    """Switchboard driving the session's Asterisk as an external engine, on a fresh SQLite database."""
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=2) as desk:
        yield desk


async def answered_call(desk: Desk, asterisk: AsteriskHarness, outside: PhoneProcess, number: str) -> str:
    """From desk 8001 (registered by the caller) to an outside number that answers; returns the call id."""
    await outside.command("account", name="pstn", port=asterisk.trunk_port)
    await outside.command("answer", account="pstn", mode="auto", delay_ms=100)
    placed = await desk.http.post(
        "/api/v1/calls", json={"number": number, "desk": "8001"}, headers=desk.tokens["duty_officer"]
    )
    call_id = placed.json()["id"]
    assert (await desk.next_event("call.answered"))["call_id"] == call_id
    return call_id


async def converse(near: PhoneProcess, near_call: str, far: PhoneProcess, far_call: str, tmp_path: Path) -> None:
    """The near phone plays 700 Hz and the far one 1300 Hz until the near one has heard two seconds of it."""
    heard = tmp_path / f"heard-{near_call}.wav"
    await near.command("play_tone", call=near_call, freq=700)
    await far.command("play_tone", call=far_call, freq=1300)
    await near.command("record", call=near_call, path=str(heard))
    await until(
        lambda: tone_seconds(recorded_so_far(heard), 1300) >= 2,
        timeout=20,
        what="the near phone to hear the far end's tone for two seconds",
    )


async def recorded(desk: Desk, call_id: str, numbers: set[str]) -> None:
    """The call's recording was filed with these parties' numbers and holds both tones of `converse`."""
    saved = await desk.next_event("recording.saved", timeout=30)
    recording = await desk.telephony.recordings.get(saved["recording_id"])
    assert recording.source_id == call_id and {p["number"] for p in recording.parties} == numbers
    stored = desk.telephony.recordings.path_of(recording)
    assert tone_present(stored, 1300) and tone_present(stored, 700)


@pytest.mark.timeout(120)
async def test_desk_rings_first_then_numbers_in_priority_order(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    incident_id = await desk.open_incident("小店区化工厂泄漏", "accident_disaster", "II", "140105")
    contact = (await desk.http.get("/api/v1/directory/contacts?q=王强", headers=desk.tokens["leader"])).json()[0]

    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "auto")  # the officer's desk
        await register(desks, asterisk, "8004", "busy")
        await register(desks, asterisk, "8003", "never")  # 8002 is not registered: unreachable
        await outside.command("account", name="pstn", port=asterisk.trunk_port)
        await outside.command("answer", account="pstn", mode="auto", delay_ms=300)
        heard: list[dict[str, Any]] = []  # what Asterisk sends the switchboard's own AMI session
        desk.telephony.ami.on_event(lambda message: heard.append(dict(message)))

        placed = await desk.http.post(
            "/api/v1/calls",
            json={"contact_id": contact["id"], "desk": "8001", "incident_id": incident_id, "ring_seconds": 5},
            headers=desk.tokens["duty_officer"],
        )
        assert placed.status_code == 201, placed.text
        call = placed.json()
        assert [t["number"] for t in call["targets"]] == ["8002", "8004", "8003", "13912345678"]

        desk_call = (await desks.wait_for("call_state", account="8001", state="confirmed", timeout=15))["call"]
        answered = await desk.next_event("call.answered", timeout=40)
        assert answered["call_id"] == call["id"]
        far = (await outside.wait_for("call_state", account="pstn", state="confirmed", timeout=5))["call"]

        await desks.command("play_tone", call=desk_call, freq=700)
        await outside.command("play_tone", call=far, freq=1300)
        await desks.command("record", call=desk_call, path=str(tmp_path / "desk.wav"))
        await outside.command("record", call=far, path=str(tmp_path / "far.wav"))
        await until(  # two seconds each way: the stored recording is checked to last more than two seconds
            lambda: (
                tone_seconds(recorded_so_far(tmp_path / "desk.wav"), 1300) >= 2
                and tone_seconds(recorded_so_far(tmp_path / "far.wav"), 700) >= 2
            ),
            timeout=20,
            what="the desk and the far party to hear each other's tone for two seconds",
        )
        await desks.command("dtmf", call=desk_call, digits="119#")
        digits = [(await outside.wait_for("dtmf", call=far, timeout=5))["digit"] for _ in range(4)]
        assert "".join(digits) == "119#"
        await outside.command("hold", call=far)  # the far party puts the officer on hold, then returns
        assert (await desk.next_event("call.held"))["call_id"] == call["id"]
        await outside.command("hold", call=far, release=True)
        assert (await desk.next_event("call.answered"))["call_id"] == call["id"]

        hung = await desk.http.delete(f"/api/v1/calls/{call['id']}", headers=desk.tokens["duty_officer"])
        assert hung.status_code == 200
        ended = await desk.next_event("call.ended")
        await outside.wait_for("call_state", call=far, state="disconnected", timeout=10)
        await desks.command("record", call=desk_call, stop=True, check=False)
        await outside.command("record", call=far, stop=True, check=False)

    assert ended["state"] == "ended"
    assert [(a["number"], a["result"]) for a in ended["attempts"]] == [
        ("8002", "unreachable"),
        ("8004", "busy"),
        ("8003", "no_answer"),
        ("13912345678", "answered"),
    ]
    assert tone_present(tmp_path / "desk.wav", 1300) and not tone_present(tmp_path / "desk.wav", 700)
    assert tone_present(tmp_path / "far.wav", 700) and not tone_present(tmp_path / "far.wav", 1300)
    # The desk leg's own Dials (one per number reached) reach the control plane; the Originate's Dial of the desk leg,
    # which names no calling channel, is kept out by manager.conf.
    dials = [(m["Event"], m.get("Uniqueid"), m.get("DestUniqueid")) for m in heard if m["Event"].startswith("Dial")]
    desk_leg = f"{call['id']}-desk"
    assert [e for e, caller, _ in dials if caller == desk_leg].count("DialBegin") == 3  # none for unreachable 8002
    assert not [d for d in dials if d[2] == desk_leg]

    timeline = await desk.http.get(f"/api/v1/incidents/{incident_id}/timeline", headers=desk.tokens["leader"])
    entries = [e for e in timeline.json()["items"] if e["kind"] == "call"]
    assert len(entries) == 1 and entries[0]["summary"].startswith("呼叫 王强，通话")
    assert entries[0]["refs"] == [call["id"]]
    final = (await desk.http.get(f"/api/v1/calls/{call['id']}", headers=desk.tokens["leader"])).json()
    assert final["state"] == "ended" and final["answered_at"] and final["ended_at"]
    # The conversation was recorded (MixMonitor): both voices are in the stored file, filed under the incident.
    saved = await desk.next_event("recording.saved")
    assert saved["incident_id"] == incident_id
    found = await desk.http.get(f"/api/v1/recordings?incident_id={incident_id}", headers=desk.tokens["leader"])
    [recording] = found.json()
    assert recording["source_id"] == call["id"] and recording["duration_seconds"] > 2
    stored = desk.telephony.recordings.path_of(await desk.telephony.recordings.get(recording["id"]))
    assert tone_present(stored, 700) and tone_present(stored, 1300) and not tone_present(stored, 1700)
    listed = await desk.http.get(f"/api/v1/calls?incident_id={incident_id}", headers=desk.tokens["leader"])
    assert [c["id"] for c in listed.json()] == [call["id"]]
    assert (await desk.http.get("/api/v1/calls?active=true", headers=desk.tokens["leader"])).json() == []


@pytest.mark.timeout(60)
async def test_hotline_caller_is_named_and_duty_desk_answers(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "auto")
        await outside.command("account", name="pstn", port=asterisk.trunk_port, uri=f"sip:{OUTSIDE_CALLER}@127.0.0.1")
        await outside.command("call", account="pstn", uri=f"sip:{asterisk.hotlines[0]}@127.0.0.1:{asterisk.sip_port}")
        incoming = await desk.next_event("call.incoming")
        assert (incoming["number"], incoming["party_name"], incoming["known"]) == (OUTSIDE_CALLER, "李明", True)
        assert "应急管理局" in incoming["party_org"]
        answering = (await desks.wait_for("call_state", account="8001", state="confirmed", timeout=10))["call"]
        assert (await desk.next_event("call.answered"))["call_id"] == incoming["call_id"]
        caller = (await outside.wait_for("call_state", account="pstn", state="confirmed", timeout=5))["call"]
        await converse(desks, answering, outside, caller, tmp_path)
        await outside.command("hangup", call=caller)
        assert (await desk.next_event("call.ended"))["state"] == "ended"
        await desks.command("record", call=answering, stop=True, check=False)
    # Recorded by the hotline's dialplan: the caller's voice is in it, filed with the caller and the desk.
    await recorded(desk, incoming["call_id"], {"8001", OUTSIDE_CALLER})


async def test_bad_input_and_unknown_contacts_are_refused(desk: Desk) -> None:
    calls, headers = "/api/v1/calls", desk.tokens["duty_officer"]
    cases = [
        ({"contact_id": "01UNKNOWNCONTACT0000000000"}, "contact_id"),
        ({"number": "139-abc"}, "number"),
        ({"number": "13912345678", "desk": "9999"}, "desk"),
        ({"number": "13912345678", "incident_id": "01NOSUCHINCIDENT0000000000"}, "incident_id"),
        ({"number": "1", "contact_id": "x"}, None),
    ]
    for body, field in cases:
        response = await desk.http.post(calls, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field or field is None
    assert (
        await desk.http.post(calls, json={"number": "13912345678"}, headers=desk.tokens["approver"])
    ).status_code == 403


@pytest.mark.timeout(120)
async def test_link_and_calls_recover_when_asterisk_is_killed(desk: Desk, asterisk: AsteriskHarness) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "auto")
        call_id = await answered_call(desk, asterisk, outside, "13700000000")

        pid = asterisk.engine.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        link = await desk.next_event("engine.link")
        assert link["state"] in ("down", "connecting")
        health = (await desk.http.get("/healthz")).json()
        assert health["status"] == "degraded" and health["components"]["asterisk"]["status"] == "down"
        refused = await desk.http.post(
            "/api/v1/calls", json={"number": "13700000000"}, headers=desk.tokens["duty_officer"]
        )
        assert refused.status_code == 503 and "Asterisk" in refused.json()["message"]

        # A call accepted just before the link dropped is still queued; it is placed once the link is back.
        assert desk.telephony.ami is not None and desk.telephony.calls is not None
        await desk.telephony.ami.stop()  # keep the link down until the desk phone has registered again
        queued = Call(
            direction="outbound",
            desk="8001",
            targets=[
                {"number": "13700000001", "kind": "number", "dial": desk.telephony.calls.dial_string("13700000001")}
            ],
            attempts=[],
            state="queued",
            created_by="duty_officer",
            ring_seconds=20,
        )
        async with desk.switchboard.db.session() as session:
            session.add(queued)
        await asterisk.engine.start(timeout=30)
        async with PhoneProcess() as fresh:  # the old registration died with Asterisk's memory
            await register(fresh, asterisk, "8001", "auto")
            desk.telephony.ami.start()
            await desk.telephony.ami.wait_up(20)
            ended = await desk.next_event("call.ended")  # resynchronised: its channels are gone
            assert (ended["call_id"], ended["cause"]) == (call_id, "lost_on_restart")
            assert (await desk.http.get("/healthz")).json()["components"]["asterisk"]["status"] == "ok"
            assert (await desk.next_event("call.answered"))["call_id"] == queued.id
            await desk.http.delete(f"/api/v1/calls/{queued.id}", headers=desk.tokens["duty_officer"])
            assert (await desk.next_event("call.ended"))["call_id"] == queued.id


@pytest.mark.timeout(60)
async def test_unanswered_hotline_falls_back_to_the_duty_mobile(desk: Desk, asterisk: AsteriskHarness) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        for number in ("8001", "8002", "8003"):  # the duty group rings, nobody answers
            await register(desks, asterisk, number, "never")
        await outside.command("account", name="pstn", port=asterisk.trunk_port, uri=f"sip:{OUTSIDE_CALLER}@127.0.0.1")
        await outside.command("answer", account="pstn", mode="manual")
        await outside.command("call", account="pstn", uri=f"sip:{asterisk.hotlines[0]}@127.0.0.1:{asterisk.sip_port}")
        for number in ("8001", "8002", "8003"):
            await desks.wait_for("incoming_call", account=number, timeout=10)
        # After the group's timeout the officer's mobile rings through the trunk: the outside world again.
        mobile = await outside.wait_for("incoming_call", account="pstn", timeout=15)
        assert f"sip:{asterisk.fallback_mobile}@" in mobile["local_uri"]
        await outside.command("answer", call=mobile["call"])
        assert (await desk.next_event("call.answered"))["party_name"] == "李明"


@pytest.mark.timeout(90)
async def test_transfer_and_reload_keep_the_call(desk: Desk, asterisk: AsteriskHarness, tmp_path: Path) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "auto")
        await register(desks, asterisk, "8005", "auto")
        call_id = await answered_call(desk, asterisk, outside, "13600000000")
        far = (await outside.wait_for("call_state", account="pstn", state="confirmed", timeout=5))["call"]

        # A config change reloads over AMI while the call is up: the call survives, the change takes effect.
        original = asterisk.engine.definition
        for definition in (original.model_copy(update={"echo_test": "8998"}), original):
            asterisk.engine.definition = definition  # and back: the session's other tests keep their echo number
            asterisk.engine.render()
            assert desk.telephony.ami is not None
            await desk.telephony.reload()
            status, output = await asterisk.engine.cli(f"dialplan show {definition.echo_test}@internal")
            assert status == 0 and "Echo" in output
        assert (await desk.http.get(f"/api/v1/calls/{call_id}", headers=desk.tokens["leader"])).json()["state"] == (
            "answered"
        )

        # Blind transfer of the far party to desk 8005: the officer's desk is released.
        transfer = await desk.http.post(
            f"/api/v1/calls/{call_id}/transfer", json={"number": "8005"}, headers=desk.tokens["duty_officer"]
        )
        assert transfer.status_code == 200, transfer.text
        second = (await desks.wait_for("call_state", account="8005", state="confirmed", timeout=10))["call"]
        await desks.command("play_tone", call=second, freq=1700)
        await outside.command("record", call=far, path=str(tmp_path / "after.wav"))
        await until(
            lambda: tone_seconds(recorded_so_far(tmp_path / "after.wav"), 1700) >= 1,
            timeout=20,
            what="the far party to hear desk 8005's tone after the transfer",
        )
        await outside.command("hangup", call=far)
        await outside.wait_for("recording", call=far, timeout=10)
    assert tone_present(tmp_path / "after.wav", 1700)


def _hears(path: Path, freq: float, seconds: float = 1.5) -> bool:
    """Whether the last `seconds` of what a phone recorded are mostly this tone."""
    audio = recorded_so_far(path)
    return audio.seconds > seconds and tone_present(load(audio, start=audio.seconds - seconds), freq, min_share=0.5)


@pytest.mark.timeout(120)
async def test_hold_and_resume_from_the_switchboard(desk: Desk, asterisk: AsteriskHarness, tmp_path: Path) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "auto")
        call_id = await answered_call(desk, asterisk, outside, "13600000001")
        far = (await outside.wait_for("call_state", account="pstn", state="confirmed", timeout=5))["call"]
        near = (await desks.wait_for("call_state", account="8001", state="confirmed", timeout=5))["call"]
        heard = tmp_path / "far.wav"
        await desks.command("play_tone", call=near, freq=1500)
        await outside.command("record", call=far, path=str(heard))
        await until(lambda: _hears(heard, 1500), timeout=20, what="the far party to hear the desk", interval=0.25)

        url, headers = f"/api/v1/calls/{call_id}/hold", desk.tokens["duty_officer"]
        mark = recorded_so_far(heard).seconds
        held = await desk.http.post(url, json={"held": True}, headers=headers)
        assert held.status_code == 200 and held.json()["state"] == "held", held.text
        assert (await desk.next_event("call.held"))["call_id"] == call_id

        def on_hold() -> bool:  # the desk's tone gone, the hold beeps (425 Hz, 0.4 s in 4 s) heard instead
            since_hold = load(recorded_so_far(heard), start=mark)
            return not _hears(heard, 1500) and tone_seconds(since_hold, 425) >= 0.3

        await until(on_hold, timeout=15, what="the far party to hear the hold tone, not the desk", interval=0.25)
        assert (await desk.http.post(url, json={"held": True}, headers=headers)).status_code == 409

        resumed = await desk.http.post(url, json={"held": False}, headers=headers)
        assert resumed.json()["state"] == "answered", resumed.text
        await until(lambda: _hears(heard, 1500), timeout=15, what="the desk to be heard again", interval=0.25)
        await outside.command("hangup", call=far)
        await desks.wait_for("call_state", call=near, state="disconnected", timeout=10)
        ended = await desk.next_event("call.ended")
        assert (ended["call_id"], ended["state"]) == (call_id, "ended")


async def test_roster_decides_the_fallback_mobile(desk: Desk) -> None:
    from datetime import timedelta

    from switchboard.calls import duty
    from switchboard.core.db import utcnow
    from switchboard.directory import service as directory

    person = (await directory.search_contacts(desk.switchboard, "李明", 1))[0]
    now = utcnow()
    await directory.add_shift(
        desk.switchboard, "t", "140000", person.id, "值班员", now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert await duty.mobiles(desk.switchboard, desk.telephony.definition) == {"duty": OUTSIDE_CALLER}


@pytest.mark.timeout(90)
async def test_calls_dialled_on_a_desk_phone_are_recorded(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        await register(desks, asterisk, "8001", "never")
        await register(desks, asterisk, "8002", "auto")
        await outside.command("account", name="pstn", port=asterisk.trunk_port)
        await outside.command("answer", account="pstn", mode="auto", delay_ms=100)
        for number, far_phone, far_account in (("8002", desks, "8002"), ("13600000000", outside, "pstn")):
            uri = f"sip:{number}@127.0.0.1:{asterisk.sip_port}"
            mine = (await desks.command("call", account="8001", uri=uri))["call"]
            dialling = await desk.next_event("call.dialing")
            assert (dialling["direction"], dialling["desk"], dialling["number"]) == ("desk", "8001", number)
            far = (await far_phone.wait_for("call_state", account=far_account, state="confirmed", timeout=10))["call"]
            assert (await desk.next_event("call.answered"))["call_id"] == dialling["call_id"]
            await converse(desks, mine, far_phone, far, tmp_path)
            await desks.command("hangup", call=mine)
            ended = await desk.next_event("call.ended")
            assert (ended["call_id"], ended["state"]) == (dialling["call_id"], "ended")
            await desks.command("record", call=mine, stop=True, check=False)
            await recorded(desk, dialling["call_id"], {"8001", number})
