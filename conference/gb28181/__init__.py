"""GB/T 28181-2016 platform side: the SIP message codec and transactions (over asyncio UDP and TCP), digest
authentication, MANSCDP XML, the standard's SDP and PTZCmd, the platform's registrar and queries, and the cascade
link to an upper platform. One module per object of the standard; no domain knowledge (the registry of devices and
their passwords lives in switchboard.cameras and reaches this layer through `platform.Directory`)."""
