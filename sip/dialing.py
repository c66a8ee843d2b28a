"""How a dial attempt ended, in one vocabulary for everything that dials (dispatch calls, convened bridge legs,
faxes): Asterisk's DIALSTATUS mapped to a result, and each result's Chinese name for summaries and the console."""

# Dial()'s DIALSTATUS -> the result recorded for the attempt.
DIAL_RESULTS = {
    "ANSWER": "answered",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CHANUNAVAIL": "unreachable",
    "CONGESTION": "unreachable",
    "CANCEL": "cancelled",
}
RESULT_NAMES = {
    "answered": "接通",
    "no_answer": "无人接听",
    "busy": "占线",
    "unreachable": "无法接通",
    "cancelled": "取消",
    "engine_down": "电话引擎不可用",
}


def dial_result(status: str) -> str:
    """The result of a DIALSTATUS; one we do not know is kept, in lower case."""
    return DIAL_RESULTS.get(status, status.lower())
