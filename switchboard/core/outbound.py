"""Where the server may connect because a user typed an address: a warning's weather-service push endpoints and a
consultation's camera URLs. Without this, an alert officer could make the server POST to the AMI port, a cloud
metadata address or any internal service, and read its answer in the deliveries report.

An address is allowed when its host is listed in `[network] outbound_allow` (host names, addresses or CIDR
networks), and every address its name resolves to is public, or private but inside a listed network. Users get a
generic refusal; what was refused and why goes to the log.
"""

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from switchboard.core.config import Settings
from switchboard.core.errors import InvalidInput

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CAMERA_SCHEMES = ("rtsp", "rtsps")  # what a camera URL (registry or consultation feed) may be
REFUSED = "不允许连接该地址：请联系管理员在 [network] outbound_allow 中登记"


@dataclass(frozen=True)
class OutboundPolicy:
    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> "OutboundPolicy":
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip().lower() for e in settings.network.outbound_allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    async def check(self, url: str, *, schemes: tuple[str, ...], field: str) -> None:
        """Refuse (422 on `field`, a generic message) unless `url` may be connected to now."""
        if reason := await self.refusal(url, schemes):
            log.warning("outbound address refused (%s): %s", field, reason)
            raise InvalidInput(REFUSED, field=field)

    async def refusal(self, url: str, schemes: tuple[str, ...]) -> str | None:
        """Why `url` may not be connected to (for the log), or None."""
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").rstrip("."), parts.port
        except ValueError as exc:
            return f"unparsable {url!r}: {exc}"
        if parts.scheme.lower() not in schemes:
            return f"scheme {parts.scheme!r} of {url!r} not in {schemes}"
        if not host:
            return f"no host in {url!r}"
        literal = _address(host)
        listed = host.lower() in self.names or (literal is not None and self._in_networks(literal))
        if not listed:
            return f"host {host!r} not listed"
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"{host!r} does not resolve: {exc}"
        for *_, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0])
            if not address.is_global and not self._in_networks(address):
                return f"{host!r} resolves to {address}, which is not public and not in a listed network"
        return None

    def _in_networks(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.networks)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
