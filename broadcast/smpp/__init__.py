"""SMPP 3.4 client side, asyncio: `pdu` (the PDUs an ESME uses, our own codec) and `session` (one
bound link, transceiver, transmitter or receiver, on the gateways' shared session policy)."""
