"""The recording store: filed with a ledger entry, found, played with HTTP Range, exported, kept or purged,
and every edit, deletion or stray file reported by verify, also when the ledger was rewritten to match."""

import asyncio
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import wave
import zipfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, select, update

from recording.models import Recording
from recording.store import RecordingStore, sha256_of
from switchboard.api.app import create_app
from switchboard.core.audit.ledger import Ledger
from switchboard.core.audit.models import AuditEntry
from switchboard.core.config import RecordingSettings
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.incidents import service as incidents
from switchboard.incidents.models import Incident, IncidentCreate, Status
from tests.support import forgery
from tests.support.wait import until

SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))

PARTIES = [{"name": "王强", "number": "13912345678", "contact_id": "01CONTACT"}, {"name": "值班台1", "number": "8001"}]


def tone_wav(path: Path, seconds: float = 2.0, freq: float = 700.0) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        frames = int(8000 * seconds)
        wav.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 8000))) for i in range(frames))
        )
    return path


async def filed_tone(ctx: Context, tmp_path: Path, name: str, **kw: object) -> Recording:
    now = utcnow()
    store = RecordingStore(ctx)
    options = {"started_at": now - timedelta(seconds=2), "ended_at": now, "parties": PARTIES} | kw
    return await store.file(tone_wav(tmp_path / name), kind="call", **options)  # type: ignore[arg-type]


async def test_filed_recording_is_ledgered_found_and_played(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, tmp_path: Path
) -> None:
    incident = await client.post(
        "/api/v1/incidents",
        json={"title": "阳泉市矿山事故", "category": "accident_disaster", "level": "III", "area_code": "140300"},
        headers=tokens["duty_officer"],
    )
    incident_id = incident.json()["id"]
    recording = await filed_tone(app_ctx, tmp_path, "a.wav", incident_id=incident_id, source_id="call-1")
    assert (recording.duration_seconds, recording.size, recording.format) == (2.0, 32044, "wav")
    assert not (tmp_path / "a.wav").exists()  # moved into the store

    async with app_ctx.db.reader() as session:
        ledger = (await session.scalars(select(AuditEntry).where(AuditEntry.target_id == recording.id))).one()
    assert ledger.detail["sha256"] == recording.sha256

    headers = tokens["leader"]
    for query in (f"incident_id={incident_id}", "party=13912345678", "party=王强"):
        found = (await client.get(f"/api/v1/recordings?{query}", headers=headers)).json()
        assert [r["id"] for r in found] == [recording.id], query
    assert (await client.get("/api/v1/recordings?party=1391234", headers=headers)).json() == []

    whole = await client.get(f"/api/v1/recordings/{recording.id}/audio", headers=headers)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav" and len(whole.content) == 32044
    part = await client.get(f"/api/v1/recordings/{recording.id}/audio", headers=headers | {"Range": "bytes=44-1043"})
    assert part.status_code == 206 and part.content == whole.content[44:1044]
    assert part.headers["content-range"] == "bytes 44-1043/32044"
    assert (
        await client.get(f"/api/v1/recordings/{recording.id}/audio", headers=tokens["alert_officer"])
    ).status_code == 403

    timeline = (await client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=headers)).json()["items"]
    assert timeline[-1]["kind"] == "recording" and timeline[-1]["summary"] == "通话录音 2 秒（王强、值班台1）"

    second = await filed_tone(app_ctx, tmp_path, "b.wav", incident_id=incident_id)
    archive = await client.get(f"/api/v1/recordings/export?incident_id={incident_id}", headers=headers)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {r["id"] for r in manifest["recordings"]} == {recording.id, second.id}
        for entry in manifest["recordings"]:
            assert hashlib.sha256(zf.read(entry["file"])).hexdigest() == entry["sha256"]
        named = next(e["file"] for e in manifest["recordings"] if e["id"] == recording.id)
        local = recording.started_at.astimezone(ZoneInfo("Asia/Shanghai"))
        assert named == f"{local:%Y%m%d-%H%M%S}-通话-王强-值班台1-{recording.id[-6:]}.wav"  # by people and time


async def test_verify_reports_edits_deletions_and_strays(ctx: Context, tmp_path: Path) -> None:
    store = RecordingStore(ctx)
    edited, deleted, rewritten, fine = [await filed_tone(ctx, tmp_path, f"{n}.wav") for n in "abcd"]
    assert await store.verify() == []

    with store.path_of(edited).open("r+b") as f:  # one sample changed
        f.seek(1000)
        f.write(b"\x00\x01")
    store.path_of(deleted).unlink()
    async with ctx.db.session() as session:  # the row is made to match a substituted file
        await session.execute(update(Recording).where(Recording.id == rewritten.id).values(sha256="0" * 64))
    stray = store.root / "2026" / "stray.wav"
    stray.parent.mkdir(parents=True, exist_ok=True)
    tone_wav(stray)

    problems = {(f.recording_id, f.problem) for f in await store.verify()}
    assert problems == {
        (edited.id, "changed"),
        (deleted.id, "missing"),
        (rewritten.id, "ledger_mismatch"),
        (None, "added"),
    }
    assert fine.id not in {i for i, _ in problems}


async def test_retention_keeps_held_and_open_incident_recordings(ctx: Context, tmp_path: Path) -> None:
    store = RecordingStore(ctx)
    old = utcnow() - timedelta(days=40)
    expired = await filed_tone(ctx, tmp_path, "a.wav", started_at=old, ended_at=old)
    held = await filed_tone(ctx, tmp_path, "b.wav", started_at=old, ended_at=old)
    open_incident = await filed_tone(ctx, tmp_path, "c.wav", started_at=old, ended_at=old, incident_id="01OPEN")
    recent = await filed_tone(ctx, tmp_path, "d.wav")
    async with ctx.db.session() as session:
        await session.execute(update(Recording).where(Recording.id == held.id).values(held=True))

    assert await store.purge(30, open_incidents={"01OPEN"}) == 1
    assert not store.path_of(expired).exists()
    assert {r.id for r in await store.search(limit=10)} == {recent.id, open_incident.id, held.id}
    assert await store.verify() == []  # a purge is in the ledger, not a finding


async def _audited(ctx: Context, recording_id: str, action: str) -> list[AuditEntry]:
    async with ctx.db.reader() as session:
        query = select(AuditEntry).where(AuditEntry.target_id == recording_id, AuditEntry.action == action)
        return list((await session.scalars(query.order_by(AuditEntry.seq))).all())


async def test_leader_holds_and_releases_a_recording_with_a_reason(
    app_ctx: Context, client: httpx.AsyncClient, tokens: dict, tmp_path: Path
) -> None:
    recording = await filed_tone(app_ctx, tmp_path, "a.wav")
    hold = f"/api/v1/recordings/{recording.id}/hold"
    reason = {"reason": "群众投诉调查，需保留原始录音"}

    refused = await client.post(hold, json=reason, headers=tokens["duty_officer"])
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    for body in ({}, {"reason": " "}, {"reason": "x" * 501}):
        bad = await client.post(hold, json=body, headers=tokens["leader"])
        assert (bad.status_code, bad.json()["field"]) == (422, "reason"), body
    missing = await client.post(
        "/api/v1/recordings/01NOSUCHRECORDING000000000/hold", json=reason, headers=tokens["leader"]
    )
    assert missing.status_code == 404
    assert await _audited(app_ctx, recording.id, "recording.held") == []

    held = await client.post(hold, json=reason, headers=tokens["leader"])
    assert held.status_code == 200, held.text
    assert (held.json()["held"], held.json()["hold_reason"], held.json()["held_by"]) == (
        True,
        reason["reason"],
        "leader",
    )
    assert (await client.post(hold, json=reason, headers=tokens["admin"])).status_code == 409
    [listed] = (await client.get("/api/v1/recordings", headers=tokens["duty_officer"])).json()
    assert (listed["held"], listed["hold_reason"]) == (True, reason["reason"])
    [entry] = await _audited(app_ctx, recording.id, "recording.held")
    assert (entry.actor, entry.detail) == ("leader", reason)

    done = {"reason": "调查结束"}
    assert (await client.request("DELETE", hold, json=done, headers=tokens["duty_officer"])).status_code == 403
    released = await client.request("DELETE", hold, json=done, headers=tokens["admin"])
    assert released.status_code == 200 and (released.json()["held"], released.json()["held_by"]) == (False, None)
    assert (await client.request("DELETE", hold, json=done, headers=tokens["admin"])).status_code == 409
    [entry] = await _audited(app_ctx, recording.id, "recording.released")
    assert (entry.actor, entry.detail) == ("admin", done)


async def test_retention_runs_on_schedule_keeping_held_and_open_incident_recordings(
    ctx: Context, tmp_path: Path
) -> None:
    store = RecordingStore(ctx)
    report = IncidentCreate(title="迎泽区燃气泄漏", category="accident_disaster", level="III", area_code="140106")
    still_open, closed = [(await incidents.create(ctx, "duty_officer", report)).id for _ in range(2)]
    async with ctx.db.session() as session:
        await session.execute(update(Incident).where(Incident.id == closed).values(status=Status.closed))
    old = utcnow() - timedelta(days=40)
    expired = await filed_tone(ctx, tmp_path, "a.wav", started_at=old, ended_at=old)
    of_closed = await filed_tone(ctx, tmp_path, "b.wav", started_at=old, ended_at=old, incident_id=closed)
    of_open = await filed_tone(ctx, tmp_path, "c.wav", started_at=old, ended_at=old, incident_id=still_open)
    held = await filed_tone(ctx, tmp_path, "d.wav", started_at=old, ended_at=old)
    await store.hold(held.id, "leader", "上级调查")
    recent = await filed_tone(ctx, tmp_path, "e.wav")

    quick = RecordingSettings(retention_days=30, retention_check_seconds=0.1)
    scheduled = Context.from_settings(ctx.settings.model_copy(update={"recordings": quick}))
    app = create_app(scheduled)

    async def only_kept_left() -> bool:
        return {r.id for r in await store.search(limit=10)} == {of_open.id, held.id, recent.id}

    async with app.router.lifespan_context(app):
        await until(only_kept_left, timeout=10, what="the scheduled retention to delete the expired recordings")
    for gone in (expired, of_closed):
        assert not store.path_of(gone).exists()
        [entry] = await _audited(ctx, gone.id, "recording.deleted")
        assert (entry.actor, entry.detail["days"]) == ("system", 30)
    assert await store.verify() == []


async def _cli_verify(ctx: Context) -> subprocess.CompletedProcess[str]:
    """`switchboard recordings verify` on the test's database and var dir, as an operator runs it."""
    env = os.environ | {
        "SWITCHBOARD_CONFIG": str(ctx.settings.var_path / "absent.toml"),
        "SWITCHBOARD_PATHS_VAR_DIR": str(ctx.settings.var_path),
        "SWITCHBOARD_DATABASE_URL": ctx.settings.database_url,
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "SWITCHBOARD_JANUS_MODE": "off",
        "COLUMNS": "400",  # one finding a line
    }
    command = [SWITCHBOARD, "recordings", "verify"]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)


async def _reported(ctx: Context) -> set[tuple[str, str]]:
    """(where, ledger problem) of each finding; the CLI must print exactly these and exit 1."""
    findings = await RecordingStore(ctx).verify()
    done = await _cli_verify(ctx)
    assert (done.returncode, done.stdout.splitlines()) == (1, [f"{f.path}：{f.describe()}" for f in findings])
    return {(f.path, f.ledger.problem if f.ledger else f.problem) for f in findings}


@pytest.mark.parametrize(("forger", "problem"), [("sha256", "unkeyed"), ("wrong_key", "edited")])
async def test_cli_reports_a_substituted_recording_whose_ledger_was_rechained(
    ctx: Context, tmp_path: Path, forger: str, problem: str
) -> None:
    """Another recording put in one's place, its row and ledger entry made to match and the chain recomputed:
    files, rows and ledger agree, only the ledger's seal and its external head file give it away."""
    store = RecordingStore(ctx)
    _, substituted, _ = [await filed_tone(ctx, tmp_path, f"{n}.wav") for n in "abc"]
    clean = await _cli_verify(ctx)
    assert (clean.returncode, clean.stdout.strip()) == (0, "录音完整：文件、登记与账本一致"), clean.stderr

    digest = sha256_of(tone_wav(store.path_of(substituted), freq=1200))
    async with ctx.db.session() as session:
        await session.execute(update(Recording).where(Recording.id == substituted.id).values(sha256=digest))
    ledger = await forgery.entries(ctx)
    assert ledger[1].target_id == substituted.id
    tail = [forgery.fields(ledger[1], detail=ledger[1].detail | {"sha256": digest}), forgery.fields(ledger[2])]
    await forgery.rewrite_tail(ctx, 2, tail, forgery.SEALS[forger]())

    assert await _reported(ctx) == {
        ("审计账本第 2 条", problem),
        ("审计账本第 3 条", problem),
        ("审计账本第 2 条", "log_mismatch"),
        ("审计账本第 3 条", "log_mismatch"),
    }


async def test_cli_reports_the_newest_recording_removed_with_its_ledger_entry(ctx: Context, tmp_path: Path) -> None:
    """File, row and ledger entry gone, the head row pointed at the entry before: the chain holds together, the
    external head file still names the entry."""
    store = RecordingStore(ctx)
    *_, newest = [await filed_tone(ctx, tmp_path, f"{n}.wav") for n in "abc"]
    store.path_of(newest).unlink()
    async with ctx.db.session() as session:
        await session.execute(delete(Recording).where(Recording.id == newest.id))
    await forgery.rewrite_tail(ctx, 3, [], forgery.plain_sha256)
    assert await _reported(ctx) == {("审计账本第 3 条", "log_missing")}


async def test_cli_accepts_a_head_file_lagging_after_a_crash(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between filing a recording (committed) and appending its head: not tampering."""
    await filed_tone(ctx, tmp_path, "a.wav")
    with monkeypatch.context() as crash:
        crash.setattr(Ledger, "anchor", lambda *_: None)
        await filed_tone(ctx, tmp_path, "b.wav")
    assert len(Ledger.of(ctx.settings).head_log.read_text().splitlines()) == 1
    done = await _cli_verify(ctx)
    assert (done.returncode, done.stdout.strip()) == (0, "录音完整：文件、登记与账本一致"), done.stdout + done.stderr
