"""SMGP 3.0: China Telecom's SMS gateway protocol."""
