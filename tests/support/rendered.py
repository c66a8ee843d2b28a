"""A Chinese warning as the outbox renders it for a channel, without a database: what channel tests send."""

from datetime import UTC, datetime, timedelta

from broadcast.models import PublicWarning, WarningContent
from broadcast.render import Rendering, render

HEADLINE = "太原市气象台发布暴雨橙色预警信号"
DESCRIPTION = "预计未来 3 小时内小店区降雨量将达 50 毫米以上，伴有雷电、短时大风。"


def rendering(channel: str, **changes: object) -> Rendering:
    sent = datetime(2026, 7, 14, 8, 30, tzinfo=UTC)
    content = WarningContent.model_validate(
        {
            "event": "暴雨",
            "headline": HEADLINE,
            "description": DESCRIPTION,
            "instruction": "停止户外作业，转移低洼地带人员。",
            "category": ["Met"],
            "colour": "orange",
            "areas": [{"desc": "小店区汾河东岸低洼地带", "circle": ["37.75,112.60 5"]}],
            "expires": (sent + timedelta(hours=12)).isoformat(),
            "sender_name": "太原市应急管理局",
        }
        | changes
    )
    warning = PublicWarning(
        id="01J0WARNING0000000000000000",
        msg_type="Alert",
        colour="orange",
        content=content.model_dump(mode="json"),
        identifier="14010041600002026071416300001",
        sent_at=sent,
        references=[],
    )
    return render(warning, channel)
