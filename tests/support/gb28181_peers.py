"""The GB/T 28181 peers as the tests drive them: a device simulator or an upper platform in a process of its own
(tests/support/peers/gb28181_device.py, gb28181_upper.py), its JSON-lines log read back, lines written to it."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


class PeerProcess:
    def __init__(self, module: str, log: Path, *args: str) -> None:
        self.module, self.log, self.args = module, log, args
        self.process: asyncio.subprocess.Process | None = None
        self.ready = ""

    async def start(self) -> "PeerProcess":
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, "--log", str(self.log), *self.args,
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout
        self.ready = (await asyncio.wait_for(self.process.stdout.readline(), 20)).decode().strip()
        assert self.ready.startswith("READY"), f"{self.module} did not start: {self.ready!r}"
        return self

    def events(self, kind: str) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [event for event in map(json.loads, lines) if event["event"] == kind]

    async def tell(self, line: str) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def device(log: Path, device_id: str, password: str, platform_id: str, port: int, **options: str) -> PeerProcess:
    args = ["--id", device_id, "--password", password, "--platform-id", platform_id, "--platform", f"127.0.0.1:{port}"]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", value]
    return PeerProcess("tests.support.peers.gb28181_device", log, *args)


def upper(log: Path, upper_id: str, lower_id: str, password: str, port: int) -> PeerProcess:
    args = ["--id", upper_id, "--lower-id", lower_id, "--password", password, "--port", str(port)]
    return PeerProcess("tests.support.peers.gb28181_upper", log, *args)
