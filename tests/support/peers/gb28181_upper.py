"""An upper GB/T 28181 platform for the tests, run as its own process: it takes our cascade registration and
queries our catalog.

    python -m tests.support.peers.gb28181_upper --id 34010000002000000001 --port P --lower-id ID
        --password P --log events.jsonl

It challenges REGISTER with digest (realm: the first ten digits of its id), checks the answer against `--password`,
refuses a wrong one with 403, answers keepalives, and once the lower platform is registered sends it a Catalog
query (again for every `query` line on stdin), collecting the Response parts until SumNum items arrived. Every
event is a JSON line in `--log` (registered, refused, keepalive, catalog with the items' ids and names). Written
from the standard like the device simulator, whose message helpers it shares. It prints READY and its port."""

import argparse
import asyncio
import json
import re
import secrets
import sys
import time

from tests.support.peers.gb28181_device import Sip, md5


class Upper(asyncio.DatagramProtocol):
    def __init__(self, args: argparse.Namespace, log: "Log") -> None:
        self.args, self.log = args, log
        self.realm = args.id[:10]
        self.nonce = secrets.token_hex(8)
        self.lower: tuple[str, int] | None = None
        self.items: list[dict[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        start, headers, body = Sip.parse(data)
        if start.startswith("SIP/2.0"):
            return
        method = start.split()[0]
        if method == "REGISTER":
            self.register(start, headers, addr)
        elif method == "MESSAGE":
            self.reply(headers, "200 OK", addr)
            self.message(body)

    def reply(
        self, headers: dict[str, str], status: str, addr: tuple[str, int], extra: list[tuple[str, str]] | None = None
    ) -> None:
        to = headers["to"] if "tag=" in headers["to"] else headers["to"] + ";tag=" + secrets.token_hex(4)
        copied = [("Via", headers["via"]), ("From", headers["from"]), ("To", to), ("Call-ID", headers["call-id"]),
                  ("CSeq", headers["cseq"])]  # fmt: skip
        assert self.transport
        self.transport.sendto(Sip.write(f"SIP/2.0 {status}", copied + (extra or [])), addr)

    def register(self, start: str, headers: dict[str, str], addr: tuple[str, int]) -> None:
        authorization = headers.get("authorization")
        if not authorization:
            challenge = f'Digest realm="{self.realm}", nonce="{self.nonce}", algorithm=MD5'
            self.reply(headers, "401 Unauthorized", addr, [("WWW-Authenticate", challenge)])
            return
        fields = dict(re.findall(r'(\w+)="?([^",]+)"?', authorization))
        ha1 = md5(f"{self.args.lower_id}:{self.realm}:{self.args.password}")
        ha2 = md5(f"REGISTER:{fields.get('uri', '')}")
        if fields.get("qop") == "auth":
            wanted = md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        else:
            wanted = md5(f"{ha1}:{fields.get('nonce', '')}:{ha2}")
        user = re.search(r"sip:(\d+)@", headers["from"]).group(1)
        if user != self.args.lower_id or fields.get("username") != user or fields.get("response") != wanted:
            self.reply(headers, "403 Forbidden", addr)
            self.log.write("refused", user=user)
            return
        self.reply(headers, "200 OK", addr, [("Expires", headers.get("expires", "3600"))])
        expires = int(headers.get("expires", "3600"))
        self.log.write("registered" if expires else "unregistered", user=user, expires=expires)
        if expires and self.lower is None:
            self.lower = addr
            asyncio.get_running_loop().call_later(0.2, self.query_catalog)

    def query_catalog(self) -> None:
        assert self.transport and self.lower
        lower = self.args.lower_id
        body = (
            f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>1</SN>\r\n'
            f"<DeviceID>{lower}</DeviceID>\r\n</Query>\r\n"
        ).encode()
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.args.port};rport;branch=z9hG4bK{secrets.token_hex(6)}"),
            ("From", f"<sip:{self.args.id}@{self.realm}>;tag={secrets.token_hex(4)}"),
            ("To", f"<sip:{lower}@{lower[:10]}>"), ("Call-ID", secrets.token_hex(8)), ("CSeq", "1 MESSAGE"),
            ("Max-Forwards", "70"), ("Content-Type", "Application/MANSCDP+xml"),
        ]  # fmt: skip
        self.transport.sendto(Sip.write(f"MESSAGE sip:{lower}@{lower[:10]} SIP/2.0", headers, body), self.lower)
        self.log.write("queried")

    def message(self, body: bytes) -> None:
        declared = re.search(rb'encoding="([^"]+)"', body)
        text = body.decode("gb18030" if declared and declared.group(1).lower().startswith(b"gb") else "utf-8")
        command = re.search(r"<CmdType>(\w+)</CmdType>", text).group(1)
        if command == "Keepalive":
            self.log.write("keepalive")
            return
        if command != "Catalog":
            return
        total = int(re.search(r"<SumNum>(\d+)</SumNum>", text).group(1))
        for item in re.findall(r"<Item>(.*?)</Item>", text, re.S):
            fields = dict(re.findall(r"<(\w+)>([^<]*)</\1>", item))
            self.items.append({k: fields.get(k, "") for k in ("DeviceID", "Name", "ParentID", "Status")})
        if len(self.items) >= total:
            self.log.write("catalog", total=total, items=self.items)
            self.items = []


class Log:
    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, event: str, **data: object) -> None:
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"event": event, "at": time.time(), **data}, ensure_ascii=False) + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lower-id", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    upper = Upper(args, Log(args.log))
    transport, _ = await loop.create_datagram_endpoint(lambda: upper, local_addr=("127.0.0.1", args.port))
    args.port = transport.get_extra_info("sockname")[1]
    print(f"READY {args.port}", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "query" and upper.lower is not None:
            upper.query_catalog()


if __name__ == "__main__":
    asyncio.run(main())
