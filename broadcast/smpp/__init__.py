"""SMPP 3.4 client side, asyncio: `pdu` (framing and the PDUs as the spec names them, on smpplib's codec) and
`session` (one bound transceiver link, and the policy around it: bind, enquire_link, reconnect)."""
