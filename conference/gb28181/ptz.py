"""PTZCmd (GB/T 28181-2016 Appendix A.3): the 8-byte front-end control command, written as 16 hex digits.

Byte 1 is A5; byte 2 the version (0) in its high nibble and a check nibble (byte 1's nibbles plus byte 2's high
nibble, mod 16: F); byte 3 the address's low 8 bits; byte 4 the instruction (bit 5 zoom out, 4 zoom in, 3 up,
2 down, 1 left, 0 right); bytes 5 and 6 the pan and tilt speeds; byte 7 the zoom speed (high nibble) and the
address's high nibble; byte 8 the sum of bytes 1-7 mod 256."""

RIGHT, LEFT, DOWN, UP, ZOOM_IN, ZOOM_OUT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
MOVES = {
    "stop": 0, "right": RIGHT, "left": LEFT, "up": UP, "down": DOWN,
    "up_left": UP | LEFT, "up_right": UP | RIGHT, "down_left": DOWN | LEFT, "down_right": DOWN | RIGHT,
    "zoom_in": ZOOM_IN, "zoom_out": ZOOM_OUT,
}  # fmt: skip


def command(move: str, speed: int = 0x80, address: int = 1) -> str:
    """The PTZCmd for `move` (a key of MOVES) at `speed` (0-255 pan/tilt; zoom uses its top 4 bits)."""
    code = MOVES[move]
    pan = speed if code & (LEFT | RIGHT) else 0
    tilt = speed if code & (UP | DOWN) else 0
    zoom = (speed >> 4) if code & (ZOOM_IN | ZOOM_OUT) else 0
    first = [
        0xA5,
        (0x0 << 4) | ((0xA + 0x5 + 0x0) % 16),
        address & 0xFF,
        code,
        pan,
        tilt,
        (zoom << 4) | ((address >> 8) & 0x0F),
    ]
    return bytes([*first, sum(first) % 256]).hex().upper()
