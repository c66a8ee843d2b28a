"""The line check's runs: the probe (python -m probe) calls each line of [linecheck] lines in turn; each line's
facts are judged against the thresholds, filed with their history and announced as they arrive (`linecheck.failed`),
the run as a whole when it ends (`linecheck.completed`). One run at a time; daily at [linecheck] daily_at."""

import asyncio
import contextlib
import logging
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from sip import dialplan
from switchboard.core.background import Background
from switchboard.core.config import Line, LineCheckSettings, parse_lines
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Conflict, SwitchboardError, Unavailable
from switchboard.core.events import Event
from switchboard.core.ids import new_id
from switchboard.linechecks.models import TRIGGERS, LineCheck
from switchboard.linechecks.probe import probe_events

log = logging.getLogger(__name__)

SYSTEM = "system"  # who requested the daily run
TONE_HZ = 1004  # the usual test tone: not a divisor of 8 kHz, so every sample of a period differs
TONE_SECONDS = 1.0  # 50 frames of 20 ms: loss in steps of 2 %
STARTUP_SECONDS = 20.0  # the probe process starting and registering, at most


def seconds_until(daily_at: str, timezone: str, now: datetime) -> float:
    """How long from ``now`` until the next ``daily_at`` (HH:MM) on the wall clock of ``timezone``."""
    local = now.astimezone(ZoneInfo(timezone))
    hour, minute = (int(part) for part in daily_at.split(":"))
    due = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if due <= local:
        due += timedelta(days=1)
    return (due - local).total_seconds()


def verdict(line: Line, facts: dict[str, Any], limits: LineCheckSettings) -> str:
    """Why the line fails, in Chinese ("" when it passes), from the probe's facts about its call."""
    code = facts["code"]
    if facts["outcome"] == "error":
        return f"巡检出错，此线路未能检查完（{facts['reason']}）"
    if facts["outcome"] == "no_answer":
        return f"无人接听（振铃 {limits.ring_seconds} 秒）"
    if facts["outcome"] == "failed":
        # Asterisk answers 404 when the desk's AOR has no contact (Dial: CHANUNAVAIL); other PBXs say 480.
        if line.kind == "desk" and code in (404, 480):
            return f"话机未注册（SIP {code}）"
        if code in (486, 600):
            return "忙线"
        if code == 603:
            return "拒接"
        return f"呼叫失败（SIP {code} {facts['reason']}）" if code else f"呼叫失败（{facts['reason']}）"
    faults = []
    if facts["answer_ms"] > limits.max_answer_seconds * 1000:
        faults.append(f"应答过慢（{facts['answer_ms'] / 1000:.1f} 秒）")
    if line.kind != "desk":
        if facts["level_dbfs"] is None:
            return "；".join([*faults, "未听到回送的测试音（音频不通）"])
        if facts["level_dbfs"] < limits.min_level_dbfs:
            faults.append(f"回送电平过低（{facts['level_dbfs']:.1f} dBFS）")
        if facts["delay_ms"] > limits.max_delay_ms:
            faults.append(f"往返时延过大（{facts['delay_ms']:.0f} 毫秒）")
        if facts["loss"] > limits.max_loss:
            faults.append(f"丢帧率过高（{facts['loss']:.0%}）")
    return "；".join(faults)


def _not_checked(registration: dict[str, Any] | None) -> str:
    """Why a line got no facts at all: the probe could not register, or it died or overran."""
    if registration is None:
        return "巡检程序未能启动"
    if registration["code"] != 200:
        code = f"SIP {registration['code']} {registration['reason']}" if registration["code"] else "无响应"
        return f"巡检账号注册失败（{code}）"
    return "巡检程序异常退出，此线路未检查"


class LineChecks:
    """Runs of the line check on one Asterisk, whose dialplan names the probe account."""

    def __init__(self, ctx: Context, definition: dialplan.Definition) -> None:
        self.ctx = ctx
        self.definition = definition
        self.runs = Background()  # a run that fails is logged
        self.task: asyncio.Task[None] | None = None  # the run under way, if any
        self.schedule: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def lines(self) -> list[Line]:
        return parse_lines(self.ctx.settings.linecheck.lines)

    def start(self, trigger: str, actor: str) -> str:
        """Start a run (it goes on in the background) and return its id; refused while one is under way."""
        if self.running:
            raise Conflict("线路巡检正在进行，请等本轮结束后再试")
        if not self.lines:
            raise Unavailable("未配置巡检线路（[linecheck] lines）")
        if self.definition.probe is None:
            raise Unavailable("拨号方案未定义巡检账号（probe），无法巡检")
        run_id = new_id()
        self.task = self.runs.spawn(self._run(run_id, trigger, actor), name=f"linecheck-{run_id}")
        return run_id

    def keep_schedule(self) -> None:
        """Run daily at [linecheck] daily_at, when it is set and lines are listed."""
        if self.ctx.settings.linecheck.daily_at and self.lines:
            self.schedule = asyncio.create_task(self._daily(), name="linecheck-daily")

    async def _daily(self) -> None:
        settings = self.ctx.settings
        while True:
            await asyncio.sleep(seconds_until(settings.linecheck.daily_at, settings.incidents.timezone, utcnow()))
            try:
                self.start("scheduled", SYSTEM)
            except SwitchboardError as exc:  # a run on demand is under way, or the lines were taken out
                log.warning("每日线路巡检未启动：%s", exc.message)

    async def _run(self, run_id: str, trigger: str, actor: str) -> None:
        lines, limits = self.lines, self.ctx.settings.linecheck
        failed = 0
        base = self.ctx.settings.var_path / "linecheck"
        base.mkdir(mode=0o700, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=base) as workdir:
            job = self._job(lines, Path(workdir))
            per_line = limits.ring_seconds + TONE_SECONDS + job["listen_seconds"] + 15
            registration: dict[str, Any] | None = None
            checked: set[int] = set()
            async for event in probe_events(job, STARTUP_SECONDS + per_line * len(lines), base / "probe.log"):
                if event["event"] == "registration":
                    registration = event
                elif event["event"] == "result":
                    line = lines[event["index"]]
                    checked.add(event["index"])
                    failed += not await self._file(run_id, trigger, actor, line, verdict(line, event, limits), event)
        for index in sorted(set(range(len(lines))) - checked):
            failed += not await self._file(run_id, trigger, actor, lines[index], _not_checked(registration), {})
        data = {"run_id": run_id, "trigger": trigger, "lines": len(lines), "failed": failed}
        data["summary"] = f"{TRIGGERS[trigger]}完成：{len(lines)} 条线路，" + (
            f"{failed} 条异常" if failed else "全部正常"
        )
        await self.ctx.bus.publish(Event("linecheck.completed", data=data, actor=actor))

    def _job(self, lines: list[Line], workdir: Path) -> dict[str, Any]:
        settings = self.ctx.settings
        probe = self.definition.probe
        assert probe is not None
        password = settings.linecheck.probe_secret or dialplan.phone_secrets(settings, self.definition)[probe.number]
        return {
            "registrar": f"{settings.asterisk.ami_host}:{settings.asterisk.sip_port}",
            "user": probe.number,
            "password": password,
            "ring_seconds": settings.linecheck.ring_seconds,
            "tone_hz": TONE_HZ,
            "tone_seconds": TONE_SECONDS,
            "listen_seconds": settings.linecheck.max_delay_ms / 1000 + 0.5,  # the slowest echo that could pass
            "workdir": str(workdir),
            "lines": [{"number": line.number, "kind": line.kind} for line in lines],
        }

    async def _file(
        self, run_id: str, trigger: str, actor: str, line: Line, reason: str, facts: dict[str, Any]
    ) -> bool:
        """Keep one line's result and announce a failure; whether it passed."""
        row = LineCheck(
            run_id=run_id,
            trigger=trigger,
            requested_by=actor,
            name=line.name,
            number=line.number,
            kind=line.kind,
            ok=not reason,
            reason=reason,
            sip_code=facts.get("code") or None,
            answer_ms=facts.get("answer_ms"),
            level_dbfs=facts.get("level_dbfs"),
            delay_ms=facts.get("delay_ms"),
            loss=facts.get("loss"),
        )
        async with self.ctx.db.session() as session:
            session.add(row)
        if reason:
            data = {"run_id": run_id, "name": line.name, "number": line.number, "kind": line.kind, "reason": reason}
            data["summary"] = f"线路巡检：{line.name}（{line.number}）异常：{reason}"
            await self.ctx.bus.publish(Event("linecheck.failed", data=data, actor=actor))
        return not reason

    async def history(self, per_line: int) -> dict[str, list[LineCheck]]:
        """Number -> its newest ``per_line`` results, newest first, for the lines configured now."""
        found: dict[str, list[LineCheck]] = {}
        async with self.ctx.db.reader() as session:
            for line in self.lines:
                newest = LineCheck.checked_at.desc(), LineCheck.id.desc()
                query = select(LineCheck).where(LineCheck.number == line.number).order_by(*newest).limit(per_line)
                found[line.number] = list(await session.scalars(query))
        return found

    async def stop(self) -> None:
        """Stop the schedule and a run under way (its probe with it; what it filed so far stays)."""
        for task in (self.schedule, self.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
