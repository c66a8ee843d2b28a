"""A GB/T 28181-2016 device (an NVR with channels) for the tests, run as its own process:

    python -m tests.support.peers.gb28181_device --id 34020000001320000001 --password P --platform-id ID
        --platform HOST:PORT [--transport udp|tcp] [--keepalive S] [--channels N] [--log events.jsonl]

Written from the standard, apart from `conference.gb28181`, so a misreading on one side shows up on the other:
it registers with digest authentication (section 9.1.2: REGISTER, 401 with a challenge, REGISTER with
Authorization), sends a MANSCDP Keepalive every `--keepalive` seconds (9.6), answers Catalog (in parts of two items,
GB2312 as devices in the field write it, Chinese names), DeviceInfo and DeviceStatus queries (9.5), takes
DeviceControl and checks each PTZCmd's checksum (A.3), and answers a live INVITE (9.2) with its SDP and a PS stream
from `ps_stream.py` (GStreamer: test pattern, x264, mpegpsmux, RTP PT 96 with the SSRC of the offer's `y=`), or
with `--clip` a pre-encoded PS clip looped by `ps_clip.py` (H.265, or many 1080p streams, RTP over TCP), until BYE.
Over TCP (RFC 4571, with `--clip`) it takes either role the offer leaves it: `a=setup:passive` (the platform
listens), it connects; `a=setup:active` (the platform connects), it answers `a=setup:passive` with a port of its own
and listens there from a moment after its 200 OK, taking one connection.
Every event is a JSON line in `--log`: registered, refused, keepalive, query, ptz, invite, answered, bye.
Lines on stdin steer it: `silence` stops keepalives (the platform should mark it offline), `unregister` sends
REGISTER with Expires 0, `hangup` ends its live streams with a BYE of its own. It prints READY once its socket is
open."""

import argparse
import asyncio
import hashlib
import json
import random
import re
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

CHANNEL_NAMES = ["东门广场", "滨江大道与解放路口", "水库大坝", "应急仓库", "化工园区北门"]
LISTEN_LATE_SECONDS = 1.0  # RTP over TCP with the platform connecting: how long after the 200 OK we start listening


class Sip:
    """Just enough SIP (RFC 3261) for a device: messages as (start line, headers dict, body)."""

    @staticmethod
    def parse(data: bytes) -> tuple[str, dict[str, str], bytes]:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers: dict[str, str] = {}
        short = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length", "c": "content-type"}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = short.get(name.strip().lower(), name.strip().lower())
            headers.setdefault(name, value.strip())
        return lines[0], headers, body[: int(headers.get("content-length", len(body)))]

    @staticmethod
    def write(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
        lines = [start, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def ptz_checksum_ok(command: str) -> bool:
    raw = bytes.fromhex(command)
    return len(raw) == 8 and raw[0] == 0xA5 and raw[1] == 0x0F and sum(raw[:7]) % 256 == raw[7]


def elements(fields: list[tuple[str, str]]) -> str:
    return "".join(f"<{name}>{value}</{name}>\r\n" for name, value in fields)


def response(fields: list[tuple[str, str]], more: str = "") -> str:
    head = '<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n'
    return head + elements(fields) + (more + "\r\n" if more else "") + "</Response>\r\n"


class Device:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device_id, self.platform_id = args.id, args.platform_id
        host, _, port = args.platform.rpartition(":")
        self.platform = (host, int(port))
        self.log = Path(args.log).open("a", encoding="utf-8") if args.log else None
        self.transport = args.transport.upper()
        self.local = ("127.0.0.1", 0)
        self.pending: dict[str, asyncio.Future[tuple[str, dict[str, str], bytes]]] = {}
        self.calls: dict[str, asyncio.subprocess.Process] = {}
        self.answers: dict[str, tuple[list[tuple[str, str]], bytes]] = {}  # by Call-ID: the 200 to send again
        self.invites: dict[str, dict[str, str]] = {}  # by Call-ID: the INVITE's headers (its dialog, for our BYE)
        self.sn = random.randint(1, 9999)
        self.cseq = 0
        self.tag = secrets.token_hex(4)
        self.call_id = secrets.token_hex(8)
        self.keepalives = True
        self.channels = [f"{self.device_id[:10]}131{i:07d}" for i in range(1, args.channels + 1)]
        self.udp: asyncio.DatagramTransport | None = None
        self.writer: asyncio.StreamWriter | None = None

    def record(self, event: str, **data: object) -> None:
        line = json.dumps({"event": event, "at": time.time(), **data}, ensure_ascii=False)
        if self.log:
            self.log.write(line + "\n")
            self.log.flush()

    # transport ------------------------------------------------------------------------------------------------------

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        if self.transport == "UDP":
            device = self

            class Protocol(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    device.received(data)

            self.udp, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
            self.local = self.udp.get_extra_info("sockname")[:2]
        else:
            reader, self.writer = await asyncio.open_connection(*self.platform)
            self.local = self.writer.get_extra_info("sockname")[:2]
            asyncio.ensure_future(self.read_tcp(reader))

    async def read_tcp(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while data := await reader.read(65536):
            buffer += data
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                match = re.search(rb"(?im)^(content-length|l)\s*:\s*(\d+)", buffer[:end])
                total = end + 4 + (int(match.group(2)) if match else 0)
                if len(buffer) < total:
                    break
                self.received(buffer[:total])
                buffer = buffer[total:]

    def send(self, data: bytes) -> None:
        if self.udp:
            self.udp.sendto(data, self.platform)
        else:
            assert self.writer
            self.writer.write(data)

    def via(self) -> str:
        branch = "z9hG4bK" + secrets.token_hex(6)
        return f"SIP/2.0/{self.transport} {self.local[0]}:{self.local[1]};rport;branch={branch}"

    async def request(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b""):  # noqa: ANN201
        via = self.via()
        branch = via.rsplit("branch=", 1)[1]
        future = asyncio.get_running_loop().create_future()
        self.pending[branch] = future
        data = Sip.write(f"{method} {uri} SIP/2.0", [("Via", via), *headers], body)
        for wait in (0.5, 1, 2, 4):
            self.send(data)
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait)
            except TimeoutError:
                if not self.udp:
                    continue
        raise TimeoutError(f"{method}: no answer")

    def received(self, data: bytes) -> None:
        start, headers, body = Sip.parse(data)
        if start.startswith("SIP/2.0"):
            branch = re.search(r"branch=([^;\s]+)", headers["via"]).group(1)
            if int(start.split()[1]) >= 200 and (future := self.pending.pop(branch, None)) and not future.done():
                future.set_result((start, headers, body))
            return
        asyncio.ensure_future(self.answer(start, headers, body, data))

    def reply(
        self, headers: dict[str, str], status: str, extra: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> None:
        to = headers["to"] if "tag=" in headers["to"] else headers["to"] + ";tag=" + self.tag
        copied = [("Via", headers["via"]), ("From", headers["from"]), ("To", to), ("Call-ID", headers["call-id"]),
                  ("CSeq", headers["cseq"])]  # fmt: skip
        self.send(Sip.write(f"SIP/2.0 {status}", copied + (extra or []), body))

    # device behaviour -----------------------------------------------------------------------------------------------

    def common(self, to_user: str, method: str, call_id: str | None = None) -> list[tuple[str, str]]:
        self.cseq += 1
        return [
            ("From", f"<sip:{self.device_id}@{self.device_id[:10]}>;tag={self.tag}"),
            ("To", f"<sip:{to_user}@{to_user[:10]}>"),
            ("Call-ID", call_id or secrets.token_hex(8)),
            ("CSeq", f"{self.cseq} {method}"),
            ("Max-Forwards", "70"),
            ("Contact", f"<sip:{self.device_id}@{self.local[0]}:{self.local[1]}>"),
        ]

    async def register(self, expires: int) -> bool:
        uri = f"sip:{self.platform_id}@{self.platform_id[:10]}"
        headers = self.common(self.device_id, "REGISTER", self.call_id)
        headers[1] = ("To", f"<sip:{self.device_id}@{self.device_id[:10]}>")
        start, answer, _ = await self.request("REGISTER", uri, [*headers, ("Expires", str(expires))])
        if start.split()[1] == "401":
            challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', answer["www-authenticate"]))
            ha1 = md5(f"{self.device_id}:{challenge['realm']}:{self.args.password}")
            ha2 = md5(f"REGISTER:{uri}")
            fields = {"username": self.device_id, "realm": challenge["realm"], "nonce": challenge["nonce"], "uri": uri}
            if "auth" in challenge.get("qop", ""):
                cnonce = secrets.token_hex(4)
                fields["response"] = md5(f"{ha1}:{challenge['nonce']}:00000001:{cnonce}:auth:{ha2}")
                extra = f', qop=auth, nc=00000001, cnonce="{cnonce}"'
            else:
                fields["response"] = md5(f"{ha1}:{challenge['nonce']}:{ha2}")
                extra = ""
            authorization = "Digest " + ", ".join(f'{k}="{v}"' for k, v in fields.items()) + extra + ", algorithm=MD5"
            headers = self.common(self.device_id, "REGISTER", self.call_id)
            headers[1] = ("To", f"<sip:{self.device_id}@{self.device_id[:10]}>")
            start, answer, _ = await self.request(
                "REGISTER", uri, [*headers, ("Expires", str(expires)), ("Authorization", authorization)]
            )
        status = int(start.split()[1])
        self.record(
            "registered" if status == 200 else "refused", status=status, expires=expires, date=answer.get("date", "")
        )
        return status == 200

    async def message(self, xml: str) -> int:
        body = xml.encode("gb2312")
        headers = self.common(self.platform_id, "MESSAGE")
        start, _, _ = await self.request(
            "MESSAGE", f"sip:{self.platform_id}@{self.platform_id[:10]}",
            [*headers, ("Content-Type", "Application/MANSCDP+xml")], body,
        )  # fmt: skip
        return int(start.split()[1])

    async def keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.args.keepalive)
            if self.keepalives:
                self.sn += 1
                status = await self.message(
                    f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
                    f"<SN>{self.sn}</SN>\r\n<DeviceID>{self.device_id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
                )
                self.record("keepalive", status=status)

    async def answer(self, start: str, headers: dict[str, str], body: bytes, raw: bytes) -> None:
        method = start.split()[0]
        if method == "MESSAGE":
            self.reply(headers, "200 OK")
            await self.on_message(body)
        elif method == "INVITE":
            await self.on_invite(start, headers, body)
        elif method == "BYE":
            self.reply(headers, "200 OK")
            process = self.calls.pop(headers["call-id"], None)
            self.invites.pop(headers["call-id"], None)
            if process:
                process.terminate()
            self.record("bye", call_id=headers["call-id"])
        elif method == "ACK":
            self.record("ack", call_id=headers["call-id"])
        else:
            self.reply(headers, "405 Method Not Allowed")

    async def on_message(self, body: bytes) -> None:
        declared = re.search(rb'encoding="([^"]+)"', body)
        text = body.decode("gb18030" if declared and declared.group(1).lower().startswith(b"gb") else "utf-8")
        command = re.search(r"<CmdType>(\w+)</CmdType>", text).group(1)
        sn = re.search(r"<SN>(\d+)</SN>", text).group(1)
        if command == "DeviceControl":
            ptz = re.search(r"<PTZCmd>([0-9A-Fa-f]+)</PTZCmd>", text)
            target = re.search(r"<DeviceID>(\d+)</DeviceID>", text).group(1)
            code = ptz.group(1).upper() if ptz else ""
            self.record("ptz", channel=target, command=code, checksum_ok=bool(code) and ptz_checksum_ok(code))
            return
        self.record("query", command=command, sn=sn)
        fields: list[tuple[str, str]] = [("CmdType", command), ("SN", sn), ("DeviceID", self.device_id)]
        if command == "Catalog":
            for first in range(0, len(self.channels), 2):
                part = self.channels[first : first + 2]
                items = "".join(self.item(first + i, channel) for i, channel in enumerate(part))
                listed = (
                    f'<SumNum>{len(self.channels)}</SumNum>\r\n<DeviceList Num="{len(part)}">\r\n{items}</DeviceList>'
                )
                await self.message(response(fields, listed))
        elif command == "DeviceInfo":
            fields += [("DeviceName", "模拟硬盘录像机"), ("Result", "OK"), ("Manufacturer", "测试厂商"),
                       ("Model", "GB-SIM"), ("Firmware", "V1.0"), ("Channel", str(len(self.channels)))]  # fmt: skip
            await self.message(response(fields))
        elif command == "DeviceStatus":
            fields += [("Result", "OK"), ("Online", "ONLINE"), ("Status", "OK"), ("Encode", "ON"), ("Record", "OFF"),
                       ("DeviceTime", time.strftime("%Y-%m-%dT%H:%M:%S"))]  # fmt: skip
            await self.message(response(fields))

    def item(self, index: int, channel: str) -> str:
        fields = [
            ("DeviceID", channel), ("Name", CHANNEL_NAMES[index % len(CHANNEL_NAMES)]), ("Manufacturer", "测试厂商"),
            ("Model", "GB-SIM"), ("Owner", "Owner"), ("CivilCode", self.device_id[:6]),
            ("Address", f"测试地址{index + 1}号"), ("Parental", "0"), ("ParentID", self.device_id),
            ("SafetyWay", "0"), ("RegisterWay", "1"), ("Secrecy", "0"), ("Status", "ON"),
        ]  # fmt: skip
        ptz_type = "1" if index == 0 else "3"  # the first channel is a dome (球机), the others fixed
        return "<Item>\r\n" + elements(fields) + f"<Info>\r\n<PTZType>{ptz_type}</PTZType>\r\n</Info>\r\n</Item>\r\n"

    async def on_invite(self, start: str, headers: dict[str, str], body: bytes) -> None:
        offer = body.decode()
        channel = start.split()[1].split(":", 1)[1].split("@", 1)[0]
        host = re.search(r"(?m)^c=IN IP4 (\S+)", offer).group(1)
        media = re.search(r"(?m)^m=video (\d+) (\S+) ([\d ]+)", offer)
        ssrc = re.search(r"(?m)^y=(\d{10})", offer)
        if (answered := self.answers.get(headers["call-id"])) is not None:  # a retransmitted INVITE: same answer
            self.reply(headers, "200 OK", *answered)
            return
        self.record("invite", channel=channel, offer=offer, subject=headers.get("subject", ""))
        if channel not in self.channels or not media or "96" not in media.group(3).split() or not ssrc:
            self.reply(headers, "488 Not Acceptable Here")
            return
        tcp = media.group(2).upper().startswith("TCP")
        setup = re.search(r"(?m)^a=setup:(\w+)", offer)
        if tcp and (not self.args.clip or not setup or setup.group(1) not in ("active", "passive")):
            self.reply(headers, "488 Not Acceptable Here")
            return
        # RFC 4145: the platform active (it connects), we listen on the port of our answer, and the other way round.
        listener = socket.socket() if tcp and setup.group(1) == "active" else None
        if listener is not None:
            listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1] if listener is not None else 15999
        role = f"a=setup:{'passive' if listener is not None else 'active'}\r\na=connection:new\r\n" if tcp else ""
        answer = (
            f"v=0\r\no={channel} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=video {port} {media.group(2)} 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n{role}y={ssrc.group(1)}\r\n"
        )
        contact = [("Contact", f"<sip:{channel}@{self.local[0]}:{self.local[1]}>"), ("Content-Type", "APPLICATION/SDP")]
        self.answers[headers["call-id"]] = (contact, answer.encode())
        self.reply(headers, "200 OK", contact, answer.encode())
        self.record("answered", channel=channel, answer=answer)
        self.invites[headers["call-id"]] = headers
        if self.args.clip:  # a pre-encoded clip, looped (ps_clip.py): many streams, H.265, RTP over TCP
            mode, target = ("tcp" if tcp else "udp"), f"{host}:{media.group(1)}"
            if listener is not None:  # listening a moment after the 200 OK, as devices may: the platform retries
                await asyncio.sleep(LISTEN_LATE_SECONDS)
                mode, target = "accept", str(listener.fileno())
            clip = [sys.executable, "-m", "tests.support.peers.ps_clip", self.args.clip]
            streamer = [*clip, ssrc.group(1), mode, target]
        else:
            streamer = [self.args.gst_python, str(Path(__file__).with_name("ps_stream.py")), host, media.group(1),
                        ssrc.group(1)]  # fmt: skip
        self.calls[headers["call-id"]] = await asyncio.create_subprocess_exec(
            *streamer, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            pass_fds=() if listener is None else (listener.fileno(),),
        )  # fmt: skip
        if listener is not None:
            listener.close()  # the streamer has it now: BYE (ending the streamer) closes it

    async def steer(self) -> None:
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "silence":
                self.keepalives = False
                self.record("silenced")
            elif line == "unregister":
                await self.register(0)
            elif line == "hangup":  # the device ends its live streams itself (it reboots, its encoder fails)
                for call_id in list(self.calls):
                    await self.hang_up(call_id)

    async def hang_up(self, call_id: str) -> None:
        """BYE in the platform's INVITE dialog: From is the INVITE's To with our tag, To the INVITE's From."""
        process, invite = self.calls.pop(call_id), self.invites.pop(call_id)
        process.terminate()
        self.cseq += 1
        headers = [("From", f"{invite['to']};tag={self.tag}"), ("To", invite["from"]), ("Call-ID", call_id),
                   ("CSeq", f"{self.cseq} BYE"), ("Max-Forwards", "70")]  # fmt: skip
        uri = f"sip:{self.platform_id}@{self.platform[0]}:{self.platform[1]}"
        start, _, _ = await self.request("BYE", uri, headers)
        self.record("hung_up", call_id=call_id, status=int(start.split()[1]))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--platform-id", required=True)
    parser.add_argument("--platform", required=True, help="HOST:PORT of the platform's SIP server")
    parser.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    parser.add_argument("--keepalive", type=float, default=1.0)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--log", default="")
    parser.add_argument("--gst-python", default="/usr/bin/python3", help="a Python with GStreamer's gi (Debian's)")
    parser.add_argument("--clip", default="", help="stream this PS clip (ps_clip.py) instead of a live test pattern")
    args = parser.parse_args()
    device = Device(args)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await device.open()
    print("READY", flush=True)
    if not await device.register(3600):
        return
    asyncio.ensure_future(device.keepalive_loop())
    steering = asyncio.ensure_future(device.steer())
    await asyncio.wait([steering, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED)
    for process in device.calls.values():  # the streams stop with the device
        process.terminate()
        await process.wait()


if __name__ == "__main__":
    asyncio.run(main())
