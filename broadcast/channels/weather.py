"""Weather-service push: the CAP document POSTed to each configured endpoint (the recipient is its URL).

Retries belong to the outbox; this channel only says which failures a retry can cure: a 5xx or a network
error can, a 429 says when, any other 4xx cannot. `health()` tells what the last push said
(`broadcast.channel.LastContact`): "down" after a network error or a 5xx, naming the endpoint's host.
"""

import logging

import httpx

from broadcast.channel import NOT_STARTED, Message, SendResult
from broadcast.channels.http_channel import HttpChannel
from switchboard.core.outbound import REFUSED, OutboundPolicy

log = logging.getLogger(__name__)

CAP_XML = "application/cap+xml"
NAME = "weather"
SCHEMES = ("http", "https")


class WeatherPushChannel(HttpChannel):
    name = NAME

    def __init__(
        self, policy: OutboundPolicy, *, rate_per_second: float = 5.0, concurrency: int = 4, timeout: float = 10.0
    ) -> None:
        super().__init__(timeout)
        self.policy = policy  # checked again at each push: a name may resolve elsewhere than when it was composed
        self.rate_per_second, self.concurrency = rate_per_second, concurrency

    async def send(self, message: Message) -> SendResult:
        document = next((a for a in message.attachments if a.content_type == CAP_XML), None)
        if document is None:
            return SendResult(False, permanent=True, detail="没有 CAP 文档可推送")
        if self._client is None:
            return SendResult(False, detail=NOT_STARTED)
        if reason := await self.policy.refusal(message.recipient, SCHEMES):
            log.warning("weather push refused: %s", reason)
            return SendResult(False, permanent=True, detail=REFUSED)
        headers = {"Content-Type": CAP_XML, "X-Switchboard-Delivery": message.delivery_id}
        host = httpx.URL(message.recipient).host  # what health names: the whole URL may carry a key
        try:
            response = await self._client.post(message.recipient, content=document.content, headers=headers)
        except httpx.HTTPError as exc:
            self.contact.failed(f"{host}: {type(exc).__name__}")
            log.info("weather push to %s failed: %s", host, exc)
            return SendResult(False, detail=f"网络错误（{type(exc).__name__}）")
        if response.status_code >= 500:
            self.contact.failed(f"{host}: HTTP {response.status_code}")
        else:
            self.contact.reached()
        if response.is_success:
            return SendResult(True)
        if response.status_code == 429:
            retry_after = float(response.headers.get("Retry-After", "30") or 30)
            return SendResult(False, retry_after=retry_after, detail="HTTP 429")
        detail = f"HTTP {response.status_code}"
        return SendResult(False, permanent=400 <= response.status_code < 500, detail=detail)
