"""SGIP 1.2: China Unicom's SMS gateway protocol. `session`: the SP's connection to the gateway (Bind, Submit,
Unbind); `receiver`: the listener the gateway connects to with Report and Deliver."""
