"""Backup and restore: an archive written while incidents, notes and recordings keep coming restores into an empty
var/ as a copy whose audit chain and recording store verify and whose row counts are the manifest's; a changed
byte or an occupied target is refused."""

import asyncio
import os
import stat
import subprocess
import sys
import tarfile
import threading
import uuid
import wave
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recording.models import Recording
from recording.store import RecordingStore
from switchboard.backup import service
from switchboard.backup.archive import MANIFEST
from switchboard.core.audit import service as audit
from switchboard.core.config import Settings
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.errors import InvalidInput
from switchboard.incidents import service as incidents
from switchboard.incidents.models import IncidentCreate
from tests.conftest import settings_for
from tests.support import throwaway_pg
from tests.support.wait import until

SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))
NEW = IncidentCreate(title="忻州市森林火灾", category="natural_disaster", level="III", area_code="140900")


class Quiet:
    def start(self, what: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...


class Load:
    """Incidents, notes and recordings filed one after another until stopped, counting the recordings."""

    def __init__(self, ctx: Context, scratch: Path) -> None:
        self.ctx, self.scratch, self.filed = ctx, scratch, 0
        self.changed = threading.Condition()
        scratch.mkdir(exist_ok=True)

    async def run(self, stop: asyncio.Event) -> None:
        store = RecordingStore(self.ctx)
        while not stop.is_set():
            incident = await incidents.create(self.ctx, "test", NEW)
            await incidents.add_note(self.ctx, "test", incident.id, f"第 {self.filed} 次续报")
            wav = _wav(self.scratch / f"{self.filed}.wav", self.filed)
            now = utcnow()
            await store.file(
                wav, kind="call", started_at=now - timedelta(seconds=1), ended_at=now, incident_id=incident.id
            )
            with self.changed:
                self.filed += 1
                self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        """Blocking (the backup's worker thread calls it): until `count` recordings are filed, or fail."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.filed >= count, timeout=30):
                raise AssertionError(f"timed out after 30 s waiting for {count} recordings filed")


class Interleaved(Quiet):
    """Progress that holds the backup just after its database snapshot until the load has filed two more
    recordings: those must then be in the archive neither as rows nor as files."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.filed_after_snapshot: int | None = None

    def start(self, what: str, total: int | None) -> None:
        if what == "复制录音文件":
            self.filed_after_snapshot = self.load.filed
            self.load.wait_for(self.load.filed + 2)


def _wav(path: Path, n: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes([n % 251, 0]) * 800)  # 0.1 s, a different content per file
    return path


@pytest.fixture
async def loaded(ctx: Context, tmp_path: Path) -> AsyncIterator[Load]:
    load = Load(ctx, tmp_path / "scratch")
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    await until(lambda: load.filed >= 5 or task.done(), timeout=30, what="five recordings filed")
    yield load
    stop.set()
    await task


async def _restore_target(ctx: Context, root: Path) -> Settings:
    """Settings for an empty var/ on "another machine": a new SQLite path, or a new empty PostgreSQL database."""
    var = root / "var"
    if ctx.db.is_sqlite:
        url = f"sqlite+aiosqlite:///{var / 'switchboard.db'}"
    else:
        server, _ = ctx.db.url.rsplit("/", 1)
        name = f"restored_{uuid.uuid4().hex[:12]}"
        await throwaway_pg.create_database(server, name)
        url = f"{server}/{name}"
    return settings_for(var, url)


async def _verified(ctx: Context) -> tuple[list[object], list[object]]:
    async with ctx.db.snapshot() as session:
        broken = [finding async for _, finding in audit.verify(session) if finding]
    return broken, await RecordingStore(ctx).verify()


async def test_backup_under_load_restores_a_verified_copy(
    ctx: Context, loaded: Load, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "out" / "backup.tar"
    archive.parent.mkdir()
    progress = Interleaved(loaded)
    settings, started = ctx.settings, []
    if not ctx.db.is_sqlite:  # the cluster trusts local users: a password it ignores shows where pg_dump gets it
        server, name = ctx.db.url.rsplit("/", 1)
        settings = settings_for(ctx.settings.var_path, server.replace("@", ":not-on-the-command-line@") + "/" + name)
        spawn = asyncio.create_subprocess_exec
        monkeypatch.setattr(asyncio, "create_subprocess_exec", lambda *a, **k: started.append((a, k)) or spawn(*a, **k))
    manifest = await service.backup(settings, archive, None, progress)
    for args, options in started:
        assert "not-on-the-command-line" not in " ".join(args)
        assert options["env"]["PGPASSWORD"] == "not-on-the-command-line"
    assert len(started) == (0 if ctx.db.is_sqlite else 1)

    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert all(stat.S_IMODE(member.mode) == 0o600 for member in tar)
    recordings = [n for n in names if n.startswith("recordings/")]
    assert progress.filed_after_snapshot is not None and loaded.filed >= progress.filed_after_snapshot + 2
    assert len(recordings) == manifest.tables["recordings"] <= progress.filed_after_snapshot  # none filed later
    assert {"database/switchboard.db" if ctx.db.is_sqlite else "database/switchboard.dump", "var/ledger_key"} <= set(
        names
    )
    assert "var/ledger/audit-head.log" in names and MANIFEST == names[-1]

    settings = await _restore_target(ctx, tmp_path / "elsewhere")
    restored = await service.restore(settings, archive, Quiet())
    assert restored.manifest.tables == manifest.tables
    copy = Context.from_settings(settings)
    try:
        assert await _verified(copy) == ([], [])
        async with copy.db.reader() as session:
            assert await session.scalar(select(func.count()).select_from(Recording)) == manifest.tables["recordings"]
        for path in (settings.var_path / "recordings").rglob("*"):
            assert path.is_dir() or stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await copy.db.close()


async def test_a_changed_byte_or_an_occupied_target_is_refused(ctx: Context, tmp_path: Path) -> None:
    if not ctx.db.is_sqlite:
        pytest.skip("the archive checks do not depend on the database")
    await RecordingStore(ctx).file(
        _wav(tmp_path / "one.wav", 7), kind="call", started_at=utcnow() - timedelta(seconds=1), ended_at=utcnow()
    )
    archive = tmp_path / "backup.tar"
    await service.backup(ctx.settings, archive, None, Quiet())

    occupied = tmp_path / "occupied"
    (occupied / "var").mkdir(parents=True)
    (occupied / "var" / "notes.txt").write_text("x")
    settings = await _restore_target(ctx, occupied)
    with pytest.raises(InvalidInput, match="不是空的"):
        await service.restore(settings, archive, Quiet())

    with tarfile.open(archive) as tar:
        member = next(m for m in tar if m.name.startswith("recordings/"))
    with archive.open("r+b") as raw:
        raw.seek(member.offset_data + 100)
        byte = raw.read(1)
        raw.seek(member.offset_data + 100)
        raw.write(bytes([byte[0] ^ 0x01]))
    settings = await _restore_target(ctx, tmp_path / "fresh")
    with pytest.raises(InvalidInput, match="校验失败"):
        await service.restore(settings, archive, Quiet())
    assert not settings.var_path.exists()  # nothing was put in place


class PurgeOnce(Quiet):
    """Progress that, the first time recordings are about to be copied, has retention delete them all: the files
    the snapshot names are gone, so the backup must start over from a snapshot that knows it."""

    def __init__(self, store: RecordingStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store, self.loop, self.snapshots, self.purged = store, loop, 0, 0

    def start(self, what: str, total: int | None) -> None:
        self.snapshots += what == "数据库快照"
        if what == "复制录音文件" and not self.purged:
            self.purged = asyncio.run_coroutine_threadsafe(self.store.purge(0, set()), self.loop).result(timeout=30)


async def test_a_recording_purged_during_the_backup_starts_it_over(ctx: Context, tmp_path: Path) -> None:
    if not ctx.db.is_sqlite:
        pytest.skip("the retry does not depend on the database")
    store = RecordingStore(ctx)
    for n in range(3):
        await store.file(
            _wav(tmp_path / f"{n}.wav", n), kind="call", started_at=utcnow() - timedelta(1), ended_at=utcnow()
        )
    progress = PurgeOnce(store, asyncio.get_running_loop())
    manifest = await service.backup(ctx.settings, tmp_path / "b.tar", None, progress)
    assert (progress.purged, progress.snapshots) == (3, 2)
    assert manifest.tables["recordings"] == 3 and not [f for f in manifest.files if f["name"].startswith("recordings/")]
    settings = await _restore_target(ctx, tmp_path / "fresh")
    await service.restore(settings, tmp_path / "b.tar", Quiet())
    copy = Context.from_settings(settings)
    try:
        assert await _verified(copy) == ([], [])
    finally:
        await copy.db.close()


def test_cli_backup_then_restore_elsewhere(tmp_path: Path) -> None:
    env = os.environ | {
        "SWITCHBOARD_CONFIG": str(tmp_path / "switchboard.toml"),
        "SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path / "var"),
        "SWITCHBOARD_ASTERISK_MODE": "off",
        "SWITCHBOARD_JANUS_MODE": "off",
    }
    sb = lambda env, *args: subprocess.run([SWITCHBOARD, *args], env=env, capture_output=True, text=True, timeout=120)  # noqa: E731
    (tmp_path / "switchboard.toml").write_text('[incidents]\ntimezone = "Asia/Shanghai"\n')
    created = sb(
        env,
        "incident",
        "create",
        "--title",
        "朔州市暴雨",
        "--category",
        "natural_disaster",
        "--level",
        "IV",
        "--area-code",
        "140600",
    )
    assert created.returncode == 0, created.stderr
    done = sb(env, "backup", "-o", str(tmp_path / "b.tar"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "已写入备份" in done.stdout

    elsewhere = env | {"SWITCHBOARD_PATHS_VAR_DIR": str(tmp_path / "other" / "var")}
    restored = sb(elsewhere, "restore", str(tmp_path / "b.tar"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (tmp_path / "other" / "var" / service.RESTORED_CONFIG).read_text() == (
        tmp_path / "switchboard.toml"
    ).read_text()
    assert "未发现篡改" in sb(elsewhere, "audit", "verify").stdout
    assert "录音完整" in sb(elsewhere, "recordings", "verify").stdout
    again = sb(elsewhere, "restore", str(tmp_path / "b.tar"))
    assert again.returncode == 1 and "不是空的" in again.stderr
