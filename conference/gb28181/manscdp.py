"""MANSCDP (GB/T 28181-2016 Appendix A): the XML bodies of SIP MESSAGE, `Application/MANSCDP+xml`.

Devices write them in GB2312 (or GBK, GB18030, UTF-8) and say so in the XML declaration; the body is decoded by
that declaration, GB2312 and GBK through GB18030 (their superset), so Chinese channel names arrive intact whatever
the device chose. What we send is declared GB2312, characters outside it written as XML character references."""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "Application/MANSCDP+xml"
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_\-]+)[\"'][^>]*\?>", re.I)
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030"}


class BodyError(ValueError):
    """A MESSAGE body that is not MANSCDP we understand."""


def decode(body: bytes) -> ET.Element:
    found = _DECLARATION.match(body)
    encoding = found.group(1).decode().lower() if found else "utf-8"
    try:
        text = body[found.end() if found else 0 :].decode(_SUPERSET.get(encoding, encoding))
        return ET.fromstring(text)
    except (LookupError, UnicodeDecodeError, ET.ParseError) as exc:
        raise BodyError(f"MANSCDP body unreadable ({encoding}): {exc}") from exc


def encode(root: ET.Element) -> bytes:
    text = ET.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="GB2312"?>\r\n' + text.encode("gb2312", errors="xmlcharrefreplace")


def text(element: ET.Element, name: str, default: str = "") -> str:
    found = element.find(name)
    return (found.text or "").strip() if found is not None and found.text else default


def build(kind: str, fields: dict[str, Any]) -> ET.Element:
    """`<Query>`, `<Control>`, `<Notify>` or `<Response>` with child elements in the order given."""
    root = ET.Element(kind)
    for name, value in fields.items():
        ET.SubElement(root, name).text = str(value)
    return root


@dataclass
class CatalogItem:
    """One `<Item>` of a Catalog response: a channel (camera), or an organisation node of a platform's tree."""

    device_id: str
    name: str
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    address: str = ""
    parent_id: str = ""
    status: str = "ON"
    ptz_type: int = 0  # 1 dome (球机), 2 half-dome, 3 fixed, 4 remote-controlled fixed; 0 unknown
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, item: ET.Element) -> "CatalogItem":
        info = item.find("Info")
        ptz = text(info, "PTZType", "0") if info is not None else "0"
        return cls(
            device_id=text(item, "DeviceID"),
            name=text(item, "Name"),
            manufacturer=text(item, "Manufacturer"),
            model=text(item, "Model"),
            owner=text(item, "Owner"),
            civil_code=text(item, "CivilCode"),
            address=text(item, "Address"),
            parent_id=text(item, "ParentID"),
            status=text(item, "Status", "ON").upper(),
            ptz_type=int(ptz) if ptz.isdigit() else 0,
        )

    def write(self, parent: ET.Element) -> None:
        item = ET.SubElement(parent, "Item")
        for name, value in (
            ("DeviceID", self.device_id), ("Name", self.name), ("Manufacturer", self.manufacturer),
            ("Model", self.model), ("Owner", self.owner), ("CivilCode", self.civil_code),
            ("Address", self.address), ("Parental", "0"), ("ParentID", self.parent_id), ("SafetyWay", "0"),
            ("RegisterWay", "1"), ("Secrecy", "0"), ("Status", self.status),
        ):  # fmt: skip
            ET.SubElement(item, name).text = value
        ET.SubElement(ET.SubElement(item, "Info"), "PTZType").text = str(self.ptz_type)


def catalog_response(sn: str, device_id: str, items: list[CatalogItem], total: int) -> ET.Element:
    root = build("Response", {"CmdType": "Catalog", "SN": sn, "DeviceID": device_id, "SumNum": total})
    listed = ET.SubElement(root, "DeviceList", Num=str(len(items)))
    for item in items:
        item.write(listed)
    return root


def catalog_items(root: ET.Element) -> tuple[int, list[CatalogItem]]:
    """A Catalog response's SumNum and the items of this one message (a long catalog comes in several)."""
    total = text(root, "SumNum", "0")
    listed = root.find("DeviceList")
    items = [CatalogItem.read(item) for item in listed.findall("Item")] if listed is not None else []
    return int(total) if total.isdigit() else len(items), items
