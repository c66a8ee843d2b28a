"""CAP 1.2 <area>: where a warning applies, by polygon, circle or GB/T 2260 division code."""

from switchboard.core.divisions import check_area_code, full_name
from switchboard.core.errors import InvalidInput
from switchboard.core.fields import Name

from .values import CapModel, ValuePair

GB_T_2260 = "GB/T 2260"  # geocode valueName for Chinese administrative division codes


class Area(CapModel):
    areaDesc: Name
    polygon: list[str] = []  # "lat,lon lat,lon ...", WGS 84, closed
    circle: list[str] = []  # "lat,lon radius_km"
    geocode: list[ValuePair] = []
    altitude: float | None = None  # feet above mean sea level, as CAP specifies
    ceiling: float | None = None


def area_for(code: str) -> Area:
    """The area of one administrative division, described by its full name."""
    division = check_area_code(code)
    return Area(areaDesc=full_name(code) if division else code, geocode=[ValuePair(valueName=GB_T_2260, value=code)])


def check(area: Area, at: str) -> None:
    """Apply CAP's rules for <area>; `at` is the area's path in the alert, so errors name the exact field."""
    if not (area.polygon or area.circle or area.geocode):
        raise InvalidInput("区域必须给出多边形、圆或行政区划代码之一", field=at)
    for i, polygon in enumerate(area.polygon):
        points = [_point(pair, f"{at}.polygon.{i}") for pair in polygon.split()]
        if len(points) < 4:
            raise InvalidInput(f"多边形至少需要 4 个点（首尾相同），收到 {len(points)} 个", field=f"{at}.polygon.{i}")
        if points[0] != points[-1]:
            raise InvalidInput("多边形必须闭合：首点与末点应相同", field=f"{at}.polygon.{i}")
    for i, circle in enumerate(area.circle):
        _circle(circle, f"{at}.circle.{i}")
    for i, geocode in enumerate(area.geocode):
        if geocode.valueName == GB_T_2260:
            check_area_code(geocode.value, field=f"{at}.geocode.{i}.value")
    if area.ceiling is not None and (area.altitude is None or area.ceiling < area.altitude):
        raise InvalidInput("ceiling 只能与 altitude 同时使用，且不得低于 altitude", field=f"{at}.ceiling")


def _point(pair: str, field: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in pair.split(","))
    except ValueError:
        raise InvalidInput(f"坐标应为“纬度,经度”，收到 {pair!r}", field=field) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput(f"坐标超出范围（纬度 -90~90，经度 -180~180）：{pair}", field=field)
    return lat, lon


def _circle(circle: str, field: str) -> None:
    centre, _, radius = circle.strip().partition(" ")
    _point(centre, field)
    try:
        km = float(radius)
    except ValueError:
        raise InvalidInput(f"圆应为“纬度,经度 半径公里”，收到 {circle!r}", field=field) from None
    if km < 0:
        raise InvalidInput("圆的半径不能为负", field=field)
