"""Wiring of telephony: the local Asterisk (when it is ours), the AMI link, and on it the engine-side services
(calls, bridges, faxes) with the domains' parts that react to them (recordings filed, callers looked up in the
directory, duty fallbacks kept current), the line check, and the voice warning channel placed on the call service. What
each part does lives in its domain package."""

import asyncio
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from broadcast.channels.voice import Answer, VoiceChannel
from conference.bridges.service import Bridge, BridgeService, Policy
from recording.store import RecordingStore
from sip import dialplan
from sip.ami import AmiSession, LinkState
from sip.calls import CallService, Routing, Target, Voice, tried
from sip.engine import Engine
from sip.fax.service import FaxService
from sip.provision import find_runtime, provision
from switchboard.bridges.recordings import BridgeRecordings
from switchboard.calls import duty
from switchboard.calls.recordings import CallRecordings
from switchboard.core.context import Context
from switchboard.core.errors import Unavailable
from switchboard.core.events import Event
from switchboard.core.ticks import RowWrites
from switchboard.directory import service as directory
from switchboard.faxes import flows as faxes
from switchboard.linechecks.service import LineChecks

log = logging.getLogger(__name__)


class Telephony:
    def __init__(
        self, ctx: Context, definition: dialplan.Definition | None = None, recordings: RecordingStore | None = None
    ) -> None:
        self.ctx = ctx
        self.definition = definition or dialplan.configured_definition(ctx.settings)
        self.recordings = recordings or RecordingStore(ctx)
        self.engine: Engine | None = None
        self.ami: AmiSession | None = None
        self.calls: CallService | None = None
        self.bridges: BridgeService | None = None
        self.faxes: FaxService | None = None
        self.linechecks: LineChecks | None = None
        self.writes = RowWrites(ctx.db)  # calls' and convene legs' live state, one transaction per tick
        self._filers: list[CallRecordings | BridgeRecordings] = []
        self._roster_watch: asyncio.Task[None] | None = None
        base = dialplan.Layout.for_settings(ctx.settings).base
        a, spool = ctx.settings.asterisk, ctx.settings.fax.spool_dir
        self.monitor_dir = Path(a.monitor_dir) if a.monitor_dir else base / "spool" / "monitor"
        self.fax_dir = Path(spool) if spool else base / "spool" / "fax"

    async def start(self) -> None:
        settings = self.ctx.settings
        a = settings.asterisk
        if a.mode == "off":
            return
        if a.mode == "local":
            runtime = find_runtime(settings) or await provision(settings, lambda step, detail: log.info("%s", detail))
            fallbacks = await duty.mobiles(self.ctx, self.definition)
            self.engine = Engine(settings, runtime, self.definition, fallback=dict(fallbacks))
            await self.engine.start()
            self._roster_watch = asyncio.create_task(duty.watch(self.ctx, self.definition, fallbacks, self._refallback))
        self.ami = AmiSession(a.ami_host, a.ami_port, a.ami_username, dialplan.ami_secret(settings))
        desks = frozenset(e.number for e in self.definition.extensions)
        trunk = self.definition.trunks[0].name if self.definition.trunks else ""
        routing = Routing(desks=desks, trunk=trunk, default_desk=self.definition.default_desk, record=a.record_calls)
        self.calls = CallService(self.ctx, self.ami, routing, self.writes, lookup=self._caller)
        self.bridges = BridgeService(
            self.ctx,
            self.ami,
            self._bridges(),
            self.calls.dial_string,
            self.writes,
            Policy(**settings.bridges.model_dump()),
        )
        self._filers = [
            CallRecordings(self.ctx, self.calls, self.recordings, self.monitor_dir),
            BridgeRecordings(self.ctx, self.recordings, self.monitor_dir),
        ]
        self.faxes = FaxService(
            self.ctx,
            self.ami,
            replace(routing, trunk=settings.fax.trunk or trunk),
            spool_dir=self.fax_dir,
            lookup=self._caller,
            file_pdf=lambda pdf, fax, started, ended: faxes.file_received(self.recordings, pdf, fax, started, ended),
        )
        self.faxes.start()
        self.linechecks = LineChecks(self.ctx, self.definition)
        self.linechecks.keep_schedule()
        self.writes.ticker.start()
        self.ami.on_state(self._link_changed)
        self.ami.start()

    async def stop(self) -> None:
        if self.linechecks:
            await self.linechecks.stop()
        if self.bridges:
            await self.bridges.stop()
        for filer in self._filers:
            await filer.filing.drain()
        if self.faxes:
            await self.faxes.stop()
        if self._roster_watch:
            self._roster_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._roster_watch
        if self.ami:
            await self.ami.stop()
        await self.writes.ticker.stop()
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

    def health(self) -> dict[str, str] | None:
        return self.ami.health() if self.ami else None

    def voice_channel(self) -> VoiceChannel | None:
        """The `voice` warning channel on this Asterisk (after start), unless telephony or `[voice] lines` is off."""
        if self.calls is None or self.ami is None or self.ctx.settings.voice.lines == 0:
            return None
        return VoiceChannel(self.ctx.settings.voice, self.ctx.settings.var_path, self._voice_call, self.ami.health)

    async def _voice_call(self, numbers: list[str], audio: Path, incident_id: str | None) -> Answer:
        """One round of a voice warning: a call over the numbers, named after whom the directory knows by the first."""
        assert self.calls is not None
        settings = self.ctx.settings.voice
        who = await self._caller(numbers[0])
        heard = await self.calls.notify(
            [Target(number) for number in numbers],
            Voice(audio, settings.replays + 1, settings.digit_seconds),
            incident_id=incident_id,
            party_name=(who or {}).get("name", ""),
            ring_seconds=settings.ring_seconds,
        )
        call = heard.call
        answered = call.number_used if call.answered_at else None
        return Answer(answered, heard.confirmed_at, heard.plays, tried(call) or call.cause)

    async def _caller(self, number: str) -> dict[str, str] | None:
        return await directory.caller(self.ctx, number)

    async def _refallback(self, fallbacks: dict[str, str]) -> None:
        assert self.engine is not None
        self.engine.fallback = dict(fallbacks)
        await self.reload()

    def _bridges(self) -> list[Bridge]:
        pins = dialplan.bridge_pins(self.ctx.settings, self.definition)
        return [
            Bridge(c.number, c.name, c.max_members, pins[c.number].participant, pins[c.number].moderator, c.record)
            for c in self.definition.conferences
        ]

    async def _link_changed(self, state: LinkState) -> None:
        error = self.ami.last_error if self.ami else ""
        await self.ctx.bus.publish(Event("engine.link", data={"engine": "asterisk", "state": state, "error": error}))
