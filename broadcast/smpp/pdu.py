"""SMPP 3.4 PDUs: encoding and decoding on smpplib's codec, plus the pieces of the spec the codec leaves out
(the concatenation UDH, the GSM 03.38 default alphabet, the delivery receipt text of appendix B).

smpplib's PDU classes are used for the bodies only (its blocking client is not): `request` gives the command_id
and body the shared link (`broadcast.framing`, with SMPP's command_status field) frames, and `decode` turns a
frame back into an smpplib PDU object whose string fields are bytes.
"""

import logging
import re
import struct
from dataclasses import dataclass
from typing import Any

from smpplib import smpp

from broadcast.framing import Frame

log = logging.getLogger(__name__)

HEADER = struct.Struct(">LLLL")  # command_length, command_id, command_status, sequence_number

# command_id values used here (SMPP 3.4 section 5.1.2.1)
GENERIC_NACK = 0x80000000
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015

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


class _NoSequence:
    """smpplib asks its client for sequence numbers; ours come from the link, which writes the header."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_CLIENT = _NoSequence()


def request(command: str, **fields: Any) -> tuple[int, bytes]:
    """The command_id and body of a PDU, encoded by smpplib; the link writes the header around the body."""
    pdu = smpp.make_pdu(command, client=_CLIENT, **fields)
    data = pdu.generate()
    return HEADER.unpack_from(data)[1], data[HEADER.size :]


def decode(frame: Frame) -> Any:
    """The smpplib PDU object of a frame (`.command`, `.status`, fields as attributes, strings as bytes), or
    None when it has no body or does not parse."""
    if not frame.body:
        return None
    (sequence,) = struct.unpack(">L", frame.sequence)
    head = HEADER.pack(HEADER.size + len(frame.body), frame.command, frame.status or 0, sequence)
    try:
        return smpp.parse_pdu(head + frame.body, client=_CLIENT)
    except Exception:
        log.warning("SMPP PDU did not parse: %s", frame.body[:64].hex())
        return None


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
