"""Test peers: real servers (or documented stand-ins) that the channel tests start and inspect."""
