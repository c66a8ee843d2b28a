"""Escalation policies ([notices] policies): the tiers after the recipients themselves, each due some seconds after
the issue. "标准=leader:voice+sms@300,parent:voice+sms@600" is tier 2 the on-duty leader of the recipient's
organisation (from the roster), who confirms for them, five minutes on; tier 3 the parent organisation's desk,
told who is unreachable, ten minutes on."""

from dataclasses import dataclass
from functools import cache

from switchboard.core.errors import InvalidInput

WHO = {"leader": "带班领导", "parent": "上级单位值班室"}


@dataclass(frozen=True)
class Step:
    who: str  # leader | parent
    channels: tuple[str, ...]
    after_seconds: float
    tier: int  # 2, 3, ...


@cache
def parse(text: str) -> dict[str, tuple[Step, ...]]:
    """Policy name -> its steps, in tier order; a malformed text is a ValueError naming the part."""
    policies: dict[str, tuple[Step, ...]] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        name, _, steps_text = entry.partition("=")
        steps: list[Step] = []
        for tier, step in enumerate(filter(None, (s.strip() for s in steps_text.split(","))), start=2):
            who, _, rest = step.partition(":")
            channels, _, after = rest.partition("@")
            if who not in WHO or not channels or not after.replace(".", "", 1).isdigit():
                raise ValueError(f"[notices] policies: {step!r} is not WHO:CHANNEL+CHANNEL@SECONDS (WHO leader|parent)")
            steps.append(Step(who, tuple(channels.split("+")), float(after), tier))
        if not name.strip() or not steps:
            raise ValueError(f"[notices] policies: {entry!r} is not NAME=STEP,STEP")
        policies[name.strip()] = tuple(sorted(steps, key=lambda s: s.tier))
    return policies


def steps_of(text: str, name: str, *, field: str = "policy") -> tuple[Step, ...]:
    """The named policy's steps (none for no name); an unknown name is a 422 on `field`."""
    if not name:
        return ()
    found = parse(text)
    if name not in found:
        known = "、".join(found) or "（未配置）"
        raise InvalidInput(f"升级策略 {name!r} 未配置，可选：{known}", field=field)
    return found[name]
