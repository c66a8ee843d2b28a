"""A bridge's recordings (ConfBridge writes bridge-<number>-<start>.wav, see confbridge.conf) filed into the
recording store when the moderator stops recording or the bridge ends, with the session's incident and the parties
who joined."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from recording.store import RecordingStore, settled
from switchboard.core.background import Background
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.events import Event


class BridgeRecordings:
    def __init__(self, ctx: Context, store: RecordingStore, monitor_dir: Path) -> None:
        self.store, self.monitor_dir = store, monitor_dir
        self.filing = Background()
        self._locks: dict[str, asyncio.Lock] = {}  # a bridge's parts are filed by one task at a time
        ctx.bus.subscribe(self._on_event)

    async def _on_event(self, event: Event) -> None:
        stopped = event.type == "bridge.recording" and not event.data.get("recording")
        if event.type == "bridge.ended" or stopped:
            self.filing.spawn(self._file(event), name=f"file-bridge-{event.data['bridge']}")

    async def _file(self, event: Event) -> None:
        """Every finished part of the bridge's recording."""
        number = event.data["bridge"]
        async with self._locks.setdefault(number, asyncio.Lock()):
            for path in sorted(self.monitor_dir.glob(f"bridge-{number}-*.wav")):
                if not await settled(path):
                    continue
                stamp = path.stem.rsplit("-", 1)[-1]
                started = datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else utcnow()
                ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                await self.store.file(
                    path,
                    kind="bridge",
                    started_at=started,
                    ended_at=max(ended, started),
                    incident_id=event.incident_id,
                    source_id=event.data.get("session_id"),
                    parties=event.data.get("parties") or [{"name": f"会议 {number}"}],
                )
