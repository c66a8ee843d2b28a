"""The recording store: files under <var_dir>/recordings, a row each, and a ledger entry each in the audit chain.

A closed file is hashed (SHA-256, off the event loop), moved into the store and recorded in one transaction with
an audit entry carrying its hash and size: the audit chain (HMAC-sealed, its head also kept in a file outside the
database) is the ledger, so editing a file, its row, or the ledger is detectable (`verify`), and so is a file
slipped in beside the others.
"""

import asyncio
import hashlib
import io
import json
import re
import shutil
import wave
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recording.models import KINDS, STILL_FORMATS, Recording
from switchboard.core.audit import service as audit
from switchboard.core.audit.models import AuditEntry
from switchboard.core.context import Context
from switchboard.core.db import get_or_404, utcnow
from switchboard.core.errors import Conflict, InvalidInput, NotFound
from switchboard.core.events import Event
from switchboard.core.ids import new_id

_UNSAFE = re.compile(r'[\\/:*?"<>|\s]+')  # not in a file name on any system the archive may be opened on


@dataclass(frozen=True)
class Finding:
    path: str
    problem: str  # changed, missing, added, ledger_mismatch, ledger_broken
    recording_id: str | None = None
    ledger: audit.Finding | None = None  # what is wrong with the ledger itself, for ledger_broken

    def describe(self) -> str:
        text = {
            "changed": "文件内容与登记的 SHA-256 不符",
            "missing": "文件缺失",
            "added": "存储目录中有未登记的文件",
            "ledger_mismatch": "记录的哈希与审计账本不符（记录被改动）",
            "ledger_broken": "账本被篡改",
        }[self.problem]
        return f"{text}：{self.ledger.describe()}" if self.ledger else text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def settled(path: Path, timeout: float = 10.0) -> bool:
    """Whether `path` exists and its writer (Asterisk, after a hang-up) has finished it: past the WAV header and
    its size held still between two looks, within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    size, deadline = -1, loop.time() + timeout
    while loop.time() < deadline:
        current = _size(path)  # one stat, ~5 µs: a worker thread's hand-off would cost more than it saves
        if current > 44 and current == size:
            return True
        size = current
        await asyncio.sleep(0.3)
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path)) as wav:
            return wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError):
        return None


class RecordingStore:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.root = ctx.settings.var_path / "recordings"

    def path_of(self, recording: Recording) -> Path:
        return self.root / recording.path

    async def file(
        self,
        source: Path,
        *,
        kind: str,
        started_at: datetime,
        ended_at: datetime,
        incident_id: str | None = None,
        source_id: str | None = None,
        parties: list[dict[str, Any]] | None = None,
        actor: str = "system",
    ) -> Recording:
        """Take a closed file into the store (moved, not copied) and record it."""
        if kind not in KINDS:
            raise InvalidInput(f"未知的录音类型 {kind!r}", field="kind")
        if not source.is_file():
            raise NotFound(f"录音文件不存在：{source.name}", field="source")
        recording = Recording(
            id=new_id(),
            kind=kind,
            incident_id=incident_id,
            source_id=source_id,
            parties=parties or [],
            party_index="|" + "|".join(str(v) for p in parties or [] for v in p.values() if v) + "|",
            started_at=started_at,
            ended_at=ended_at,
            format=source.suffix.lstrip(".").lower() or "bin",
        )
        recording.path = f"{started_at:%Y/%m/%d}/{recording.id}.{recording.format}"
        target = self.root / recording.path
        digest, size, seconds = await asyncio.to_thread(self._take, source, target)
        recording.sha256, recording.size = digest, size
        recording.duration_seconds = seconds if seconds is not None else (ended_at - started_at).total_seconds()
        detail = {"path": recording.path, "sha256": digest, "size": size, "incident_id": incident_id}

        async def write(session: AsyncSession) -> None:
            session.add(recording)
            await audit.record(session, actor, "recording.saved", "recording", recording.id, detail)

        try:
            await self.ctx.db.together(write)  # the calls that ended together are filed together
        except Exception:  # not when cancelled: the write goes ahead and commits without us
            await asyncio.to_thread(shutil.move, target, source)  # not recorded: give the file back
            raise
        who = "、".join(p.get("name") or p.get("number") or "" for p in recording.parties) or "—"
        length = "" if recording.format in STILL_FORMATS else f" {int(recording.duration_seconds)} 秒"
        summary = f"{recording.label}{length}（{who}）"
        event = Event(
            "recording.saved",
            incident_id=incident_id,
            actor=actor,
            data={"summary": summary, "refs": [recording.id], "recording_id": recording.id, "kind": kind},
        )
        await self.ctx.bus.publish(event)
        return recording

    async def attach(self, source_id: str, incident_id: str, actor: str) -> list[Recording]:
        """File the recordings of a call, bridge or consultation (by its id) that no incident holds yet under
        `incident_id`; audited, so the ledger says when and by whom a recording joined an incident."""
        async with self.ctx.db.session() as session:
            query = select(Recording).where(Recording.source_id == source_id, Recording.incident_id.is_(None))
            recordings = list((await session.scalars(query)).all())
            for recording in recordings:
                recording.incident_id = incident_id
                detail = {"incident_id": incident_id, "source_id": source_id}
                await audit.record(session, actor, "recording.attach", "recording", recording.id, detail)
        for recording in recordings:
            summary = f"{recording.label} {int(recording.duration_seconds)} 秒归入本事件"
            data = {"summary": summary, "refs": [recording.id], "recording_id": recording.id, "kind": recording.kind}
            await self.ctx.bus.publish(Event("recording.attached", incident_id=incident_id, actor=actor, data=data))
        return recordings

    def _file_name(self, recording: Recording) -> str:
        zone = ZoneInfo(self.ctx.settings.incidents.timezone)
        people = [_UNSAFE.sub("_", p.get("name") or p.get("number") or "") for p in recording.parties]
        who = "-".join(p for p in people if p)[:60] or "未知"
        started = recording.started_at.astimezone(zone)
        return f"{started:%Y%m%d-%H%M%S}-{KINDS[recording.kind]}-{who}-{recording.id[-6:]}.{recording.format}"

    @staticmethod
    def _take(source: Path, target: Path) -> tuple[str, int, float | None]:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return sha256_of(target), target.stat().st_size, _wav_seconds(target)

    async def get(self, recording_id: str) -> Recording:
        async with self.ctx.db.reader() as session:
            return await get_or_404(session, Recording, recording_id, what="录音", field="recording_id")

    async def search(
        self,
        *,
        incident_id: str | None = None,
        party: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Recording]:
        """Newest first; `party` matches a name, number or contact id of any party."""
        query = select(Recording).where(Recording.deleted_at.is_(None))
        if incident_id:
            query = query.where(Recording.incident_id == incident_id)
        if party:
            query = query.where(Recording.party_index.contains(f"|{party}|", autoescape=True))
        if since:
            query = query.where(Recording.started_at >= since)
        if until:
            query = query.where(Recording.started_at < until)
        async with self.ctx.db.reader() as session:
            return list((await session.scalars(query.order_by(Recording.started_at.desc()).limit(limit))).all())

    async def hold(self, recording_id: str, actor: str, reason: str, *, held: bool = True) -> Recording:
        """Place a recording on hold (`held=False`: release it), audited with the reason: retention never deletes
        a held recording, e.g. one an inquiry or a complaint needs kept past its term."""
        async with self.ctx.db.session() as session:
            row = await get_or_404(session, Recording, recording_id, what="录音", field="recording_id", lock=True)
            if row.held == held:
                raise Conflict("录音已处于保全状态" if held else "录音未被保全", field="recording_id")
            row.held, row.hold_reason = held, reason if held else ""
            row.held_by, row.held_at = (actor, utcnow()) if held else (None, None)
            action = "recording.held" if held else "recording.released"
            await audit.record(session, actor, action, "recording", row.id, {"reason": reason})
        return row

    async def purge(self, days: int, open_incidents: set[str], actor: str = "system") -> int:
        """Delete recordings older than `days`, except held ones and those of incidents still open."""
        cutoff = utcnow() - timedelta(days=days)
        async with self.ctx.db.reader() as session:
            old = (
                await session.scalars(
                    select(Recording).where(
                        Recording.deleted_at.is_(None), Recording.ended_at < cutoff, Recording.held.is_(False)
                    )
                )
            ).all()
        purged = 0
        for recording in old:
            if recording.incident_id in open_incidents:
                continue
            async with self.ctx.db.session() as session:
                row = await session.get(Recording, recording.id)
                if row is None or row.deleted_at is not None:
                    continue
                row.deleted_at = utcnow()
                detail = {"path": row.path, "sha256": row.sha256, "days": days}
                await audit.record(session, actor, "recording.deleted", "recording", row.id, detail)
            await asyncio.to_thread(self.path_of(recording).unlink, missing_ok=True)
            purged += 1
        return purged

    async def verify(self) -> list[Finding]:
        """The ledger itself (the keyed audit chain and its external head file), every live recording's file
        against its row, every row against its ledger entry, and every file on disk against the rows."""
        async with self.ctx.db.snapshot() as session:
            findings = [
                Finding(f"审计账本第 {broken.seq} 条", "ledger_broken", ledger=broken)
                async for _, broken in audit.verify(session)
                if broken
            ]
            rows = (await session.scalars(select(Recording))).all()
            ledger = {
                entry.target_id: entry.detail
                for entry in await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "recording.saved").order_by(AuditEntry.seq)
                )
            }
        known = {row.path for row in rows}
        for row in rows:
            if row.deleted_at is not None:
                continue
            entry = ledger.get(row.id)
            if entry is None or entry.get("sha256") != row.sha256 or entry.get("path") != row.path:
                findings.append(Finding(row.path, "ledger_mismatch", row.id))
            path = self.path_of(row)
            if not path.is_file():
                findings.append(Finding(row.path, "missing", row.id))
            elif await asyncio.to_thread(sha256_of, path) != (entry or {}).get("sha256", row.sha256):
                findings.append(Finding(row.path, "changed", row.id))
        on_disk = await asyncio.to_thread(lambda: [p for p in self.root.rglob("*") if p.is_file()])
        for path in sorted(on_disk):
            relative = path.relative_to(self.root).as_posix()
            if relative not in known:
                findings.append(Finding(relative, "added"))
        return findings

    async def export(self, incident_id: str) -> bytes:
        """One ZIP of the incident's recordings with a manifest (ids, parties, times, SHA-256); each file named by
        its local start time, kind and parties (20261202-094100-通话-王建国-李明-3F9K2A.wav), as people look for it."""
        recordings = await self.search(incident_id=incident_id, limit=10_000)
        if not recordings:
            raise NotFound(f"事件 {incident_id} 没有录音", field="incident_id")

        def build() -> bytes:
            buffer = io.BytesIO()
            manifest = []
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
                for r in recordings:
                    name = self._file_name(r)
                    archive.write(self.path_of(r), name)
                    manifest.append(
                        {
                            "file": name,
                            "id": r.id,
                            "kind": r.kind,
                            "parties": r.parties,
                            "started_at": r.started_at.isoformat(),
                            "ended_at": r.ended_at.isoformat(),
                            "duration_seconds": r.duration_seconds,
                            "size": r.size,
                            "sha256": r.sha256,
                        }
                    )
                archive.writestr(
                    "manifest.json",
                    json.dumps({"incident_id": incident_id, "recordings": manifest}, ensure_ascii=False, indent=2),
                )
            return buffer.getvalue()

        return await asyncio.to_thread(build)
