"""CMPP 2.0/3.0 (China Mobile Peer to Peer), the SP's side: `pdu` (the PDUs as the spec's tables lay them out)
and `session` (CONNECT and the ISMG's requests, on the gateways' shared session policy)."""
