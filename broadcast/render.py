"""Each channel's rendering of a warning, from jinja2 templates per channel and language (templates/<lang>/).

`render_all` is what the preview shows; `message_for` is what the outbox hands a channel for one recipient.
"""

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from .capxml import to_xml
from .channel import Attachment, Message
from .models import COLOUR_NAMES, PublicWarning, WarningContent
from .segments import segment
from .values import BEIJING
from .workflow import alert_of, areas_of

CHANNELS = ("sms", "email", "telegram", "tts", "wecom", "dingtalk", "fax")
# Channels without templates of their own borrow one: the voice call reads the broadcast script, anything else
# (weather push, a peer added later) gets the e-mail rendering: subject, text, HTML and the CAP document.
# WeCom's robots and application messages read the same markdown (WeCom's dialect: <font color>, `>` quotes).
TEMPLATE_OF = {"voice": "tts", "wecom_robot": "wecom", "wecom_app": "wecom"}
COLOUR_CSS = {"blue": "#1e62d0", "yellow": "#f2c200", "orange": "#f07800", "red": "#d8000c"}
COLOUR_EMOJI = {"blue": "🔵", "yellow": "🟡", "orange": "🟠", "red": "🔴"}
MAX_SMS_PARTS = 6  # default of [channels] sms_max_parts: 6 UCS-2 parts are about 400 characters


@dataclass
class Rendering:
    channel: str
    language: str
    text: str
    subject: str = ""
    html: str | None = None
    segments: int | None = None
    encoding: str | None = None
    length: int | None = None
    attachments: list[str] = field(default_factory=list)


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("broadcast", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def _when(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M") if value else ""


def _replaced_sent(warning: PublicWarning) -> str:
    """When the message an Update or Cancel replaces was sent: the last CAP reference, "sender,identifier,sent"."""
    if not warning.references:
        return ""
    return _when(datetime.fromisoformat(warning.references[-1].rsplit(",", 1)[1]))


def context_of(warning: PublicWarning) -> dict[str, Any]:
    content = WarningContent.model_validate(warning.content)
    return {
        "msg_type": warning.msg_type,
        "identifier": warning.identifier or "（发布时生成）",
        "sent": _when(warning.sent_at) or "（发布时）",
        "replaced_sent": _replaced_sent(warning),
        "event": content.event,
        "headline": content.headline,
        "description": content.description,
        "instruction": content.instruction,
        "instruction_on_cancel": "此前发布的预警信息作废，请以最新通知为准。",
        "colour": warning.colour,
        "colour_name": COLOUR_NAMES[warning.colour],
        "colour_css": COLOUR_CSS[warning.colour],
        "colour_emoji": COLOUR_EMOJI[warning.colour],
        "areas": [area.areaDesc for area in areas_of(content)],
        "onset": _when(content.onset),
        "expires": _when(content.expires),
        "signature": content.sender_name or "应急管理部门",
        "contact": content.contact or "",
        "web": content.web or "",
        "subject": "",
    }


def _template(name: str, language: str, values: dict[str, Any]) -> str:
    return _environment().get_template(f"{language}/{name}").render(values).strip()


def cap_filename(warning: PublicWarning) -> str:
    return f"{warning.identifier or 'draft'}.xml"


def render(
    warning: PublicWarning, channel: str, language: str = "zh-CN", *, sms_parts: int = MAX_SMS_PARTS
) -> Rendering:
    values = context_of(warning)
    kind = TEMPLATE_OF.get(channel, channel if channel in CHANNELS else "email")
    if kind == "sms":
        text = _sms(values, language, sms_parts)
        parts = segment(text)
        return Rendering(channel, language, text, segments=parts.count, encoding=parts.encoding, length=parts.length)
    if kind == "email":
        subject = _template("email_subject.txt.j2", language, values)
        values["subject"] = subject
        return Rendering(
            channel,
            language,
            _template("email.txt.j2", language, values),
            subject=subject,
            html=_template("email.html.j2", language, values),
            attachments=[cap_filename(warning)],
        )
    if kind in ("wecom", "dingtalk"):  # the subject is DingTalk's markdown title (what the chat list shows)
        subject = _template("email_subject.txt.j2", language, values)
        return Rendering(channel, language, _template(f"{kind}.md.j2", language, values), subject=subject)
    if kind == "fax":  # the page's text, its first line the title; the fax channel draws it under a colour band
        subject = _template("email_subject.txt.j2", language, values)
        return Rendering(channel, language, _template("fax.txt.j2", language, values), subject=subject)
    if kind == "telegram":
        return Rendering(channel, language, _template("telegram.html.j2", language, values))
    return Rendering(channel, language, _template("tts.txt.j2", language, values))


def _sms(values: dict[str, Any], language: str, parts: int) -> str:
    """The SMS, at most `parts` parts: a long description (then instruction) is cut to the longest that fits and
    points to the full warning; the headline and the validity always go. E-mail and the feed carry the whole text."""
    pointer = f"……（全文见 {values['web']}）" if values["web"] else "……（全文请见官方发布渠道）"
    for name in ("description", "instruction"):
        if segment(text := _template("sms.txt.j2", language, values)).count <= parts:
            return text
        whole = values[name]
        fits, too_long = 0, len(whole)
        while fits < too_long:  # the longest cut that fits, found by halving
            middle = (fits + too_long + 1) // 2
            if segment(_template("sms.txt.j2", language, values | {name: whole[:middle] + pointer})).count <= parts:
                fits = middle
            else:
                too_long = middle - 1
        values = values | {name: whole[:fits] + pointer if fits < len(whole) else whole}
        pointer = "……"  # said once
    return _template("sms.txt.j2", language, values)


def render_all(warning: PublicWarning, *, sms_parts: int = MAX_SMS_PARTS) -> list[Rendering]:
    languages = WarningContent.model_validate(warning.content).languages
    return [render(warning, c, language, sms_parts=sms_parts) for language in languages for c in CHANNELS]


class MessageFactory:
    """Renders each warning once per channel and hands out one Message per delivery."""

    def __init__(self, sms_parts: int = MAX_SMS_PARTS) -> None:
        self.sms_parts = sms_parts
        self._cache: dict[tuple[str, str], tuple[Rendering, tuple[Attachment, ...]]] = {}

    def message(self, warning: PublicWarning, channel: str, delivery_id: str, recipient: str) -> Message:
        key = (warning.id, channel)
        if key not in self._cache:
            rendering = render(warning, channel, sms_parts=self.sms_parts)
            attachments: tuple[Attachment, ...] = ()
            if rendering.attachments:
                document = to_xml(alert_of(warning))
                attachments = (Attachment(cap_filename(warning), "application/cap+xml", document),)
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = (rendering, attachments)
        rendering, attachments = self._cache[key]
        return Message(
            delivery_id=delivery_id,
            recipient=recipient,
            text=rendering.text,
            subject=rendering.subject,
            html=rendering.html,
            attachments=attachments,
            colour=warning.colour,
            incident_id=warning.incident_id,
        )
