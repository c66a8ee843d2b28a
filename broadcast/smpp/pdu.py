"""SMPP 3.4 PDUs an ESME sends and reads, encoded and decoded here field by field (section 4), plus the pieces of
the spec around them (the concatenation UDH, the GSM 03.38 default alphabet, the delivery receipt text of appendix
B). The link (`broadcast.framing`, with SMPP's command_status field) writes the header around each body.

Our own codec, as for CMPP, SMGP and SGIP, rather than smpplib's: its generic PDU classes walked a field table with
per-field reflection for every submit_sm and receipt, 18 % of the outbox's CPU at full speed (py-spy,
BENCHMARKS.md), where a struct pack of the dozen fields an ESME uses costs a few microseconds.
"""

import logging
import re
import struct
from dataclasses import dataclass

from broadcast.framing import Frame

log = logging.getLogger(__name__)

# command_id values used here (SMPP 3.4 section 5.1.2.1)
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
BINDS = {"receiver": BIND_RECEIVER, "transmitter": BIND_TRANSMITTER, "transceiver": BIND_TRANSCEIVER}

# optional parameter tags (section 5.3.2)
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_PAYLOAD = 0x0424

# command_status values (section 5.1.3)
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RMSGQFUL = 0x14
ESME_RINVESMCLASS = 0x43
ESME_RTHROTTLED = 0x58
ESME_RX_P_APPN = 0x65
ESME_RX_R_APPN = 0x66
ESME_RINVDCS = 0x104

# Retrying the same submit_sm cannot help after these.
PERMANENT_STATUSES = frozenset(
    {ESME_RINVMSGLEN, ESME_RINVSRCADR, ESME_RINVDSTADR, ESME_RINVESMCLASS, ESME_RX_P_APPN, ESME_RX_R_APPN, ESME_RINVDCS}
)

# What each status means, for delivery rows the duty room reads.
STATUS_MEANINGS = {
    ESME_RINVMSGLEN: "消息长度无效",
    ESME_RINVCMDID: "命令无效",
    ESME_RINVBNDSTS: "绑定类型不允许此命令",
    ESME_RSYSERR: "网关系统错误",
    ESME_RINVSRCADR: "发送号码无效",
    ESME_RINVDSTADR: "接收号码无效",
    ESME_RMSGQFUL: "网关队列已满",
    ESME_RINVESMCLASS: "esm_class 无效",
    ESME_RTHROTTLED: "超过网关限速",
    ESME_RX_P_APPN: "接收方拒收（永久）",
    ESME_RX_R_APPN: "接收方拒收",
    ESME_RINVDCS: "编码方式无效",
}


def status_text(status: int) -> str:
    """ "接收号码无效（状态码 0x0000000B）": the meaning where known, the code always."""
    meaning = STATUS_MEANINGS.get(status, "未知错误")
    return f"{meaning}（状态码 0x{status:08X}）"


ESM_CLASS_UDHI = 0x40  # short_message starts with a user data header
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_DELIVERY_RECEIPT = 0x04
DATA_CODING_DEFAULT = 0x00  # GSM 03.38, one septet per octet
DATA_CODING_UCS2 = 0x08


def _c_octets(value: str, size: int, field: str) -> bytes:
    """A C-Octet String of at most `size` octets with its NUL (section 3.1)."""
    data = value.encode("ascii")
    if len(data) >= size:
        raise ValueError(f"SMPP {field}: at most {size - 1} characters, got {len(data)}")
    return data + b"\0"


def bind_body(system_id: str, password: str, system_type: str, interface_version: int = 0x34) -> bytes:
    """bind_transmitter/receiver/transceiver (4.1.1): addr_ton, addr_npi and address_range left empty."""
    return (
        _c_octets(system_id, 16, "system_id")
        + _c_octets(password, 9, "password")
        + _c_octets(system_type, 13, "system_type")
        + bytes((interface_version, 0, 0))
        + b"\0"
    )


def submit_sm_body(
    *,
    source_addr: str,
    source_addr_ton: int,
    source_addr_npi: int,
    destination_addr: str,
    dest_addr_ton: int,
    dest_addr_npi: int,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    registered_delivery: int = 1,
) -> bytes:
    """submit_sm (4.4.1): no service_type, schedule or validity period (the SMSC's defaults), protocol_id and
    priority 0."""
    if len(short_message) > 254:
        raise ValueError(f"SMPP short_message: at most 254 octets, got {len(short_message)}")
    return b"".join(
        (
            b"\0",  # service_type
            bytes((source_addr_ton, source_addr_npi)),
            _c_octets(source_addr, 21, "source_addr"),
            bytes((dest_addr_ton, dest_addr_npi)),
            _c_octets(destination_addr, 21, "destination_addr"),
            bytes((esm_class, 0, 0)),  # esm_class, protocol_id, priority_flag
            b"\0\0",  # schedule_delivery_time, validity_period
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )


DELIVER_SM_RESP_BODY = b"\0"  # message_id, unused (4.6.2)


@dataclass(frozen=True)
class DeliverSm:
    """What an ESME reads of a deliver_sm (4.6.1): a delivery receipt or a mobile-originated message."""

    source_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes  # or the message_payload TLV's value, where short_message is empty
    receipted_message_id: str | None


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    def octet(self) -> int:
        value = self.body[self.at]
        self.at += 1
        return value

    def c_octets(self) -> bytes:
        end = self.body.index(b"\0", self.at)
        value, self.at = self.body[self.at : end], end + 1
        return value

    def octets(self, length: int) -> bytes:
        if self.at + length > len(self.body):
            raise ValueError("truncated")
        value, self.at = self.body[self.at : self.at + length], self.at + length
        return value

    def tlvs(self) -> dict[int, bytes]:
        found = {}
        while self.at + 4 <= len(self.body):
            tag, length = struct.unpack_from(">HH", self.body, self.at)
            self.at += 4
            found[tag] = self.octets(length)
        return found


def message_id(frame: Frame) -> str | None:
    """The message_id of a submit_sm_resp (4.4.2); None when the body is empty (a refusal) or has no NUL."""
    end = frame.body.find(b"\0")
    return None if end < 0 else frame.body[:end].decode("ascii", "replace")


def deliver_sm(frame: Frame) -> DeliverSm | None:
    """The deliver_sm of a frame, or None (logged) when it does not parse."""
    try:
        r = _Reader(frame.body)
        r.c_octets()  # service_type
        r.octet(), r.octet()  # source_addr_ton, source_addr_npi
        source = r.c_octets().decode("ascii", "replace")
        r.octet(), r.octet()  # dest_addr_ton, dest_addr_npi
        r.c_octets()  # destination_addr
        esm_class = r.octet()
        r.octet(), r.octet()  # protocol_id, priority_flag
        r.c_octets(), r.c_octets()  # schedule_delivery_time, validity_period
        r.octet(), r.octet()  # registered_delivery, replace_if_present_flag
        data_coding = r.octet()
        r.octet()  # sm_default_msg_id
        short_message = r.octets(r.octet())
        tlvs = r.tlvs()
    except (IndexError, ValueError):
        log.warning("SMPP deliver_sm did not parse: %s", frame.body[:64].hex())
        return None
    receipted = tlvs.get(TAG_RECEIPTED_MESSAGE_ID)
    return DeliverSm(
        source,
        esm_class,
        data_coding,
        short_message or tlvs.get(TAG_MESSAGE_PAYLOAD, b""),
        None if receipted is None else receipted.rstrip(b"\0").decode("ascii", "replace"),
    )


def concatenation_udh(reference: int, total: int, index: int) -> bytes:
    """3GPP TS 23.040 IEI 0x00: 8-bit reference number, total parts, this part (1-based)."""
    return bytes((0x05, 0x00, 0x03, reference & 0xFF, total, index))


# GSM 03.38 default alphabet and its extension table (reached through ESC 0x1B)
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40}
_GSM_EXTENSION["€"] = 0x65


def gsm_encode(text: str) -> bytes:
    """Unpacked GSM 03.38 (SMPP data_coding 0): one octet per septet, extension characters as ESC + code."""
    out = bytearray()
    for ch in text:
        if ch in _GSM_EXTENSION:
            out += bytes((0x1B, _GSM_EXTENSION[ch]))
        else:
            index = _GSM_BASIC.find(ch)
            if index < 0 or ch == "\x1b":
                raise ValueError(f"not in the GSM 03.38 alphabet: {ch!r}")
            out.append(index)
    return bytes(out)


_GSM_ESCAPED = {code: ch for ch, code in _GSM_EXTENSION.items()}


def short_message_text(short_message: bytes, data_coding: int, udhi: bool) -> str:
    """The text of a mobile-originated deliver_sm: its UDH skipped, UCS-2 or unpacked GSM 03.38 (escapes read
    through the extension table), anything else as Latin-1."""
    if udhi and short_message:
        short_message = short_message[1 + short_message[0] :]
    if data_coding == DATA_CODING_UCS2:
        return short_message.decode("utf-16-be", "replace")
    if data_coding != DATA_CODING_DEFAULT:
        return short_message.decode("latin-1")
    text, escaped = [], False
    for octet in short_message:
        if escaped or octet != 0x1B:
            text.append(_GSM_ESCAPED.get(octet, "?") if escaped else _GSM_BASIC[octet & 0x7F])
            escaped = False
        else:
            escaped = True
    return "".join(text)


@dataclass(frozen=True)
class DeliveryReceipt:
    message_id: str
    stat: str  # DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE
    err: str
    text: str

    @property
    def final(self) -> bool:
        return self.stat not in {"ENROUTE", "ACCEPTD"}

    @property
    def delivered(self) -> bool:
        return self.stat == "DELIVRD"


_RECEIPT_FIELD = re.compile(r"(id|stat|err):(\S+)", re.IGNORECASE)


def parse_receipt(short_message: bytes) -> DeliveryReceipt | None:
    """The appendix B text: `id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:... stat:DDDDDDD err:E`."""
    text = short_message.decode("latin-1")
    fields = {key.lower(): value for key, value in _RECEIPT_FIELD.findall(text)}
    if "id" not in fields or "stat" not in fields:
        return None
    return DeliveryReceipt(fields["id"], fields["stat"].upper(), fields.get("err", ""), text)
