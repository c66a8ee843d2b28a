"""The local Asterisk's lifecycle: render configs, start, wait until fully booted, status, reload, stop.

Asterisk runs from the host through the provisioned root's loader (see sip/provision.py and ENGINES.md), so
the process shows as `ld-linux...` in ps: it is tracked by the pid file <var_dir>/asterisk/run/engine.pid and
checked against /proc before any signal is sent. The CLI (`asterisk -C ... -rx`) is used for control here;
the AMI session lives elsewhere.
"""

import asyncio
import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from sip import dialplan, prompts
from sip.provision import AsteriskRuntime
from switchboard.core.config import Settings

PID_FILE = "engine.pid"
_SOCKET_LIMIT = 107  # sun_path of the CLI control socket


class EngineError(Exception):
    """The engine could not be started or controlled; the message is for the operator (zh-CN)."""


@dataclass(frozen=True)
class EngineStatus:
    running: bool
    pid: int | None = None
    version: str = ""
    uptime_seconds: int | None = None
    fully_booted: bool = False


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write only when the content changed; returns whether it did."""
    with contextlib.suppress(OSError):
        if path.read_text("utf-8") == text:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True


class Engine:
    """One local Asterisk, configured from a dialplan definition and the settings' [asterisk] section."""

    def __init__(
        self,
        settings: Settings,
        runtime: AsteriskRuntime,
        definition: dialplan.Definition | None = None,
        fallback: dialplan.FallbackSource | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.definition = definition or dialplan.configured_definition(settings)
        self.fallback = fallback
        self.layout = dialplan.Layout.for_settings(settings)
        self._process: asyncio.subprocess.Process | None = None

    # ------------------------------------------------------------------------------------------- paths

    @property
    def config_file(self) -> Path:
        return self.layout.etc / "asterisk.conf"

    @property
    def pid_file(self) -> Path:
        return self.layout.base / "run" / PID_FILE

    @property
    def console_log(self) -> Path:
        return self.layout.base / "log" / "console.log"

    def command(self, *args: str) -> list[str]:
        return self.runtime.command("-C", str(self.config_file), *args)

    # ------------------------------------------------------------------------------------------- configs

    def render(self) -> list[str]:
        """Write every config file (atomically, only when changed); returns the names that changed."""
        dirs = self.layout.dirs()
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        (self.layout.base / "spool" / "fax").mkdir(parents=True, exist_ok=True)
        (self.layout.base / "spool" / "monitor").mkdir(parents=True, exist_ok=True)
        socket = dirs["astrundir"] / "asterisk.ctl"
        if len(str(socket)) > _SOCKET_LIMIT:
            raise EngineError(f"var 目录路径过长，Asterisk 控制套接字 {socket} 超过 {_SOCKET_LIMIT} 字节")
        # astdatadir holds links to the runtime's data (documentation XML: without it Stasis refuses to start)
        # and sounds/en -> the runtime's sounds; never write through the root's own absolute symlinks.
        data = dirs["astdatadir"]
        for entry in self.runtime.data_dir.iterdir() if self.runtime.data_dir.is_dir() else ():
            if entry.name != "sounds":
                _link(data / entry.name, entry)
        (data / "sounds").mkdir(exist_ok=True)
        _link(data / "sounds" / "en", self.runtime.sounds_dir)
        files = dialplan.render(
            self.settings,
            self.definition,
            modules_dir=self.runtime.modules_dir,
            sbin_dir=self.runtime.binary.parent,
            fallback=self.fallback,
        )
        return [name for name, text in files.items() if _write_atomic(self.layout.etc / name, text)]

    # ------------------------------------------------------------------------------------------- process

    def pid(self) -> int | None:
        """The running engine's pid, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid, self.runtime.binary):
            return pid
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        return None

    async def cli(self, command: str, timeout: float = 10.0) -> tuple[int, str]:
        """Run one CLI command against the running engine (`asterisk -rx`); returns (exit code, output)."""
        proc = await asyncio.create_subprocess_exec(
            *self.command("-rx", command),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=self.runtime.environ(),
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, f"命令超时：{command}"
        return proc.returncode or 0, out.decode(errors="replace")

    async def prepare(self) -> list[str]:
        """Synthesise the Mandarin prompts the configs play, then render; returns the configs that changed."""
        await prompts.prepare(self.settings, self.definition)
        return self.render()

    async def start(self, timeout: float = 30.0) -> EngineStatus:
        """Render configs, start Asterisk if it is not running, wait until it is fully booted."""
        await self.prepare()
        pid = self.pid()
        if pid is None:
            self.console_log.parent.mkdir(parents=True, exist_ok=True)
            with self.console_log.open("ab") as log:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command("-f"),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=self.runtime.environ(),
                    start_new_session=True,  # survives the CLI that started it, and our Ctrl-C
                )
            pid = self._process.pid
            _write_atomic(self.pid_file, f"{pid}\n", 0o644)
        await self.wait_fully_booted(pid, timeout)
        return await self.status()

    async def wait_fully_booted(self, pid: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not _alive(pid, self.runtime.binary):
                await self._reap()
                raise EngineError(f"Asterisk 启动失败，已退出。日志末尾：\n{self._log_tail()}")
            code, out = await self.cli("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            if code == 0 and "fully booted" in out.lower():
                return
            if time.monotonic() > deadline:
                raise EngineError(f"Asterisk 在 {timeout:.0f} 秒内未完成启动：{out.strip()}")
            await asyncio.sleep(0.1)

    async def status(self) -> EngineStatus:
        pid = self.pid()
        if pid is None:
            return EngineStatus(running=False)
        code, version = await self.cli("core show version", timeout=5)
        _, uptime = await self.cli("core show uptime seconds", timeout=5)
        match = re.search(r"System uptime:\s*(\d+)", uptime)
        return EngineStatus(
            running=True,
            pid=pid,
            version=version.strip().removeprefix("Asterisk ").split(" ")[0] if code == 0 else "",
            uptime_seconds=int(match.group(1)) if match else None,
            fully_booted=code == 0,
        )

    async def reload(self) -> list[str]:
        """Re-render configs and reload them into the running engine without a restart."""
        changed = await self.prepare()
        if self.pid() is None:
            raise EngineError("Asterisk 未运行，无法重新加载")
        code, out = await self.cli("core reload")  # every loaded module re-reads its config
        if code != 0:
            raise EngineError(f"重新加载失败：{out.strip()}")
        return changed

    async def stop(self, timeout: float = 10.0) -> bool:
        """Graceful `core stop now`, then SIGTERM, then SIGKILL. Returns whether an engine was running."""
        pid = self.pid()
        if pid is None:
            await self._reap()
            return False
        await self.cli("core stop now", timeout=min(timeout, 5))
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and _alive(pid, self.runtime.binary):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + timeout / 2
            while _alive(pid, self.runtime.binary) and time.monotonic() < deadline:
                await self._reap(wait=0.05)
            if not _alive(pid, self.runtime.binary):
                break
        await self._reap()
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
        return True

    async def _reap(self, wait: float = 0.0) -> None:
        """Collect our own child's exit status (else it lingers as a zombie that looks alive)."""
        if self._process is None:
            await asyncio.sleep(wait)
            return
        try:
            await asyncio.wait_for(self._process.wait(), wait or 0.01)
            self._process = None
        except TimeoutError:
            pass

    def _log_tail(self, lines: int = 20) -> str:
        texts = []
        for path in (self.console_log, self.layout.base / "log" / "messages.log"):
            with contextlib.suppress(OSError):
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts[-lines:])


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    link.symlink_to(target)


def _alive(pid: int, binary: Path) -> bool:
    """pid is a live (not zombie) process running this Asterisk binary (guards against pid reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return str(binary).encode() in cmdline
