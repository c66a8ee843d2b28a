"""CAP 1.2 <info>: one language's account of the warning, with Switchboard's colour level beside CAP severity."""

from datetime import datetime
from typing import Literal

from pydantic import Field, computed_field

from switchboard.core.errors import InvalidInput
from switchboard.core.fields import LongText, Name, ShortText

from . import area as area_rules
from .area import Area
from .resource import Resource
from .values import CapModel, CapTime, Language, Uri, ValuePair

Colour = Literal["blue", "yellow", "orange", "red"]
Severity = Literal["Minor", "Moderate", "Severe", "Extreme"]
Category = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"
]
ResponseType = Literal["Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]

# Chinese warnings are graded by colour (蓝/黄/橙/红); CAP grades by severity. The colour is what offices
# decide, so it is the stored field and severity follows from it.
SEVERITY: dict[str, Severity] = {"blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme"}
COLOUR_PARAMETER = "colour"  # parameter valueName that carries the colour in the CAP document


class Info(CapModel):
    language: Language = "zh-CN"
    category: list[Category] = Field(min_length=1)
    event: Name
    responseType: list[ResponseType] = []
    urgency: Urgency
    colour: Colour
    certainty: Certainty
    audience: ShortText | None = None
    eventCode: list[ValuePair] = []
    effective: CapTime | None = None
    onset: CapTime | None = None
    expires: CapTime | None = None
    senderName: ShortText | None = None
    headline: ShortText | None = None
    description: LongText | None = None
    instruction: LongText | None = None
    web: Uri | None = None
    contact: ShortText | None = None
    parameter: list[ValuePair] = []
    resource: list[Resource] = []
    area: list[Area] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> Severity:
        return SEVERITY[self.colour]


def check(info: Info, at: str, sent: datetime) -> None:
    """Apply the rules for one <info>; `at` is its path in the alert (e.g. "info.0")."""
    for name in ("effective", "onset"):
        value = getattr(info, name)
        if value is not None and value < sent:
            raise InvalidInput(f"{name} 不能早于发布时间 sent", field=f"{at}.{name}")
    if info.expires is not None:
        for name in ("sent", "effective", "onset"):
            start = sent if name == "sent" else getattr(info, name)
            if start is not None and info.expires <= start:
                raise InvalidInput(f"失效时间 expires 必须晚于 {name}", field=f"{at}.expires")
    for i, parameter in enumerate(info.parameter):
        if parameter.valueName == COLOUR_PARAMETER:
            raise InvalidInput("预警颜色请填写 colour 字段，不要放在 parameter 中", field=f"{at}.parameter.{i}")
    for i, area in enumerate(info.area):
        area_rules.check(area, f"{at}.area.{i}")
