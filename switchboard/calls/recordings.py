"""Every answered call's recording filed into the recording store when the call ends, with the desk and the party
(callee, or the caller of a hotline) as its parties and the call's incident. MixMonitor writes dispatch calls as
<call id>.wav, hotline and desk-dialled calls as the <UNIQUEID>.wav their dialplan announced (`Call.monitor_file`)."""

import logging
from pathlib import Path

from recording.store import RecordingStore, settled
from sip.calls import CallService
from switchboard.core.background import Background
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.events import Event

log = logging.getLogger(__name__)


class CallRecordings:
    def __init__(self, ctx: Context, calls: CallService, store: RecordingStore, monitor_dir: Path) -> None:
        self.ctx, self.calls, self.store, self.monitor_dir = ctx, calls, store, monitor_dir
        self.filing = Background()
        ctx.bus.subscribe(self._on_event)

    async def _on_event(self, event: Event) -> None:
        """In the background: Asterisk closes the file a moment after the hang-up."""
        answered = event.type == "call.ended" and event.data.get("state") == "ended"
        if answered and self.ctx.settings.asterisk.record_calls:
            self.filing.spawn(self._file(event.data["call_id"]), name=f"file-call-{event.data['call_id']}")

    async def _file(self, call_id: str) -> None:
        call = await self.calls.get(call_id)
        path = self.monitor_dir / call.monitor_file
        if not await settled(path):
            log.warning("no recording of call %s appeared in %s", call_id, self.monitor_dir)
            return
        parties = [{"name": "调度台", "number": call.desk}] if call.desk else []
        parties.append({"name": call.party_name, "number": call.number_used, "contact_id": call.contact_id})
        await self.store.file(
            path,
            kind="call",
            started_at=call.answered_at or call.created_at,
            ended_at=call.ended_at or utcnow(),
            incident_id=call.incident_id,
            source_id=call.id,
            parties=[{k: v for k, v in p.items() if v} for p in parties],
        )
