"""CMPP PDUs, as the China Mobile spec lays them out for versions 2.0 and 3.0.

Every PDU is a 12-byte header (Total_Length, Command_Id, Sequence_Id, big-endian: `broadcast.framing`) and a
body of fixed-width fields: octet strings padded with NUL, integers big-endian. The versions differ in field
widths (terminal ids 21 or 32 octets, CONNECT_RESP Status and the Result fields 1 or 4 octets) and in a few
fields 3.0 adds (Fee_terminal_type, Dest_terminal_type, Src_terminal_type, LinkID), so one table per PDU and
version says the layout, and `pack`/`unpack` walk it.
"""

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Literal

from broadcast.segments import mobile_originated_text

CONNECT = 0x00000001
TERMINATE = 0x00000002
SUBMIT = 0x00000004
DELIVER = 0x00000005
ACTIVE_TEST = 0x00000008

Version = Literal["2.0", "3.0"]
VERSIONS: dict[Version, int] = {"2.0": 0x20, "3.0": 0x30}  # the Version octet: major and minor in 4 bits each

MSG_FMT_UCS2 = 8
MAX_CONTENT = 140  # Msg_Length octets, UDH included

# CONNECT_RESP Status
CONNECT_MEANINGS = {0: "正确", 1: "消息结构错", 2: "非法源地址", 3: "认证错", 4: "版本太高"}

# SUBMIT_RESP Result
RESULT_OK = 0
RESULT_FLOW_CONTROL = 8
RESULT_MEANINGS = {
    0: "正确",
    1: "消息结构错",
    2: "命令字错",
    3: "消息序号重复",
    4: "消息长度错",
    5: "资费代码错",
    6: "超过最大信息长",
    7: "业务代码错",
    8: "流量控制错",
    9: "本网关不负责服务此计费号码",
    10: "Src_Id 错误",
    11: "Msg_src 错误",
    12: "Fee_terminal_Id 错误",
    13: "Dest_terminal_Id 错误",
}
# Resending the same SUBMIT cannot help after these.
PERMANENT_RESULTS = frozenset({1, 4, 5, 6, 7, 9, 10, 11, 12, 13})


def result_text(result: int) -> str:
    """ "流量控制错（Result=8）": the meaning where known, the code always."""
    return f"{RESULT_MEANINGS.get(result, '其他错误')}（Result={result}）"


def connect_text(status: int) -> str:
    return f"{CONNECT_MEANINGS.get(status, '其他错误')}（Status={status}）"


# Field layouts: (name, width) where width is an int (octets; "s" fields are NUL-padded text) or a struct code.
Layout = tuple[tuple[str, str | int], ...]


def _terminal(version: Version) -> int:
    return 21 if version == "2.0" else 32


def _status(version: Version) -> str:
    return "B" if version == "2.0" else "L"


def connect_resp_layout(version: Version) -> Layout:
    return (("Status", _status(version)), ("AuthenticatorISMG", 16), ("Version", "B"))


def submit_head_layout(version: Version) -> Layout:
    """SUBMIT up to and including DestUsr_tl; the terminals, Msg_Length and Msg_Content follow."""
    fee = (("Fee_terminal_Id", _terminal(version)),)
    if version == "3.0":
        fee += (("Fee_terminal_type", "B"),)
    return (
        ("Msg_Id", "Q"),
        ("Pk_total", "B"),
        ("Pk_number", "B"),
        ("Registered_Delivery", "B"),
        ("Msg_level", "B"),
        ("Service_Id", 10),
        ("Fee_UserType", "B"),
        *fee,
        ("TP_pId", "B"),
        ("TP_udhi", "B"),
        ("Msg_Fmt", "B"),
        ("Msg_src", 6),
        ("FeeType", 2),
        ("FeeCode", 6),
        ("ValId_Time", 17),
        ("At_Time", 17),
        ("Src_Id", 21),
        ("DestUsr_tl", "B"),
    )


def result_layout(version: Version) -> Layout:
    """SUBMIT_RESP and DELIVER_RESP."""
    return (("Msg_Id", "Q"), ("Result", _status(version)))


def decode_result(version: Version, body: bytes) -> tuple[int, int]:
    """(Msg_Id, Result) of a SUBMIT_RESP."""
    values, _ = unpack(result_layout(version), body)
    return values["Msg_Id"], values["Result"]


def deliver_head_layout(version: Version) -> Layout:
    """DELIVER up to and including Msg_Length; Msg_Content and Reserved (2.0) or LinkID (3.0) follow."""
    source = (("Src_terminal_Id", _terminal(version)),)
    if version == "3.0":
        source += (("Src_terminal_type", "B"),)
    return (
        ("Msg_Id", "Q"),
        ("Dest_Id", 21),
        ("Service_Id", 10),
        ("TP_pid", "B"),
        ("TP_udhi", "B"),
        ("Msg_Fmt", "B"),
        *source,
        ("Registered_Delivery", "B"),
        ("Msg_Length", "B"),
    )


def report_layout(version: Version) -> Layout:
    """The status report a DELIVER with Registered_Delivery=1 carries in Msg_Content."""
    return (
        ("Msg_Id", "Q"),
        ("Stat", 7),
        ("Submit_time", 10),
        ("Done_time", 10),
        ("Dest_terminal_Id", _terminal(version)),
        ("SMSC_sequence", "L"),
    )


def pack(layout: Layout, values: dict[str, Any]) -> bytes:
    out = bytearray()
    for name, width in layout:
        value = values.get(name, 0 if isinstance(width, str) else b"")
        if isinstance(width, int):
            raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
            if len(raw) > width:
                raise ValueError(f"{name} longer than {width} octets: {raw!r}")
            out += raw.ljust(width, b"\0")
        else:
            out += struct.pack(">" + width, value)
    return bytes(out)


def unpack(layout: Layout, data: bytes, offset: int = 0) -> tuple[dict[str, Any], int]:
    """The fields, text fields with their NUL padding stripped, and the offset after them."""
    values: dict[str, Any] = {}
    for name, width in layout:
        if isinstance(width, int):
            raw = data[offset : offset + width]
            if len(raw) < width:
                raise ValueError(f"PDU ends inside {name}")
            values[name] = raw if width == 16 else raw.rstrip(b"\0").decode("ascii", "replace")
            offset += width
        else:
            (values[name],) = struct.unpack_from(">" + width, data, offset)
            offset += struct.calcsize(">" + width)
    return values, offset


# CONNECT ------------------------------------------------------------------------------------------------------


def authenticator_source(source_addr: str, secret: str, stamp: int) -> bytes:
    """MD5(Source_Addr + 9 octets of zero + shared secret + Timestamp as the 10 digits MMDDHHMMSS)."""
    digest = source_addr.encode() + b"\0" * 9 + secret.encode() + f"{stamp:010d}".encode()
    return hashlib.md5(digest).digest()  # noqa: S324 - the spec's authenticator, not our choice of hash


def authenticator_ismg(status: int, version: Version, source: bytes, secret: str) -> bytes:
    """MD5(Status + AuthenticatorSource + shared secret), Status as wide as the version's field."""
    status_bytes = struct.pack(">" + _status(version), status)
    return hashlib.md5(status_bytes + source + secret.encode()).digest()  # noqa: S324


def connect(source_addr: str, secret: str, version: Version, stamp: int) -> tuple[bytes, bytes]:
    """The CONNECT body and its AuthenticatorSource (the answer's authenticator is checked against it)."""
    authenticator = authenticator_source(source_addr, secret, stamp)
    body = pack(
        (("Source_Addr", 6), ("AuthenticatorSource", 16), ("Version", "B"), ("Timestamp", "L")),
        {
            "Source_Addr": source_addr,
            "AuthenticatorSource": authenticator,
            "Version": VERSIONS[version],
            "Timestamp": stamp,
        },
    )
    return body, authenticator


# SUBMIT -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    """One SUBMIT to one terminal: a message, or one part of a long one."""

    source_addr: str  # Msg_src, the SP id
    service_id: str
    src_id: str  # the number the handset shows
    destination: str
    content: bytes  # UDH (when udhi) + UCS-2 text
    pk_total: int = 1
    pk_number: int = 1
    udhi: bool = False

    def encode(self, version: Version) -> bytes:
        if len(self.content) > MAX_CONTENT:
            raise ValueError(f"Msg_Content longer than {MAX_CONTENT} octets")
        head = {
            "Pk_total": self.pk_total,
            "Pk_number": self.pk_number,
            "Registered_Delivery": 1,
            "Msg_level": 1,
            "Service_Id": self.service_id,
            "Fee_UserType": 2,  # not charged to a terminal
            "TP_udhi": int(self.udhi),
            "Msg_Fmt": MSG_FMT_UCS2,
            "Msg_src": self.source_addr,
            "FeeType": "01",  # free
            "FeeCode": "000000",
            "Src_Id": self.src_id,
            "DestUsr_tl": 1,
        }
        body = pack(submit_head_layout(version), head) + pack(
            (("Dest_terminal_Id", _terminal(version)),), {"Dest_terminal_Id": self.destination}
        )
        if version == "3.0":
            body += bytes([0])  # Dest_terminal_type: a real number
        body += bytes([len(self.content)]) + self.content
        body += b"\0" * (20 if version == "3.0" else 8)  # LinkID (3.0), Reserve (2.0)
        return body


# DELIVER ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    msg_id: int  # the SUBMIT_RESP Msg_Id this reports on
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, or a gateway's own code
    submit_time: str
    done_time: str
    destination: str

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"


@dataclass(frozen=True)
class MobileOriginated:
    source: str  # Src_terminal_Id
    destination: str  # Dest_Id, our number and its extension
    text: str


def decode_deliver(version: Version, body: bytes) -> tuple[int, StatusReport | MobileOriginated]:
    """The DELIVER's Msg_Id (its DELIVER_RESP names it) and what it carries."""
    head, offset = unpack(deliver_head_layout(version), body)
    content = body[offset : offset + head["Msg_Length"]]
    if head["Registered_Delivery"] == 1:
        report, _ = unpack(report_layout(version), content)
        return head["Msg_Id"], StatusReport(
            report["Msg_Id"], report["Stat"], report["Submit_time"], report["Done_time"], report["Dest_terminal_Id"]
        )
    if head["TP_udhi"] and content:
        content = content[1 + content[0] :]
    text = mobile_originated_text(content, head["Msg_Fmt"])
    return head["Msg_Id"], MobileOriginated(head["Src_terminal_Id"], head["Dest_Id"], text)


def deliver_resp(version: Version, msg_id: int) -> bytes:
    """The DELIVER_RESP body: the DELIVER's Msg_Id and Result 0."""
    return pack(result_layout(version), {"Msg_Id": msg_id, "Result": RESULT_OK})


def msg_id_text(msg_id: int) -> str:
    """The Msg_Id as the remote id receipts refer to: 16 hex digits."""
    return f"{msg_id:016x}"
