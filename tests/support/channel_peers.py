"""The warning channels' peers for tests: a real SMSC process (tests/support/peers/smsc.py) and a real SMTP server
(aiosmtpd's Controller in its own thread), with fixtures that start them, and `warning_channels`, which points
the app's own outbox at both, as a deployment's [channels] configuration would."""

import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from broadcast.channels.carriers import CarrierRouter
from broadcast.channels.email import EmailChannel
from broadcast.channels.gateway import MobileOriginatedHandler
from broadcast.channels.sms import SmsChannel
from broadcast.outbox import Outbox
from switchboard.core.context import Context
from tests.support.wait import until

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit_records(record: Path) -> Iterator[dict]:
    """The submit_sm lines of a test SMSC's record, one at a time: it records its binds, receipts and MO messages
    there too (lines with an "event")."""
    with record.open() as lines:
        for line in lines:
            if "event" not in (recorded := json.loads(line)):
                yield recorded


class Smsc:
    """One SMSC process; `start` again after `kill` keeps the port and the record file. Other gateway peers that
    take the same --port/--record arguments and print READY reuse it with their own `module`."""

    module = "tests.support.peers.smsc"

    def __init__(self, tmp: Path, **options: object) -> None:
        self.port = free_port()
        self.record = tmp / f"submits-{self.port}.jsonl"
        self.record.touch()
        self.options = options
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        args = [
            sys.executable,
            "-m",
            self.module,
            "--port",
            str(self.port),
            "--record",
            str(self.record),
        ]
        for key, value in self.options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "READY"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def submits(self) -> list[dict]:
        return list(submit_records(self.record))

    def events(self, kind: str) -> list[dict]:
        """What else the SMSC recorded: its binds ("bind"), the receipts ("receipt") and MO messages ("mo") sent."""
        return [line for line in self._lines() if line.get("event") == kind]

    def _lines(self) -> list[dict]:
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    async def recorded(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The submits, once the SMSC process has written at least `count` of them (it answers first)."""
        return await until(
            lambda: len(records := self.submits()) >= count and records,
            timeout=timeout,
            what=f"the SMSC to record {count} submits",
        )


@pytest.fixture
def smsc_factory(tmp_path: Path) -> Iterator[Any]:
    """`make(**options)` starts an SMSC; `make(kind, **options)` another gateway peer built on `Smsc`."""
    started: list[Smsc] = []

    def make(kind: type[Smsc] = Smsc, **options: object) -> Smsc:
        smsc = kind(tmp_path, **options)
        smsc.start()
        started.append(smsc)
        return smsc

    yield make
    for smsc in started:
        smsc.kill()


class Recorder:
    """The SMTP server's handler: keeps what arrived; refuses some recipients the way real relays do."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list):
        local = address.partition("@")[0]
        if local == "busy":
            return "451 4.3.0 mailbox busy, try later"
        if local == "nobody":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK queued"

    def recipients(self) -> list[str]:
        return [address for addresses, _ in self.received for address in addresses]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


async def sms_gateway(outbox: Outbox, smsc: Smsc, on_mobile_originated: MobileOriginatedHandler | None = None) -> None:
    """One SMPP gateway to `smsc` behind the carrier router in `outbox`, as configuration builds it (replies phones
    send go to `on_mobile_originated`), once its link is up."""
    gateway = SmsChannel(
        "127.0.0.1",
        smsc.port,
        "switchboard",
        "secret",
        source_addr="12379",
        name="smpp",
        on_mobile_originated=on_mobile_originated,
    )
    await outbox.add(CarrierRouter([gateway], {}, default="smpp"))
    await until(lambda: outbox.health()["sms"]["status"] == "ok", timeout=10, what="the SMPP link to bind")


@dataclass
class WarningChannels:
    outbox: Outbox  # the app's own
    smsc: Smsc
    mailbox: Recorder


@pytest_asyncio.fixture
async def warning_channels(app_ctx: Context, smsc_factory: Any, smtp_server: Any) -> AsyncIterator[WarningChannels]:
    """SMS (one SMPP gateway behind the carrier router) and e-mail channels in the app's outbox, pointed at the
    real peers, their links up. The SMSC reports numbers starting 13999 undeliverable; the SMTP server answers 451
    for busy@ and 550 for nobody@."""
    outbox: Outbox = app_ctx.app.state.services.outbox  # type: ignore[attr-defined]
    smsc = smsc_factory(receipt_delay=0.1, undeliverable_prefix="13999")
    controller, mailbox = smtp_server
    await outbox.add(EmailChannel("127.0.0.1", controller.port, "yjglj@switchboard.local", rate_per_second=200))
    await sms_gateway(outbox, smsc)
    yield WarningChannels(outbox, smsc, mailbox)
    await outbox.stop()  # before the peers go (they are torn down first): no reconnecting to a dead SMSC
