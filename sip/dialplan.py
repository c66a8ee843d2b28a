"""Configuration as code: the dialplan definition (YAML, validated) rendered into Asterisk's config files.

`dialplans/default.yaml` says which desk phones, ring groups, hotlines, trunks, conference and fax numbers
exist; `dialplans/templates/*.j2` turn that into asterisk.conf, pjsip.conf, extensions.conf and the rest.
Secrets never live in the YAML: desk passwords are generated once into <var_dir>/asterisk/phone_secrets.toml,
the AMI secret comes from settings or <var_dir>/asterisk/ami_secret (both mode 0600).

Everything that comes from data reaches a template only through the checks below (`dial_number`,
`callerid_name`, `config_token`, `config_path`), applied both when the YAML is validated and again as jinja
filters at render time, so a hostile name or number cannot add a priority, an application argument or a line.
"""

import logging
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import jinja2
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from sip.dialing import CONVENE_FAR_LEG, CONVENE_LEG, DESK_LEG, DIAL_LEG
from switchboard.core.config import Settings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- escaping

_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_IDENT = re.compile(r"[a-z][a-z0-9_]{0,30}")
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=@-]{1,128}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\]")
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
_NAME_DROP = re.compile(r"[^\w .-]")  # \w is Unicode-aware: Chinese names survive, punctuation does not


class DialplanError(ValueError):
    """Invalid definition or data; the message names the offending key."""


def dial_number(value: object) -> str:
    """A number that may appear in a dialplan or a dial string: digits with an optional leading +."""
    text = str(value)
    if not _NUMBER.fullmatch(text):
        raise DialplanError(f"号码 {text!r} 无效：只能是数字（可带前导 +），最多 20 位")
    return text


def callerid_name(value: object, limit: int = 40) -> str:
    """A display name safe inside a config line or a dialplan argument.

    Keeps letters (any script), digits, space, '.', '-' and '_'; drops quotes, commas, parentheses, braces,
    '$', ';', backslashes and every control character (newlines), so the result can neither close a quoted
    CALLERID, start a new application argument, expand a function nor begin a new config line.
    """
    text = " ".join(str(value).split())  # newlines and tabs become single spaces
    return _NAME_DROP.sub("", text).strip()[:limit]


def config_token(value: object, what: str = "值") -> str:
    """A secret, user name or similar single token for a config file: no spaces, quotes, ';' or newlines."""
    text = str(value)
    if not _TOKEN.fullmatch(text):
        raise DialplanError(f"{what} 含有不允许的字符（只允许字母、数字和 ._~+/=@-）")
    return text


def config_path(value: object) -> str:
    """An absolute path for a config file or a dialplan argument: no ',', ';', spaces or '$'."""
    text = str(value)
    if not _PATH.fullmatch(text):
        raise DialplanError(f"路径 {text!r} 含有不允许的字符（Asterisk 配置只接受字母、数字和 ._/+-）")
    return text


def _check(func: Callable[[Any], str]) -> Any:
    def validate(value: Any) -> str:
        try:
            return func(value)
        except DialplanError as exc:
            raise ValueError(str(exc)) from None

    return AfterValidator(validate)


Number = Annotated[str, _check(dial_number)]
Ident = Annotated[str, _check(lambda v: v if _IDENT.fullmatch(v) else _fail("名称只能是小写字母开头的 a-z0-9_"))]
Host = Annotated[str, _check(lambda v: v if _HOST.fullmatch(v) else _fail("主机名或 IP 地址无效"))]
Name = Annotated[str, _check(callerid_name)]


def _fail(message: str) -> str:
    raise DialplanError(message)


# ---------------------------------------------------------------------------------------------- the model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Extension(_Model):
    number: Number
    name: Name = ""


class RingGroup(_Model):
    name: Ident
    members: list[Number] = Field(min_length=1)
    timeout: int = Field(20, ge=1, le=600)
    fallback_trunk: Ident | None = None
    # Organisation (directory code) whose on-duty officer's mobile is the fallback; the control plane
    # resolves it from the duty roster and re-renders when the shift changes.
    roster_org: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,40}$")] | None = None


class Hotline(_Model):
    number: Number
    group: Ident


class Trunk(_Model):
    name: Ident
    host: Host
    port: int = Field(5060, ge=1, le=65535)


Pin = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,8}$")]


class Conference(_Model):
    """A dial-in audio bridge. PINs left out of the YAML are generated once into <var_dir>/asterisk/bridge_pins.toml
    (mode 0600), like the desk passwords, so the shipped definition carries no secret."""

    number: Number
    name: Name = ""
    pin: Pin | None = None  # participants
    moderator_pin: Pin | None = None  # the moderator joins marked and may control the bridge from the phone
    max_members: int = Field(50, ge=2, le=200)
    wait_for_moderator: bool = False  # participants hear music until a moderator is in
    record: bool = True
    announce: bool = True  # Mandarin prompts: join and leave to all, the participant count to the newcomer

    @model_validator(mode="after")
    def _pins_differ(self) -> "Conference":
        if self.pin is not None and self.pin == self.moderator_pin:
            raise ValueError("pin 与 moderator_pin 不能相同")
        return self


class FaxNumber(_Model):
    number: Number
    name: Name = ""
    audio_only: bool = False  # never ask the caller for T.38 (G.711 only), for lines behind a bad T.38 gateway


class ConsultationNumbers(_Model):
    """The dial-in numbers of video consultations: each open consultation holds one of first..last while it runs."""

    first: Number
    last: Number

    @model_validator(mode="after")
    def _range(self) -> "ConsultationNumbers":
        if len(self.first) != len(self.last) or int(self.first) > int(self.last):
            raise ValueError("first 与 last 应等长且 first 不大于 last")
        if int(self.last) - int(self.first) >= 1000:
            raise ValueError("会商拨入号码段最多 1000 个号码")
        return self

    def numbers(self) -> list[str]:
        return [str(n).zfill(len(self.first)) for n in range(int(self.first), int(self.last) + 1)]


class Definition(_Model):
    extensions: list[Extension] = []
    ring_groups: list[RingGroup] = []
    hotlines: list[Hotline] = []
    trunks: list[Trunk] = []
    conferences: list[Conference] = []
    fax: list[FaxNumber] = []
    echo_test: Number | None = None
    default_desk: Number | None = None  # the desk dispatch calls ring first when the caller names none
    # The line-check probe's own SIP account (switchboard/linechecks): registers like a desk, its password kept with
    # the desks', but its calls enter the dialplan where the control plane's do (no desk recording, no desk event).
    probe: Extension | None = None
    consultations: ConsultationNumbers | None = None  # video consultations' dial-in numbers (consult.conf.j2)

    @model_validator(mode="after")
    def _references(self) -> "Definition":
        numbers = [e.number for e in self.extensions] + [h.number for h in self.hotlines]
        numbers += [c.number for c in self.conferences] + [f.number for f in self.fax]
        numbers += [self.echo_test] if self.echo_test else []
        numbers += [self.probe.number] if self.probe else []
        numbers += self.consultations.numbers() if self.consultations else []
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        if duplicates:
            where = "extensions、hotlines、conferences、fax、echo_test、probe、consultations"
            raise ValueError(f"号码重复：{', '.join(duplicates)}（{where} 中）")
        desks = {e.number for e in self.extensions}
        groups = {g.name for g in self.ring_groups}
        trunks = {t.name for t in self.trunks}
        if len(groups) != len(self.ring_groups):
            raise ValueError("ring_groups: 振铃组名称重复")
        if len(trunks) != len(self.trunks):
            raise ValueError("trunks: 中继名称重复")
        for i, group in enumerate(self.ring_groups):
            if unknown := [m for m in group.members if m not in desks]:
                raise ValueError(f"ring_groups.{i}.members: {', '.join(unknown)} 不是已定义的分机")
            if group.fallback_trunk and group.fallback_trunk not in trunks:
                raise ValueError(f"ring_groups.{i}.fallback_trunk: {group.fallback_trunk} 不是已定义的中继")
        if self.default_desk and self.default_desk not in desks:
            raise ValueError(f"default_desk: {self.default_desk} 不是已定义的分机")
        for i, hotline in enumerate(self.hotlines):
            if hotline.group not in groups:
                raise ValueError(f"hotlines.{i}.group: {hotline.group} 不是已定义的振铃组")
        return self

    def phones(self) -> list[Extension]:
        """Every SIP account that registers: the desks, then the probe."""
        return [*self.extensions, *([self.probe] if self.probe else [])]


DEFAULT_DEFINITION = "default.yaml"


def load_definition(path: str | Path | None = None) -> Definition:
    """Read and validate a dialplan YAML (default: the packaged dialplans/default.yaml)."""
    if path is None:
        source = resources.files("dialplans").joinpath(DEFAULT_DEFINITION)
        name, text = f"dialplans/{DEFAULT_DEFINITION}", source.read_text("utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DialplanError(f"{name}: 无法读取拨号方案：{exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DialplanError(f"{name}: YAML 语法错误：{exc}") from None
    return parse_definition(data, name)


def configured_definition(settings: Settings) -> Definition:
    """The definition the settings name (`[asterisk] dialplan`), else the packaged default."""
    return load_definition(settings.asterisk.dialplan or None)


def parse_definition(data: Any, source: str = "dialplan") -> Definition:
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise DialplanError(f"{source}: {key}: {message}" if key else f"{source}: {message}") from None


# ---------------------------------------------------------------------------------------------- secrets


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def _generated(path: Path, keys: list[str], make: Callable[[], str], what: str, header: str) -> dict[str, str]:
    """key -> secret kept in a private TOML file; the missing ones are generated and added."""
    known: dict[str, str] = {}
    if path.exists():
        try:
            known = {
                str(k): config_token(v, f"{path} 中 {k} 的{what}") for k, v in tomllib.loads(path.read_text()).items()
            }
        except tomllib.TOMLDecodeError as exc:
            raise DialplanError(f"{path}: TOML 语法错误：{exc}") from None
    wanted = {key: known.get(key) or make() for key in keys}
    if wanted.keys() - known.keys():
        merged = {**known, **wanted}
        lines = [f"# {header}, generated by Switchboard. Keep private."]
        lines += [f'"{key}" = "{value}"' for key, value in sorted(merged.items())]
        _write_private(path, "\n".join(lines) + "\n")
    return wanted


def phone_secrets(settings: Settings, definition: Definition) -> dict[str, str]:
    """SIP passwords per desk number (and the probe's): kept in <var_dir>/asterisk/phone_secrets.toml, missing ones
    generated."""
    return _generated(
        settings.var_path / "asterisk" / "phone_secrets.toml",
        [e.number for e in definition.phones()],
        lambda: secrets.token_urlsafe(18),
        "密码",
        "SIP passwords of the desk phones",
    )


@dataclass(frozen=True)
class BridgePins:
    participant: str
    moderator: str


def bridge_pins(settings: Settings, definition: Definition) -> dict[str, BridgePins]:
    """Bridge number -> its PINs: from the definition, else generated once into <var_dir>/asterisk/bridge_pins.toml."""
    missing = [f"{c.number}.participant" for c in definition.conferences if c.pin is None]
    missing += [f"{c.number}.moderator" for c in definition.conferences if c.moderator_pin is None]
    generated = _generated(
        settings.var_path / "asterisk" / "bridge_pins.toml",
        missing,
        lambda: f"{secrets.randbelow(900000) + 100000}",
        "PIN",
        "PINs of the conference bridges (number.participant / number.moderator)",
    )
    pins = {}
    for c in definition.conferences:
        participant = c.pin or generated[f"{c.number}.participant"]
        moderator = c.moderator_pin or generated[f"{c.number}.moderator"]
        if moderator == participant:
            raise DialplanError(f"会议 {c.number} 的主持人 PIN 与参会 PIN 相同：请修改 bridge_pins.toml 或定义")
        pins[c.number] = BridgePins(participant, moderator)
    return pins


def ami_secret(settings: Settings) -> str:
    """The AMI secret: from settings, else generated once into <var_dir>/asterisk/ami_secret (mode 0600)."""
    if settings.asterisk.ami_secret:
        return config_token(settings.asterisk.ami_secret, "asterisk.ami_secret")
    path = settings.var_path / "asterisk" / "ami_secret"
    if path.exists():
        return config_token(path.read_text().strip(), str(path))
    secret = secrets.token_urlsafe(24)
    _write_private(path, secret + "\n")
    return secret


# ---------------------------------------------------------------------------------------------- rendering

FallbackSource = Mapping[str, str | None] | Callable[[str], str | None]
"""Ring group name -> the on-duty officer's mobile number (from the control plane's directory)."""


@dataclass(frozen=True)
class Layout:
    """Where the local engine's configs and writable state live: all under <var_dir>/asterisk."""

    base: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> "Layout":
        return cls(settings.var_path / "asterisk")

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def prompts(self) -> Path:
        """Mandarin prompts by name (links into the speech cache), played by absolute path."""
        return self.base / "prompts"

    def dirs(self) -> dict[str, Path]:
        """asterisk.conf directory keys -> paths that must exist before start."""
        return {
            "astetcdir": self.etc,
            "astvarlibdir": self.base / "lib",
            "astdbdir": self.base / "lib",
            "astkeydir": self.base / "lib",
            "astdatadir": self.base / "data",
            "astagidir": self.base / "agi",
            "astspooldir": self.base / "spool",
            "astrundir": self.base / "run",
            "astlogdir": self.base / "log",
            "astcachedir": self.base / "cache",
        }


MODULES = [
    # core services
    "res_musiconhold", "res_rtp_asterisk", "res_timing_timerfd", "res_srtp",
    # SIP: chan_pjsip and the res_pjsip set a registering desk phone and a trunk need
    "res_sorcery_config", "res_sorcery_memory", "res_sorcery_astdb", "res_pjproject", "res_pjsip",
    "res_pjsip_pubsub", "res_pjsip_session", "chan_pjsip", "res_pjsip_authenticator_digest",
    "res_pjsip_endpoint_identifier_user", "res_pjsip_endpoint_identifier_ip", "res_pjsip_registrar",
    "res_pjsip_outbound_registration", "res_pjsip_sdp_rtp", "res_pjsip_caller_id", "res_pjsip_dtmf_info",
    "res_pjsip_nat", "res_pjsip_outbound_authenticator_digest", "res_pjsip_rfc3326",
    "res_pjsip_t38", "res_pjsip_logger", "res_pjsip_diversion", "res_pjsip_header_funcs",
    # dialplan, applications and functions
    "pbx_config", "app_dial", "app_playback", "app_echo", "app_confbridge", "app_mixmonitor", "app_exec",
    "app_senddtmf", "app_stack", "app_userevent", "app_originate", "app_verbose", "app_read", "app_playtones",
    "func_callerid", "func_channel", "func_strings", "func_base64", "func_logic", "func_global", "func_cut",
    "chan_rtp", "res_rtp_multicast",  # UnicastRTP: a consultation's phones to Janus's AudioBridge (consult.conf.j2)
    # fax
    "res_fax", "res_fax_spandsp",
    # codecs, formats, bridges
    "codec_ulaw", "codec_alaw", "codec_gsm", "codec_a_mu", "format_wav", "format_gsm", "format_pcm",
    "bridge_simple", "bridge_native_rtp", "bridge_softmix", "bridge_holding",
]  # fmt: skip


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dialplans", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Asterisk configs, not HTML: values are checked by the filters below instead
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=dial_number, name=callerid_name, token=config_token, path=config_path)
    return env


# AMI events the control plane acts on (sip/ami.py, sip/calls.py, sip/fax/service.py, conference/bridges/service.py):
# manager.conf passes no others (filtered by name, which Asterisk matches by hash: a regex per filter and event, as
# the legacy `Event: X` filters were, cost Asterisk CPU on every event), and of some of them only the channels the
# control plane follows. Lists answering an action are not filtered.
AMI_EVENTS = (
    "FullyBooted", "Shutdown", "Hangup", "DialBegin", "DialEnd", "Hold", "Unhold", "OriginateResponse", "UserEvent",
    "ConfbridgeStart", "ConfbridgeEnd", "ConfbridgeJoin", "ConfbridgeLeave", "ConfbridgeTalking", "ConfbridgeMute",
    "ConfbridgeUnmute", "ConfbridgeRecord", "ConfbridgeStopRecord",
    "FAXStatus", "SendFAX", "ReceiveFAX",  # fax progress and results (sip/fax/service.py)
)  # fmt: skip


# Events nobody here reads, never built at all (manager.conf disabledevents): Asterisk queues each event it builds
# for every AMI session and wakes each session's thread for it, before that session's filters drop it. These are
# most of what a call raises (a Newexten per dialplan step, a VarSet per variable set).
AMI_DISABLED_EVENTS = (
    "Newexten", "VarSet", "Newstate", "NewCallerid", "NewConnectedLine", "NewAccountCode", "DialState",
    "HangupRequest", "SoftHangupRequest", "BridgeCreate", "BridgeDestroy", "BridgeEnter", "BridgeLeave",
    "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd", "RTCPSent", "RTCPReceived",
    "DeviceStateChange", "ExtensionStatus", "MusicOnHoldStart", "MusicOnHoldStop", "DTMFBegin", "DTMFEnd",
)  # fmt: skip


@dataclass(frozen=True)
class EventFilter:
    """One manager.conf advanced `eventfilter`: `action` the events named `event` whose `header` matches `value`."""

    action: str  # include, exclude
    event: str
    header: str
    method: str  # exact, starts_with, ends_with, contains, regex
    value: str


AMI_EVENT_FILTERS = (
    # Newchannel only tells which call a desk leg or a voice call's dialling half is (sip/calls.py); the channels
    # it dials, and a convene leg's three channels, are learnt from DialBegin and the dialplan's UserEvents.
    EventFilter("include", "Newchannel", "Uniqueid", "ends_with", DESK_LEG),
    EventFilter("include", "Newchannel", "Uniqueid", "ends_with", DIAL_LEG),
    # A convene leg's dialling loop reports its attempts as UserEvents; its Dial events concern nobody.
    EventFilter("exclude", "DialBegin", "Uniqueid", "regex", CONVENE_FAR_LEG),
    EventFilter("exclude", "DialEnd", "Uniqueid", "regex", CONVENE_FAR_LEG),
    # Nor do an Originate's own Dial events, for the channel it creates (no calling channel: DestUniqueid is the
    # ChannelId we gave): the desk leg of a call, the near leg of a convene round. Two of a leg's six events.
    EventFilter("exclude", "DialBegin", "DestUniqueid", "ends_with", DESK_LEG),
    EventFilter("exclude", "DialEnd", "DestUniqueid", "ends_with", DESK_LEG),
    EventFilter("exclude", "DialBegin", "DestUniqueid", "regex", CONVENE_LEG),
    EventFilter("exclude", "DialEnd", "DestUniqueid", "regex", CONVENE_LEG),
)

TEMPLATES = [
    "asterisk.conf", "modules.conf", "pjsip.conf", "extensions.conf", "confbridge.conf", "manager.conf",
    "rtp.conf", "udptl.conf", "logger.conf", "musiconhold.conf", "cdr.conf", "cel.conf", "acl.conf",
    "features.conf", "res_fax.conf", "pjproject.conf", "ccss.conf", "indications.conf",
]  # fmt: skip


def prompt_counts(definition: Definition) -> int:
    """How many "N participants are here" prompts the bridges need (one per possible count)."""
    return max((c.max_members for c in definition.conferences if c.announce), default=0)


def resolve_fallbacks(definition: Definition, fallback: FallbackSource | None) -> dict[str, str]:
    """Ring group -> checked mobile number. A bad or missing number drops the fallback (logged), not the plan."""
    result: dict[str, str] = {}
    if fallback is None:
        return result
    lookup = fallback if callable(fallback) else fallback.get
    for group in definition.ring_groups:
        if not group.fallback_trunk:
            continue
        raw = lookup(group.name)
        if not raw:
            continue
        try:
            result[group.name] = dial_number(raw)
        except DialplanError as exc:
            log.warning("振铃组 %s 的值班手机号无效，已忽略：%s", group.name, exc)
    return result


def render(
    settings: Settings,
    definition: Definition,
    *,
    modules_dir: Path,
    sbin_dir: Path,
    fallback: FallbackSource | None = None,
    source: str = "dialplans/default.yaml",
) -> dict[str, str]:
    """File name -> text of every config file of the local engine."""
    layout = Layout.for_settings(settings)
    a = settings.asterisk
    if a.rtp_port_start > a.rtp_port_end or a.udptl_port_start > a.udptl_port_end:
        raise DialplanError("asterisk.rtp_port_* / udptl_port_*：起始端口大于结束端口")
    context = {
        "source": source,
        "d": definition,
        "dirs": {key: config_path(path) for key, path in layout.dirs().items()},
        "modules_dir": config_path(modules_dir),
        "sbin_dir": config_path(sbin_dir),
        "modules": MODULES,
        "a": a,
        "sip_host": config_token(a.sip_host, "asterisk.sip_host"),
        "ami_username": config_token(a.ami_username, "asterisk.ami_username"),
        "ami_secret": ami_secret(settings),
        "ami_events": AMI_EVENTS,
        "ami_event_filters": AMI_EVENT_FILTERS,
        "ami_disabled_events": AMI_DISABLED_EVENTS,
        "passwords": phone_secrets(settings, definition),
        "fallbacks": resolve_fallbacks(definition, fallback),
        "trunks": {t.name: t for t in definition.trunks},
        "fax_dir": config_path(layout.base / "spool" / "fax"),
        "monitor_dir": config_path(layout.base / "spool" / "monitor"),
        "prompts": config_path(layout.prompts),
        "prompt_counts": prompt_counts(definition),
        "pins": bridge_pins(settings, definition),
    }
    env = _environment()
    return {name: env.get_template(name + ".j2").render(context) for name in TEMPLATES}
