"""Voice warnings against the real Asterisk with real SIP phones (pjsua2, each phone a process of its own): a call
per recipient through the dispatch fallback loop, the message read out (espeak-ng) and "收到请按1，重听请按2", the key
deciding the receipt; the call recorded and filed like a dispatch call; never more calls at once than `[voice]
lines`; a warning issued on `voice` reaching its audience's phones."""

import asyncio
import contextlib
import io
import math
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from broadcast.channel import Attachment, Message, SendResult
from broadcast.channels.voice import VoiceChannel
from broadcast.models import Delivery
from broadcast.outbox import Outbox
from switchboard.core.db import utcnow
from switchboard.core.events import Event
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on
from tests.support.tones import load, loud_seconds, recorded_so_far, tone_seconds
from tests.support.wait import until
from tests.test_warnings import content, incident, issued

GROUP = "预警接收"
DIRECTORY = (
    "organisation,department,name,title,office_phone,groups\n"
    f"140105,应急管理局,王强,局长,8002,{GROUP}\n"
    f"140105,应急管理局,李明,值班员,8003,{GROUP}\n"
    f"140105,应急管理局,赵刚,科员,8004,{GROUP}\n"
)
VOICE = {  # two lines; the message played twice at most; quick rings, two rounds straight after each other
    "SWITCHBOARD_VOICE_LINES": "2",
    "SWITCHBOARD_VOICE_REPLAYS": "1",
    "SWITCHBOARD_VOICE_DIGIT_SECONDS": "3",
    "SWITCHBOARD_VOICE_RING_SECONDS": "5",
    "SWITCHBOARD_VOICE_ROUNDS": "2",
    "SWITCHBOARD_VOICE_RETRY_SECONDS": "0",
}
TEXT = "暴雨橙色预警：汾河东岸低洼地带人员请立即转移。"
HEARD_SECONDS = 1.5  # of speech, before a phone presses a key: the message is being read out


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=3, **VOICE) as desk:
        yield desk


class Receipts:
    """The channel's receipts by remote id."""

    def __init__(self) -> None:
        self.got: dict[str, tuple[bool | None, str]] = {}
        self.via: dict[str, str] = {}  # the number that answered

    async def __call__(
        self, channel: str, remote_id: str, delivered: bool | None, detail: str, *, via: str = "", at: Any = None
    ) -> None:
        self.got[remote_id] = (delivered, detail)
        self.via[remote_id] = via

    async def of(self, remote_id: str, timeout: float = 60) -> tuple[bool | None, str]:
        return await until(lambda: self.got.get(remote_id), timeout=timeout, what=f"the receipt of {remote_id}")


@contextlib.asynccontextmanager
async def voice_channel(desk: Desk) -> AsyncIterator[tuple[VoiceChannel, Receipts]]:
    channel = desk.telephony.voice_channel()
    assert channel is not None
    receipts = Receipts()
    await channel.start(receipts)
    try:
        yield channel, receipts
    finally:
        await channel.stop()


async def send(channel: VoiceChannel, delivery_id: str, recipient: str, *recording: Attachment) -> SendResult:
    return await channel.send(Message(delivery_id=delivery_id, recipient=recipient, text=TEXT, attachments=recording))


def tone_recording(freq: float, seconds: float) -> Attachment:
    """An uploaded recording: a tone at 16 kHz stereo (the channel makes it telephone audio), a marker a phone can
    recognise in what it hears."""
    rate = 16000
    frames = b"".join(
        struct.pack("<hh", sample, sample)
        for sample in (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds)))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return Attachment("通知录音.wav", "audio/wav", out.getvalue())


async def answered(phone: PhoneProcess, account: str, path: Path) -> str:
    """The phone's call once answered, recording what it hears into `path`."""
    call = (await phone.wait_for("call_state", account=account, state="confirmed", timeout=30))["call"]
    await phone.command("record", call=call, path=str(path))
    return call


async def hears_speech(path: Path, after: float = 0.0) -> float:
    """Waits until the phone has heard HEARD_SECONDS of speech since `after` seconds into its recording; returns
    how long the recording is then."""
    await until(
        lambda: loud_seconds(load(recorded_so_far(path), start=after)) >= HEARD_SECONDS,
        timeout=30,
        what=f"the phone to hear the message read out (after {after:.1f} s)",
    )
    return recorded_so_far(path).seconds


async def voice_call_ended(desk: Desk) -> dict[str, Any]:
    while (ended := await desk.next_event("call.ended", timeout=60))["direction"] != "voice":
        pass
    return ended


@dataclass
class Called:
    phone: PhoneProcess
    call: str
    receipts: Receipts
    delivery_id: str

    async def press(self, digit: str) -> None:
        await self.phone.command("dtmf", call=self.call, digits=digit)

    async def receipt(self) -> tuple[bool | None, str]:
        return await self.receipts.of(self.delivery_id)


@contextlib.asynccontextmanager
async def called(
    desk: Desk, asterisk: AsteriskHarness, number: str, heard: Path, *recording: Attachment
) -> AsyncIterator[Called]:
    """A phone on `number` called by the voice channel, answered and recording what it hears into `heard`."""
    async with PhoneProcess() as phone, voice_channel(desk) as (channel, receipts):
        await register(phone, asterisk, number, "auto")
        assert (await send(channel, f"d-{number}", number, *recording)).accepted
        yield Called(phone, await answered(phone, number, heard), receipts, f"d-{number}")


@pytest.mark.timeout(120)
async def test_pressing_1_confirms_and_the_call_is_recorded_and_filed(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    async with called(desk, asterisk, "8002", tmp_path / "heard.wav") as call:
        await hears_speech(tmp_path / "heard.wav")
        await call.press("1")
        delivered, detail = await call.receipt()
        await call.phone.wait_for("call_state", call=call.call, state="disconnected", timeout=15)
    assert delivered is True and detail.startswith("已确认：按1（号码 8002，") and detail.endswith("播放 1 遍）")
    assert call.receipts.via[call.delivery_id] == "8002"
    ended = await voice_call_ended(desk)
    assert ended["state"] == "ended" and ended["cause"] == "confirmed" and ended["number"] == "8002"
    assert ended["summary"].startswith("语音通知 王强：已确认")
    saved = await desk.next_event("recording.saved", timeout=30)
    recording = await desk.telephony.recordings.get(saved["recording_id"])
    assert recording.source_id == ended["call_id"] and [p["number"] for p in recording.parties] == ["8002"]
    assert loud_seconds(desk.telephony.recordings.path_of(recording)) >= HEARD_SECONDS  # the message is in it


@pytest.mark.timeout(120)
async def test_pressing_2_replays_the_message_then_1_confirms(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    async with called(desk, asterisk, "8003", heard) as call:
        pressed = await hears_speech(heard)
        await call.press("2")
        await hears_speech(heard, after=pressed)  # read out again
        await call.press("1")
        delivered, detail = await call.receipt()
    assert delivered is True and detail.startswith("已确认：按1（号码 8003，") and detail.endswith("播放 2 遍）")


@pytest.mark.timeout(120)
async def test_an_uploaded_recording_is_played_instead_of_speech(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    heard = tmp_path / "heard.wav"
    async with called(desk, asterisk, "8002", heard, tone_recording(1000, 3)) as call:
        await until(lambda: tone_seconds(recorded_so_far(heard), 1000) >= 1, timeout=30, what="the recorded tone")
        await call.press("1")
        delivered, detail = await call.receipt()
    assert delivered is True and detail.startswith("已确认：按1（号码 8002，")


@pytest.mark.timeout(150)
async def test_no_key_is_unconfirmed_and_no_answer_fails_after_every_round(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    """8004 answers and never presses a key: the message is played twice, then unconfirmed. Nobody answers 8005
    (not registered: unreachable) or 8003 (rings out), in either round: failed, each number's result named."""
    async with PhoneProcess() as listener, PhoneProcess() as absent, voice_channel(desk) as (channel, receipts):
        await register(listener, asterisk, "8004", "auto")
        await register(absent, asterisk, "8003", "never")
        assert (await send(channel, "d-silent", "8004")).accepted
        assert (await send(channel, "d-absent", "8005,8003")).accepted
        await answered(listener, "8004", tmp_path / "heard.wav")
        silent = await receipts.of("d-silent")
        absent_receipt = await receipts.of("d-absent")
        assert len(absent.find("incoming_call")) == 2  # 8003 rang once per round
    assert silent == (None, "未确认：号码 8004 已接听，播放 2 遍未按1")
    assert loud_seconds(tmp_path / "heard.wav") >= 2 * HEARD_SECONDS
    assert absent_receipt == (False, "呼叫 2 轮均未接通：8005 无法接通；8003 无人接听")


async def test_a_row_withdrawn_by_another_process_gets_no_further_round(desk: Desk, asterisk: AsteriskHarness) -> None:
    """Nobody answers 8003; while its first round rings, the row is cancelled in the database (a confirmation
    handled by another process, which cannot tell this channel): the channel reads the row before the second round
    (the outbox's `wanted`), places none and reports nothing."""
    async with desk.switchboard.db.session() as session:
        row = Delivery(
            notice_recipient_id="r", channel="voice", recipient="8003", state="sent", next_attempt_at=utcnow()
        )
        session.add(row)
    async with PhoneProcess() as absent, voice_channel(desk) as (channel, receipts):
        channel.wanted = Outbox(desk.switchboard).wanted
        await register(absent, asterisk, "8003", "never")
        assert (await send(channel, row.id, "8003")).accepted
        await absent.wait_for("incoming_call", timeout=30)
        async with desk.switchboard.db.session() as session:
            await session.execute(update(Delivery).where(Delivery.id == row.id).values(state="cancelled"))
        await asyncio.wait_for(channel._calls.drain(), 60)
        assert len(absent.find("incoming_call")) == 1 and receipts.got == {}


@pytest.mark.timeout(180)
async def test_a_warning_on_voice_calls_its_audience_within_the_lines_and_is_confirmed(
    desk: Desk, asterisk: AsteriskHarness, tmp_path: Path
) -> None:
    """Three recipients, two lines: never more than two voice calls up at once; each recipient presses 1 once the
    message is read out, and the warning's delivery report shows each confirmed on its number (the group is asked
    as a notice linked to the warning: the key confirms its recipient, and the row is `confirmed`)."""
    live: set[str] = set()
    most = [0]

    async def count(event: Event) -> None:
        if event.data.get("direction") != "voice":
            return
        (live.discard if event.type == "call.ended" else live.add)(event.data["call_id"])
        most[0] = max(most[0], len(live))

    desk.switchboard.bus.subscribe(count)
    groups = (await desk.http.get("/api/v1/directory/groups", headers=desk.tokens["leader"])).json()
    group_id = next(g["id"] for g in groups if g["name"] == GROUP)
    incident_id = await incident(desk.http, desk.tokens)
    body = content(group_id, audiences={"groups": [group_id], "channels": ["voice"]}) | {"incident_id": incident_id}
    created = await desk.http.post("/api/v1/warnings", json=body, headers=desk.tokens["alert_officer"])
    assert created.status_code == 201, created.text
    numbers = ("8002", "8003", "8004")
    phones = [PhoneProcess() for _ in numbers]
    async with contextlib.AsyncExitStack() as stack:
        for phone, number in zip(phones, numbers, strict=True):
            await stack.enter_async_context(phone)
            await register(phone, asterisk, number, "auto")
        await issued(desk.http, desk.tokens, created.json()["id"])
        pending = dict(zip(numbers, phones, strict=True))
        while pending:  # whoever is called next hears the message and confirms
            number, phone = await until(
                lambda: next(((n, p) for n, p in pending.items() if p.find("call_state", state="confirmed")), None),
                timeout=60,
                what=f"a call to one of {sorted(pending)}",
            )
            del pending[number]
            call = await answered(phone, number, tmp_path / f"{number}.wav")
            await hears_speech(tmp_path / f"{number}.wav")
            await phone.command("dtmf", call=call, digits="1")

        async def report() -> dict[str, Any] | None:
            url = f"/api/v1/warnings/{created.json()['id']}/deliveries"
            got = (await desk.http.get(url, headers=desk.tokens["leader"])).json()
            return got if got["counts"].get("voice", {}).get("confirmed") == 3 else None

        deliveries = await until(report, timeout=60, what="the three voice deliveries to be confirmed")
    assert most[0] == 2
    rows = {row["recipient"]: row for row in deliveries["items"]}
    assert set(rows) == set(numbers)
    for number, row in rows.items():
        assert row["state"] == "confirmed" and row["last_error"].startswith(f"已确认：按1（号码 {number}，")
    assert {rows[n]["name"] for n in numbers} == {"王强", "李明", "赵刚"}
    # Each call is on the warning's incident: its timeline, and its recording filed under it.
    timeline = await desk.http.get(f"/api/v1/incidents/{incident_id}/timeline", headers=desk.tokens["leader"])
    calls = [e["summary"] for e in timeline.json()["items"] if e["kind"] == "call"]
    assert len(calls) == 3 and all(c.startswith("语音通知 ") and "：已确认（" in c for c in calls), calls

    async def filed() -> list[dict[str, Any]] | None:
        url = f"/api/v1/recordings?incident_id={incident_id}"
        found = (await desk.http.get(url, headers=desk.tokens["leader"])).json()
        return found if len(found) == 3 else None

    recordings = await until(filed, timeout=30, what="the three calls' recordings filed under the incident")
    assert {p["number"] for r in recordings for p in r["parties"]} == set(numbers)
