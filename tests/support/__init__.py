"""Test harness: phones, tones, engine fixtures and peers (each peer a process of its own)."""
