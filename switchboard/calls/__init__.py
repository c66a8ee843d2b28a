"""Telephone dispatch as the API offers it: place, follow, hang up and transfer calls."""
