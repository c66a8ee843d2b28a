"""The line check against the session's real Asterisk with real pjsua2 phones: the probe (python -m probe) registers
as the dialplan's probe account and calls a desk whose phone answers, a desk with no phone registered, the echo
number and a trunk route whose far end answers without echoing; the echo comes back with its delay, level and loss
measured; failures are events; results keep history."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from switchboard.core import config
from switchboard.core.audit.models import AuditEntry
from switchboard.linechecks.service import seconds_until
from tests.support.asterisk_fixture import AsteriskHarness
from tests.support.phone_client import PhoneProcess
from tests.support.telephony_fixture import Desk, register, switchboard_on

DIRECTORY = "organisation,department,name,title,office_phone,mobile\n140105,应急管理局,王强,局长,8002,13912345678\n"
FAR_PLATFORM = "13800000001"  # through the trunk: a phone that answers and stays silent, not an echo
LINES = f"值班台1=8001/desk, 值班台2=8002/desk, 本机回声=8999/echo, 省厅平台={FAR_PLATFORM}/trunk"
EXPECTED_FAILURES = {"8002": "话机未注册（SIP 404）", FAR_PLATFORM: "未听到回送的测试音（音频不通）"}


@pytest_asyncio.fixture
async def desk(asterisk: AsteriskHarness, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk]:
    assert asterisk.engine.definition.probe is not None
    environ = {
        "SWITCHBOARD_ASTERISK_SIP_PORT": str(asterisk.sip_port),
        "SWITCHBOARD_LINECHECK_LINES": LINES,
        "SWITCHBOARD_LINECHECK_PROBE_SECRET": asterisk.extensions[asterisk.engine.definition.probe.number],
        "SWITCHBOARD_LINECHECK_RING_SECONDS": "5",
        "SWITCHBOARD_LINECHECK_DAILY_AT": "",
    }
    async with switchboard_on(asterisk, request, tmp_path, DIRECTORY, expect_contacts=1, **environ) as desk:
        yield desk


async def checked(desk: Desk, run_id: str) -> dict[str, str]:
    """Wait for the run to end; number -> the reason of each line that failed in it."""
    failed: dict[str, str] = {}
    while True:
        event = await desk.events.queue.get()  # the run ends within 4 lines x (5 s ringing + 2 s of tone)
        if event.type == "linecheck.failed" and event.data["run_id"] == run_id:
            failed[event.data["number"]] = event.data["reason"]
        if event.type == "linecheck.completed" and event.data["run_id"] == run_id:
            assert event.data["failed"] == len(failed) and event.data["lines"] == 4
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

    answer = await desk.http.get("/api/v1/linechecks?history=5", headers=desk.tokens["leader"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["running"] is False
    lines = {line["number"]: line for line in answer.json()["lines"]}
    assert [(n, lines[n]["kind_name"]) for n in lines] == [
        ("8001", "值班话机"),
        ("8002", "值班话机"),
        ("8999", "回声测试号"),
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

    echo = lines["8999"]["latest"]
    assert echo["ok"], echo["reason"]
    assert 0 < echo["delay_ms"] < 300  # the jitter buffers of the probe (and Asterisk) on loopback
    assert -20 < echo["level_dbfs"] < -5  # pjmedia's tone, through G.711 there and back
    assert echo["loss"] == 0

    silent = lines[FAR_PLATFORM]["latest"]  # answered through the trunk, but nothing came back
    assert not silent["ok"] and silent["answer_ms"] is not None and silent["loss"] == 1 and silent["delay_ms"] is None

    async with desk.switchboard.db.reader() as session:
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "linecheck.run")))
    assert [entry.target_id for entry in audited] == runs and audited[0].actor == "duty_officer"


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
