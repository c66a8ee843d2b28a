"""The weather-service broadcast's public face: an Atom feed of the CAP alerts in force.

An alert is in force from issue until it expires, is cancelled, or is superseded by its Update (which then
stands in its place). Each entry names its author (RFC 4287 4.1.1: the issuing office) and links to the CAP
document and to a Mandarin audio bulletin of it (a warning too long to speak whole is summarised: `bulletin_script`).
"""

import hashlib
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import select

from broadcast.models import COLOUR_NAMES, PublicWarning, WarningContent, WarningState
from broadcast.render import render
from switchboard.core.context import Context
from switchboard.core.db import utcnow
from switchboard.core.speech import MAX_CHARACTERS

FEED_ID = "urn:switchboard:cap-feed"


async def in_force(ctx: Context, now: datetime | None = None) -> list[PublicWarning]:
    now = now or utcnow()
    query = select(PublicWarning).where(
        PublicWarning.state == WarningState.issued,
        PublicWarning.msg_type != "Cancel",
        PublicWarning.superseded_by_id.is_(None),
    )
    async with ctx.db.reader() as session:
        # A total order, so that an unchanged feed keeps its bytes (two warnings may share a second)
        issued = (await session.scalars(query.order_by(PublicWarning.sent_at.desc(), PublicWarning.identifier))).all()
    return [w for w in issued if WarningContent.model_validate(w.content).expires > now]


def atom(warnings: list[PublicWarning], base_url: str, now: datetime) -> bytes:
    """Atom 1.0; `updated` is the newest entry's time, so an unchanged feed keeps its bytes (and ETag)."""
    updated = max((w.sent_at or now for w in warnings), default=None)
    entries = []
    for warning in warnings:
        content = WarningContent.model_validate(warning.content)
        link = f"{base_url}/feeds/cap/{warning.identifier}"
        title = f"[{COLOUR_NAMES[warning.colour]}预警] {content.headline}"
        author = content.sender_name or warning.sender or "应急管理部门"
        entries.append(
            "  <entry>\n"
            f"    <id>urn:cap:{escape(warning.identifier or '')}</id>\n"
            f"    <title>{escape(title)}</title>\n"
            f"    <author><name>{escape(author)}</name></author>\n"
            f"    <updated>{_time(warning.sent_at or now)}</updated>\n"
            f"    <summary>{escape(content.description)}</summary>\n"
            f'    <link rel="alternate" type="application/cap+xml" href={quoteattr(link + ".xml")}/>\n'
            f'    <link rel="enclosure" type="audio/wav" href={quoteattr(link + ".wav")}/>\n'
            "  </entry>\n"
        )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">\n'
        f"  <id>{FEED_ID}</id>\n"
        "  <title>生效中的预警信息（CAP 1.2）</title>\n"
        f"  <updated>{_time(updated or datetime(2000, 1, 1).astimezone())}</updated>\n"
        f'  <link rel="self" href={quoteattr(base_url + "/feeds/cap.atom")}/>\n' + "".join(entries) + "</feed>\n"
    )
    return text.encode("utf-8")


def bulletin_script(warning: PublicWarning) -> str:
    """What the audio bulletin says: the broadcast script, or for a warning too long to speak its beginning and
    where to read the rest, so that every enclosure in the feed plays."""
    script = render(warning, "tts").text
    if len(script) <= MAX_CHARACTERS:
        return script
    return script[: MAX_CHARACTERS - len(_REST)] + _REST


_REST = "……预警全文较长，请查看书面预警。"


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
