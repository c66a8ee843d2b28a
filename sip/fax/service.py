"""Fax jobs: written before the API answers, sent on at most `lines` Asterisk lines at once, retried with backoff;
received faxes reported by the dialplan, turned into PDFs and handed to the composer to file.

Sending. `submit` converts the document once (TIFF-F, off the loop) and only then writes one row per recipient in a
single transaction: a document that fails conversion leaves no job behind. The sender claims due rows the way the
warning outbox claims deliveries (switchboard.core.jobs: lease, attempts, FOR UPDATE SKIP LOCKED on PostgreSQL) and
originates each into the dialplan's `switchboard-fax-send` context, which runs SendFAX once the far end answers.
Busy, no answer and an unreachable far end come back on the OriginateResponse (its Reason); an answered call
reports from its hangup handler (UserEvent SwitchboardFaxSent: FAXSTATUS, FAXPAGES, FAXBITRATE, FAXMODE, ECM).
Anything but SUCCESS is retried after base * 2^(attempt-1) seconds until max_attempts, then the fax fails.

Receiving. Each fax number runs ReceiveFAX; its hangup handler raises UserEvent SwitchboardFax with the status,
pages, file and the caller. The TIFF becomes a PDF (tiff2pdf), `file_pdf` (the composer: the recording store)
takes it, a row lands in the inbox and `fax.received` is published, on the incident whose recent outbound fax went
to the caller's number or station id.
"""

import asyncio
import base64
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from panoramisk.message import Message
from sqlalchemy import select

from sip import dialing
from sip.ami import AmiActionFailed, AmiLinkDown, AmiSession
from sip.calls import InboundLookup, Routing
from sip.dialing import INCIDENT_ID, channel_variables, inherited
from sip.dialplan import callerid_name, config_path
from sip.fax import document
from sip.fax.models import UNSETTLED, Fax, FaxState
from switchboard.core import jobs
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.events import Event
from switchboard.core.ids import new_id

log = logging.getLogger(__name__)

SEND_CONTEXT = "switchboard-fax-send"
INCIDENT_MEMORY = timedelta(days=7)  # a fax back from a number we faxed for an incident within this goes on it
# Why an originated call was not answered: OriginateResponse's Reason (AST_CONTROL_*: 3 ringing timed out, 5 busy)
# and, since Asterisk often says only 0 there, the Q.850 cause of the channel's Hangup event.
ORIGINATE_RESULTS = {"3": "no_answer", "5": "busy"}
CAUSE_RESULTS = {"17": "busy", "18": "no_answer", "19": "no_answer", "21": "rejected"}
RESULT_NAMES = dialing.RESULT_NAMES | {
    "sent": "发送成功",
    "received": "接收成功",
    "hangup": "对方挂断",
    "rejected": "对方拒接",
    "failed": "传输失败",
    "timeout": "超时",
}
# FAXSTATUS values (res_fax) and FAXStatus progress words, as the duty room reads them.
FAX_STATUS_NAMES = {"FAILED": "失败", "SUCCESS": "成功", "UNKNOWN": "未知状态"}
PROGRESS_NAMES = {
    "Allocating Resources": "正在准备传真资源",
    "Negotiating T.38": "正在协商 T.38",
    "T.38 Negotiated": "已协商 T.38",
    "FAX Transmission In Progress": "正在传送",
}
_STATION = re.compile(r"[0-9+ ]{0,20}")

FilePdf = Callable[[Path, Fax, datetime, datetime], Awaitable[str]]
"""(pdf, the inbox row, started, ended) -> the stored document's id; the file is taken (moved)."""


@dataclass(frozen=True)
class Recipient:
    number: str
    name: str = ""
    contact_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    result: str  # sent, busy, no_answer, unreachable, hangup, failed, timeout, engine_down
    pages: int = 0
    rate: int | None = None
    ecm: bool | None = None
    mode: str = ""
    remote_station: str = ""
    error: str = ""


class FaxService:
    def __init__(
        self,
        ctx: Context,
        ami: AmiSession,
        routing: Routing,
        *,
        spool_dir: Path,
        lookup: InboundLookup | None = None,
        file_pdf: FilePdf | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.ctx, self.ami, self.routing = ctx, ami, routing
        self.settings = ctx.settings.fax
        self.spool_dir, self.lookup, self.file_pdf = spool_dir, lookup, file_pdf
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:fax:{new_id()[-6:]}"
        self.documents = ctx.settings.var_path / "fax" / "out"
        self.workdir = ctx.settings.var_path / "fax" / "work"
        self.header = callerid_name(self.settings.header, 60) or "Switchboard"
        self.station = self.settings.station_id if _STATION.fullmatch(self.settings.station_id) else ""
        self.active = 0  # faxes on a line right now
        self.peak = 0  # most at once since start (the benchmark and the tests read it)
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._incident_of: dict[str, str | None] = {}  # fax on a line -> its incident, for its progress events
        self._fax_events: dict[str, Message] = {}  # fax id -> Asterisk's SendFAX event (pages, rate) of its attempt
        self._causes: dict[str, asyncio.Future[str]] = {}  # channel id of an attempt -> its Hangup cause
        self._inflight: set[asyncio.Task[None]] = set()
        self._receiving: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        ami.on_event(self._on_event)

    # Life cycle -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        config_path(self.documents)  # its paths reach the dialplan: refuse to start on one Asterisk cannot take
        self.documents.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="fax-sender")

    async def stop(self) -> None:
        """Stop claiming. Faxes on a line are abandoned here and retried by whoever claims them after their
        lease: a fax cannot be paused, and the process is going away."""
        if self._runner:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._inflight):
            task.cancel()
        for task in list(self._inflight) + list(self._receiving):
            with contextlib.suppress(BaseException):
                await task

    def wake(self) -> None:
        self._wake.set()

    # Actions from the API ---------------------------------------------------------------------------------------

    async def submit(
        self,
        actor: str,
        data: bytes,
        recipients: list[Recipient],
        *,
        document_name: str = "",
        incident_id: str | None = None,
        cover: dict[str, Any] | None = None,
    ) -> list[Fax]:
        """Convert the document (and cover page) and write one pending fax per recipient; returns the rows."""
        batch_id = new_id()
        target = self.documents / f"{batch_id}.tif"
        pages = await document.to_tiff(data, target, max_pages=self.settings.max_pages, workdir=self.workdir)
        try:
            if cover is not None:
                zone = ZoneInfo(self.ctx.settings.incidents.timezone)
                values = {"sender": self.settings.sender_name, "pages": len(pages)} | cover
                values["sent_at"] = utcnow().astimezone(zone).strftime("%Y-%m-%d %H:%M")
                pages = await document.prepend_cover(await document.cover_page(values), target, self.workdir)
            faxes = [
                Fax(
                    batch_id=batch_id,
                    direction="out",
                    state=FaxState.pending,
                    incident_id=incident_id,
                    number=r.number,
                    party_name=r.name,
                    contact_id=r.contact_id,
                    document=target.name,
                    document_name=document_name[:200],
                    pages_total=len(pages),
                    history=[],
                    created_by=actor,
                )
                for r in recipients
            ]
            async with self.ctx.db.session() as session:
                session.add_all(faxes)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        self.wake()
        for fax in faxes:
            await self._publish("fax.queued", fax, actor)
        return faxes

    async def get(self, fax_id: str) -> Fax:
        async with self.ctx.db.reader() as session:
            return await get_or_404(session, Fax, fax_id, what="传真", field="fax_id")

    async def search(
        self,
        *,
        direction: str | None = None,
        incident_id: str | None = None,
        batch_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[Fax]:
        """Newest first."""
        query = select(Fax)
        for column, value in ((Fax.direction, direction), (Fax.incident_id, incident_id), (Fax.batch_id, batch_id)):
            if value:
                query = query.where(column == value)
        if state:
            query = query.where(Fax.state == state)
        async with self.ctx.db.reader() as session:
            return list((await session.scalars(query.order_by(Fax.id.desc()).limit(limit))).all())

    def document_path(self, fax: Fax) -> Path:
        return self.documents / fax.document

    # The sender -------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                free = self.settings.lines - len(self._inflight)
                if free <= 0:
                    await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                rows = await self._claim(free) if self.ami.state == "up" else []
                if not rows:
                    await self._idle()
                    continue
                for row in rows:
                    task = asyncio.create_task(self._deliver(row), name=f"fax:{row.id}")
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fax sender failed; retrying")
                await asyncio.sleep(1)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _claim(self, limit: int) -> list[Any]:
        return await jobs.claim(
            self.ctx,
            Fax,
            where=Fax.direction == "out",
            limit=limit,
            worker=self.worker_id,
            lease_seconds=self.settings.lease_seconds,
            returning=(Fax.number, Fax.document, Fax.incident_id),
        )

    async def _deliver(self, row: Any) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        started = time.monotonic()
        try:
            outcome = await self._attempt(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed attempt is a result to record
            log.exception("fax %s attempt failed", row.id)
            outcome = Outcome("failed", error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self.active -= 1
        try:
            await self._finish(row, outcome, time.monotonic() - started)
        except Exception:
            log.exception("could not record the result of fax %s; its lease will expire", row.id)

    async def _attempt(self, row: Any) -> Outcome:
        loop = asyncio.get_running_loop()
        report: asyncio.Future[Message] = loop.create_future()
        self._waiting[row.id] = report
        self._incident_of[row.id] = row.incident_id
        channel_id = f"{row.id}-{row.attempts}"
        cause = self._causes[channel_id] = loop.create_future()
        ring = self.settings.ring_seconds
        variables = [
            inherited(INCIDENT_ID, row.incident_id or ""),
            f"SB_FAX_ID={row.id}",
            f"SB_FAX_FILE={config_path(self.documents / row.document)}",
            f"SB_FAX_HEADER={self.header}",
            f"SB_FAX_STATION={self.station}",
        ]
        try:
            try:
                response = await self.ami.action(
                    {
                        "Action": "Originate",
                        "Channel": self.routing.dial_string(row.number),
                        "Context": SEND_CONTEXT,
                        "Exten": "s",
                        "Priority": "1",
                        "Timeout": str(ring * 1000),
                        "CallerID": f'"{self.header}" <{self.station.replace(" ", "") or "fax"}>',
                        "Variable": variables,
                        "Async": "true",
                        "ChannelId": channel_id,
                    },
                    timeout=ring + 20,
                )
            except (AmiLinkDown, AmiActionFailed) as exc:
                return Outcome("engine_down", error=exc.message[:300])
            responses = response if isinstance(response, list) else [response]
            final = next((m for m in responses if m.get("Event") == "OriginateResponse"), None)
            if final is not None and final.get("Response") != "Success":
                reason = str(final.get("Reason", ""))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(cause), 2.0)  # the Hangup may follow the response
                code = cause.result() if cause.done() else ""
                result = ORIGINATE_RESULTS.get(reason) or CAUSE_RESULTS.get(code, "unreachable")
                why = f"呼叫未接通：{RESULT_NAMES[result]}（Asterisk 呼叫结果 {reason}，挂机原因码 {code or '未知'}）"
                return Outcome(result, error=why)
            try:
                # Answered: SendFAX runs; its hangup handler reports. The lease bounds the wait.
                message = await asyncio.wait_for(report, self.settings.lease_seconds / 2)
            except TimeoutError:
                return Outcome("timeout", error="已接通，但拨号方案未报告传真结果（超时）")
            outcome = report_outcome(message)
            event = self._fax_events.get(row.id)
            if event is not None and not outcome.pages:  # the channel variables said less than the fax event
                outcome = replace(
                    outcome, pages=_int(event.get("PagesTransferred")) or 0, rate=_int(event.get("TransferRate"))
                )
            return outcome
        finally:
            self._waiting.pop(row.id, None)
            self._incident_of.pop(row.id, None)
            self._fax_events.pop(row.id, None)
            self._causes.pop(channel_id, None)

    async def _finish(self, row: Any, outcome: Outcome, seconds: float) -> None:
        now = utcnow()
        entry = {
            "attempt": row.attempts,
            "at": now.isoformat(),
            "seconds": round(seconds, 1),
            "result": outcome.result,
            "result_name": RESULT_NAMES.get(outcome.result, outcome.result),
            "pages": outcome.pages,
            "rate": outcome.rate,
            "mode": outcome.mode,
            "error": outcome.error,
        }
        values: dict[str, Any] = {
            "lease_until": None,
            "updated_at": now,
            "result": outcome.result,
            "pages": outcome.pages,
            "rate": outcome.rate,
            "ecm": outcome.ecm,
            "mode": outcome.mode,
            "remote_station": outcome.remote_station[:100],
            "error": outcome.error[:500],
        }
        if outcome.result == "sent":
            values |= {"state": FaxState.sent, "ended_at": now}
        elif row.attempts >= self.settings.max_attempts:
            values |= {"state": FaxState.failed, "ended_at": now}
        else:
            delay = jobs.backoff(row.attempts, self.settings.retry_seconds, self.settings.retry_max_seconds)
            values |= {"state": FaxState.pending, "next_attempt_at": now + timedelta(seconds=delay)}
        async with self.ctx.db.session() as session:
            fax = await session.get(Fax, row.id)
            if fax is None or fax.state != FaxState.sending or fax.worker != self.worker_id:
                log.warning("fax %s was taken over by another sender before its result came back", row.id)
                return
            for key, value in values.items():
                setattr(fax, key, value)
            fax.history = [*fax.history, entry]
        if fax.state == FaxState.pending:
            self.wake()  # its retry time may come before the next idle poll ends
            await self._publish("fax.retrying", fax, None, {"next_attempt_at": fax.next_attempt_at.isoformat()})
            return
        await self._publish(f"fax.{fax.state}", fax, None, {"summary": _summary(fax), "refs": [fax.id]})

    # Asterisk side ----------------------------------------------------------------------------------------------

    async def _on_event(self, message: Message) -> None:
        name = message.get("Event")
        if name == "Hangup":
            cause = self._causes.get(message.get("Uniqueid", ""))
            if cause is not None and not cause.done():
                cause.set_result(str(message.get("Cause", "")))
            return
        if name in ("SendFAX", "FAXStatus"):
            fax_id = channel_variables(message).get("SB_FAX_ID", "")
            if fax_id in self._waiting:
                if name == "SendFAX":
                    self._fax_events[fax_id] = message
                else:  # progress for the console, in Chinese (live only: no summary, so not on the timeline)
                    status = str(message.get("Status", ""))[:100]
                    data = {"fax_id": fax_id, "status": status, "status_name": progress_name(status)}
                    event = Event("fax.progress", incident_id=self._incident_of.get(fax_id), data=data, actor="system")
                    await self.ctx.bus.publish(event)
            return
        if name != "UserEvent":
            return
        kind = message.get("UserEvent")
        if kind == "SwitchboardFaxSent":
            future = self._waiting.get(message.get("FaxId", ""))
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "SwitchboardFax":
            # Converting and filing takes a moment: never hold up the AMI event queue for it.
            task = asyncio.create_task(self._received(message))
            self._receiving.add(task)
            task.add_done_callback(self._receiving.discard)

    async def _received(self, message: Message) -> None:
        try:
            await self._take_received(message)
        except Exception:
            log.exception("could not take a received fax (%s)", message.get("File"))

    async def _take_received(self, message: Message) -> None:
        ended = utcnow()
        outcome = report_outcome(message)
        caller = message.get("CallerNum", "")
        try:
            started = datetime.fromtimestamp(int(message.get("Start") or 0), ended.tzinfo)
        except (ValueError, OverflowError):
            started = ended
        started = min(max(started, ended - timedelta(hours=1)), ended)
        who = await self.lookup(caller) if self.lookup and caller else None
        fax = Fax(
            id=new_id(),
            direction="in",
            state=FaxState.received if outcome.result == "sent" and outcome.pages > 0 else FaxState.failed,
            number=caller,
            local_number=message.get("Number", "")[:32],
            party_name=(who or {}).get("name", ""),
            contact_id=(who or {}).get("contact_id"),
            remote_station=outcome.remote_station[:100],
            pages=outcome.pages,
            pages_total=outcome.pages,
            rate=outcome.rate,
            ecm=outcome.ecm,
            mode=outcome.mode,
            result="received" if outcome.result == "sent" else outcome.result,
            error=outcome.error,
            history=[],
            created_by="inbound",
            created_at=started,
            ended_at=ended,
            attempts=1,
        )
        fax.incident_id = await self._incident_for(caller, outcome.remote_station)
        tiff = self.spool_dir / Path(message.get("File", "")).name  # only the name: the spool is ours to name
        if fax.state == FaxState.received and tiff.suffix == ".tif" and tiff.is_file():
            pdf = self.workdir / f"{fax.id}.pdf"
            await document.tiff_to_pdf(tiff, pdf)
            if self.file_pdf is not None:
                fax.recording_id = await self.file_pdf(pdf, fax, started, ended)
            tiff.unlink(missing_ok=True)
        elif fax.state == FaxState.received:
            fax.state, fax.error = FaxState.failed, f"received file missing: {tiff.name}"
        async with self.ctx.db.session() as session:
            session.add(fax)
        await self._publish(f"fax.{fax.state}", fax, None, {"summary": _summary(fax), "refs": [fax.id]})

    async def _incident_for(self, caller: str, station: str) -> str | None:
        """The incident of the latest fax we sent to this caller's number or station id (within a week)."""
        numbers = {n for n in (caller, re.sub(r"[^0-9+]", "", station)) if n}
        if not numbers:
            return None
        query = (
            select(Fax.incident_id)
            .where(
                Fax.direction == "out",
                Fax.number.in_(numbers),
                Fax.incident_id.is_not(None),
                Fax.created_at > utcnow() - INCIDENT_MEMORY,
            )
            .order_by(Fax.created_at.desc())
            .limit(1)
        )
        async with self.ctx.db.reader() as session:
            return await session.scalar(query)

    async def _publish(self, type_: str, fax: Fax, actor: str | None, extra: dict[str, Any] | None = None) -> None:
        data = fax.snapshot() | (extra or {})
        await self.ctx.bus.publish(Event(type_, incident_id=fax.incident_id, actor=actor or fax.created_by, data=data))

    async def pending(self) -> int:
        """Faxes not yet settled (waiting or on a line)."""
        async with self.ctx.db.reader() as session:
            rows = await session.scalars(select(Fax.id).where(Fax.state.in_(UNSETTLED)))
            return len(rows.all())


def _int(value: Any) -> int | None:
    with contextlib.suppress(TypeError, ValueError):
        return int(str(value).strip())
    return None


def report_outcome(message: Message) -> Outcome:
    """A SwitchboardFaxSent or SwitchboardFax report (channel variables of the fax session)."""
    status = str(message.get("Status", "")).upper()
    station = _decoded(message.get("RemoteB64", ""))
    fax_error = _decoded(message.get("ErrorB64", ""))[:300]  # spandsp's words, intact
    ecm = str(message.get("Ecm", "")).lower()
    return Outcome(
        result="sent" if status == "SUCCESS" else "failed",
        pages=_int(message.get("Pages")) or 0,
        rate=_int(message.get("Rate")),
        ecm=True if ecm == "yes" else False if ecm == "no" else None,
        mode=str(message.get("Mode", ""))[:8],
        remote_station=callerid_name(station, 100),
        error="" if status == "SUCCESS" else _fax_failure(fax_error, status, str(message.get("Cause", ""))),
    )


def _decoded(value: Any) -> str:
    try:
        return base64.b64decode(str(value or "")).decode("utf-8", "replace").strip()
    except ValueError:
        return ""


def _fax_failure(fax_error: str, status: str, cause: str) -> str:
    """Why a fax failed, in Chinese, with FAXERROR's own text kept for whoever must look further."""
    said = f"（FAXERROR：{fax_error}）" if fax_error else ""
    caused = f"，挂机原因码 {cause}" if cause else ""
    return f"传真传送失败：{FAX_STATUS_NAMES.get(status, status or '未知状态')}{caused}{said}"


def progress_name(status: str) -> str:
    """Asterisk's FAXStatus words in Chinese (unknown ones shown as they are)."""
    return PROGRESS_NAMES.get(status, f"传真状态：{status}")


def _summary(fax: Fax) -> str:
    who = fax.party_name or fax.number or fax.remote_station or "未知号码"
    if fax.direction == "in":
        if fax.state == FaxState.received:
            return f"收到传真：{who}，{fax.pages} 页"
        return f"传真接收失败：{who}（{fax.error or fax.result}）"
    if fax.state == FaxState.sent:
        return f"传真已发送：{who}，{fax.pages} 页（{fax.mode or '—'}，{fax.rate or '—'} bit/s，第 {fax.attempts} 次）"
    return f"传真发送失败：{who}，{RESULT_NAMES.get(fax.result, fax.result)}（共尝试 {fax.attempts} 次）"
