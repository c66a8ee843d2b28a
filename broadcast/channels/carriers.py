"""SMS routed by carrier: each mobile number goes through the gateway of the carrier that owns its number segment
(号段), with a default route for the rest, each gateway at its own rate and concurrency.

One channel to the outbox ("sms"): routing is a property of the number, not of the warning, and the outbox's
durability and retries stay as they are. Each gateway paces its own submits (`gateway.py`) and holds at most its
concurrency in flight here; the outbox paces the router at the sum of their rates. Remote ids are prefixed with
the gateway's name ("cmpp:0123..."): receipts from two gateways cannot collide, and the delivery report shows which
gateway carried each message.
"""

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broadcast.channel import Channel, Message, ReceiptHandler, SendResult

# The mainland carriers' mobile number segments (MIIT allocations; 192 is China Broadcast Network on Mobile's
# network). Longer prefixes win; a number in no segment takes the default route.
SEGMENTS: Mapping[str, tuple[str, ...]] = {
    "mobile": (
        "134", "135", "136", "137", "138", "139", "147", "148", "150", "151", "152", "157", "158", "159", "172",
        "178", "182", "183", "184", "187", "188", "192", "195", "197", "198",
    ),
    "unicom": ("130", "131", "132", "145", "146", "155", "156", "166", "167", "171", "175", "176", "185", "186", "196"),
    "telecom": ("133", "149", "153", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199"),
}  # fmt: skip
CARRIER_NAMES = {"mobile": "中国移动", "unicom": "中国联通", "telecom": "中国电信"}
_NATIONAL = re.compile(r"^(?:\+?86)?(1\d{10})$")


def carrier_of(number: str, segments: Mapping[str, Iterable[str]] = SEGMENTS) -> str | None:
    """The carrier owning a mainland mobile number (with or without +86), or None."""
    match = _NATIONAL.match(number)
    if not match:
        return None
    national = match.group(1)
    best = max(
        (
            (carrier, prefix)
            for carrier, prefixes in segments.items()
            for prefix in prefixes
            if national.startswith(prefix)
        ),
        key=lambda found: len(found[1]),
        default=None,
    )
    return best[0] if best else None


@dataclass
class _Gateway:
    channel: Channel
    slots: asyncio.Semaphore


class CarrierRouter:
    """Routes by carrier: `routes` maps a carrier ("mobile", "unicom", "telecom") to its gateway's channel name;
    numbers of other carriers, and numbers outside the mainland segments, go to `default`."""

    def __init__(
        self, gateways: Iterable[Channel], routes: Mapping[str, str], default: str, *, name: str = "sms"
    ) -> None:
        self.name = name
        self._gateways = {g.name: _Gateway(g, asyncio.Semaphore(max(g.concurrency, 1))) for g in gateways}
        unknown = ({default} | set(routes.values())) - self._gateways.keys()
        if unknown:
            raise ValueError(f"routes name gateways not configured: {', '.join(sorted(unknown))}")
        self._routes, self._default = dict(routes), default
        self.rate_per_second = sum(g.channel.rate_per_second for g in self._gateways.values())
        self.concurrency = sum(max(g.channel.concurrency, 1) for g in self._gateways.values())
        self.receipts = any(g.channel.receipts for g in self._gateways.values())

    def route(self, number: str) -> str:
        """The gateway a number goes through."""
        return self._routes.get(carrier_of(number) or "", self._default)

    async def start(self, on_receipt: ReceiptHandler) -> None:
        for name, gateway in self._gateways.items():
            await gateway.channel.start(self._receipts_of(name, on_receipt))

    def _receipts_of(self, gateway: str, on_receipt: ReceiptHandler) -> ReceiptHandler:
        async def receipt(_: str, remote_id: str, delivered: bool, detail: str) -> None:
            await on_receipt(self.name, f"{gateway}:{remote_id}", delivered, detail)

        return receipt

    async def stop(self) -> None:
        for gateway in self._gateways.values():
            await gateway.channel.stop()

    async def send(self, message: Message) -> SendResult:
        name = self.route(message.recipient)
        gateway = self._gateways[name]
        async with gateway.slots:
            result = await gateway.channel.send(message)
        remote_id = f"{name}:{result.remote_id}" if result.remote_id else None
        detail = f"经 {name}：{result.detail}" if result.detail and not result.accepted else result.detail
        return SendResult(result.accepted, remote_id, result.retry_after, result.permanent, detail, via=name)

    def health(self) -> dict[str, str]:
        """Down while any gateway is: a warning to numbers of that carrier could not go."""
        down = {name: g.channel.health() for name, g in self._gateways.items()}
        down = {name: h for name, h in down.items() if h.get("status") != "ok"}
        if not down:
            return {"status": "ok"}
        return {
            "status": "down",
            "error": "；".join(f"{n}：{h.get('error') or h.get('link') or '不可用'}" for n, h in down.items()),
        }
