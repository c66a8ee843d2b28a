"""The line-check probe: a SIP phone (pjsua2) in a process of its own that calls each line and measures what comes
back. Run as ``python -m probe`` (see __main__.py); nothing of the control plane imports it."""
