"""`backup` and `restore`: the order of the steps is what makes the archive one consistent point in time.

Backup, while the server runs: (1) the ledger's external head file is read first, so every head it names belongs
to a transaction already committed, hence inside the database snapshot taken next (the file may lag the
snapshot, which verification tolerates; never lead it, which it would report as rolled back); (2) the database
snapshot; (3) only the recording files the snapshot's rows name. A recording is moved into the store before its
row and ledger entry commit, so every row in the snapshot has its file in place, and a recording filed during the
backup is in the archive with its row and ledger entry or, absent from the snapshot, not at all.

Restore only into an empty var/ (and an empty database): every member is checked against the manifest in a
staging directory beside var/ before anything is put in place, and the restored row counts against the manifest.
"""

import asyncio
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from switchboard.backup import database
from switchboard.backup.archive import Manifest, Progress, Writer, extract_verified, read_manifest
from switchboard.core.config import Settings
from switchboard.core.db import utcnow
from switchboard.core.errors import Conflict, InvalidInput

# Secrets the switchboard generates under var/ when none is configured (auth, audit ledger, Asterisk, Janus).
SECRETS = (
    "token_secret",
    "ledger_key",
    "asterisk/phone_secrets.toml",
    "asterisk/bridge_pins.toml",
    "asterisk/ami_secret",
    "janus/admin_key",
)
LEDGER_DIR = "ledger"  # the audit chain's append-only head file(s)
RESTORED_CONFIG = "restored-config.toml"
ATTEMPTS = 3


class Purged(Conflict):
    """A recording the snapshot names was deleted before its file was copied."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"录音 {path} 在备份期间被删除（保留期清理），多次重试仍未完成：请稍后重新备份", field="recordings"
        )


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    config: Path | None  # where the archived configuration file was put, for the operator to review


def _head_copy(source: Path, target: Path) -> None:
    """The head file up to its last complete line: appenders write whole lines, but a read may catch one mid-way."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: data.rfind(b"\n") + 1])


def _write_archive(
    settings: Settings,
    snapshot: database.Snapshot,
    staged: Path,
    partial: Path,
    config_file: Path | None,
    progress: Progress,
) -> Manifest:
    var = settings.var_path
    manifest = Manifest(
        utcnow().isoformat(), snapshot.backend, snapshot.tables, config_file=str(config_file) if config_file else None
    )
    store = var / "recordings"
    sizes = []
    for path in snapshot.recordings:
        try:
            sizes.append((path, (store / path).stat().st_size))
        except FileNotFoundError:
            raise Purged(path) from None
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        writer = Writer(tar, manifest)
        writer.add(snapshot.file, database.SQLITE_FILE if snapshot.backend == "sqlite" else database.PG_FILE)
        for path in sorted(p for p in staged.rglob("*") if p.is_file()):
            writer.add(path, f"var/{path.relative_to(staged).as_posix()}")
        for name in SECRETS:
            if (var / name).is_file():
                writer.add(var / name, f"var/{name}")
        if config_file:
            writer.add(config_file, "config/switchboard.toml")
        progress.start("复制录音文件", sum(size for _, size in sizes))
        for path, _ in sizes:
            try:
                progress.advance(writer.add(store / path, f"recordings/{path}"))
            except FileNotFoundError:
                raise Purged(path) from None
        writer.close()
    with partial.open("rb") as stream:
        os.fsync(stream.fileno())
    return manifest


async def _attempt(
    settings: Settings, work: Path, partial: Path, config_file: Path | None, progress: Progress
) -> Manifest:
    staged = work / "var"
    ledger = settings.var_path / LEDGER_DIR
    for head in ledger.rglob("*") if ledger.is_dir() else []:
        if head.is_file():
            await asyncio.to_thread(_head_copy, head, staged / head.relative_to(settings.var_path))
    progress.start("数据库快照", None)
    url = settings.database_url
    if database.backend_of(url) == "sqlite":
        snapshot = await asyncio.to_thread(database.sqlite_snapshot, url, work / "switchboard.db")
    else:
        snapshot = await database.pg_snapshot(url, work / "switchboard.dump")
    progress.advance(1)
    return await asyncio.to_thread(_write_archive, settings, snapshot, staged, partial, config_file, progress)


async def backup(settings: Settings, out: Path, config_file: Path | None, progress: Progress) -> Manifest:
    """Write the archive to `out` (0600), through a temporary name beside it, so `out` is whole or absent. When
    retention deletes a recording between the snapshot and its copy, the backup starts over from a new snapshot
    (which then has the deletion), a few times before giving up."""
    out = out.resolve()
    fd, partial_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")  # 0600
    os.close(fd)
    partial = Path(partial_name)
    try:
        for attempt in range(1, ATTEMPTS + 1):
            with tempfile.TemporaryDirectory(dir=out.parent, prefix=".switchboard-backup-") as work:
                try:
                    manifest = await _attempt(settings, Path(work), partial, config_file, progress)
                    break
                except Purged:
                    if attempt == ATTEMPTS:
                        raise
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _refuse_occupied(settings: Settings) -> None:
    var = settings.var_path
    if var.exists() and (not var.is_dir() or any(var.iterdir())):
        raise InvalidInput(
            f"目标目录 {var} 不是空的：还原只能写入空的 var 目录，请换一个目录或先移走其中的内容", field="var_dir"
        )
    if database.backend_of(settings.database_url) == "sqlite" and database.sqlite_path(settings.database_url).exists():
        raise InvalidInput(
            f"数据库文件 {database.sqlite_path(settings.database_url)} 已存在：只能还原到空目录", field="database"
        )


def _counts_match(expected: dict[str, int], found: dict[str, int]) -> None:
    for table in sorted(expected.keys() | found.keys()):
        if expected.get(table) != found.get(table):
            raise InvalidInput(
                f"还原后表 {table} 的行数 {found.get(table)} 与清单的 {expected.get(table)} 不符", field="database"
            )


def _unpack(archive: Path, target: Path, progress: Progress) -> Manifest:
    try:
        with tarfile.open(archive, "r:") as tar:
            manifest = read_manifest(tar)
            progress.start("校验并解出备份", sum(entry["size"] for entry in manifest.files))
            extract_verified(tar, manifest, target, progress)
    except (tarfile.TarError, EOFError):
        raise InvalidInput(f"{archive} 不是完整的备份归档（tar 无法读取）", field="archive") from None
    return manifest


def _place(staging: Path, settings: Settings, backend: str) -> Path | None:
    """Move the verified files into var/ (and the SQLite file where the configuration wants it)."""
    var = settings.var_path
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in (staging / "var").iterdir() if (staging / "var").is_dir() else []:
        shutil.move(entry, var / entry.name)
    if (staging / "recordings").is_dir():
        shutil.move(staging / "recordings", var / "recordings")
    if backend == "sqlite":
        target = database.sqlite_path(settings.database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging / database.SQLITE_FILE, target)
    if (staging / "config/switchboard.toml").is_file():
        shutil.move(staging / "config/switchboard.toml", var / RESTORED_CONFIG)
        return var / RESTORED_CONFIG
    return None


async def restore(settings: Settings, archive: Path, progress: Progress) -> Restored:
    """Put an archive back into an empty var/ (and empty database); nothing is placed unless all of it checks."""
    _refuse_occupied(settings)
    backend = database.backend_of(settings.database_url)
    var = settings.var_path
    var.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=var.parent, prefix=f".{var.name}-restore-"))
    try:
        manifest = await asyncio.to_thread(_unpack, archive, staging, progress)
        if manifest.backend != backend:
            raise InvalidInput(
                f"备份的数据库是 {manifest.backend}，本机配置的是 {backend}：请先配置同类数据库", field="database"
            )
        progress.start("还原数据库", None)
        if backend == "sqlite":
            _counts_match(
                manifest.tables, await asyncio.to_thread(database.sqlite_counts, staging / database.SQLITE_FILE)
            )
        else:
            await database.pg_restore(settings.database_url, staging / database.PG_FILE)
            _counts_match(manifest.tables, await database.pg_counts(settings.database_url))
        progress.advance(1)
        config = await asyncio.to_thread(_place, staging, settings, backend)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return Restored(manifest, config)
