"""SGIP 1.2 (China Unicom, 中国联通短消息网关系统接口协议) PDU bodies, as the spec's field tables lay them out.

Header: Message Length (4) | Command ID (4) | Sequence Number (12) (`broadcast.framing`). The Sequence Number is
three integers, node id of the sender | MMDDhhmmss | counter, and a Submit's identifies its message: the
gateway's Report names it as SubmitSequenceNumber. Strings are fixed-length, NUL-padded; integers big-endian.
Every answer body is Result (1) | Reserve (8).
"""

import struct
import time
from dataclasses import dataclass

from broadcast.segments import mobile_originated_text

BIND, BIND_RESP = 0x00000001, 0x80000001
UNBIND, UNBIND_RESP = 0x00000002, 0x80000002
SUBMIT, SUBMIT_RESP = 0x00000003, 0x80000003
DELIVER, DELIVER_RESP = 0x00000004, 0x80000004
REPORT, REPORT_RESP = 0x00000005, 0x80000005

LOGIN_SP_TO_SMG = 1  # Bind LoginType: the SP's connection to the gateway
LOGIN_SMG_TO_SP = 2  # the gateway's connection to the SP, bringing Deliver and Report
MESSAGE_CODING_UCS2 = 8

# Result / ErrorCode values (section 4.x, shared by every answer and the Report's ErrorCode)
OK = 0
BAD_LOGIN = 1
REPEATED_LOGIN = 2
TOO_MANY_CONNECTIONS = 3
BAD_LOGIN_TYPE = 4
BAD_PARAMETER = 5
BAD_NUMBER = 6
BAD_MESSAGE_ID = 7
BAD_LENGTH = 8
BAD_SEQUENCE = 9
NODE_BUSY = 11
UNREACHABLE = 21
NO_ROUTE = 23
BAD_CHARGE_NUMBER = 24
USER_BARRED = 25
PHONE_MEMORY_FULL = 26
NO_SMS_SUPPORT = 27
RECEIVE_ERROR = 28
UNKNOWN_USER = 29
NOT_PROVIDED = 30
SYSTEM_FAILURE = 32
QUEUE_FULL = 33

RESULT_MEANINGS = {
    BAD_LOGIN: "非法登录（登录名或口令错误）",
    REPEATED_LOGIN: "重复登录",
    TOO_MANY_CONNECTIONS: "连接过多",
    BAD_LOGIN_TYPE: "登录类型错",
    BAD_PARAMETER: "参数格式错",
    BAD_NUMBER: "非法手机号码",
    BAD_MESSAGE_ID: "消息ID错",
    BAD_LENGTH: "信息长度错",
    BAD_SEQUENCE: "非法序列号",
    NODE_BUSY: "节点忙",
    UNREACHABLE: "目的地址不可达",
    NO_ROUTE: "路由不存在",
    BAD_CHARGE_NUMBER: "计费号码无效",
    USER_BARRED: "用户不能通信",
    PHONE_MEMORY_FULL: "手机内存不足",
    NO_SMS_SUPPORT: "手机不支持短消息",
    RECEIVE_ERROR: "手机接收短消息出现错误",
    UNKNOWN_USER: "不知道的用户",
    NOT_PROVIDED: "不提供此功能",
    SYSTEM_FAILURE: "系统失败",
    QUEUE_FULL: "短信中心队列满",
}
THROTTLING = frozenset({NODE_BUSY, QUEUE_FULL})  # back off: the same Submit may go later
PERMANENT = frozenset({BAD_PARAMETER, BAD_NUMBER, BAD_LENGTH, BAD_CHARGE_NUMBER, NO_SMS_SUPPORT, UNKNOWN_USER})

# Report State
STATE_DELIVERED, STATE_WAITING, STATE_FAILED = 0, 1, 2

_SEQUENCE = struct.Struct(">LLL")


def result_text(result: int) -> str:
    """ "非法手机号码（Result 6）": the meaning where known, the code always."""
    return f"{RESULT_MEANINGS.get(result, '未知错误')}（Result {result}）"


def sequence_number(node_id: int, counter: int, now: float | None = None) -> bytes:
    """Node id | MMDDhhmmss (local, Beijing, time) | counter."""
    return _SEQUENCE.pack(node_id, int(time.strftime("%m%d%H%M%S", time.localtime(now))), counter)


def octets(value: str, size: int) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > size:
        raise ValueError(f"{value!r} longer than {size} octets")
    return raw.ljust(size, b"\0")


def text_of(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def bind(login_type: int, name: str, password: str) -> bytes:
    """LoginType 1 | LoginName 16 | LoginPassword 16 | Reserve 8."""
    return bytes((login_type,)) + octets(name, 16) + octets(password, 16) + bytes(8)


@dataclass(frozen=True)
class Bind:
    login_type: int
    name: str
    password: str


def parse_bind(body: bytes) -> Bind:
    login_type, name, password = struct.unpack_from(">B16s16s", body)
    return Bind(login_type, text_of(name), text_of(password))


def resp(result: int = OK) -> bytes:
    """Result 1 | Reserve 8: the body of every answer."""
    return bytes((result,)) + bytes(8)


def result_of(body: bytes) -> int:
    return body[0] if body else BAD_PARAMETER


@dataclass(frozen=True)
class Submit:
    sp_number: str
    user_number: str
    content: bytes
    corp_id: str = ""
    service_type: str = ""
    charge_number: str = "000000000000000000000"  # 21 zeros: the SP pays, not the user
    fee_type: int = 1  # free
    report_flag: int = 1  # a Report whatever the outcome
    priority: int = 9  # 0-9, 9 highest: public warnings go first
    tp_udhi: bool = False
    message_coding: int = MESSAGE_CODING_UCS2

    def encode(self) -> bytes:
        """SPNumber 21 | ChargeNumber 21 | UserCount 1 | UserNumber 21 | CorpId 5 | ServiceType 10 | FeeType 1 |
        FeeValue 6 | GivenValue 6 | AgentFlag 1 | MorelatetoMTFlag 1 | Priority 1 | ExpireTime 16 |
        ScheduleTime 16 | ReportFlag 1 | TP_pid 1 | TP_udhi 1 | MessageCoding 1 | MessageType 1 |
        MessageLength 4 | MessageContent | Reserve 8."""
        if len(self.content) > 140:
            raise ValueError("an SGIP MessageContent carries at most 140 octets of UCS-2")
        body = octets(self.sp_number, 21) + octets(self.charge_number, 21) + b"\x01" + octets(self.user_number, 21)
        body += octets(self.corp_id, 5) + octets(self.service_type, 10) + bytes((self.fee_type,))
        body += octets("0", 6) + octets("0", 6)
        body += struct.pack(">BBB", 0, 2, self.priority)  # AgentFlag 0: free; MorelatetoMTFlag 2: not MO-related
        body += octets("", 16) + octets("", 16)
        body += struct.pack(
            ">BBBBBL", self.report_flag, 0, int(self.tp_udhi), self.message_coding, 0, len(self.content)
        )
        return body + self.content + bytes(8)


@dataclass(frozen=True)
class Deliver:
    user_number: str
    sp_number: str
    tp_udhi: bool
    message_coding: int
    content: bytes

    @property
    def text(self) -> str:
        return mobile_originated_text(self.content, self.message_coding)


def parse_deliver(body: bytes) -> Deliver:
    """UserNumber 21 | SPNumber 21 | TP_pid 1 | TP_udhi 1 | MessageCoding 1 | MessageLength 4 | MessageContent |
    Reserve 8."""
    user, sp, _pid, udhi, coding, length = struct.unpack_from(">21s21sBBBL", body)
    start = 21 + 21 + 3 + 4
    return Deliver(text_of(user), text_of(sp), bool(udhi), coding, body[start : start + length])


@dataclass(frozen=True)
class Report:
    submit_sequence: str  # the Submit's 12-byte Sequence Number, as 24 hex digits
    report_type: int  # 0: about an earlier Submit
    user_number: str
    state: int
    error_code: int

    @property
    def final(self) -> bool:
        return self.state != STATE_WAITING

    @property
    def delivered(self) -> bool:
        return self.state == STATE_DELIVERED


def parse_report(body: bytes) -> Report:
    """SubmitSequenceNumber 12 | ReportType 1 | UserNumber 21 | State 1 | ErrorCode 1 | Reserve 8."""
    sequence, report_type, user, state, error = struct.unpack_from(">12sB21sBB", body)
    return Report(sequence.hex(), report_type, text_of(user), state, error)
