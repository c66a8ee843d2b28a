"""A test SGIP 1.2 gateway (China Unicom SMG), written from the spec's field tables, run as its own process.

    python -m tests.support.peers.sgip_gateway --port P --record submits.jsonl --sp-port Q
        [--login L --password W --sp-login L2 --sp-password W2 --node-id N] [--receipt-delay 0.2]
        [--throttle-first N] [--throttle-after M] [--undeliverable-prefix P] [--drop-after N]
        [--response-delay S] [--mo SOURCE=TEXT]

It shares no code with the client (`broadcast.sgip`). Every Bind is checked (LoginType 1, login name, password;
refused with Result 4 or 1) and every Submit field (SPNumber, ChargeNumber, UserCount and UserNumber, CorpId,
FeeType, AgentFlag, MorelatetoMTFlag, Priority, the times, ReportFlag, TP_udhi against the content's UDH,
MessageCoding, MessageType, MessageLength; refused with Result 5, 6 or 8). Each Submit is recorded as one JSON
line with its fields and its 12-byte Sequence Number decoded and what was answered. Reports go the SGIP way:
`--receipt-delay` seconds after the Submit the gateway opens its OWN connection to the SP's listener on
`--sp-port`, binds with LoginType 2, sends the Report, and unbinds; `--mo` sends a Deliver the same way after the
first bind. `--throttle-first N` answers Result 11 (node busy) to N submits after the first `--throttle-after`
M; `--drop-after N` closes the SP's connection after answering the Nth accepted submit (once);
`--response-delay` holds each Submit_Resp. It prints `READY` once listening.
"""

import argparse
import asyncio
import contextlib
import itertools
import re
import struct
import time

from tests.support.peers.carrier import Knobs, Refused, arguments, run, udh_concatenation

BIND, UNBIND, SUBMIT, DELIVER, REPORT = 0x1, 0x2, 0x3, 0x4, 0x5
RESP = 0x80000000
HEADER = struct.Struct(">LL12s")
OK, BAD_LOGIN, BAD_LOGIN_TYPE, BAD_PARAMETER, BAD_NUMBER, BAD_LENGTH, NODE_BUSY = 0, 1, 4, 5, 6, 8, 11
UNKNOWN_USER = 29
NUMBER = re.compile(rb"[0-9]{1,21}")


def cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def check_time(raw: bytes, name: str) -> str:
    value = cstring(raw)
    if value and not re.fullmatch(r"[0-9]{13}[0-9]{2}[+-]", value):
        raise Refused(BAD_PARAMETER, f"{name} {value!r}")
    return value


def parse_submit(body: bytes) -> dict:
    """The Submit of SGIP 1.2 section 4.2.3.3, every field checked."""
    if len(body) < 21 + 21 + 1:
        raise Refused(BAD_PARAMETER, "Submit too short")
    sp_number, charge, count = struct.unpack_from(">21s21sB", body)
    if not NUMBER.fullmatch(sp_number.split(b"\0", 1)[0]):
        raise Refused(BAD_PARAMETER, f"SPNumber {sp_number!r}")
    if not 1 <= count <= 100:
        raise Refused(BAD_PARAMETER, f"UserCount {count}")
    position = 43
    users = [body[position + 21 * i : position + 21 * (i + 1)].split(b"\0", 1)[0] for i in range(count)]
    position += 21 * count
    for user in users:
        if not NUMBER.fullmatch(user) or not user.startswith(b"86"):
            raise Refused(BAD_NUMBER, f"UserNumber {user!r}")  # the spec: 86 and the mobile number
    rest = struct.Struct(">5s10sB6s6sBBB16s16sBBBBBL")
    if len(body) < position + rest.size:
        raise Refused(BAD_PARAMETER, "Submit truncated")
    (corp_id, service_type, fee_type, fee_value, given_value, agent_flag, morelate, priority, expire, schedule,
     report_flag, tp_pid, tp_udhi, coding, message_type, length) = rest.unpack_from(body, position)  # fmt: skip
    position += rest.size
    if not re.fullmatch(rb"[0-9]{5}", corp_id):
        raise Refused(BAD_PARAMETER, f"CorpId {corp_id!r}")
    if fee_type > 4 or agent_flag > 1 or morelate > 3 or priority > 9 or report_flag > 3:
        raise Refused(BAD_PARAMETER, "FeeType/AgentFlag/MorelatetoMTFlag/Priority/ReportFlag out of range")
    if tp_udhi > 1 or coding not in (0, 3, 4, 8, 15) or message_type != 0:
        raise Refused(BAD_PARAMETER, "TP_udhi/MessageCoding/MessageType out of range")
    if length > 160 or len(body) != position + length + 8:
        raise Refused(BAD_LENGTH, f"MessageLength {length} with {len(body) - position - 8} octets after it")
    content = body[position : position + length]
    udh = udh_concatenation(content) if tp_udhi else None
    if tp_udhi and udh is None:
        raise Refused(BAD_PARAMETER, "TP_udhi=1 without a concatenation UDH")
    if coding == 8 and (length - (udh["header_length"] if udh else 0)) % 2:
        raise Refused(BAD_LENGTH, "UCS-2 content of odd length")
    return {
        "sp_number": cstring(sp_number),
        "charge_number": cstring(charge),
        "user_numbers": [u.decode() for u in users],
        "corp_id": cstring(corp_id),
        "service_type": cstring(service_type),
        "fee_type": fee_type,
        "fee_value": cstring(fee_value),
        "given_value": cstring(given_value),
        "agent_flag": agent_flag,
        "morelate_to_mt_flag": morelate,
        "priority": priority,
        "expire_time": check_time(expire, "ExpireTime"),
        "schedule_time": check_time(schedule, "ScheduleTime"),
        "report_flag": report_flag,
        "tp_pid": tp_pid,
        "tp_udhi": tp_udhi,
        "message_coding": coding,
        "message_type": message_type,
        "message_length": length,
        "message_content": content.hex(),
        "udh": {k: udh[k] for k in ("ref", "total", "part")} if udh else None,
    }


def resp(result: int) -> bytes:
    return bytes((result,)) + bytes(8)


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.knobs = Knobs(args)
        self.counter = itertools.count(1)

    def sequence(self) -> bytes:
        return struct.pack(">LLL", self.args.node_id, int(time.strftime("%m%d%H%M%S")), next(self.counter))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bound = False

        def send(command: int, sequence: bytes, body: bytes) -> None:
            writer.write(HEADER.pack(HEADER.size + len(body), command, sequence) + body)

        try:
            while True:
                length, command, sequence = HEADER.unpack(await reader.readexactly(HEADER.size))
                body = await reader.readexactly(length - HEADER.size)
                if command == BIND:
                    login_type, name, password = struct.unpack_from(">B16s16s", body)
                    result = OK
                    if login_type != 1:
                        result = BAD_LOGIN_TYPE
                    elif (cstring(name), cstring(password)) != (self.args.login, self.args.password):
                        result = BAD_LOGIN
                    send(BIND | RESP, sequence, resp(result))
                    await writer.drain()
                    if result != OK:
                        return
                    bound = True
                    self.knobs.after_login(self.mobile_originated)
                elif not bound:
                    return
                elif command == SUBMIT:
                    if await self.submit(body, sequence, send):
                        await writer.drain()
                        return
                elif command == UNBIND:
                    send(UNBIND | RESP, sequence, b"")
                    await writer.drain()
                    return
                elif not command & RESP:
                    send(command | RESP, sequence, resp(BAD_PARAMETER))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def submit(self, body: bytes, sequence: bytes, send) -> bool:
        """Answer one Submit; True when the connection is to be dropped now."""
        node, stamp, counter = struct.unpack(">LLL", sequence)
        line: dict = {"time": time.time(), "sequence": sequence.hex(), "sequence_fields": [node, stamp, counter]}
        try:
            line.update(parse_submit(body))
            if not 101000000 <= stamp <= 1231235959:
                raise Refused(BAD_PARAMETER, f"Sequence Number time {stamp}")
            self.knobs.throttle(NODE_BUSY)
            result = OK
        except Refused as refused:
            result = refused.code
            line["refused"] = str(refused)
        line["result"] = result
        drop = await self.knobs.answer(line, result == OK, lambda: send(SUBMIT | RESP, sequence, resp(result)))
        if result == OK and line["report_flag"] in (0, 1):
            self.knobs.spawn(self.report(sequence, line["user_numbers"][0]))
        return drop

    async def report(self, submit_sequence: bytes, user: str) -> None:
        await asyncio.sleep(self.args.receipt_delay)
        undeliverable = self.knobs.undeliverable(user)
        state, error = (2, UNKNOWN_USER) if undeliverable else (0, 0)
        body = struct.pack(">12sB21sBB", submit_sequence, 0, user.encode(), state, error) + bytes(8)
        await self.to_sp(REPORT, body)

    async def mobile_originated(self, source: str, text: str) -> None:
        content = text.encode("utf-16-be")
        body = struct.pack(">21s21sBBBL", source.encode(), b"12379", 0, 0, 8, len(content)) + content + bytes(8)
        await self.to_sp(DELIVER, body)

    async def to_sp(self, command: int, body: bytes) -> None:
        """The SMG's own connection to the SP: Bind (LoginType 2), the one request, Unbind; each answer checked."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.args.sp_port)
            try:
                bind = bytes((2,)) + self.args.sp_login.encode().ljust(16, b"\0")
                bind += self.args.sp_password.encode().ljust(16, b"\0") + bytes(8)
                for request, payload in ((BIND, bind), (command, body), (UNBIND, b"")):
                    sequence = self.sequence()
                    writer.write(HEADER.pack(HEADER.size + len(payload), request, sequence) + payload)
                    length, answer, echoed = HEADER.unpack(await reader.readexactly(HEADER.size))
                    answer_body = await reader.readexactly(length - HEADER.size)
                    if answer != request | RESP or echoed != sequence:
                        raise ConnectionError(f"bad answer 0x{answer:08X} to 0x{request:08X}")
                    if request != UNBIND and answer_body[:1] != b"\0":
                        break  # refused: the SP said why in Result
            finally:
                writer.close()


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sp-port", type=int, required=True)
    parser.add_argument("--login", default="sb")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--sp-login", default="smg")
    parser.add_argument("--sp-password", default="smgsecret")
    parser.add_argument("--node-id", type=int, default=2000000001)


if __name__ == "__main__":
    options = arguments(__doc__.splitlines()[0], _options)
    run(Gateway(options).serve, options.port)
