"""SMPP 3.4 client side, asyncio: `pdu` (the PDUs as the spec names them, on smpplib's codec) and `session` (one
bound link, transceiver, transmitter or receiver, on the gateways' shared session policy)."""
