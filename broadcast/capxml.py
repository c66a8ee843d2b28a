"""Alert -> CAP 1.2 XML. Every document leaves through `to_xml`, which validates it against the OASIS schema."""

from datetime import datetime

from lxml import etree
from pydantic import BaseModel

from .alert import Alert
from .area import Area
from .info import COLOUR_PARAMETER, Info
from .resource import Resource
from .schema import validate
from .values import ValuePair, cap_time

NS = "urn:oasis:names:tc:emergency:cap:1.2"

# Element order is the schema's (xs:sequence), so it is spelt out per object.
_ALERT = ("identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction", "addresses", "code",
          "note", "references", "incidents", "info")  # fmt: skip
_INFO = ("language", "category", "event", "responseType", "urgency", "severity", "certainty", "audience", "eventCode",
         "effective", "onset", "expires", "senderName", "headline", "description", "instruction", "web", "contact",
         "parameter", "resource", "area")  # fmt: skip
_RESOURCE = ("resourceDesc", "mimeType", "size", "uri", "derefUri", "digest")
_AREA = ("areaDesc", "polygon", "circle", "geocode", "altitude", "ceiling")
_ORDER: dict[type, tuple[str, ...]] = {
    Alert: _ALERT,
    Info: _INFO,
    Resource: _RESOURCE,
    Area: _AREA,
    ValuePair: ("valueName", "value"),
}


def to_xml(alert: Alert) -> bytes:
    """The alert as a UTF-8 CAP 1.2 document, checked against the schema before anyone sees it."""
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _fill(root, alert)
    document = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate(document)
    return document


def _fill(parent: etree._Element, obj: BaseModel) -> None:
    for name in _ORDER[type(obj)]:
        value = _value(obj, name)
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            child = etree.SubElement(parent, f"{{{NS}}}{name}")
            if isinstance(item, BaseModel):
                _fill(child, item)
            else:
                child.text = _text(item)


def _value(obj: BaseModel, name: str) -> object:
    """The field as CAP writes it: some lists are one space-delimited element, the colour rides as a parameter."""
    value = getattr(obj, name)
    if isinstance(obj, Alert) and name in ("addresses", "incidents", "references"):
        return " ".join(f'"{v}"' if any(ch.isspace() for ch in str(v)) else str(v) for v in value) or None
    if isinstance(obj, Info) and name == "parameter":
        return [ValuePair(valueName=COLOUR_PARAMETER, value=obj.colour), *value]
    return value


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return cap_time(value)
    if isinstance(value, float):
        return format(value, "f").rstrip("0").rstrip(".")  # xs:decimal has no exponent
    return str(value)
