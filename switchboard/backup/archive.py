"""The archive: an uncompressed tar (recordings are audio, compressing them gains little and costs time) whose
last member, `manifest.json`, names every other member with its size and SHA-256.

Restoring trusts only what the manifest names and the hashes confirm: members are streamed out by hand (never
`extractall`), each to a relative path that cannot leave the target, written 0600, and hashed on the way.
"""

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from switchboard.core.errors import InvalidInput

FORMAT = "switchboard-backup"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20


@dataclass
class Manifest:
    created_at: str
    backend: str
    tables: dict[str, int]
    files: list[dict[str, Any]] = field(default_factory=list)  # {"name", "size", "sha256"}
    config_file: str | None = None  # where the configuration was read from, for the operator restoring

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "database": {"backend": self.backend, "tables": self.tables},
            "config_file": self.config_file,
            "files": self.files,
        }
        return json.dumps(body, ensure_ascii=False, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Manifest":
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise ValueError
            if body["version"] > VERSION:
                raise InvalidInput(f"备份格式版本 {body['version']} 比本程序新，请用新版本还原", field="archive")
            return cls(
                body["created_at"],
                body["database"]["backend"],
                dict(body["database"]["tables"]),
                list(body["files"]),
                body.get("config_file"),
            )
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("清单 manifest.json 无法解析：这不是 Switchboard 备份", field="archive") from None


class Writer:
    """Adds files to a tar being written, hashing each as it is copied (one read per file)."""

    def __init__(self, tar: tarfile.TarFile, manifest: Manifest) -> None:
        self.tar = tar
        self.manifest = manifest

    def add(self, source: Path, name: str) -> int:
        """Copy `source` in as `name`; the size recorded is what was read, so a file still growing is caught by
        the hash on restore rather than archived half-described."""
        digest = hashlib.sha256()
        with source.open("rb") as stream:
            info = tarfile.TarInfo(name)
            info.size = os.fstat(stream.fileno()).st_size
            info.mode = 0o600
            info.mtime = int(os.fstat(stream.fileno()).st_mtime)
            self.tar.addfile(info, _Hashing(stream, digest, info.size))
        self.manifest.files.append({"name": name, "size": info.size, "sha256": digest.hexdigest()})
        return info.size

    def close(self) -> None:
        raw = self.manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(raw), 0o600
        self.tar.addfile(info, io.BytesIO(raw))


class _Hashing(io.RawIOBase):
    """A reader that hashes what tarfile takes from it, never more than `size` bytes."""

    def __init__(self, stream: io.BufferedReader, digest: Any, size: int) -> None:
        self.stream, self.digest, self.left = stream, digest, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.stream.read(n)
        if len(data) < n:
            raise InvalidInput("文件在备份过程中被截短", field="archive")
        self.digest.update(data)
        self.left -= len(data)
        return data


def safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name != path.as_posix():
        raise InvalidInput(f"备份中的路径不安全：{name}", field="archive")
    return path


def read_manifest(tar: tarfile.TarFile) -> Manifest:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise InvalidInput("备份中没有清单 manifest.json", field="archive") from None
    stream = tar.extractfile(member)
    if stream is None:
        raise InvalidInput("清单 manifest.json 不是普通文件", field="archive")
    return Manifest.from_json(stream.read())


def extract_verified(tar: tarfile.TarFile, manifest: Manifest, target: Path, progress: "Progress") -> None:
    """Write every member the manifest names under `target` (0600), refusing the archive if a member is missing,
    unnamed, not a regular file, or differs from its size or SHA-256."""
    expected = {entry["name"]: entry for entry in manifest.files}
    for name in expected:
        safe_name(name)
    seen: set[str] = set()
    for member in tar:
        if member.name == MANIFEST:
            continue
        entry = expected.get(member.name)
        if entry is None or not member.isfile() or member.name in seen:
            raise InvalidInput(f"备份中有清单未列出的内容：{member.name}", field="archive")
        seen.add(member.name)
        destination = target / safe_name(member.name)
        destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        stream = tar.extractfile(member)
        assert stream is not None  # a regular file, checked above
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                progress.advance(len(chunk))
        if member.size != entry["size"] or digest.hexdigest() != entry["sha256"]:
            raise InvalidInput(
                f"校验失败：{member.name} 的 SHA-256 或大小与清单不符（备份已损坏或被改动）", field="archive"
            )
    if missing := expected.keys() - seen:
        raise InvalidInput(f"备份不完整，缺少：{sorted(missing)[0]} 等 {len(missing)} 个文件", field="archive")


class Progress(Protocol):
    """How long work reports itself, for the command line's progress bars: `start` a step (total None when it
    cannot be counted), then `advance` by what was just done."""

    def start(self, what: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...
