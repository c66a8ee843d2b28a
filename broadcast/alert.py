"""CAP 1.2 <alert>: the message envelope, its references to earlier messages, and the rules across its parts."""

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import model_validator

from switchboard.core.errors import Conflict, InvalidInput
from switchboard.core.fields import LongText, ShortText

from . import info as info_rules
from .info import Info
from .values import CapModel, CapTime, Token, cap_time

Status = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MsgType = Literal["Alert", "Update", "Cancel", "Ack", "Error"]
Scope = Literal["Public", "Restricted", "Private"]


class Reference(CapModel):
    """One earlier message, written in CAP as "sender,identifier,sent"."""

    sender: Token
    identifier: Token
    sent: CapTime

    @model_validator(mode="before")
    @classmethod
    def _from_cap(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split(",")
            if len(parts) != 3:
                raise ValueError("引用应为“sender,identifier,sent”")
            return dict(zip(("sender", "identifier", "sent"), parts, strict=True))
        return value

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


class Alert(CapModel):
    identifier: Token
    sender: Token
    sent: CapTime
    status: Status = "Actual"
    msgType: MsgType = "Alert"
    source: ShortText | None = None
    scope: Scope = "Public"
    restriction: ShortText | None = None
    addresses: list[ShortText] = []
    code: list[ShortText] = []
    note: LongText | None = None
    references: list[Reference] = []
    incidents: list[Token] = []  # Switchboard's incident id travels here
    info: list[Info] = []

    @model_validator(mode="after")
    def _rules(self) -> Self:
        check(self)
        return self


def check(alert: Alert) -> None:
    """The CAP rules that span fields; each error names the field by its path (e.g. "info.0.expires")."""
    if alert.msgType == "Alert" and alert.references:
        raise InvalidInput("首次发布（Alert）不能引用其他消息", field="references")
    if alert.msgType != "Alert" and not alert.references:
        raise InvalidInput(f"{alert.msgType} 必须引用它所针对的消息（references）", field="references")
    for i, reference in enumerate(alert.references):
        if reference.identifier == alert.identifier:
            raise InvalidInput("更新或撤销必须使用新的标识符，不能引用自身", field=f"references.{i}")
        if reference.sent > alert.sent:
            raise InvalidInput("被引用消息的发布时间不能晚于本消息", field=f"references.{i}")
    if alert.scope == "Restricted" and not alert.restriction:
        raise InvalidInput("受限范围（Restricted）须说明 restriction", field="restriction")
    if alert.scope == "Private" and not alert.addresses:
        raise InvalidInput("私有范围（Private）须列出 addresses", field="addresses")
    if any('"' in address for address in alert.addresses):
        raise InvalidInput("地址不能包含双引号", field="addresses")
    if alert.msgType in ("Alert", "Update") and not alert.info:
        raise InvalidInput("预警须至少包含一个 info", field="info")
    if alert.info and alert.info[0].language != "zh-CN":
        raise InvalidInput("第一个 info 必须是中文（zh-CN）", field="info.0.language")
    for i, info in enumerate(alert.info):
        info_rules.check(info, f"info.{i}", alert.sent)


def reference_to(alert: Alert) -> Reference:
    return Reference(sender=alert.sender, identifier=alert.identifier, sent=alert.sent)


def supersede(
    original: Alert, msgType: Literal["Update", "Cancel"], *, identifier: str, sent: datetime, info: list[Info]
) -> Alert:
    """An Update or Cancel of `original`: a new identifier, and references to the original and all it replaced,
    so a receiver that missed an earlier update still retires every message of the chain."""
    if original.msgType == "Cancel":
        raise Conflict("已撤销的预警不能再更新或撤销")
    fields = {name: getattr(original, name) for name in Alert.model_fields}
    references = [*original.references, reference_to(original)]
    return Alert(
        **fields | {"identifier": identifier, "sent": sent, "msgType": msgType, "references": references, "info": info}
    )
