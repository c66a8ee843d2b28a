"""HTTP digest authentication as SIP uses it (RFC 3261 22, RFC 2617, MD5): the challenge and its check on our
registrar, the answer when we register upward. GB/T 28181 names the realm after the platform's SIP domain (the first
ten digits of its 20-digit id). The registry keeps HA1 = MD5(id:realm:password), never the password."""

import hashlib
import hmac
import re
import secrets
import time

NONCE_SECONDS = 300.0
_PARAM = re.compile(r'(\w+)\s*=\s*("([^"]*)"|[^,\s]+)')


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def ha1(username: str, realm: str, password: str) -> str:
    return md5(f"{username}:{realm}:{password}")


def parse(value: str) -> dict[str, str]:
    """`Digest realm="x", nonce="y", ...` as a dict (names lower-cased)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(3) if m.group(3) is not None else m.group(2) for m in _PARAM.finditer(rest)}


def expected(ha1_hex: str, method: str, fields: dict[str, str]) -> str:
    ha2 = md5(f"{method}:{fields.get('uri', '')}")
    if fields.get("qop") == "auth":
        return md5(f"{ha1_hex}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
    return md5(f"{ha1_hex}:{fields.get('nonce', '')}:{ha2}")


class Challenger:
    """Issues nonces that carry their own time and an HMAC, so any nonce we issued is recognised for
    NONCE_SECONDS without keeping a table, and a made-up one is not."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self._key = secrets.token_bytes(32)

    def challenge(self) -> str:
        stamp = f"{time.time():.0f}"
        return f'Digest realm="{self.realm}", nonce="{self._nonce(stamp)}", algorithm=MD5, qop="auth"'

    def _nonce(self, stamp: str) -> str:
        return stamp + hmac.new(self._key, stamp.encode(), "sha256").hexdigest()[:24]

    def check(self, fields: dict[str, str], method: str, ha1_hex: str) -> bool:
        nonce = fields.get("nonce", "")
        stamp = nonce[:-24]
        if not stamp.isdigit() or not hmac.compare_digest(nonce, self._nonce(stamp)):
            return False
        if time.time() - int(stamp) > NONCE_SECONDS or fields.get("realm") != self.realm:
            return False
        return hmac.compare_digest(fields.get("response", "").lower(), expected(ha1_hex, method, fields))


def authorization(challenge: str, username: str, password: str, method: str, uri: str) -> str:
    """Our answer to a 401's WWW-Authenticate, with qop=auth when the challenge offers it."""
    fields = parse(challenge)
    answer = {"username": username, "realm": fields.get("realm", ""), "nonce": fields.get("nonce", ""), "uri": uri}
    if "auth" in fields.get("qop", "").split(","):
        answer |= {"qop": "auth", "nc": "00000001", "cnonce": secrets.token_hex(8)}
    answer["response"] = expected(ha1(username, answer["realm"], password), method, answer)
    quoted = ", ".join(f'{k}="{v}"' if k not in ("qop", "nc") else f"{k}={v}" for k, v in answer.items())
    return f"Digest {quoted}, algorithm=MD5"
