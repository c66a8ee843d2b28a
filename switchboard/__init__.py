"""Switchboard control plane: incident record, contact directory, auth, audit, API, console and CLI."""
