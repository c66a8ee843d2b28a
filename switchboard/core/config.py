"""Configuration: one TOML file, every key overridable by SWITCHBOARD_<SECTION>_<KEY>.

Unknown keys and wrong types are refused at start, naming the key, so a typo never silently falls back
to a default in a duty room.
"""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from switchboard.core import numbers

ENV_PREFIX = "SWITCHBOARD_"
CONFIG_PATH_ENV = "SWITCHBOARD_CONFIG"
DEFAULT_CONFIG_FILE = "switchboard.toml"


class ConfigError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"配置项 {key} 无效: {reason}")
        self.key = key


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the console and API listen on")
    port: int = Field(8080, ge=1, le=65535, description="Port of the console and API")
    public_url: str = Field(
        "",
        description="Address users and the weather service reach this server at, for the absolute links it writes "
        "(join links, the CAP feed); empty: http://<host>:<port>. Never taken from a request's Host header",
    )
    max_body_kb: int = Field(
        1024, ge=16, le=65536, description="Largest request body, in KiB, except uploads (limited by their section)"
    )

    @property
    def link_base(self) -> str:
        """The start of every absolute link the server writes."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class PathSettings(_Section):
    var_dir: str = Field("var", description="Writable state: SQLite database, secrets, recordings, logs")


class DatabaseSettings(_Section):
    url: str = Field(
        "",
        description="SQLAlchemy async URL; empty means SQLite at <var_dir>/switchboard.db. "
        "PostgreSQL: postgresql+asyncpg://user:password@host/dbname",
    )
    echo: bool = Field(False, description="Log every SQL statement")


class AuthSettings(_Section):
    token_secret: str = Field(
        "", description="HMAC key for access tokens; empty means generated once into <var_dir>/token_secret"
    )
    token_ttl_minutes: int = Field(720, ge=1, le=10080, description="Lifetime of an access token")
    admin_username: str = Field("admin", description="First administrator, created when no user exists")
    admin_password: str = Field(
        "", description="Its password; empty means one is generated and printed once (set via environment)"
    )
    login_failures: int = Field(
        5, ge=1, le=100, description="Failed logins per account before it must wait (the wait doubles each further one)"
    )
    login_address_failures: int = Field(
        20, ge=1, le=10000, description="Failed logins per client address before it must wait (any accounts)"
    )
    login_wait_seconds: float = Field(30.0, gt=0, description="First wait after too many failed logins")
    login_window_seconds: float = Field(
        900.0, gt=0, description="Failed logins older than this are forgotten; also the longest wait"
    )
    session_check_seconds: float = Field(
        5.0, gt=0, le=60, description="How long a token's standing (user disabled, roles, signed out) is cached"
    )


class AuditSettings(_Section):
    """The audit chain and recording ledger are sealed with a key kept outside the database."""

    ledger_key: str = Field(
        "",
        pattern=r"^(.{32,})?$",
        description="HMAC key sealing every audit and recording-ledger entry, at least 32 characters (set via "
        "environment); empty: generated once into <var_dir>/ledger_key. Back it up: without it the ledger cannot "
        "be verified",
    )
    head_log: str = Field(
        "",
        description="Append-only file the chain head is copied to after every commit, outside the database; "
        "empty: <var_dir>/ledger/audit-head.log",
    )


class IncidentSettings(_Section):
    first_report_hours: float = Field(
        2.0,
        gt=0,
        description="初报 is due this long after the incident occurred (事发时间), else after it was reported",
    )
    first_report_levels: list[Literal["I", "II", "III", "IV"]] = Field(
        ["I", "II", "III"], description="Levels whose 初报 has that deadline; add IV to hold 一般 incidents to it too"
    )
    due_soon_minutes: int = Field(30, ge=1, description="Warn this long before the first report is due")
    deadline_check_seconds: float = Field(30.0, gt=0, description="How often report deadlines are checked")
    timezone: str = Field("Asia/Shanghai", description="Time zone of printed reports and the console")


class AsteriskSettings(_Section):
    mode: Literal["local", "external", "off"] = Field(
        "local",
        description="local: provision, configure and start our own Asterisk; external: drive the one at ami_host; "
        "off: no telephony",
    )
    root_dir: str = Field(
        "",
        description="Where provisioning keeps the Debian root holding Asterisk; empty: ~/.cache/switchboard/asterisk",
    )
    mirror: str = Field("http://deb.debian.org/debian", description="Debian mirror for provisioning")
    dialplan: str = Field("", description="Dialplan definition (YAML, see dialplans/); empty: dialplans/default.yaml")
    ami_host: str = Field("127.0.0.1", description="Asterisk Manager Interface address")
    ami_port: int = Field(5038, ge=1, le=65535, description="AMI port")
    ami_username: str = Field("switchboard", description="AMI user")
    ami_secret: str = Field("", description="AMI secret; empty: generated once into <var_dir>/asterisk/ami_secret")
    sip_host: str = Field("0.0.0.0", description="Address the local Asterisk's SIP transports bind to")
    record_calls: bool = Field(
        True, description="Record every call: dispatch, hotline and desk-dialled (MixMonitor), into the recording store"
    )
    monitor_dir: str = Field(
        "", description="Where Asterisk's MixMonitor files appear on this host; empty: <var_dir>/asterisk/spool/monitor"
    )
    sip_port: int = Field(5060, ge=1, le=65535, description="SIP (UDP and TCP) port of the local Asterisk")
    rtp_port_start: int = Field(20000, ge=1024, le=65535, description="First RTP port")
    rtp_port_end: int = Field(20999, ge=1024, le=65535, description="Last RTP port")
    udptl_port_start: int = Field(21000, ge=1024, le=65535, description="First UDPTL (T.38 fax) port")
    udptl_port_end: int = Field(21999, ge=1024, le=65535, description="Last UDPTL port")


class RecordingSettings(_Section):
    """Retention: recordings older than this are deleted (audited), except those on hold or of open incidents."""

    retention_days: int = Field(180, ge=1, description="Days a recording is kept after it ended")
    retention_check_seconds: float = Field(3600.0, gt=0, description="How often expired recordings are deleted")


class BridgeSettings(_Section):
    """Convening a bridge: how long each number rings, how often the unanswered are dialled again."""

    ring_seconds: int = Field(30, ge=5, le=300, description="How long each of an invitee's numbers rings")
    rounds: int = Field(3, ge=1, le=10, description="Rounds over an invitee's numbers (the first try plus retries)")
    retry_seconds: float = Field(60.0, ge=0, le=3600, description="Pause before an unanswered invitee's next round")


class VoiceSettings(_Section):
    """Warnings read out over the phone (the `voice` warning channel): the message, then "收到请按1，重听请按2"."""

    lines: int = Field(4, ge=0, le=256, description="Most voice calls at once; 0 turns the channel off")
    replays: int = Field(2, ge=0, le=10, description="Times the message is played again when 2 or no key is pressed")
    digit_seconds: int = Field(8, ge=1, le=60, description="How long the prompt waits for a key")
    ring_seconds: int = Field(30, ge=5, le=300, description="How long each of a recipient's numbers rings")
    rounds: int = Field(3, ge=1, le=10, description="Rounds over a recipient's numbers (the first try plus retries)")
    retry_seconds: float = Field(120.0, ge=0, le=3600, description="Pause before an unanswered recipient's next round")


class NoticeSettings(_Section):
    """Notices (通知) with confirmation: escalation policies, the signed confirmation links, how long to wait."""

    policies: str = Field(
        "标准=leader:voice+sms@300,parent:voice+sms@600",
        description="Escalation policies a notice names: NAME=STEP,STEP;NAME=...; a STEP is WHO:CHANNEL+CHANNEL@"
        "SECONDS after the issue, WHO leader (the on-duty leader of the recipient's organisation from the roster, "
        "who confirms for them) or parent (the parent organisation's duty desk, told who is unreachable)",
    )
    link_secret: str = Field(
        "", description="Key of the signed confirmation links in e-mail and IM; empty: generated into <var_dir>"
    )
    link_hours: float = Field(72.0, gt=0, le=720, description="How long a confirmation link stays good")
    wait_seconds: float = Field(
        1800.0,
        ge=0,
        le=86400,
        description="How long after its last tier began a recipient may still confirm before the notice counts "
        "them as unconfirmed (a notice's own confirm_by comes first)",
    )
    check_seconds: float = Field(1.0, gt=0, le=60, description="How often open notices are looked at")


class JanusSettings(_Section):
    mode: Literal["local", "external", "off"] = Field(
        "local",
        description="local: configure and start our own Janus (video consultation); external: drive the one whose "
        "API socket is api_socket; off: no video consultation",
    )
    binary: str = Field("/usr/bin/janus", description="The Janus executable (Debian package janus)")
    pp_rec: str = Field("/usr/bin/janus-pp-rec", description="Janus's recording post-processor (janus-tools)")
    netns: str = Field(
        "", description="Network namespace (e.g. /run/netns/video) Janus and camera feeds run in; empty: this host's"
    )
    interface: str = Field(
        "", description="Network interface ICE candidates come from (nat.ice_enforce_list), e.g. eth0; empty: all"
    )
    address: str = Field("", description="Public IP Janus announces (-i); empty: the interface's own")
    phone_address: str = Field(
        "",
        description="Address of Janus's plain-RTP sockets, reachable from this host: phone audio joins consultations "
        "there (AudioBridge local_ip, from Asterisk) and camera ingest feeds its remote publishers; empty: "
        "consultations take no phones, camera ingest sends to 127.0.0.1",
    )
    api_socket: str = Field(
        "", description="Unix socket of the Janus API the control plane uses; empty: <var_dir>/janus/api.sock"
    )
    admin_key: str = Field(
        "", description="VideoRoom admin key (rooms are created with it only); empty: generated into <var_dir>/janus"
    )
    rtp_port_start: int = Field(30000, ge=1024, le=65535, description="First RTP port of Janus")
    rtp_port_end: int = Field(30999, ge=1024, le=65535, description="Last RTP port of Janus")
    keepalive_seconds: float = Field(20.0, gt=0, lt=60, description="Keepalive interval of the Janus session")
    invite_hours: float = Field(24.0, gt=0, description="Lifetime of a consultation join link")


class FaxSettings(_Section):
    lines: int = Field(4, ge=1, le=256, description="Most faxes sent at once (Asterisk lines used for sending)")
    trunk: str = Field("", description="Trunk that carries faxes to outside numbers; empty: the dialplan's first trunk")
    max_pages: int = Field(50, ge=1, le=1000, description="Longest document accepted, in pages")
    max_upload_mb: int = Field(20, ge=1, le=500, description="Largest document accepted, in MiB")
    max_attempts: int = Field(4, ge=1, le=20, description="Attempts per recipient (busy, no answer, failed pages)")
    retry_seconds: float = Field(60.0, gt=0, description="Wait before the second attempt; doubles each attempt")
    retry_max_seconds: float = Field(900.0, gt=0, description="Longest wait between attempts")
    ring_seconds: int = Field(60, ge=2, le=300, description="How long the far end may ring before it is no answer")
    lease_seconds: float = Field(
        1800.0, gt=0, description="A claimed fax belongs to its sender this long; a crashed sender's faxes are retried"
    )
    station_id: str = Field("", description="Our fax station id (TSI) sent to the far end: digits, + and spaces")
    header: str = Field("Switchboard", description="Header line Asterisk prints on top of every sent page (ASCII)")
    sender_name: str = Field("应急值班室", description="Sender named on cover pages")
    spool_dir: str = Field(
        "", description="Where Asterisk writes received faxes, seen from this host; empty: <var_dir>/asterisk/spool/fax"
    )


class ChannelSettings(_Section):
    """Warning channels; a channel whose host (or token) is empty is off."""

    sms_host: str = Field("", description="SMSC address (SMPP 3.4); empty: no SMS")
    sms_port: int = Field(2775, ge=1, le=65535, description="SMSC port")
    sms_system_id: str = Field("", description="SMPP system_id")
    sms_password: str = Field("", description="SMPP password (set via environment)")
    sms_source_addr: str = Field("12379", description="Sender shown on the handset (source_addr)")
    sms_source_ton: int = Field(
        -1, ge=-1, le=6, description="source_addr_ton; -1: from the sender (digits 2 national, +digits 1, text 5)"
    )
    sms_source_npi: int = Field(-1, ge=-1, le=18, description="source_addr_npi; -1: from the sender")
    sms_bind: Literal["transceiver", "transmitter_receiver"] = Field(
        "transceiver",
        description="How to bind to the SMSC: one transceiver, or a transmitter for submits and a receiver for "
        "receipts and MO messages (transmitter_receiver), as the SMSC asks",
    )
    sms_rate_per_second: float = Field(100.0, gt=0, description="Most submits per second")
    sms_max_parts: int = Field(
        6, ge=1, le=20, description="Most parts one warning SMS may take; a longer text is cut, pointing to the whole"
    )
    smtp_host: str = Field("", description="SMTP relay for warning e-mail; empty: no e-mail")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port")
    smtp_username: str = Field("", description="SMTP user; empty: no AUTH")
    smtp_password: str = Field("", description="SMTP password (set via environment)")
    smtp_sender: str = Field("yjglj@switchboard.local", description="From address of warning e-mail")
    smtp_rate_per_second: float = Field(20.0, gt=0, description="Most mails per second")
    telegram_token: str = Field("", description="Telegram bot token (set via environment); empty: no Telegram")
    telegram_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL")
    weather_push: bool = Field(True, description="Push CAP documents to the weather-service endpoints warnings name")
    cmpp_host: str = Field("", description="China Mobile CMPP ISMG address; empty: off")
    cmpp_port: int = Field(7890, ge=1, le=65535, description="ISMG port (the carrier assigns it)")
    cmpp_version: Literal["2.0", "3.0"] = Field("3.0", description="CMPP version the ISMG speaks")
    cmpp_source_addr: str = Field("", description="CMPP Source_Addr: the SP id (企业代码, 6 characters)")
    cmpp_secret: str = Field("", description="CMPP shared secret (set via environment)")
    cmpp_src_id: str = Field("", description="CMPP Src_Id: the SP access number (and extension) shown as the sender")
    cmpp_service_id: str = Field("", description="CMPP Service_Id (业务代码)")
    cmpp_rate_per_second: float = Field(50.0, gt=0, description="Most CMPP submits per second")
    smgp_host: str = Field("", description="China Telecom SMGP 3.0 gateway address; empty: off")
    smgp_port: int = Field(8890, ge=1, le=65535, description="SMGP gateway port (the carrier assigns it)")
    smgp_client_id: str = Field("", description="SMGP ClientID (8 characters at most)")
    smgp_secret: str = Field("", description="SMGP shared secret (set via environment)")
    smgp_src_term_id: str = Field("", description="SMGP SrcTermID: the SP access number shown as the sender")
    smgp_service_id: str = Field("", description="SMGP ServiceID")
    smgp_rate_per_second: float = Field(50.0, gt=0, description="Most SMGP submits per second")
    sgip_host: str = Field("", description="China Unicom SGIP 1.2 gateway address; empty: off")
    sgip_port: int = Field(8801, ge=1, le=65535, description="SGIP gateway port (the carrier assigns it)")
    sgip_login_name: str = Field("", description="SGIP Bind login name")
    sgip_password: str = Field("", description="SGIP Bind password (set via environment)")
    sgip_sp_number: str = Field("", description="SGIP SPNumber: the SP access number shown as the sender")
    sgip_corp_id: str = Field("", description="SGIP CorpId, 5 digits")
    sgip_node_id: int = Field(0, ge=0, description="SGIP SP node number (3 + area code + corp id)")
    sgip_service_type: str = Field("", description="SGIP ServiceType")
    sgip_listen_host: str = Field("0.0.0.0", description="Where the SGIP gateway connects to deliver reports and MO")
    sgip_listen_port: int = Field(8802, ge=1, le=65535, description="Port of that listener")
    sgip_listen_login_name: str = Field("", description="What the gateway binds to the listener with; empty: ours")
    sgip_listen_password: str = Field("", description="Its password (set via environment); empty: ours")
    sgip_rate_per_second: float = Field(50.0, gt=0, description="Most SGIP submits per second")
    sms_routes: str = Field(
        "",
        description="Which SMS gateway carries each carrier's numbers, e.g. mobile=cmpp,unicom=sgip,telecom=smgp "
        "(gateways: smpp, cmpp, smgp, sgip as configured above); numbers of others go by sms_default_route",
    )
    sms_default_route: str = Field("", description="Gateway for the rest; empty: the first configured")
    wecom_robot: bool = Field(
        False, description="Send to WeCom (企业微信) group robots named by key or webhook address"
    )
    wecom_robot_base_url: str = Field(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", description="WeCom robot webhook base URL (for keys)"
    )
    wecom_corpid: str = Field("", description="WeCom corpid; empty: no application messages")
    wecom_corpsecret: str = Field("", description="WeCom application secret (set via environment)")
    wecom_agentid: int = Field(0, ge=0, description="WeCom application AgentId")
    wecom_app_base_url: str = Field("https://qyapi.weixin.qq.com/cgi-bin", description="WeCom API base URL")
    dingtalk: bool = Field(False, description="Send to DingTalk (钉钉) custom robots")
    dingtalk_base_url: str = Field("https://oapi.dingtalk.com/robot/send", description="DingTalk robot webhook URL")
    dingtalk_secrets: str = Field(
        "", description="access_token=SEC... pairs, comma-separated, for robots signed with 加签 (set via environment)"
    )
    receipt_timeout_seconds: float = Field(
        1800.0, gt=0, description="An SMS sent without a delivery receipt by then is counted unconfirmed"
    )


class WarningSettings(_Section):
    """Who issues this deployment's warnings: the CAP sender and the GB/T 35965.1 issuing unit code, whose 14 digits
    begin every identifier (a receiving national warning system checks them; two deployments must not share one)."""

    sender: str = Field("yjglj@switchboard.local", description="CAP <sender>: the issuing office's address")
    unit_area: str = Field("140000", pattern=r"^\d{6}$", description="Issuing unit's GB/T 2260 area code, 6 digits")
    unit_industry: str = Field(
        "416", pattern=r"^\d{3}$", description="Issuing department's GB/T 4657 industry code, 3 digits"
    )
    unit_internal: str = Field("000", pattern=r"^\d{3}$", description="Internal code of the unit, 3 digits")
    unit_extension: str = Field("00", pattern=r"^\d{2}$", description="Extension code, 2 digits")
    policy: str = Field(
        "",
        max_length=64,
        description="Escalation policy ([notices] policies) for a warning's directory groups when the warning names "
        "none; empty: they are asked to confirm, not escalated",
    )
    confirm_max: int = Field(
        2000,
        ge=1,
        description="Most people a warning's directory groups may hold when they are asked to confirm: the notices' "
        "watch follows each of them, which suits desks and officials, not a mass list (send that without confirmation)",
    )


class NetworkSettings(_Section):
    outbound_allow: str = Field(
        "",
        description="Where the server may connect because a user gave the address (weather push endpoints, camera "
        "URLs): host names, addresses and CIDR networks, comma-separated. Private, loopback and link-local addresses "
        "are refused unless their network is listed; empty: nothing is allowed",
    )


# ---- [linecheck]: the line check (switchboard/linechecks): which lines, when, and what passes

LINE_KINDS = {"desk": "值班话机", "echo": "回声测试号", "trunk": "中继路由"}


@dataclass(frozen=True)
class Line:
    name: str
    number: str
    kind: str  # a key of LINE_KINDS


def parse_lines(text: str) -> list[Line]:
    """ "名称=号码/类型, ..." as lines; ValueError (in Chinese) naming the first bad item."""
    lines = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition("=")
        number, _, kind = rest.partition("/")
        number = numbers.cleaned(number)
        if not name.strip() or not numbers.is_number(number) or kind.strip() not in LINE_KINDS:
            raise ValueError(f"“{item[:60]}”应写作 名称=号码/类型，类型为 {'、'.join(LINE_KINDS)} 之一")
        lines.append(Line(name.strip(), number, kind.strip()))
    if len({line.number for line in lines}) != len(lines):
        raise ValueError("同一号码列出了两次")
    return lines


class LineCheckSettings(_Section):
    lines: str = Field(
        "",
        description="Lines checked, comma-separated 名称=号码/类型: desk (a desk phone: it must answer; no audio "
        "check), echo (an echo-test number: it answers and a tone comes back) or trunk (through a trunk to another "
        "platform's echo number: the same), e.g. 值班台1=8001/desk, 本机回声=8999/echo",
    )
    daily_at: str = Field(
        "03:00",
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$",
        description="Daily run, HH:MM ([incidents] timezone); empty: none",
    )
    probe_secret: str = Field(
        "",
        description="SIP password of the dialplan's probe account; empty: from <var_dir>/asterisk/phone_secrets.toml",
    )
    ring_seconds: int = Field(20, ge=2, le=120, description="How long a line may ring before it counts as unanswered")
    max_answer_seconds: float = Field(10.0, gt=0, description="Slowest answer that passes")
    min_level_dbfs: float = Field(-30.0, le=0, description="Quietest the tone may come back (sent at about -11 dBFS)")
    max_delay_ms: float = Field(300.0, gt=0, description="Longest round trip of the tone that passes")
    max_loss: float = Field(0.05, ge=0, le=1, description="Largest share of the tone's 20 ms frames not heard back")

    @field_validator("lines")
    @classmethod
    def _lines_parse(cls, value: str) -> str:
        parse_lines(value)
        return value


# ---- [gb28181]: the GB/T 28181 platform side (conference/gb28181, switchboard/cameras)

GB_ID = r"^\d{20}$"


class Gb28181Settings(_Section):
    enabled: bool = Field(
        False, description="Run the GB/T 28181 SIP server cameras, NVRs and lower platforms register to"
    )
    sip_id: str = Field(
        "34020000002000000001",
        pattern=GB_ID,
        description="Our 20-digit SIP id (GB/T 28181 coding: centre code, industry, type 200 for a platform); its "
        "first ten digits are the SIP domain and the digest realm devices authenticate in",
    )
    host: str = Field("127.0.0.1", description="Address the SIP server listens on (UDP and TCP) and announces")
    media_host: str = Field(
        "", description="Address devices send live video to (the INVITE's c=; ingest binds it); empty: `host`"
    )
    media_transport: Literal["udp", "tcp_passive", "tcp_active"] = Field(
        "udp",
        description="How devices send live video: udp (RTP over UDP); tcp_passive (RTP over TCP, RFC 4571: we "
        "listen, the device connects; for devices behind NAT or on lossy links); tcp_active (RTP over TCP, RFC 4571: "
        "the device listens on the address its answer gives, we connect from media_host; for devices that only "
        "accept, or a platform behind NAT)",
    )
    port: int = Field(15060, ge=0, le=65535, description="SIP port, UDP and TCP (5060 is Asterisk's); 0: any free one")
    keepalive_seconds: float = Field(60.0, gt=0, le=3600, description="Keepalive interval devices are configured with")
    keepalive_misses: int = Field(3, ge=1, le=20, description="Missed keepalives after which a device is offline")
    query_seconds: float = Field(
        8.0, gt=0, le=60, description="How long a device may take to answer a query or command"
    )
    upper_id: str = Field("", description="Cascade: the upper platform's 20-digit SIP id; empty: no cascade")
    upper_host: str = Field("", description="Cascade: the upper platform's SIP address")
    upper_port: int = Field(5060, ge=1, le=65535, description="Cascade: the upper platform's SIP port")
    upper_transport: Literal["UDP", "TCP"] = Field("UDP", description="Cascade: transport to the upper platform")
    upper_password: str = Field("", description="Cascade: our password at the upper platform (set via environment)")
    upper_expires: int = Field(3600, ge=60, le=86400, description="Cascade: registration lifetime asked for, seconds")
    upper_keepalive_seconds: float = Field(60.0, gt=0, le=3600, description="Cascade: our keepalive interval upward")

    @field_validator("upper_id")
    @classmethod
    def _upper_id_digits(cls, value: str) -> str:
        if value and not (len(value) == 20 and value.isdigit()):
            raise ValueError("须为 20 位数字的国标编码")
        return value


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    paths: PathSettings = PathSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()
    incidents: IncidentSettings = IncidentSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    recordings: RecordingSettings = RecordingSettings()
    bridges: BridgeSettings = BridgeSettings()
    channels: ChannelSettings = ChannelSettings()
    warnings: WarningSettings = WarningSettings()
    janus: JanusSettings = JanusSettings()
    fax: FaxSettings = FaxSettings()
    voice: VoiceSettings = VoiceSettings()
    notices: NoticeSettings = NoticeSettings()
    network: NetworkSettings = NetworkSettings()
    linecheck: LineCheckSettings = LineCheckSettings()
    gb28181: Gb28181Settings = Gb28181Settings()

    @property
    def var_path(self) -> Path:
        return Path(self.paths.var_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.var_path / 'switchboard.db'}"


def _sections() -> dict[str, type[_Section]]:
    return {name: field.annotation for name, field in Settings.model_fields.items()}  # type: ignore[misc]


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Typed values from SWITCHBOARD_* variables; an unknown variable is an error, not a silent no-op."""
    result: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section, model in _sections().items():
            key = rest.removeprefix(section + "_")
            if key != rest and key in model.model_fields:
                annotation = model.model_fields[key].annotation
                try:
                    result.setdefault(section, {})[key] = TypeAdapter(annotation).validate_python(raw, strict=False)
                except ValidationError as exc:
                    raise ConfigError(name, exc.errors()[0]["msg"]) from None
                break
        else:
            raise ConfigError(name, "没有这个配置项（环境变量名应为 SWITCHBOARD_<节>_<键>）")
    return result


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), overlay the environment, validate strictly."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"TOML 语法错误: {exc}") from None
    for section, values in _env_overrides(environ).items():
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(section, "应为一个表（[section]）")
        data.setdefault(section, {}).update(values)
    try:
        settings = Settings.model_validate(data, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(".".join(str(p) for p in error["loc"]), error["msg"]) from None
    _check_issuer(settings)
    return settings


def _check_issuer(settings: Settings) -> None:
    """A deployment that sends warnings to people must say who it is: the shipped [warnings] values are an example,
    and two deployments sharing them would issue clashing identifiers under one unit's name."""
    c = settings.channels
    sending = (
        c.sms_host,
        c.cmpp_host,
        c.smgp_host,
        c.sgip_host,
        c.smtp_host,
        c.telegram_token,
        c.wecom_robot,
        c.wecom_corpid,
        c.dingtalk,
    )
    if any(sending) and settings.warnings == WarningSettings():
        raise ConfigError(
            "warnings.unit_area",
            "已配置预警发送渠道，须先在 [warnings] 中设置本单位的 sender 与发布单位代码（unit_area 等）："
            "默认值只是示例",
        )


def render_default() -> str:
    """The commented default file `switchboard init` writes, generated from the model itself."""
    lines = [
        "# Switchboard configuration. Every key can be overridden by SWITCHBOARD_<SECTION>_<KEY>,",
        "# e.g. SWITCHBOARD_SERVER_PORT=8081. Unknown keys and wrong types stop the start.",
    ]
    for section, model in _sections().items():
        lines += ["", f"[{section}]"]
        for key, field in model.model_fields.items():
            lines.append(f"# {field.description}")
            lines.append(f"{key} = {_toml_value(field.default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
