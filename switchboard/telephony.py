"""The control plane's hold on the phone system: the local Asterisk (when it is ours), the AMI link, calls.

It is also where telephony meets the directory: inbound callers are looked up there, and each duty ring
group's fallback is the mobile of whoever the roster has on duty, re-rendered into the dialplan when the
shift changes.
"""

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conference.bridges.service import Bridge, BridgeService, Policy
from recording.store import RecordingStore
from sip import dialplan
from sip.ami import AmiSession, LinkState
from sip.calls import CallService, Routing
from sip.engine import Engine
from sip.fax.models import Fax
from sip.fax.service import FaxService
from sip.provision import find_runtime, provision
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import Unavailable
from switchboard.core.events import Event
from switchboard.directory import service as directory
from switchboard.directory.models import ContactKind

log = logging.getLogger(__name__)

ROSTER_CHECK_SECONDS = 60.0


class Telephony:
    def __init__(self, ctx: Context, definition: dialplan.Definition | None = None) -> None:
        self.ctx = ctx
        self.definition = definition or dialplan.configured_definition(ctx.settings)
        self.engine: Engine | None = None
        self.ami: AmiSession | None = None
        self.calls: CallService | None = None
        self.bridges: BridgeService | None = None
        self.faxes: FaxService | None = None
        self._roster_watch: asyncio.Task[None] | None = None
        self._fallbacks: dict[str, str] = {}
        self._filing: set[asyncio.Task[None]] = set()
        self._bridge_filing: dict[str, asyncio.Lock] = {}
        self.recordings = RecordingStore(ctx)
        a = ctx.settings.asterisk
        self.monitor_dir = (
            Path(a.monitor_dir)
            if a.monitor_dir
            else dialplan.Layout.for_settings(ctx.settings).base / "spool" / "monitor"
        )
        spool = ctx.settings.fax.spool_dir
        self.fax_dir = Path(spool) if spool else dialplan.Layout.for_settings(ctx.settings).base / "spool" / "fax"

    async def start(self) -> None:
        settings = self.ctx.settings
        a = settings.asterisk
        if a.mode == "off":
            return
        if a.mode == "local":
            runtime = find_runtime(settings) or await provision(settings, lambda step, detail: log.info("%s", detail))
            self._fallbacks = await self._duty_mobiles()
            self.engine = Engine(settings, runtime, self.definition, fallback=dict(self._fallbacks))
            await self.engine.start()
            self._roster_watch = asyncio.create_task(self._watch_roster())
        self.ami = AmiSession(a.ami_host, a.ami_port, a.ami_username, dialplan.ami_secret(settings))
        desks = frozenset(e.number for e in self.definition.extensions)
        trunk = self.definition.trunks[0].name if self.definition.trunks else ""
        routing = Routing(desks=desks, trunk=trunk, default_desk=self.definition.default_desk, record=a.record_calls)
        self.calls = CallService(self.ctx, self.ami, routing, lookup=self._lookup)
        self.bridges = BridgeService(
            self.ctx, self.ami, self._bridges(), self.calls.dial_string, Policy(**settings.bridges.model_dump())
        )
        self.ctx.bus.subscribe(self._file_recording)
        fax_routing = replace(routing, trunk=settings.fax.trunk or trunk)
        self.faxes = FaxService(
            self.ctx, self.ami, fax_routing, spool_dir=self.fax_dir, lookup=self._lookup, file_pdf=self._file_fax
        )
        self.faxes.start()
        self.ami.on_state(self._link_changed)
        self.ami.start()

    async def stop(self) -> None:
        if self.bridges:
            await self.bridges.stop()
        for task in list(self._filing):
            with contextlib.suppress(Exception):
                await task
        if self.faxes:
            await self.faxes.stop()
        if self._roster_watch:
            self._roster_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._roster_watch
        if self.ami:
            await self.ami.stop()
        if self.engine:
            await self.engine.stop()

    async def reload(self) -> list[str]:
        """Re-render the local engine's configs and have Asterisk reload them over AMI: calls in progress
        stay up. Returns the config files that changed."""
        if self.ami is None:
            raise Unavailable("电话功能未启用（[asterisk] mode = off）")
        changed = await self.engine.prepare() if self.engine else []
        await self.ami.action({"Action": "Reload"}, timeout=30)
        return changed

    def health(self) -> dict[str, Any] | None:
        if self.ami is None:
            return None
        state = {"status": "ok" if self.ami.state == LinkState.up else "down", "link": self.ami.state}
        return state | (
            {"error": self.ami.last_error} if self.ami.state != LinkState.up and self.ami.last_error else {}
        )

    async def _lookup(self, number: str) -> dict[str, str] | None:
        contact = await directory.find_by_number(self.ctx, number)
        return {"name": contact.name, "org": contact.org_name, "contact_id": contact.id} if contact else None

    async def _duty_mobiles(self) -> dict[str, str]:
        """Ring group -> mobile of the first officer the roster has on duty now for the group's organisation."""
        result: dict[str, str] = {}
        for group in self.definition.ring_groups:
            if not group.roster_org:
                continue
            for _, person in await directory.on_duty(self.ctx, group.roster_org, utcnow()):
                mobiles = [c.value for c in person.contacts if c.kind == ContactKind.mobile]
                if mobiles:
                    result[group.name] = mobiles[0]
                    break
        return result

    async def _watch_roster(self) -> None:
        assert self.engine is not None
        while True:
            await asyncio.sleep(ROSTER_CHECK_SECONDS)
            try:
                fallbacks = await self._duty_mobiles()
                if fallbacks != self._fallbacks:
                    self._fallbacks = fallbacks
                    self.engine.fallback = dict(fallbacks)
                    await self.reload()
                    log.info("duty fallback numbers changed; dialplan reloaded")
            except Exception:
                log.exception("duty roster check failed; trying again")

    def _bridges(self) -> list[Bridge]:
        pins = dialplan.bridge_pins(self.ctx.settings, self.definition)
        return [
            Bridge(c.number, c.name, c.max_members, pins[c.number].participant, pins[c.number].moderator, c.record)
            for c in self.definition.conferences
        ]

    async def _file_recording(self, event: Event) -> None:
        """When an answered call ends, or a bridge stops recording or ends, take the files Asterisk wrote into the
        recording store (in the background: Asterisk closes a file a moment after the hang-up)."""
        if (
            event.type == "call.ended"
            and event.data.get("state") == "ended"
            and self.ctx.settings.asterisk.record_calls
        ):
            work = self._take_recording(event)
        elif event.type == "bridge.ended" or (event.type == "bridge.recording" and not event.data.get("recording")):
            work = self._take_bridge_recordings(event)
        else:
            return
        task = asyncio.create_task(work)
        self._filing.add(task)
        task.add_done_callback(self._filing.discard)

    async def _closed(self, path: Path) -> bool:
        """Whether `path` exists and Asterisk has stopped writing to it (its size held still), within 10 s."""
        size, deadline = -1, asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            current = path.stat().st_size if path.exists() else -1
            if current > 44 and current == size:
                return True
            size = current
            await asyncio.sleep(0.3)
        return False

    async def _take_bridge_recordings(self, event: Event) -> None:
        """Every finished bridge-<number>-<start>.wav of the bridge (ConfBridge names them; see confbridge.conf)."""
        number = event.data["bridge"]
        async with self._bridge_filing.setdefault(number, asyncio.Lock()):
            for path in sorted(self.monitor_dir.glob(f"bridge-{number}-*.wav")):
                if not await self._closed(path):
                    continue
                stamp = path.stem.rsplit("-", 1)[-1]
                started = datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else utcnow()
                ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                await self.recordings.file(
                    path,
                    kind="bridge",
                    started_at=started,
                    ended_at=max(ended, started),
                    incident_id=event.incident_id,
                    source_id=event.data.get("session_id"),
                    parties=event.data.get("parties") or [{"name": f"会议 {number}"}],
                )

    async def _take_recording(self, event: Event) -> None:
        call_id = event.data["call_id"]
        path = self.monitor_dir / f"{call_id}.wav"
        if not await self._closed(path):
            log.warning("no recording of call %s appeared in %s", call_id, self.monitor_dir)
            return
        assert self.calls is not None
        call = await self.calls.get(call_id)
        parties = [{"name": "调度台", "number": call.desk}] if call.desk else []
        number = call.attempts[-1]["number"] if call.attempts else call.targets[0]["number"]
        parties.append({"name": call.party_name, "number": number, "contact_id": call.contact_id})
        await self.recordings.file(
            path,
            kind="call",
            started_at=call.answered_at or call.created_at,
            ended_at=call.ended_at or utcnow(),
            incident_id=call.incident_id,
            source_id=call.id,
            parties=[{k: v for k, v in p.items() if v} for p in parties],
        )

    async def _file_fax(self, pdf: Path, fax: Fax, started: datetime, ended: datetime) -> str:
        """A received fax's PDF into the recording store (same SHA-256 ledger as call recordings)."""
        party = {"name": fax.party_name or fax.remote_station, "number": fax.number, "contact_id": fax.contact_id}
        recording = await self.recordings.file(
            pdf,
            kind="fax",
            started_at=started,
            ended_at=ended,
            incident_id=fax.incident_id,
            source_id=fax.id,
            parties=[{k: v for k, v in party.items() if v}],
        )
        return recording.id

    async def _link_changed(self, state: LinkState) -> None:
        error = self.ami.last_error if self.ami else ""
        await self.ctx.bus.publish(Event("engine.link", data={"engine": "asterisk", "state": state, "error": error}))
