"""Whether a channel can carry a warning's deliveries now, from the outbox's view of its links (`Outbox.health()`):
issuing refuses a channel that cannot, and the delivery report says why rows wait on one."""

from collections.abc import Mapping

from broadcast.models import CHANNEL_NAMES

Links = Mapping[str, Mapping[str, str]]  # channel -> its health(), for the configured channels only
SECTIONS = {"voice": "[voice] 与 [asterisk]"}  # where a channel configured outside [channels] is turned on


def trouble(channel: str, links: Links) -> str | None:
    """Why `channel` cannot carry deliveries now, in the duty room's words; None when it can."""
    name = CHANNEL_NAMES.get(channel, channel)
    link = links.get(channel)
    if link is None:
        return f"“{name}”渠道未配置（配置文件 {SECTIONS.get(channel, '[channels]')} 一节）"
    if link.get("status") != "ok":
        return f"“{name}”渠道不可用：{link.get('error') or link.get('link') or '连接中断'}"
    return None
