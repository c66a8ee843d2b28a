"""A test ISMG (China Mobile's SMS gateway) speaking CMPP 2.0 and 3.0, run as its own process.

    python -m tests.support.peers.ismg --port P --record pdus.jsonl --source-addr 901234 --secret S [knobs]

Written from the spec's field tables, apart from `broadcast.cmpp`, so a misreading on one side shows up on the
other. It checks every field it receives and refuses what is wrong with the spec's code: CONNECT (body length,
Source_Addr, AuthenticatorSource = MD5(Source_Addr + 9 zero octets + secret + Timestamp), Version; Status 1-4),
SUBMIT (Total_Length against the version's layout, Pk_total/Pk_number, Registered_Delivery, Msg_level, Service_Id,
fee fields, TP_udhi against the UDH and Pk_*, Msg_Fmt and UCS-2 evenness, Msg_src, Src_Id, DestUsr_tl and the
terminal ids, Dest_terminal_type, LinkID/Reserve; Result 1-13). Every PDU it receives is a JSON line in
`--record`, a SUBMIT with every field decoded ("problem" names what was refused). Accepted SUBMITs get a
SUBMIT_RESP with a Msg_Id laid out as the spec says (time, gateway id, sequence) and, when asked for, a status
report (DELIVER, Registered_Delivery=1) `--report-delay` seconds later.

Knobs: `--throttle-first N` answers Result 8 (流量控制错) to N submits after the first `--throttle-after` M, and
`--max-rate R` to whatever exceeds R submits in a second;
`--drop-after N` closes the first connection once N submits are answered; `--delay S` holds every answer;
`--undeliverable-prefix` reports Stat UNDELIV; `--mo SOURCE=TEXT` delivers one mobile-originated message after
the first login; `--active-test S` sends ACTIVE_TEST every S seconds. It prints `READY` once listening.
"""

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import signal
import struct
import time

from tests.support.peers.carrier import FlowCap

CONNECT, TERMINATE, SUBMIT, DELIVER, ACTIVE_TEST = 1, 2, 4, 5, 8
RESP = 0x80000000


class Fields:
    """Reads a body left to right, as the spec's tables list the fields."""

    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    def octets(self, width: int) -> bytes:
        if self.at + width > len(self.body):
            raise ValueError("short")
        raw = self.body[self.at : self.at + width]
        self.at += width
        return raw

    def text(self, width: int) -> str:
        return self.octets(width).rstrip(b"\0").decode("ascii")

    def int(self, width: int) -> int:
        return int.from_bytes(self.octets(width), "big")


class Refused(Exception):
    def __init__(self, code: int, problem: str) -> None:
        super().__init__(problem)
        self.code, self.problem = code, problem


class Ismg:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.record = open(args.record, "a", buffering=1)  # noqa: SIM115  (one line per PDU, flushed)
        self.sequence = itertools.count(1)
        self.msg_sequence = itertools.count(1)
        self.submits = 0
        self.throttle_left, self.skip_left = args.throttle_first, args.throttle_after
        self.cap = FlowCap(args.max_rate)
        self.dropped = False
        self.logins = 0
        self.live: Session | None = None  # the latest logged-in session: reports outlive the one they were for
        self.tasks: set[asyncio.Task] = set()

    def write(self, line: dict) -> None:
        self.record.write(json.dumps(line, ensure_ascii=False) + "\n")

    def spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def msg_id(self) -> int:
        """Month 4 bits, day 5, hour 5, minute 6, second 6, gateway id 22, sequence 16."""
        t = time.localtime()
        value = t.tm_mon
        for bits, part in ((5, t.tm_mday), (5, t.tm_hour), (6, t.tm_min), (6, t.tm_sec), (22, 12379)):
            value = value << bits | part
        return value << 16 | next(self.msg_sequence) & 0xFFFF

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        try:
            await session.run()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self.write({"pdu": "CLOSED", "why": str(exc) or type(exc).__name__})
        finally:
            writer.close()


class Session:
    def __init__(self, ismg: Ismg, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.ismg, self.args = ismg, ismg.args
        self.reader, self.writer = reader, writer
        self.version = 0  # 0x20 or 0x30 once logged in

    def send(self, command_id: int, sequence: int, body: bytes = b"") -> None:
        self.writer.write(struct.pack(">LLL", 12 + len(body), command_id, sequence) + body)

    async def answer(self, command_id: int, sequence: int, body: bytes = b"") -> None:
        """At once, or `--delay` seconds later without holding up the PDUs behind it."""
        if self.args.delay:
            self.ismg.spawn(self.later(self.args.delay, command_id, sequence, body))
        else:
            self.send(command_id, sequence, body)

    async def later(self, delay: float, command_id: int, sequence: int, body: bytes) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            self.send(command_id, sequence, body)

    @property
    def terminal(self) -> int:
        return 21 if self.version == 0x20 else 32

    @property
    def result_width(self) -> int:
        return 1 if self.version == 0x20 else 4

    async def run(self) -> None:
        while True:
            length, command_id, sequence = struct.unpack(">LLL", await self.reader.readexactly(12))
            if length < 12 or length > 4096:
                raise ValueError(f"Total_Length {length}")
            body = await self.reader.readexactly(length - 12)
            if command_id == CONNECT:
                await self.connect(sequence, body)
            elif not self.version:
                self.ismg.write({"pdu": "BEFORE_CONNECT", "command_id": command_id})
                return
            elif command_id == SUBMIT:
                if await self.submit(sequence, body):
                    return  # dropped
            elif command_id == ACTIVE_TEST:
                self.ismg.write({"pdu": "ACTIVE_TEST", "length": length})
                await self.answer(ACTIVE_TEST | RESP, sequence, b"\0")
            elif command_id == ACTIVE_TEST | RESP:
                self.ismg.write({"pdu": "ACTIVE_TEST_RESP", "length": length, "ok": length == 13})
            elif command_id == DELIVER | RESP:
                fields = Fields(body)
                line = {"pdu": "DELIVER_RESP", "msg_id": fields.int(8), "result": fields.int(self.result_width)}
                self.ismg.write({**line, "ok": length == 12 + 8 + self.result_width})
            elif command_id == TERMINATE:
                self.ismg.write({"pdu": "TERMINATE", "ok": length == 12})
                self.send(TERMINATE | RESP, sequence)
                await self.writer.drain()
                return
            else:
                self.ismg.write({"pdu": "UNKNOWN", "command_id": command_id})
            await self.writer.drain()

    async def connect(self, sequence: int, body: bytes) -> None:
        fields = Fields(body)
        line: dict = {"pdu": "CONNECT", "length": len(body) + 12}
        status, version = 0, 0x30
        try:
            if len(body) != 27:
                raise Refused(1, "CONNECT body is not 27 octets")
            source = fields.text(6)
            authenticator, version, stamp = fields.octets(16), fields.int(1), fields.int(4)
            line.update(source_addr=source, version=version, timestamp=f"{stamp:010d}")
            if version > 0x3F:
                raise Refused(4, "version too high")
            if version >> 4 not in (2, 3):  # major version in the high 4 bits, minor in the low
                raise Refused(1, f"version 0x{version:02X}")
            if source != self.args.source_addr:
                raise Refused(2, "unknown Source_Addr")
            expected = hashlib.md5(
                source.encode() + b"\0" * 9 + self.args.secret.encode() + f"{stamp:010d}".encode()
            ).digest()
            if authenticator != expected:
                raise Refused(3, "AuthenticatorSource")
            month, day = stamp // 100000000, stamp // 1000000 % 100
            if not (1 <= month <= 12 and 1 <= day <= 31):
                raise Refused(1, "Timestamp is not MMDDHHMMSS")
        except Refused as refused:
            status, line["problem"] = refused.code, refused.problem
            authenticator = b"\0" * 16
        width = 1 if version >> 4 == 2 else 4
        status_bytes = status.to_bytes(width, "big")
        ismg = hashlib.md5(status_bytes + authenticator + self.args.secret.encode()).digest()
        line["status"] = status
        self.ismg.write(line)
        await self.answer(CONNECT | RESP, sequence, status_bytes + ismg + bytes([version]))
        if status:
            await self.writer.drain()
            raise ConnectionError("login refused")
        self.version = version & 0xF0  # 2.x speaks the 2.0 layout
        self.ismg.logins += 1
        self.ismg.live = self
        if self.args.active_test:
            self.ismg.spawn(self.keepalive())
        if self.args.mo and self.ismg.logins == 1:
            self.ismg.spawn(self.mobile_originated())

    async def submit(self, sequence: int, body: bytes) -> bool:
        """Answer one SUBMIT; True when the connection is to be dropped now."""
        line = {"pdu": "SUBMIT", "version": f"{self.version >> 4}.{self.version & 15}", "time": time.time()}
        try:
            self.parse_submit(body, line)
            result = self.judge(line)
        except Refused as refused:
            result, line["problem"] = refused.code, refused.problem
        except ValueError:
            result, line["problem"] = 1, "SUBMIT ends inside a field"
        msg_id = self.ismg.msg_id() if result == 0 else 0
        line.update(result=result, answer_msg_id=f"{msg_id:016x}")
        self.ismg.write(line)
        await self.answer(
            SUBMIT | RESP, sequence, msg_id.to_bytes(8, "big") + result.to_bytes(self.result_width, "big")
        )
        if result == 0 and line["Registered_Delivery"] == 1:
            self.ismg.spawn(self.report(msg_id, line["Dest_terminal_Id"][0]))
        self.ismg.submits += result == 0
        if self.args.drop_after and not self.ismg.dropped and self.ismg.submits >= self.args.drop_after:
            self.ismg.dropped = True
            await self.writer.drain()
            self.ismg.write({"pdu": "DROPPED"})
            return True
        return False

    def parse_submit(self, body: bytes, line: dict) -> None:
        f = Fields(body)
        v3 = self.version == 0x30
        line["Msg_Id"] = f.int(8)
        line["Pk_total"], line["Pk_number"] = f.int(1), f.int(1)
        line["Registered_Delivery"], line["Msg_level"] = f.int(1), f.int(1)
        line["Service_Id"], line["Fee_UserType"] = f.text(10), f.int(1)
        line["Fee_terminal_Id"] = f.text(self.terminal)
        if v3:
            line["Fee_terminal_type"] = f.int(1)
        line["TP_pId"], line["TP_udhi"], line["Msg_Fmt"] = f.int(1), f.int(1), f.int(1)
        line["Msg_src"], line["FeeType"], line["FeeCode"] = f.text(6), f.text(2), f.text(6)
        line["ValId_Time"], line["At_Time"] = f.text(17), f.text(17)
        line["Src_Id"], line["DestUsr_tl"] = f.text(21), f.int(1)
        if not 1 <= line["DestUsr_tl"] <= 100:
            raise Refused(1, "DestUsr_tl")
        line["Dest_terminal_Id"] = [f.text(self.terminal) for _ in range(line["DestUsr_tl"])]
        if v3:
            line["Dest_terminal_type"] = f.int(1)
        line["Msg_Length"] = f.int(1)
        content = f.octets(line["Msg_Length"])
        line["Msg_Content"] = content.hex()
        tail = len(body) - f.at
        line["tail_octets"] = tail
        if tail != (20 if v3 else 8):
            raise Refused(4, f"{tail} octets after Msg_Content, not {'LinkID 20' if v3 else 'Reserve 8'}")
        line["LinkID" if v3 else "Reserve"] = f.text(tail)
        if line["TP_udhi"]:
            if not content or content[0] + 1 > len(content):
                raise Refused(1, "TP_udhi set but no UDH")
            header, content = content[1 : 1 + content[0]], content[1 + content[0] :]
            if len(header) != 5 or header[:2] != b"\x00\x03":
                raise Refused(1, f"UDH {header.hex()} is not a concatenation header")
            line["udh"] = {"ref": header[2], "total": header[3], "part": header[4]}
        line["text"] = content.decode("utf-16-be") if line["Msg_Fmt"] == 8 and len(content) % 2 == 0 else None

    def judge(self, line: dict) -> int:
        """Raise Refused with the spec's Result for the first field that is wrong; 0 or 8 otherwise."""
        total, number, udh = line["Pk_total"], line["Pk_number"], line.get("udh")
        if not 1 <= number <= total:
            raise Refused(1, "Pk_number outside 1..Pk_total")
        if total > 1 and not line["TP_udhi"]:
            raise Refused(1, "Pk_total > 1 without TP_udhi")
        if udh and (udh["total"], udh["part"]) != (total, number):
            raise Refused(1, "UDH disagrees with Pk_total/Pk_number")
        if line["Registered_Delivery"] not in (0, 1) or line["Msg_level"] > 9:
            raise Refused(1, "Registered_Delivery or Msg_level")
        if line["Msg_Length"] > 140:
            raise Refused(6, "Msg_Length over 140")
        if line["Msg_Fmt"] != 8 or line["text"] is None:
            raise Refused(1, "Msg_Fmt is not UCS-2 or the text is not whole UTF-16")
        if not line["Service_Id"]:
            raise Refused(7, "Service_Id empty")
        if line["FeeType"] not in ("01", "02", "03", "04", "05") or not line["FeeCode"].isdigit():
            raise Refused(5, "FeeType/FeeCode")
        if line["Fee_UserType"] not in (0, 1, 2, 3):
            raise Refused(1, "Fee_UserType")
        if line["Msg_src"] != self.args.source_addr:
            raise Refused(11, "Msg_src is not our SP")
        if not line["Src_Id"].startswith(self.args.src_prefix) or not line["Src_Id"].isdigit():
            raise Refused(10, "Src_Id")
        for terminal in line["Dest_terminal_Id"]:
            if not terminal.isdigit() or terminal.startswith(self.args.invalid_prefix or "x"):
                raise Refused(13, "Dest_terminal_Id")
        if line.get("Dest_terminal_type", 0) not in (0, 1):
            raise Refused(1, "Dest_terminal_type")
        if self.ismg.cap.over():
            return 8
        if self.ismg.skip_left > 0:
            self.ismg.skip_left -= 1
        elif self.ismg.throttle_left > 0:
            self.ismg.throttle_left -= 1
            return 8
        return 0

    async def report(self, msg_id: int, destination: str) -> None:
        await asyncio.sleep(self.args.report_delay)
        undeliverable = self.args.undeliverable_prefix and destination.startswith(self.args.undeliverable_prefix)
        stamp = time.strftime("%y%m%d%H%M")
        content = (
            msg_id.to_bytes(8, "big")
            + (b"UNDELIV" if undeliverable else b"DELIVRD")
            + stamp.encode() * 2
            + destination.encode().ljust(self.terminal, b"\0")
            + (7).to_bytes(4, "big")
        )
        for _ in range(200):  # a report waits for the SP to log in again, as an ISMG keeps it queued
            live = self.ismg.live
            if live is not None and not live.writer.is_closing():
                live.deliver(destination, 1, content)
                return
            await asyncio.sleep(0.05)

    async def mobile_originated(self) -> None:
        await asyncio.sleep(0.1)
        source, _, text = self.args.mo.partition("=")
        self.deliver(source, 0, text.encode("utf-16-be"))

    def deliver(self, source: str, registered_delivery: int, content: bytes) -> None:
        v3 = self.version == 0x30
        body = (
            self.ismg.msg_id().to_bytes(8, "big")
            + self.args.src_prefix.encode().ljust(21, b"\0")  # Dest_Id
            + b"SWBD".ljust(10, b"\0")  # Service_Id
            + bytes([0, 0, 8])  # TP_pid, TP_udhi, Msg_Fmt
            + source.encode().ljust(self.terminal, b"\0")
            + (bytes([0]) if v3 else b"")  # Src_terminal_type
            + bytes([registered_delivery, len(content)])
            + content
            + b"\0" * (20 if v3 else 8)
        )
        with contextlib.suppress(Exception):
            self.send(DELIVER, next(self.ismg.sequence), body)

    async def keepalive(self) -> None:
        while not self.writer.is_closing():
            await asyncio.sleep(self.args.active_test)
            self.ismg.write({"pdu": "ACTIVE_TEST_SENT"})
            self.send(ACTIVE_TEST, next(self.ismg.sequence))


async def main(args: argparse.Namespace) -> None:
    ismg = Ismg(args)
    server = await asyncio.start_server(ismg.serve, "127.0.0.1", args.port)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--source-addr", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--src-prefix", default="12379", help="the access number every Src_Id starts with")
    parser.add_argument("--report-delay", type=float, default=0.2)
    parser.add_argument("--throttle-first", type=int, default=0)
    parser.add_argument("--throttle-after", type=int, default=0)
    parser.add_argument("--max-rate", type=float, default=0.0, help="submits accepted per second (Result 8 beyond)")
    parser.add_argument("--drop-after", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--undeliverable-prefix", default="")
    parser.add_argument("--invalid-prefix", default="")
    parser.add_argument("--mo", default="")
    parser.add_argument("--active-test", type=float, default=0.0)
    return parser.parse_args()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(main(_arguments()))
