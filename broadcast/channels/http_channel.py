"""What every channel that speaks to an HTTP API shares (weather push, WeCom, DingTalk): one httpx client from
start to stop, without following redirects (a peer must not send a push elsewhere), and health from the last
contact, since such a peer holds no link to report on."""

import httpx

from broadcast.channel import LastContact, ReceiptHandler


class HttpChannel:
    """The HTTP client's life cycle and the health of a peer held no link to (`LastContact`)."""

    receipts = False

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self.contact = LastContact()

    async def start(self, on_receipt: ReceiptHandler) -> None:
        """These peers have no receipts; `on_receipt` is not needed."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def health(self) -> dict[str, str]:
        return self.contact.health(self._client is not None)
