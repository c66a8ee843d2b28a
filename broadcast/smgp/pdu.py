"""SMGP 3.0 (China Telecom, 中国电信短消息网关协议) PDU bodies, as the spec's field tables lay them out.

Header: PacketLength (4) | RequestID (4) | SequenceID (4) (`broadcast.framing`). Strings are fixed-length
Octet Strings, left-aligned and padded with NUL; integers are big-endian. Submit and Deliver end with the
spec's optional TLVs (Tag 2 | Length 2 | Value), where concatenation is signalled: TP_udhi=1 (the content starts
with a UDH), PkTotal and PkNumber.
"""

import hashlib
import re
import struct
from dataclasses import dataclass, field

from broadcast.smpp.pdu import DeliveryReceipt

LOGIN, LOGIN_RESP = 0x00000001, 0x80000001
SUBMIT, SUBMIT_RESP = 0x00000002, 0x80000002
DELIVER, DELIVER_RESP = 0x00000003, 0x80000003
ACTIVE_TEST, ACTIVE_TEST_RESP = 0x00000004, 0x80000004
EXIT, EXIT_RESP = 0x00000006, 0x80000006

VERSION = 0x30  # ClientVersion / ServerVersion 3.0
LOGIN_MODE_TRANSMIT = 2  # LoginMode: 0 send (MT), 1 receive (MO and reports), 2 both on one connection
MSG_TYPE_MT = 6  # MsgType of a message to a handset
MSG_FORMAT_UCS2 = 8

# TLV tags (SMGP 3.0 section 6.2.x)
TP_PID, TP_UDHI, LINK_ID = 0x0001, 0x0002, 0x0003
PK_TOTAL, PK_NUMBER = 0x0009, 0x000A

# Status values (section 5.3)
OK = 0
SYSTEM_BUSY = 1
TOO_MANY_CONNECTIONS = 2
STRUCTURE_ERROR = 10
COMMAND_ERROR = 11
AUTHENTICATION_ERROR = 21
VERSION_TOO_HIGH = 22
BAD_MSG_TYPE = 30
BAD_PRIORITY = 31
BAD_FEE_TYPE = 32
BAD_MSG_FORMAT = 34
BAD_TIME_FORMAT = 35
BAD_MSG_LENGTH = 36
BAD_DEST_COUNT = 46
BAD_DEST_TERM = 47
BAD_SRC_TERM = 48

STATUS_MEANINGS = {
    SYSTEM_BUSY: "系统忙",
    TOO_MANY_CONNECTIONS: "超过最大连接数",
    STRUCTURE_ERROR: "消息结构错",
    COMMAND_ERROR: "命令字错",
    AUTHENTICATION_ERROR: "认证错（帐号或共享密钥错误）",
    VERSION_TOO_HIGH: "版本太高",
    BAD_MSG_TYPE: "非法消息类型",
    BAD_PRIORITY: "非法优先级",
    BAD_FEE_TYPE: "非法资费类型",
    BAD_MSG_FORMAT: "非法短消息格式",
    BAD_TIME_FORMAT: "非法时间格式",
    BAD_MSG_LENGTH: "非法短消息长度",
    BAD_DEST_COUNT: "非法目的用户数",
    BAD_DEST_TERM: "非法接收方号码",
    BAD_SRC_TERM: "非法发送方号码",
}
THROTTLING = frozenset({SYSTEM_BUSY})  # back off: the same Submit may go later
# Resubmitting the same Submit cannot help after these.
PERMANENT = frozenset(
    {BAD_MSG_TYPE, BAD_PRIORITY, BAD_FEE_TYPE, BAD_MSG_FORMAT, BAD_MSG_LENGTH, BAD_DEST_COUNT, BAD_DEST_TERM}
)


def status_text(status: int) -> str:
    """ "非法接收方号码（Status 47）": the meaning where known, the code always."""
    return f"{STATUS_MEANINGS.get(status, '未知错误')}（Status {status}）"


def octets(value: str | bytes, size: int) -> bytes:
    raw = value.encode("ascii") if isinstance(value, str) else value
    if len(raw) > size:
        raise ValueError(f"{raw!r} longer than {size} octets")
    return raw.ljust(size, b"\0")


def text_of(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def tlvs(*items: tuple[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in items)


def parse_tlvs(data: bytes) -> dict[int, bytes]:
    found, position = {}, 0
    while position + 4 <= len(data):
        tag, size = struct.unpack_from(">HH", data, position)
        found[tag] = data[position + 4 : position + 4 + size]
        position += 4 + size
    return found


# Login ------------------------------------------------------------------------------------------------------


def authenticator_client(client_id: str, secret: str, timestamp: int) -> bytes:
    """MD5(ClientID + 7 zero bytes + shared secret + TimeStamp as the 10 digits MMDDHHMMSS)."""
    return hashlib.md5(  # noqa: S324 - the spec's authenticator, not our choice of hash
        client_id.encode("ascii") + bytes(7) + secret.encode("ascii") + f"{timestamp:010d}".encode()
    ).digest()


def authenticator_server(status: int, client: bytes, secret: str) -> bytes:
    """MD5(Status + AuthenticatorClient + shared secret): the gateway proves it knows the secret too."""
    return hashlib.md5(struct.pack(">L", status) + client + secret.encode("ascii")).digest()  # noqa: S324


def login(client_id: str, secret: str, timestamp: int) -> bytes:
    """ClientID 8 | AuthenticatorClient 16 | LoginMode 1 | TimeStamp 4 | ClientVersion 1."""
    auth = authenticator_client(client_id, secret, timestamp)
    return octets(client_id, 8) + auth + struct.pack(">BLB", LOGIN_MODE_TRANSMIT, timestamp, VERSION)


@dataclass(frozen=True)
class LoginResp:
    status: int
    authenticator_server: bytes
    server_version: int


def parse_login_resp(body: bytes) -> LoginResp:
    """Status 4 | AuthenticatorServer 16 | ServerVersion 1."""
    status, auth, version = struct.unpack(">L16sB", body[:21])
    return LoginResp(status, auth, version)


# Submit -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    src_term_id: str
    dest_term_id: str
    content: bytes
    service_id: str = ""
    need_report: int = 1
    priority: int = 3  # 0-3, 3 highest: public warnings go first
    fee_type: str = "00"  # free of charge to the recipient
    msg_format: int = MSG_FORMAT_UCS2
    udhi: bool = False
    pk_total: int = 1
    pk_number: int = 1
    extra_tlvs: tuple[tuple[int, bytes], ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        """MsgType 1 | NeedReport 1 | Priority 1 | ServiceID 10 | FeeType 2 | FeeCode 6 | FixedFee 6 |
        MsgFormat 1 | ValidTime 17 | AtTime 17 | SrcTermID 21 | ChargeTermID 21 | DestTermIDCount 1 |
        DestTermID 21 | MsgLength 1 | MsgContent | Reserve 8 | TLVs."""
        if len(self.content) > 140:
            raise ValueError("SMGP MsgContent is at most 140 octets")
        fixed = struct.pack(">BBB", MSG_TYPE_MT, self.need_report, self.priority)
        fixed += octets(self.service_id, 10) + octets(self.fee_type, 2) + octets("0", 6) + octets("0", 6)
        fixed += bytes((self.msg_format,)) + octets("", 17) + octets("", 17)
        fixed += octets(self.src_term_id, 21) + octets("", 21) + b"\x01" + octets(self.dest_term_id, 21)
        fixed += bytes((len(self.content),)) + self.content + bytes(8)
        optional = [(TP_UDHI, bytes((int(self.udhi),)))]
        if self.pk_total > 1:
            optional += [(PK_TOTAL, bytes((self.pk_total,))), (PK_NUMBER, bytes((self.pk_number,)))]
        return fixed + tlvs(*optional, *self.extra_tlvs)


@dataclass(frozen=True)
class SubmitResp:
    msg_id: str  # the 10-byte MsgID as 20 hex digits (it is BCD: gateway code, MMDDHHMM, sequence)
    status: int


def parse_submit_resp(body: bytes) -> SubmitResp:
    """MsgID 10 | Status 4."""
    msg_id, status = struct.unpack(">10sL", body[:14])
    return SubmitResp(msg_id.hex(), status)


# Deliver ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deliver:
    msg_id: bytes
    is_report: bool
    msg_format: int
    recv_time: str
    src_term_id: str
    dest_term_id: str
    content: bytes
    tlvs: dict[int, bytes]


def parse_deliver(body: bytes) -> Deliver:
    """MsgID 10 | IsReport 1 | MsgFormat 1 | RecvTime 14 | SrcTermID 21 | DestTermID 21 | MsgLength 1 |
    MsgContent | Reserve 8 | TLVs."""
    msg_id, is_report, msg_format, recv_time, src, dest, length = struct.unpack_from(">10sBB14s21s21sB", body)
    start = 10 + 1 + 1 + 14 + 21 + 21 + 1
    content = body[start : start + length]
    return Deliver(
        msg_id,
        bool(is_report),
        msg_format,
        text_of(recv_time),
        text_of(src),
        text_of(dest),
        content,
        parse_tlvs(body[start + length + 8 :]),
    )


def deliver_resp(msg_id: bytes, status: int = OK) -> bytes:
    """MsgID 10 | Status 4."""
    return msg_id + struct.pack(">L", status)


_REPORT_FIELD = re.compile(rb"(stat|err):(\S+)", re.IGNORECASE)


def parse_report(content: bytes) -> DeliveryReceipt | None:
    """The status report a Deliver with IsReport=1 carries: `id:` and the 10 raw MsgID bytes (given back as the
    20 hex digits SubmitResp gives), then `sub:001 dlvrd:001 Submit_date:YYMMDDhhmm done_date:YYMMDDhhmm
    Stat:DELIVRD Err:000 Txt:...` as in SMPP's appendix B."""
    if not content[:3].lower() == b"id:" or len(content) < 13:
        return None
    found = _REPORT_FIELD.findall(content[13:])
    fields = {key.decode().lower(): value.decode("ascii", "replace") for key, value in found}
    if "stat" not in fields:
        return None
    text = content.decode("latin-1")
    return DeliveryReceipt(content[3:13].hex(), fields["stat"].upper(), fields.get("err", ""), text)
