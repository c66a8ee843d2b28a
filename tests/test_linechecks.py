"""The line check against the session's real Asterisk with real pjsua2 phones: the probe (python -m probe) registers
as the dialplan's probe account and calls a desk whose phone answers, a desk with no phone registered, the echo
number and a trunk route whose far end answers without echoing; the echo comes back with its delay, level and loss
measured; failures are events; results keep history."""

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import select

from probe.audio import echo_of
from switchboard.core import config
from switchboard.core.audit.models import AuditEntry
from switchboard.linechecks.probe import keep_bounded
from switchboard.linechecks.service import seconds_until, verdict
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on

DIRECTORY = "organisation,department,name,title,office_phone,mobile\n140105,应急管理局,王强,局长,8002,13912345678\n"
FAR_PLATFORM = "13800000001"  # through the trunk: a phone that answers and stays silent, not an echo
EXPECTED_FAILURES = {"8002": "话机未注册（SIP 404）", FAR_PLATFORM: "未听到回送的测试音（音频不通）"}


def echo_number(asterisk: AsteriskHarness) -> str:
    """The session's echo-test number now (a reload test moves it, and back)."""
    number = asterisk.engine.definition.echo_test
    assert number is not None
    return number


def probe_number(asterisk: AsteriskHarness) -> str:
    probe = asterisk.engine.definition.probe
    assert probe is not None
    return probe.number


@contextlib.asynccontextmanager
async def checking(
    asterisk: AsteriskHarness,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    lines: str,
    secret: str = "",
    daily_at: str = "",
) -> AsyncIterator[Desk]:
    """Switchboard on the session's Asterisk checking `lines`, as the probe account (with `secret`, if given), daily
    at `daily_at` if given."""
    environ = {
        "SWITCHBOARD_ASTERISK_SIP_PORT": str(asterisk.sip_port),
        "SWITCHBOARD_LINECHECK_LINES": lines,
        "SWITCHBOARD_LINECHECK_PROBE_SECRET": secret or asterisk.extensions[probe_number(asterisk)],
        "SWITCHBOARD_LINECHECK_RING_SECONDS": "5",
        "SWITCHBOARD_LINECHECK_DAILY_AT": daily_at,
        # The round trip on loopback is 25 ms on an idle machine; this one is shared, and a starved Asterisk or probe
        # was seen at 385 ms (jitter buffers grow). The test is about measuring it, not about this machine's load.
        "SWITCHBOARD_LINECHECK_MAX_DELAY_MS": "1000",
    }
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=1, **environ) as desk:
        yield desk


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    lines = (
        f"值班台1=8001/desk, 值班台2=8002/desk, 本机回声={echo_number(asterisk)}/echo, 省厅平台={FAR_PLATFORM}/trunk"
    )
    async with checking(asterisk, request, tmp_path, lines) as desk:
        yield desk


async def checked(desk: Desk, run_id: str, lines: int = 4) -> dict[str, str]:
    """Wait for the run to end; number -> the reason of each line that failed in it."""
    failed: dict[str, str] = {}
    async with asyncio.timeout(60):  # a run of 4 lines takes 4 x (5 s ringing + 2 s of tone) at the most
        while True:
            event = await desk.events.queue.get()
            if event.type == "linecheck.failed" and event.data["run_id"] == run_id:
                failed[event.data["number"]] = event.data["reason"]
                assert event.data["summary"].endswith(f"（{event.data['number']}）异常：{event.data['reason']}")
            if event.type == "linecheck.completed" and event.data["run_id"] == run_id:
                assert event.data["failed"] == len(failed) and event.data["lines"] == lines
                assert event.data["summary"] == f"立即巡检完成：{lines} 条线路，{len(failed)} 条异常"
                return failed


@pytest.mark.timeout(120)
async def test_desks_and_the_echo_number_are_checked_with_history(desk: Desk, asterisk: AsteriskHarness) -> None:
    officer = desk.tokens["duty_officer"]
    async with PhoneProcess() as phones:
        await register(phones, asterisk, "8001", "auto")  # answers after 200 ms; 8002 has no phone registered
        await phones.command("account", name="far", port=asterisk.trunk_port)
        await phones.command("answer", account="far", mode="auto")
        refused = await desk.http.post("/api/v1/linechecks", headers=desk.tokens["leader"])
        assert refused.status_code == 403, refused.text

        runs = []
        for _ in range(2):
            started = await desk.http.post("/api/v1/linechecks", headers=officer)
            assert started.status_code == 202, started.text
            assert started.json()["lines"] == 4
            busy = await desk.http.post("/api/v1/linechecks", headers=officer)
            assert busy.status_code == 409 and "正在进行" in busy.json()["message"]
            runs.append(started.json()["run_id"])
            assert await checked(desk, runs[-1]) == EXPECTED_FAILURES
        status, contacts = await asterisk.engine.cli("pjsip show contacts")  # the probe unregistered when done
        assert status == 0 and "8001/sip:" in contacts and f"{probe_number(asterisk)}/sip:" not in contacts

    answer = await desk.http.get("/api/v1/linechecks?history=5", headers=desk.tokens["leader"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["running"] is False
    lines = {line["number"]: line for line in answer.json()["lines"]}
    assert [(n, lines[n]["kind_name"]) for n in lines] == [
        ("8001", "值班话机"),
        ("8002", "值班话机"),
        (echo_number(asterisk), "回声测试号"),
        (FAR_PLATFORM, "中继路由"),
    ]
    for line in lines.values():
        assert [r["run_id"] for r in line["history"]] == runs[::-1]  # newest first
        assert line["latest"] == line["history"][0] and line["latest"]["requested_by"] == "duty_officer"

    answered = lines["8001"]["latest"]
    assert answered["ok"] and answered["reason"] == "" and 200 <= answered["answer_ms"] < 3000
    assert answered["level_dbfs"] is None  # a desk phone does not echo: answer time only

    unregistered = lines["8002"]["latest"]
    assert not unregistered["ok"] and unregistered["sip_code"] == 404 and unregistered["answer_ms"] is None

    echo = lines[echo_number(asterisk)]["latest"]
    assert echo["ok"], echo["reason"]
    assert 0 < echo["delay_ms"] < 1000  # the jitter buffers of the probe (and Asterisk) on loopback
    assert -20 < echo["level_dbfs"] < -5  # pjmedia's tone, through G.711 there and back
    assert echo["loss"] == 0

    silent = lines[FAR_PLATFORM]["latest"]  # answered through the trunk, but nothing came back
    assert not silent["ok"] and silent["answer_ms"] is not None and silent["loss"] == 1 and silent["delay_ms"] is None

    async with desk.switchboard.db.reader() as session:
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "linecheck.run")))
    assert [entry.target_id for entry in audited] == runs and audited[0].actor == "duty_officer"


@pytest.mark.timeout(60)
async def test_a_probe_that_cannot_register_fails_every_line_saying_so(
    asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    lines = f"本机回声={echo_number(asterisk)}/echo, 值班台1=8001/desk"
    async with checking(asterisk, request, tmp_path, lines, "wrong-secret") as desk:
        started = await desk.http.post("/api/v1/linechecks", headers=desk.tokens["admin"])
        assert started.status_code == 202, started.text
        failed = await checked(desk, started.json()["run_id"], lines=2)
    assert set(failed) == {echo_number(asterisk), "8001"}
    assert all(reason.startswith("巡检账号注册失败（SIP 401") for reason in failed.values()), failed


@pytest.mark.timeout(120)
async def test_the_daily_run_starts_on_its_own_at_the_set_time(
    asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    due = (datetime.now(zone) + timedelta(minutes=1)).strftime("%H:%M")  # within the next 60 s
    lines = f"本机回声={echo_number(asterisk)}/echo"
    async with checking(asterisk, request, tmp_path, lines, daily_at=due) as desk:
        async with asyncio.timeout(90):
            while (event := await desk.events.queue.get()).type != "linecheck.completed":
                pass
        assert event.data["trigger"] == "scheduled" and event.data["failed"] == 0 and event.actor == "system"
        assert event.data["summary"] == "每日巡检完成：1 条线路，全部正常"
        answer = await desk.http.get("/api/v1/linechecks", headers=desk.tokens["duty_officer"])
    (line,) = answer.json()["lines"]
    assert (
        line["latest"]["ok"] and line["latest"]["trigger"] == "scheduled" and line["latest"]["requested_by"] == "system"
    )
    async with desk.switchboard.db.reader() as session:  # the daily run is the system's own: nobody to audit
        assert not list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "linecheck.run")))


def test_the_daily_run_waits_for_the_next_time_on_the_duty_rooms_clock() -> None:
    now = datetime(2026, 12, 2, 18, 30, tzinfo=UTC)  # 02:30 on 3 December in Shanghai
    assert seconds_until("03:00", "Asia/Shanghai", now) == 30 * 60
    assert seconds_until("02:30", "Asia/Shanghai", now) == 24 * 3600  # just gone: tomorrow


@pytest.mark.parametrize(
    ("lines", "wrong"),
    [("值班台1=8001", "值班台1=8001"), ("=8001/desk", "=8001/desk"), ("a=12/echo", "a=12/echo"), ("a=8001/phone", "")],
)
def test_lines_written_wrongly_stop_the_start_naming_the_item(tmp_path: Path, lines: str, wrong: str) -> None:
    with pytest.raises(config.ConfigError, match="linecheck.lines") as info:
        config.load(tmp_path / "absent.toml", environ={"SWITCHBOARD_LINECHECK_LINES": lines})
    assert f"“{wrong or lines}”应写作 名称=号码/类型" in str(info.value)
    with pytest.raises(config.ConfigError, match="两次"):
        config.load(tmp_path / "absent.toml", environ={"SWITCHBOARD_LINECHECK_LINES": "a=8001/desk, b=8001/echo"})


SOUND = {
    "outcome": "answered",
    "code": 200,
    "reason": "",
    "answer_ms": 120,
    "level_dbfs": -11,
    "delay_ms": 25,
    "loss": 0,
}


@pytest.mark.parametrize(
    ("kind", "facts", "reason"),
    [
        ("echo", {}, ""),
        ("echo", {"level_dbfs": -40.04}, "回送电平过低（-40.0 dBFS）"),
        ("trunk", {"delay_ms": 420, "loss": 0.12}, "往返时延过大（420 毫秒）；丢帧率过高（12%）"),
        (
            "trunk",
            {"answer_ms": 12500, "level_dbfs": None, "delay_ms": None, "loss": 1},
            "应答过慢（12.5 秒）；未听到回送的测试音（音频不通）",
        ),
        ("desk", {"level_dbfs": None, "delay_ms": None, "loss": None}, ""),
        ("desk", {"outcome": "no_answer", "code": 0, "answer_ms": None}, "无人接听（振铃 20 秒）"),
        ("desk", {"outcome": "failed", "code": 486, "reason": "Busy Here"}, "忙线"),
        ("echo", {"outcome": "failed", "code": 404, "reason": "Not Found"}, "呼叫失败（SIP 404 Not Found）"),
    ],
)
def test_the_verdict_names_every_threshold_missed(tmp_path: Path, kind: str, facts: dict, reason: str) -> None:
    limits = config.load(tmp_path / "absent.toml", environ={}).linecheck
    assert verdict(config.Line("线路", "8999", kind), SOUND | facts, limits) == reason


def test_a_recording_not_yet_closed_is_still_measured(tmp_path: Path) -> None:
    """Seen in a full run on a busy machine: the recorder's WAV still had 0 in its sizes when the probe read it
    ("not a WAVE file"), and the probe died. The samples after the header are measured all the same."""
    rate, tone = 16_000, 1004.0
    silence = np.zeros(int(0.04 * rate))
    wave_ = np.sin(2 * np.pi * tone * np.arange(int(1.0 * rate)) / rate) * 0.3
    pcm = (np.concatenate([silence, wave_, silence]) * 32767).astype("<i2").tobytes()
    path = tmp_path / "echo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = bytes(4)  # the sizes as pjmedia writes them first, before closing the file
    path.write_bytes(bytes(data))
    echo = echo_of(path, tone, 1.0)
    assert echo.level_dbfs is not None and -14 < echo.level_dbfs < -12  # 0.3 of full scale: -10.5 dBFS - 3 dB
    assert echo.delay_ms == pytest.approx(40, abs=20) and echo.loss < 0.05


def test_the_probe_log_is_set_aside_once_it_outgrows_its_limit(tmp_path: Path) -> None:
    log = tmp_path / "probe.log"
    log.write_bytes(b"old\n" * 10)
    keep_bounded(log, limit=100)
    assert log.read_bytes() == b"old\n" * 10  # under the limit: left where it is
    log.write_bytes(b"x" * 101)
    keep_bounded(log, limit=100)
    assert not log.exists() and (tmp_path / "probe.log.1").read_bytes() == b"x" * 101
