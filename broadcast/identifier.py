"""Warning identifiers in the style of GB/T 35965.1, so a message names its issuing office and moment.

Layout chosen here (33 characters, digits and one underscore):

    AAAAAA GGG UUUUU _ YYYYMMDDhhmmss NNNN
    |      |   |       |              sequence within that second for this sender code, 0001-9999
    |      |   |       issue time (the alert's `sent`) in Beijing time, to the second
    |      |   unit code, 5 digits (the issuing unit within the agency)
    |      agency code, 3 digits (the issuing department)
    GB/T 2260 area code of the issuing office, 6 digits

e.g. 14010541600000_202611300800000001. The first 14 digits form the sender code.
"""

import re
import threading
from dataclasses import dataclass
from datetime import datetime

from switchboard.core.divisions import check_area_code
from switchboard.core.errors import Conflict, InvalidInput

from .values import BEIJING

LAYOUT = re.compile(r"^(?P<area>\d{6})(?P<agency>\d{3})(?P<unit>\d{5})_(?P<time>\d{14})(?P<sequence>\d{4})$")
_MAX_SEQUENCE = 9999
_lock = threading.Lock()
_last: dict[str, tuple[str, int]] = {}  # sender code -> (timestamp, last sequence used)


@dataclass(frozen=True)
class SenderCode:
    area: str
    agency: str
    unit: str

    def __post_init__(self) -> None:
        check_area_code(self.area, field="sender_code.area")
        if not re.fullmatch(r"\d{3}", self.agency):
            raise InvalidInput("机构代码必须是 3 位数字", field="sender_code.agency")
        if not re.fullmatch(r"\d{5}", self.unit):
            raise InvalidInput("单位代码必须是 5 位数字", field="sender_code.unit")

    def __str__(self) -> str:
        return f"{self.area}{self.agency}{self.unit}"


def new_identifier(sender: SenderCode, sent: datetime) -> str:
    """The next identifier for `sender` at `sent`; unique within this process.

    Several workers issuing for one sender code in the same second need a shared sequence; the warning table's
    unique constraint on the identifier catches a clash.
    """
    stamp = sent.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    code = str(sender)
    with _lock:
        last_stamp, last_sequence = _last.get(code, ("", 0))
        sequence = last_sequence + 1 if last_stamp == stamp else 1
        if sequence > _MAX_SEQUENCE:
            raise Conflict(f"同一秒内签发的预警超过 {_MAX_SEQUENCE} 条，请稍后重试")
        _last[code] = (stamp, sequence)
    return f"{code}_{stamp}{sequence:04d}"
