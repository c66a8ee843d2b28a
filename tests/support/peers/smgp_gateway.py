"""A test SMGP 3.0 gateway (China Telecom ISMG), written from the spec's field tables, run as its own process.

    python -m tests.support.peers.smgp_gateway --port P --record submits.jsonl --client-id C --secret S
        [--receipt-delay 0.2] [--throttle-first N] [--throttle-after M] [--undeliverable-prefix P]
        [--drop-after N] [--response-delay S] [--mo SOURCE=TEXT]

It shares no code with the client (`broadcast.smgp`): a layout both got wrong the same way would pass unseen.
Every Login is checked (ClientID, AuthenticatorClient = MD5(ClientID + 7 zero bytes + secret + MMDDHHMMSS),
LoginMode, ClientVersion) and refused with Status 21/22; every Submit field is checked (MsgType, NeedReport,
Priority, FeeType, MsgFormat, the times, SrcTermID, DestTermIDCount and DestTermID, MsgLength, the TLVs
against the content's UDH) and refused with the spec's Status. Each Submit is recorded as one JSON line with
its fields decoded and what was answered. Accepted messages get a status report (Deliver, IsReport=1)
`--receipt-delay` seconds later. `--throttle-first N` answers Status 1 (system busy) to N submits after the
first `--throttle-after` M; `--drop-after N` closes the connection after answering the Nth accepted submit
(once); `--response-delay` holds each Submit_Resp; `--mo` sends one MO Deliver after the first login. It prints
`READY` once listening.
"""

import argparse
import asyncio
import hashlib
import itertools
import os
import re
import struct
import time

from tests.support.peers.carrier import Knobs, Refused, arguments, run, udh_concatenation

LOGIN, SUBMIT, DELIVER, ACTIVE_TEST, EXIT = 0x1, 0x2, 0x3, 0x4, 0x6
RESP = 0x80000000
HEADER = struct.Struct(">LLL")

OK, BUSY, STRUCTURE, COMMAND, AUTH, VERSION = 0, 1, 10, 11, 21, 22
MSG_TYPE, PRIORITY, FEE_TYPE, MSG_FORMAT, TIME_FORMAT, MSG_LENGTH = 30, 31, 32, 34, 35, 36
DEST_COUNT, DEST_TERM, SRC_TERM = 46, 47, 48
TAGS = {0x0001: "TP_pid", 0x0002: "TP_udhi", 0x0003: "LinkID", 0x0009: "PkTotal", 0x000A: "PkNumber"}
DIGITS = re.compile(rb"[0-9]{1,21}")


def cstring(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def check_time(raw: bytes, name: str) -> str:
    value = cstring(raw).decode("ascii", "replace")
    if value and not re.fullmatch(r"[0-9]{12}[0-9]{1}[0-9]{2}[+-R]", value):
        raise Refused(TIME_FORMAT, f"{name} {value!r}")
    return value


def parse_submit(body: bytes) -> dict:
    """The Submit of SMGP 3.0 section 6.2.4, every field checked."""
    fixed = struct.Struct(">BBB10s2s6s6sB17s17s21s21sB")
    if len(body) < fixed.size:
        raise Refused(STRUCTURE, "Submit too short")
    (msg_type, need_report, priority, service_id, fee_type, fee_code, fixed_fee, msg_format, valid_time, at_time,
     src, charge, count) = fixed.unpack_from(body)  # fmt: skip
    position = fixed.size
    if msg_type not in (0, 6, 7):
        raise Refused(MSG_TYPE, f"MsgType {msg_type}")
    if need_report not in (0, 1):
        raise Refused(STRUCTURE, f"NeedReport {need_report}")
    if priority > 3:
        raise Refused(PRIORITY, f"Priority {priority}")
    if cstring(fee_type) not in (b"00", b"01", b"02", b"03", b"04"):
        raise Refused(FEE_TYPE, f"FeeType {fee_type!r}")
    if msg_format not in (0, 3, 4, 8, 15):
        raise Refused(MSG_FORMAT, f"MsgFormat {msg_format}")
    if not DIGITS.fullmatch(cstring(src)):
        raise Refused(SRC_TERM, f"SrcTermID {src!r}")
    if not 1 <= count <= 100:
        raise Refused(DEST_COUNT, f"DestTermIDCount {count}")
    if len(body) < position + 21 * count + 1:
        raise Refused(STRUCTURE, "DestTermID list truncated")
    destinations = [cstring(body[position + 21 * i : position + 21 * (i + 1)]) for i in range(count)]
    position += 21 * count
    for destination in destinations:
        if not DIGITS.fullmatch(destination):
            raise Refused(DEST_TERM, f"DestTermID {destination!r}")
    length = body[position]
    position += 1
    if length > 140 or len(body) < position + length + 8:
        raise Refused(MSG_LENGTH, f"MsgLength {length}")
    content = body[position : position + length]
    position += length + 8  # Reserve
    tlvs: dict[str, int] = {}
    while position < len(body):
        if position + 4 > len(body):
            raise Refused(STRUCTURE, "TLV header truncated")
        tag, size = struct.unpack_from(">HH", body, position)
        value = body[position + 4 : position + 4 + size]
        if len(value) != size:
            raise Refused(STRUCTURE, f"TLV 0x{tag:04X} truncated")
        tlvs[TAGS.get(tag, f"0x{tag:04X}")] = int.from_bytes(value, "big")
        position += 4 + size
    udh = udh_concatenation(content) if tlvs.get("TP_udhi") else None
    if tlvs.get("TP_udhi") and udh is None:
        raise Refused(STRUCTURE, "TP_udhi=1 without a concatenation UDH")
    if udh and (tlvs.get("PkTotal", udh["total"]), tlvs.get("PkNumber", udh["part"])) != (udh["total"], udh["part"]):
        raise Refused(STRUCTURE, "PkTotal/PkNumber disagree with the UDH")
    if msg_format == 8 and (length - (udh["header_length"] if udh else 0)) % 2:
        raise Refused(MSG_LENGTH, "UCS-2 content of odd length")
    return {
        "msg_type": msg_type,
        "need_report": need_report,
        "priority": priority,
        "service_id": cstring(service_id).decode(),
        "fee_type": cstring(fee_type).decode(),
        "fee_code": cstring(fee_code).decode(),
        "fixed_fee": cstring(fixed_fee).decode(),
        "msg_format": msg_format,
        "valid_time": check_time(valid_time, "ValidTime"),
        "at_time": check_time(at_time, "AtTime"),
        "src_term_id": cstring(src).decode(),
        "charge_term_id": cstring(charge).decode(),
        "dest_term_ids": [d.decode() for d in destinations],
        "msg_length": length,
        "msg_content": content.hex(),
        "tlvs": tlvs,
        "udh": {k: udh[k] for k in ("ref", "total", "part")} if udh else None,
    }


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.knobs = Knobs(args)
        self.ids = itertools.count(1)
        self.sequences = itertools.count(1)

    def msg_id(self) -> bytes:
        """10 bytes BCD: SMGW code (6 digits), MMDDHHMM, sequence (6 digits)."""
        digits = f"{os.getpid() % 1000000:06d}{time.strftime('%m%d%H%M')}{next(self.ids) % 1000000:06d}"
        return bytes.fromhex(digits)

    def login(self, body: bytes) -> tuple[int, bytes]:
        if len(body) != 30:
            return STRUCTURE, bytes(16)
        client_id, auth, mode, stamp, version = struct.unpack(">8s16sBLB", body)
        expected = hashlib.md5(
            cstring(client_id) + bytes(7) + self.args.secret.encode() + f"{stamp:010d}".encode()
        ).digest()
        if cstring(client_id).decode() != self.args.client_id or auth != expected or mode > 2:
            return AUTH, bytes(16)
        if version > 0x30:
            return VERSION, bytes(16)
        return OK, auth

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        logged_in = False

        def send(command: int, sequence: int, body: bytes) -> None:
            writer.write(HEADER.pack(HEADER.size + len(body), command, sequence) + body)

        try:
            while True:
                length, command, sequence = HEADER.unpack(await reader.readexactly(HEADER.size))
                body = await reader.readexactly(length - HEADER.size)
                if command == LOGIN:
                    status, auth = self.login(body)
                    server = hashlib.md5(struct.pack(">L", status) + auth + self.args.secret.encode()).digest()
                    send(LOGIN | RESP, sequence, struct.pack(">L16sB", status, server, 0x30))
                    if status != OK:
                        await writer.drain()
                        return
                    logged_in = True
                    self.knobs.after_login(lambda source, text: self.mobile_originated(send, source, text))
                elif not logged_in:
                    return
                elif command == SUBMIT:
                    if await self.submit(body, sequence, send):
                        await writer.drain()
                        return
                elif command == ACTIVE_TEST:
                    send(ACTIVE_TEST | RESP, sequence, b"")
                elif command == EXIT:
                    send(EXIT | RESP, sequence, b"")
                    await writer.drain()
                    return
                elif command & RESP:
                    continue  # Deliver_Resp, Active_Test_Resp
                else:
                    send(command | RESP, sequence, struct.pack(">L", COMMAND))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def submit(self, body: bytes, sequence: int, send) -> bool:
        """Answer one Submit; True when the connection is to be dropped now."""
        line: dict = {"time": time.time()}
        msg_id = bytes(10)
        try:
            line.update(parse_submit(body))
            self.knobs.throttle(BUSY)
            status = OK
            msg_id = self.msg_id()
            line["msg_id"] = msg_id.hex()
        except Refused as refused:
            status = refused.code
            line["refused"] = str(refused)
        line["status"] = status
        drop = await self.knobs.answer(
            line, status == OK, lambda: send(SUBMIT | RESP, sequence, struct.pack(">10sL", msg_id, status))
        )
        if status == OK and line["need_report"]:
            self.knobs.spawn(self.report(send, msg_id, line["dest_term_ids"][0], line["src_term_id"]))
        return drop

    async def report(self, send, msg_id: bytes, destination: str, source: str) -> None:
        await asyncio.sleep(self.args.receipt_delay)
        undeliverable = self.knobs.undeliverable(destination)
        stat, err = ("UNDELIV", "001") if undeliverable else ("DELIVRD", "000")
        now = time.strftime("%y%m%d%H%M")
        text = b"id:" + msg_id + f" sub:001 dlvrd:{0 if undeliverable else 1:03d} Submit_date:{now}".encode()
        text += f" done_date:{now} Stat:{stat} Err:{err} Txt:".encode() + bytes(20)
        self.deliver(send, True, 0, destination, source, text)

    async def mobile_originated(self, send, source: str, text: str) -> None:
        self.deliver(send, False, 8, source, "12379", text.encode("utf-16-be"))

    def deliver(self, send, is_report: bool, msg_format: int, source: str, dest: str, content: bytes) -> None:
        body = struct.pack(
            ">10sBB14s21s21sB",
            self.msg_id(),
            int(is_report),
            msg_format,
            time.strftime("%Y%m%d%H%M%S").encode(),
            source.encode(),
            dest.encode(),
            len(content),
        )
        send(DELIVER, next(self.sequences), body + content + bytes(8))


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client-id", default="sb")
    parser.add_argument("--secret", default="secret")


if __name__ == "__main__":
    options = arguments(__doc__.splitlines()[0], _options)
    run(Gateway(options).serve, options.port)
