"""Reports upward as documents: JSON for the higher-level platform, printable HTML for the duty room."""

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from switchboard.auth import service as auth
from switchboard.core.context import Context
from switchboard.core.divisions import full_name
from switchboard.incidents.models import (
    CATEGORY_NAMES,
    LEVEL_NAMES,
    REPORT_NAMES,
    Incident,
    IncidentOut,
    Report,
    ReportDocument,
    ReportOut,
)

# (label, attribute) in the order the report form lists them.
REPORT_FIELDS = [
    ("接报时间", "received_at"),
    ("信息来源", "info_source"),
    ("事发时间", "occurred_at"),
    ("事发地点", "location"),
    ("事件性质", "nature"),
    ("影响范围", "impact_scope"),
    ("伤亡和损失", "casualties_losses"),
    ("发展趋势", "trend"),
    ("已采取措施", "measures_taken"),
]
# The sign-off under the table.
SIGN_OFF = [("报送单位", "reporting_unit"), ("签发人", "signed_by"), ("联系电话", "contact_phone")]


@cache
def _templates() -> Environment:
    return Environment(loader=PackageLoader("switchboard.incidents"), autoescape=select_autoescape(["html"]))


def report_json(incident: Incident, report: Report) -> dict[str, Any]:
    out = ReportOut.model_validate(report).model_dump()
    return ReportDocument(**out, incident=IncidentOut.model_validate(incident)).model_dump(mode="json")


async def printable(ctx: Context, incident: Incident, report: Report) -> str:
    """The report as the duty room prints it, the submitter named as people know them (not by username)."""
    names = await auth.display_names(ctx, {report.submitted_by})
    return render_html(incident, report, ctx.settings.incidents.timezone, names[report.submitted_by])


def render_html(incident: Incident, report: Report, timezone: str, submitted_by: str) -> str:
    zone = ZoneInfo(timezone)

    def local(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y年%m月%d日 %H:%M") if value else "—"

    rows = [
        (label, local(v) if isinstance(v := getattr(report, attr), datetime) else v) for label, attr in REPORT_FIELDS
    ]
    return (
        _templates()
        .get_template("report.html")
        .render(
            kind=REPORT_NAMES[report.kind],
            seq=report.seq,
            incident=incident,
            category=CATEGORY_NAMES[incident.category],
            level=LEVEL_NAMES[incident.level],
            area=full_name(incident.area_code) or incident.area_code,
            rows=rows,
            sign_off=[(label, getattr(report, attr) or "—") for label, attr in SIGN_OFF],
            submitted_by=submitted_by,
            submitted_at=local(report.submitted_at),
            due_at=local(incident.first_report_due_at),
            late=report.late,
        )
    )
