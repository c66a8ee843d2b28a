"""Conference bridges on the real Asterisk with real SIP phones (pjsua2 processes): dial-in by PIN with Mandarin
prompts, a tone one phone sends heard by every other and not by itself, a muted phone unheard, kick, lock, three
wrong PINs, the bridge recording filed with the tones in it and an edit to it detected; convening a group with
fallback numbers, retries and a roll call; a live call pulled into the bridge."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from recording.store import RecordingStore
from tests.support.asterisk_fixture import BRIDGE_PIN, MODERATOR_PIN, AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on
from tests.support.tones import Audio, load, loud_seconds, recorded_so_far, tone_present, tone_seconds, tone_shares
from tests.support.wait import until

BRIDGE = "8600"
SPEAKER, MUTED_TONE = 700, 1100
WINDOW = 2.0  # seconds of bridge audio, after the prompts, that the tone checks judge
DIRECTORY = (
    "organisation,department,name,title,office_phone,mobile,home_phone,groups\n"
    "140100,应急管理局,张伟,局长,8009,,8002,会商组\n"  # 8009 is never registered: unreachable, then 8002
    "140200,应急管理局,王芳,值班员,8003,,,会商组\n"
    "140300,应急管理局,刘洋,值班员,8004,,,会商组\n"
    "140400,应急管理局,陈静,值班员,8005,,,会商组\n"  # busy on every try
    "140500,应急管理局,赵磊,副局长,,13900000001,,会商组\n"  # a mobile, through the trunk
)


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    environ = {"SWITCHBOARD_BRIDGES_RETRY_SECONDS": "1", "SWITCHBOARD_BRIDGES_RING_SECONDS": "5"}
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=5, **environ) as desk:
        yield desk


def bridge_uri(asterisk: AsteriskHarness) -> str:
    return f"sip:{BRIDGE}@{asterisk.sip_host}:{asterisk.sip_port}"


async def asked_for_pin(asterisk: AsteriskHarness, number: str) -> None:
    """Wait until the call from `number` is in the dialplan's Read, which takes the PIN: digits sent before (in
    the Wait() after Answer, or while the wrong-PIN prompt plays) are dropped."""

    async def reading() -> bool:
        _, listing = await asterisk.engine.cli("core show channels concise")
        fields = [line.split("!") for line in listing.splitlines()]
        return any(f[0].startswith(f"PJSIP/{number}-") and f[5] == "Read" for f in fields if len(f) > 5)

    await until(reading, timeout=20, what=f"the bridge to ask {number} for the PIN", interval=0.1)


async def dial_in(phone: PhoneProcess, asterisk: AsteriskHarness, account: str, pin: str) -> str:
    """Call the bridge and key in the PIN once it is asked for; returns the call."""
    call = (await phone.command("call", account=account, uri=bridge_uri(asterisk)))["call"]
    await phone.wait_for("call_state", call=call, state="confirmed", timeout=10)
    await asked_for_pin(asterisk, account)
    await phone.command("dtmf", call=call, digits=pin + "#")
    return call


def last(path: str, seconds: float = WINDOW) -> Audio:
    """The last `seconds` of what a phone has recorded into `path` (so far, or all of it once stopped)."""
    audio = recorded_so_far(path)
    return load(audio, start=max(0.0, audio.seconds - seconds))


def only_tones(path: str) -> bool:
    """Whether the phone has lately heard the speaker's tone and nothing but the bridge's two tones: no prompt
    any more. (It says nothing of the muted tone: that is for the checks after.)"""
    window = last(path)
    shares = tone_shares(window, [SPEAKER, MUTED_TONE])
    loud = loud_seconds(window) >= WINDOW - 0.2
    return loud and shares[SPEAKER] >= 0.3 and shares[SPEAKER] + shares[MUTED_TONE] >= 0.9


async def joined(desk: Desk, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    return [await desk.next_event("bridge.joined", timeout=timeout) for _ in range(count)]


async def events_of(desk: Desk, counts: dict[str, int], timeout: float) -> dict[str, list[dict[str, Any]]]:
    """The next events of these types, as many of each as asked, in whatever order they come."""
    seen: dict[str, list[dict[str, Any]]] = {type_: [] for type_ in counts}

    async def collect() -> None:
        while any(len(seen[t]) < n for t, n in counts.items()):
            event = await desk.events.queue.get()
            if event.type in seen:
                seen[event.type].append(event.data)

    await asyncio.wait_for(collect(), timeout)
    return seen


async def bridge_state(desk: Desk) -> dict[str, Any]:
    response = await desk.http.get(f"/api/v1/bridges/{BRIDGE}", headers=desk.tokens["duty_officer"])
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.timeout(240)
async def test_dial_in_tones_mute_kick_lock_and_recording(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    incident_id = await desk.open_incident("汾河防汛会商", "natural_disaster", "III", "140100")
    async with PhoneProcess() as a, PhoneProcess() as b, PhoneProcess() as c:
        phones = [(a, "8001"), (a, "8002"), (b, "8003"), (b, "8004"), (c, "8005")]
        for phone, number in phones + [(c, "8006")]:
            await register(phone, asterisk, number, "never")
        # The moderator joins first; convening with no one to dial ties the bridge's session to the incident.
        calls = [await dial_in(a, asterisk, "8001", MODERATOR_PIN)]
        first = (await joined(desk, 1))[0]
        assert first["role"] == "moderator"
        convened = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/convene",
            json={"numbers": ["8009"], "incident_id": incident_id, "rounds": 1, "ring_seconds": 5},
            headers=desk.tokens["duty_officer"],
        )
        assert convened.status_code == 202, convened.text
        for phone, number in phones[1:]:
            calls.append(await dial_in(phone, asterisk, number, BRIDGE_PIN))
        members = await joined(desk, 4)
        assert all(m["role"] == "participant" and m["incident_id"] == incident_id for m in members), members
        state = await bridge_state(desk)
        assert state["active"] and len(state["members"]) == 5 and state["recording"]
        ids = {m["number"]: m["participant_id"] for m in state["members"]}

        # Phone 2 is muted by the moderator; phone 1 (the moderator) and phone 2 each send a tone.
        muted = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/participants/{ids['8002']}/mute",
            json={"muted": True},
            headers=desk.tokens["duty_officer"],
        )
        assert muted.status_code == 204, muted.text
        assert (await desk.next_event("bridge.muted"))["participant_id"] == ids["8002"]
        recordings = {n: str(tmp_path / f"{n}.wav") for _, n in phones}
        for (phone, number), call in zip(phones, calls, strict=True):
            await phone.command("record", call=call, path=recordings[number])
        await a.command("play_tone", call=calls[0], freq=SPEAKER)
        await a.command("play_tone", call=calls[1], freq=MUTED_TONE)
        # The join prompts play to the whole bridge: the checks judge the last seconds, once every phone but the
        # speaker has heard its tone, and nothing but tones, for that long (audio flowed to all, prompts are over).
        listeners = ("8002", "8003", "8004", "8005")
        await until(
            lambda: all(only_tones(recordings[n]) for n in listeners),
            timeout=30,
            what=f"{WINDOW:g} s of the speaker's tone, prompts over, on every other phone",
            interval=0.25,
        )
        # The speaker's tone lit it: ConfbridgeTalking passed manager.conf and its AMI lane, naming the participant.
        lit = [e.data for e in desk.switchboard.bus.recent if e.type == "bridge.talking" and e.data.get("talking")]
        assert ids["8001"] in {t["participant_id"] for t in lit}, lit
        for (phone, _), call in zip(phones, calls, strict=True):
            await phone.command("record", call=call, stop=True)
        await a.command("play_tone", call=calls[0], stop=True)
        await a.command("play_tone", call=calls[1], stop=True)
        heard = {n: last(path) for n, path in recordings.items()}
        for number in ("8003", "8004", "8005"):  # every other phone hears the speaker, nobody the muted one
            assert tone_present(heard[number], SPEAKER, min_share=0.5), number
            assert not tone_present(heard[number], MUTED_TONE, min_share=0.05), number
        assert tone_present(heard["8002"], SPEAKER, min_share=0.5)  # muted, not deaf
        assert not tone_present(heard["8001"], SPEAKER, min_share=0.05)  # no echo of itself
        assert not tone_present(heard["8001"], MUTED_TONE, min_share=0.05)

        # All muted but the moderator; then unmuted again.
        everyone = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/mute", json={"muted": True}, headers=desk.tokens["leader"]
        )
        assert everyone.status_code == 204
        all_but_moderator = {"8001": False, "8002": True, "8003": True, "8004": True, "8005": True}
        muted_now: dict[str, bool] = {}

        async def all_muted() -> bool:
            muted_now.update({m["number"]: m["muted"] for m in (await bridge_state(desk))["members"]})
            return muted_now == all_but_moderator

        await until(all_muted, timeout=10, what=lambda: f"everyone but the moderator muted (now {muted_now})")
        await desk.http.post(f"/api/v1/bridges/{BRIDGE}/mute", json={"muted": False}, headers=desk.tokens["leader"])

        # Kick phone 5: its call ends.
        kicked = await desk.http.delete(
            f"/api/v1/bridges/{BRIDGE}/participants/{ids['8005']}", headers=desk.tokens["duty_officer"]
        )
        assert kicked.status_code == 204, kicked.text
        await c.wait_for("call_state", call=calls[4], state="disconnected", timeout=15)
        assert (await desk.next_event("bridge.kicked"))["participant_id"] == ids["8005"]

        # Locked: a newcomer with the right PIN is turned away; unlocked again.
        assert (
            await desk.http.post(f"/api/v1/bridges/{BRIDGE}/lock", json={"locked": True}, headers=desk.tokens["leader"])
        ).status_code == 204
        late = await dial_in(c, asterisk, "8006", BRIDGE_PIN)
        await c.wait_for("call_state", call=late, state="disconnected", timeout=20)
        assert len((await bridge_state(desk))["members"]) == 4
        await desk.http.post(f"/api/v1/bridges/{BRIDGE}/lock", json={"locked": False}, headers=desk.tokens["leader"])

        # The moderator stops the recording (that part is filed at once, under the incident) and starts it again.
        stop = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/recording", json={"recording": False}, headers=desk.tokens["leader"]
        )
        assert stop.status_code == 204, stop.text
        saved = await desk.next_event("recording.saved", timeout=20)
        assert not (await bridge_state(desk))["recording"]
        start = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/recording", json={"recording": True}, headers=desk.tokens["leader"]
        )
        assert start.status_code == 204, start.text
        assert (await desk.next_event("bridge.recording"))["recording"]

        # Everybody leaves: the session ends and the second part is filed too.
        for (phone, _), call in zip(phones[:4], calls[:4], strict=True):
            await phone.command("hangup", call=call)
        ended = await desk.next_event("bridge.ended", timeout=20)
        assert ended["incident_id"] == incident_id
        second = await desk.next_event("recording.saved", timeout=20)
    store = RecordingStore(desk.switchboard)
    recording = await store.get(saved["recording_id"])
    assert recording.kind == "bridge" and recording.incident_id == incident_id
    assert recording.source_id == ended["session_id"] and len(recording.parties) == 5
    path = store.path_of(recording)
    assert tone_present(path, SPEAKER, min_share=0.2)
    assert not tone_present(path, MUTED_TONE, min_share=0.02)
    assert (await store.get(second["recording_id"])).incident_id == incident_id

    roll = (
        await desk.http.get(
            f"/api/v1/bridges/{BRIDGE}/roll-call?session_id={ended['session_id']}", headers=desk.tokens["leader"]
        )
    ).json()
    states = {p["numbers"][0]: p["state"] for p in roll["participants"] if p["numbers"]}
    assert states | {"8009": states.get("8009")} == {
        "8001": "left", "8002": "left", "8003": "left", "8004": "left", "8005": "kicked", "8009": "unanswered",
    }  # fmt: skip
    timeline = (await desk.http.get(f"/api/v1/incidents/{incident_id}/timeline", headers=desk.tokens["leader"])).json()
    kinds = {e["type"] for e in timeline["items"]}
    assert {"bridge.convened", "bridge.joined", "bridge.kicked", "bridge.ended", "recording.saved"} <= kinds

    with path.open("r+b") as handle:  # an edit to the stored file is found
        handle.seek(recording.size // 2)
        handle.write(b"\x00" * 64)
    assert any(f.recording_id == recording.id and f.problem == "changed" for f in await store.verify())


@pytest.mark.timeout(90)
async def test_three_wrong_pins_hang_up_politely(desk: Desk, asterisk: AsteriskHarness) -> None:
    tries: asyncio.Queue[int] = asyncio.Queue()

    def on_event(message: Any) -> None:
        if message.get("UserEvent") == "SwitchboardBridgePin":
            tries.put_nowait(int(message.get("Tries", 0)))

    assert desk.telephony.ami is not None
    desk.telephony.ami.on_event(on_event)
    async with PhoneProcess() as phone:
        await register(phone, asterisk, "8007", "never")
        call = await dial_in(phone, asterisk, "8007", "1111")
        for attempt in (1, 2):
            assert await asyncio.wait_for(tries.get(), 10) == attempt
            await asked_for_pin(asterisk, "8007")  # again, after the "wrong PIN" prompt (it cannot be interrupted)
            await phone.command("dtmf", call=call, digits="1111#")
        assert await asyncio.wait_for(tries.get(), 10) == 3
        ended = await phone.wait_for("call_state", call=call, state="disconnected", timeout=15)
        assert ended  # after the goodbye prompt, never in the bridge
    assert BRIDGE not in desk.telephony.bridges.rooms  # type: ignore[union-attr]


@pytest.mark.timeout(180)
async def test_convene_group_with_fallback_retries_roll_call_and_pull(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    groups = (await desk.http.get("/api/v1/directory/groups", headers=desk.tokens["leader"])).json()
    group_id = next(g["id"] for g in groups if g["name"] == "会商组")
    async with PhoneProcess() as desks, PhoneProcess() as outside:
        for number, mode in (("8002", "auto"), ("8003", "auto"), ("8004", "auto"), ("8005", "busy")):
            await register(desks, asterisk, number, mode)
        await outside.command("account", name="pstn", port=asterisk.trunk_port)
        await outside.command("answer", account="pstn", mode="auto", delay_ms=200)
        await register(outside, asterisk, "8006", "auto")
        heard: list[dict[str, Any]] = []  # what Asterisk sends the switchboard's own AMI session
        desk.telephony.ami.on_event(lambda message: heard.append(dict(message)))

        convened = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/convene",
            json={"group_id": group_id, "rounds": 2, "ring_seconds": 5},
            headers=desk.tokens["duty_officer"],
        )
        assert convened.status_code == 202, convened.text
        roll = convened.json()
        assert sorted(p["name"] for p in roll["participants"]) == sorted(["张伟", "王芳", "刘洋", "陈静", "赵磊"])
        assert {p["state"] for p in roll["participants"]} == {"queued"}
        # 陈静's busy rounds are over in seconds, so her event may come before or between the joins.
        seen = await events_of(desk, {"bridge.joined": 4, "bridge.unanswered": 1}, timeout=60)
        assert {m["name"] for m in seen["bridge.joined"]} == {"张伟", "王芳", "刘洋", "赵磊"}
        (unanswered,) = seen["bridge.unanswered"]
        # The reason is what the tries met (the dialplan's events land before the Originate's answer is read).
        assert unanswered["name"] == "陈静" and unanswered["reason"] == "busy", unanswered

        roll = (await desk.http.get(f"/api/v1/bridges/{BRIDGE}/roll-call", headers=desk.tokens["leader"])).json()
        by_name = {p["name"]: p for p in roll["participants"]}
        assert [(t["number"], t["result"]) for t in by_name["张伟"]["tries"]][:2] == [
            ("8009", "unreachable"), ("8002", "answered")
        ]  # fmt: skip
        assert by_name["陈静"]["state"] == "unanswered" and by_name["陈静"]["rounds"] == 2
        assert [(t["number"], t["result"]) for t in by_name["陈静"]["tries"]] == [("8005", "busy"), ("8005", "busy")]
        assert by_name["王芳"]["joined_at"] and by_name["赵磊"]["state"] == "joined"
        # manager.conf spares the control plane a convene leg's Dial events (the Originate's and its loop's): it
        # follows the legs by the loop's UserEvents, which it does get.
        assert sum(m.get("UserEvent") == "SwitchboardAttempt" for m in heard) >= 7
        rounds = {f"{p['id']}-r{n}" for p in roll["participants"] for n in (1, 2)}
        dials = [m for m in heard if m["Event"] in ("DialBegin", "DialEnd")]
        assert not [m for m in dials if {m.get("DestUniqueid"), m.get("Uniqueid", "").removesuffix("-d")} & rounds]

        # Audio crosses convened legs: 王芳 (8003) speaks, 张伟 (8002) hears (checked once the phone let go of it).
        legs = {e["account"]: e["call"] for e in desks.find("call_state", state="confirmed")}
        await desks.command("record", call=legs["8002"], path=str(tmp_path / "zhang.wav"))
        await desks.command("play_tone", call=legs["8003"], freq=SPEAKER)
        zhang = tmp_path / "zhang.wav"
        await until(
            lambda: (
                tone_seconds(recorded_so_far(zhang), SPEAKER) >= WINDOW
                and tone_present(recorded_so_far(zhang), SPEAKER, min_share=0.5)
            ),
            timeout=30,
            what="张伟 (8002) to hear 王芳 (8003)'s tone",
            interval=0.25,
        )
        await desks.command("record", call=legs["8002"], stop=True)
        await desks.command("play_tone", call=legs["8003"], stop=True)

        # A live dispatch call (desk 8006 with an outside number) is pulled in: both legs join.
        placed = await desk.http.post(
            "/api/v1/calls", json={"number": "13700000002", "desk": "8006"}, headers=desk.tokens["duty_officer"]
        )
        call_id = placed.json()["id"]
        while (await desk.next_event("call.answered", timeout=30))["call_id"] != call_id:
            pass
        pulled = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/pull", json={"call_id": call_id}, headers=desk.tokens["duty_officer"]
        )
        assert pulled.status_code == 202, pulled.text
        assert len(await joined(desk, 2)) == 2
        assert len((await bridge_state(desk))["members"]) == 6

        refused = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/convene", json={"numbers": ["abc"]}, headers=desk.tokens["duty_officer"]
        )
        assert refused.status_code == 422 and refused.json()["field"] == "numbers.0"
        forbidden = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/lock", json={"locked": True}, headers=desk.tokens["alert_officer"]
        )
        assert forbidden.status_code == 403
        missing = await desk.http.get("/api/v1/bridges/8611", headers=desk.tokens["leader"])
        assert missing.status_code == 404 and missing.json()["field"] == "bridge"
        for event in desks.find("call_state", state="confirmed") + outside.find("call_state", state="confirmed"):
            phone = desks if event in desks.events else outside
            await phone.command("hangup", call=event["call"], check=False)
        await desk.next_event("bridge.ended", timeout=20)
    assert tone_present(tmp_path / "zhang.wav", SPEAKER, min_share=0.5)


async def _roll_call(desk: Desk) -> dict[str, dict[str, Any]]:
    roll = (await desk.http.get(f"/api/v1/bridges/{BRIDGE}/roll-call", headers=desk.tokens["leader"])).json()
    return {p["numbers"][0]: p for p in roll["participants"]}


@pytest.mark.timeout(180)
async def test_a_locked_bridge_turns_an_answering_invitee_away_and_ending_stops_convening(
    desk: Desk, asterisk: AsteriskHarness
) -> None:
    async with PhoneProcess() as phones:
        for number, mode in (("8002", "auto"), ("8003", "never"), ("8004", "never")):
            await register(phones, asterisk, number, mode)
        convened = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/convene",
            json={"numbers": ["8002", "8003"], "rounds": 3, "ring_seconds": 5},
            headers=desk.tokens["duty_officer"],
        )
        assert convened.status_code == 202, convened.text
        assert (await desk.next_event("bridge.joined", timeout=30))["numbers"] == ["8002"]

        # 8003 lets its first round ring out; the bridge is locked; 8003 answers the second round.
        async def first_round_over() -> bool:
            tries = (await _roll_call(desk))["8003"]["tries"]
            return bool(tries) and tries[0]["result"] == "no_answer"

        await until(first_round_over, timeout=30, what="8003's first round to ring out")
        locked = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/lock", json={"locked": True}, headers=desk.tokens["leader"]
        )
        assert locked.status_code == 204
        await phones.command("answer", account="8003", mode="auto")
        turned_away = await desk.next_event("bridge.unanswered", timeout=40)
        assert turned_away["numbers"] == ["8003"] and turned_away["reason"] == "locked", turned_away
        assert "会议已锁定" in turned_away["summary"]
        assert (await _roll_call(desk))["8003"]["state"] == "unanswered"  # not left at "dialing"
        answered = phones.find("call_state", account="8003", state="confirmed")
        assert answered, "8003 answered the second round"
        await phones.wait_for("call_state", call=answered[0]["call"], state="disconnected", timeout=20)

        # 8004 is being convened (ringing) when the conference is ended: its ringing stops, 8002 is taken out,
        # and nobody is rung again.
        again = await desk.http.post(
            f"/api/v1/bridges/{BRIDGE}/convene",
            json={"numbers": ["8004"], "rounds": 3, "ring_seconds": 20},
            headers=desk.tokens["duty_officer"],
        )
        assert again.status_code == 202, again.text
        ringing = await phones.wait_for("incoming_call", account="8004", timeout=20)
        ended = await desk.http.post(f"/api/v1/bridges/{BRIDGE}/end", headers=desk.tokens["leader"])
        assert ended.status_code == 204, ended.text
        stopped = await desk.next_event("bridge.unanswered", timeout=20)
        assert stopped["numbers"] == ["8004"] and stopped["reason"] == "ended"
        await phones.wait_for("call_state", call=ringing["call"], state="disconnected", timeout=20)
        member = phones.find("call_state", account="8002", state="confirmed")[0]
        await phones.wait_for("call_state", call=member["call"], state="disconnected", timeout=20)
        await desk.next_event("bridge.ended", timeout=20)
        assert {p["state"] for p in (await _roll_call(desk)).values()} == {"left", "unanswered"}
        assert (await bridge_state(desk))["members"] == []
