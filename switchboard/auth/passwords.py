"""Password policy: long enough, and not one attackers try first.

Length beats composition rules (NIST SP 800-63B): 12 characters at least, checked against a small shipped
blocklist, with no rules on digits or symbols that push people towards `Password1!`.
"""

import secrets
from functools import cache
from importlib import resources

from switchboard.core.errors import InvalidInput

MIN_LENGTH = 12
MIN_DISTINCT = 5


@cache
def _blocklist() -> frozenset[str]:
    text = resources.files("switchboard.auth").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def weakness(password: str) -> str | None:
    """Why `password` is refused (Chinese, for the user), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 个字符"
    if len(set(password)) < MIN_DISTINCT:
        return f"密码至少包含 {MIN_DISTINCT} 个不同的字符"
    if password.lower() in _blocklist():
        return "密码过于常见，请换一个"
    return None


def check(password: str) -> None:
    """Refuse a weak password with a 422 naming `password`."""
    if reason := weakness(password):
        raise InvalidInput(reason, field="password")


def generate() -> str:
    """A random password that passes the policy (16 URL-safe characters)."""
    while weakness(password := secrets.token_urlsafe(12)):
        continue
    return password
