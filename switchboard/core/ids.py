"""Time-ordered identifiers (ULID layout), so ids sort by creation across workers and machines."""

import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """26 characters: 48 bits of milliseconds, then 80 random bits; monotonic within this process, so ids made
    in the same millisecond still sort in the order they were made."""
    global _last
    candidate = (time.time_ns() // 1_000_000) << _RANDOM_BITS | int.from_bytes(os.urandom(10), "big")
    with _lock:
        value = _last = candidate if candidate >> _RANDOM_BITS > _last >> _RANDOM_BITS else _last + 1
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -1, -10)])
