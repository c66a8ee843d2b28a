"""The engine's Mandarin prompts: PIN entry, bridge join and leave, participant counts, moderator actions, the
voice notification's confirmation.

Asterisk ships English sounds only. Each prompt here is synthesised once (switchboard.core.speech caches by the
hash of its text) and linked into <var_dir>/asterisk/prompts/<name>.wav, which the rendered confbridge.conf and
dialplan play by absolute path. A changed text gets a new cache entry and the link moves to it.
"""

import asyncio
import os
from pathlib import Path

from sip.dialplan import Definition, Layout, prompt_counts
from switchboard.core import speech
from switchboard.core.config import Settings

PROMPTS = {
    "bridge-pin": "请输入会议密码，以井号键结束。",
    "bridge-pin-wrong": "密码不正确，请重新输入。",
    "bridge-pin-bye": "密码错误次数过多。感谢您的来电，再见。",
    "bridge-first": "您是第一位参会者。",
    "bridge-join": "有参会者加入会议。",
    "bridge-leave": "有参会者离开会议。",
    "bridge-wait-leader": "请稍候，主持人尚未入会。",
    "bridge-leader-left": "主持人已离开会议。",
    "bridge-kicked": "您已被主持人移出会议，再见。",
    "bridge-muted": "您已被静音。",
    "bridge-unmuted": "您已取消静音。",
    "bridge-locked": "会议已锁定或已满员，暂时无法加入。",
    "bridge-locked-now": "会议已锁定。",
    "bridge-unlocked-now": "会议已解锁。",
    "voice-confirm": "收到请按1，重听请按2。",
    "voice-confirmed": "已确认收到，谢谢。",
}
PARALLEL = 4


def count_prompts(definition: Definition) -> dict[str, str]:
    """bridge-count-N: "N participants are already here", one file per possible count."""
    return {f"bridge-count-{n}": f"会议中已有{n}位参会者。" for n in range(1, prompt_counts(definition) + 1)}


async def prepare(settings: Settings, definition: Definition) -> Path:
    """Synthesise what is missing and (re)link every prompt; returns the prompts directory."""
    directory = Layout.for_settings(settings).prompts
    directory.mkdir(parents=True, exist_ok=True)
    wanted = PROMPTS | count_prompts(definition)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(name: str, text: str) -> None:
        async with gate:
            source = await speech.synthesize(settings.var_path, text)
        link = directory / f"{name}.wav"
        if not link.is_symlink() or os.readlink(link) != str(source):
            tmp = directory / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(source)
            tmp.replace(link)

    await asyncio.gather(*(one(name, text) for name, text in wanted.items()))
    return directory
