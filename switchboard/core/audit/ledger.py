"""The audit ledger's two anchors outside the database: the HMAC key every entry is sealed with, and an
append-only file the chain head is copied to after every commit.

Someone who can rewrite the database but not these can neither forge an entry (no key) nor quietly drop the
newest ones or roll the database back (the file still names them). Each line of the file is
`<seq> <hash> <UTC time>`, the head after one commit.
"""

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from switchboard.core.config import Settings
from switchboard.core.db import utcnow
from switchboard.core.errors import SwitchboardError
from switchboard.core.keys import kept_secret

LEDGER = "audit_ledger"  # the key of the Ledger in every session's `info` (Database's session_info)

log = logging.getLogger(__name__)

_LINE = re.compile(rb"([0-9]+) ([0-9a-f]{64}) \S+\n")


@dataclass(frozen=True)
class Ledger:
    key: bytes
    head_log: Path

    @classmethod
    def of(cls, settings: Settings) -> "Ledger":
        """The key from config or environment, else generated once into var/ledger_key (0600); the head file's
        directory is created private (0700)."""
        key = settings.audit.ledger_key or kept_secret(settings.var_path / "ledger_key")
        head_log = Path(settings.audit.head_log or settings.var_path / "ledger" / "audit-head.log")
        head_log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(key.encode(), head_log)

    def seal(self, payload: bytes) -> str:
        return hmac.new(self.key, payload, hashlib.sha256).hexdigest()

    def anchor(self, seq: int, digest: str) -> None:
        """Append the head of a committed transaction: one write to a file opened O_APPEND, so lines of concurrent
        writers never interleave. The commit stands if this fails (a crash in between has the same effect): the
        file then lags the database, which verification tolerates, and the next append anchors the chain again."""
        line = f"{seq} {digest} {utcnow().isoformat()}\n".encode()
        try:
            fd = os.open(self.head_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError:
            log.exception("audit head %d not appended to %s", seq, self.head_log)

    def horizon(self) -> int:
        """The file's length now: every line before it belongs to a transaction that has committed."""
        return self.head_log.stat().st_size if self.head_log.exists() else 0

    def heads(self, horizon: int, batch: int) -> Iterator[list[tuple[int, str]]]:
        """The (seq, hash) lines before `horizon`, `batch` at a time. A line that does not parse stops the
        check: the file is then no anchor, and saying so is the only honest answer."""
        if not horizon:
            return
        found: list[tuple[int, str]] = []
        with self.head_log.open("rb") as stream:
            for number, line in enumerate(stream, 1):
                horizon -= len(line)
                if horizon < 0:
                    break
                if not (match := _LINE.fullmatch(line)):
                    raise SwitchboardError(f"外部链头文件 {self.head_log} 第 {number} 行无法解析，无法核对链头")
                found.append((int(match[1]), match[2].decode()))
                if len(found) == batch:
                    yield found
                    found = []
        if found:
            yield found
