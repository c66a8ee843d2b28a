"""Signed one-click confirmation links for e-mail and IM: `<public_url>/notices/confirm/<token>`, the token a
delivery id and an expiry under an HMAC-SHA256 of a key from [notices] link_secret (or generated under var/).

The link opens a page whose button POSTs (page.py): mail scanners that prefetch every link with GET confirm
nothing. A token whose signature does not hold, or whose time has passed, is refused with the reason."""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from switchboard.core.config import Settings
from switchboard.core.errors import Gone, InvalidInput
from switchboard.core.keys import kept_secret

PATH = "/notices/confirm/"


def _key(settings: Settings) -> bytes:
    secret = settings.notices.link_secret or kept_secret(settings.var_path / "notice_link_secret")
    return secret.encode()


def _signature(settings: Settings, payload: str) -> str:
    digest = hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token(settings: Settings, delivery_id: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + settings.notices.link_hours * 3600)
    payload = f"{delivery_id}.{expires}"
    return f"{payload}.{_signature(settings, payload)}"


def url(settings: Settings, delivery_id: str) -> str:
    return f"{settings.server.link_base}{PATH}{token(settings, delivery_id)}"


@dataclass(frozen=True)
class Signed:
    delivery_id: str
    expires: int


def verified(settings: Settings, presented: str) -> Signed:
    """The delivery a token confirms; a 422 when it was altered, a 410 when it has expired."""
    payload, _, signature = presented.rpartition(".")
    delivery_id, _, expires = payload.partition(".")
    if not (delivery_id and expires.isdigit()) or not hmac.compare_digest(signature, _signature(settings, payload)):
        raise InvalidInput(
            "确认链接无效：签名不符，链接可能被改动。请使用通知中的原始链接，或直接联系值班室", field="token"
        )
    if int(expires) < time.time():
        raise Gone("确认链接已过期，请直接回复短信或联系值班室确认", field="token")
    return Signed(delivery_id, int(expires))
