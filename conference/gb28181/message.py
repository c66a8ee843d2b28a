"""SIP messages (RFC 3261 section 7): parsed from and written to bytes, with compact header names expanded.

A message is its start line, its headers in order (repeats kept) and its body as bytes: MANSCDP bodies come in
GB2312 and are decoded by `manscdp`, never here."""

import secrets
from dataclasses import dataclass, field

COMPACT = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
}  # fmt: skip
_CANONICAL = {name.lower(): name for name in COMPACT.values()} | {
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
}
MAX_MESSAGE = 65536


class ParseError(ValueError):
    """Bytes that are not a SIP message we can answer."""


@dataclass
class Message:
    start: str  # "METHOD uri SIP/2.0" or "SIP/2.0 code reason"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        """The request's method, or for a response the method of its CSeq."""
        return self.start.split(" ", 1)[0] if self.is_request else self.cseq[1]

    @property
    def uri(self) -> str:
        return self.start.split(" ")[1]

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1])

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = self.header("CSeq").split()
        return int(number), method

    @property
    def branch(self) -> str:
        return params(self.header("Via")).get("branch", "")

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    def get(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ParseError(f"no {name} header")
        return value

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def set(self, name: str, value: str) -> None:
        wanted = name.lower()
        kept = [(k, v) for k, v in self.headers if k.lower() != wanted]
        self.headers = kept + [(name, value)]

    def encode(self) -> bytes:
        lines = [self.start] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse(data: bytes) -> Message:
    """One whole message (a UDP datagram, or what `Framer` cut from a TCP stream)."""
    if len(data) > MAX_MESSAGE:
        raise ParseError("message too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ParseError("no blank line after the headers")
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError as exc:
        raise ParseError("headers are not UTF-8") from exc
    start = lines[0].strip()
    parts = start.split(" ")
    if len(parts) < 3 or not (parts[0] == "SIP/2.0" or parts[2] == "SIP/2.0"):
        raise ParseError(f"not a SIP start line: {start[:60]!r}")
    message = Message(start)
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:  # folded continuation
            name, value = message.headers[-1]
            message.headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ParseError(f"header line without a colon: {line[:60]!r}")
        name = name.strip()
        name = COMPACT.get(name, _CANONICAL.get(name.lower(), name))
        message.headers.append((name, value.strip()))
    length = message.get("Content-Length")
    message.body = body[: int(length)] if length is not None and length.isdigit() else body
    for required in ("Via", "From", "To", "Call-ID", "CSeq"):
        message.header(required)
    return message


def params(value: str) -> dict[str, str]:
    """The `;name=value` parameters of a header value (Via, To, Contact), names lower-cased."""
    found: dict[str, str] = {}
    for part in value.split(">")[-1].split(";")[1:]:
        name, _, val = part.partition("=")
        found[name.strip().lower()] = val.strip().strip('"')
    return found


def user_of(value: str) -> str:
    """The user part of a From/To/Contact/Request-URI value: `<sip:34020000001320000001@3402000000>` -> the id."""
    uri = value.split("<", 1)[1].split(">", 1)[0] if "<" in value else value.split(";", 1)[0]
    return uri.split(":", 1)[-1].split("@", 1)[0]


def token(size: int = 10) -> str:
    return secrets.token_hex(size)


def new_branch() -> str:
    return "z9hG4bK" + token(8)


def response(request: Message, status: int, reason: str, *, to_tag: str | None = None,
             headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Message:  # fmt: skip
    """The answer to `request`: its Via, From, Call-ID and CSeq, its To with our tag (RFC 3261 8.2.6)."""
    to = request.header("To")
    if "tag=" not in to and status > 100:
        to += f";tag={to_tag or token(6)}"
    copied = [(k, v) for k, v in request.headers if k in ("Via", "From", "Call-ID", "CSeq")]
    copied.insert(2, ("To", to))
    return Message(f"SIP/2.0 {status} {reason}", copied + (headers or []), body)


class Framer:
    """Cuts a TCP byte stream into messages by Content-Length (RFC 3261 18.3); keepalive CRLFs are skipped."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        found: list[bytes] = []
        while True:
            self.buffer = self.buffer.lstrip(b"\r\n")
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_MESSAGE:
                    raise ParseError("headers too long")
                return found
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() in (b"content-length", b"l"):
                    length = int(value.strip() or b"0")
            total = end + 4 + length
            if total > MAX_MESSAGE:
                raise ParseError("message too large")
            if len(self.buffer) < total:
                return found
            found.append(self.buffer[:total])
            self.buffer = self.buffer[total:]
