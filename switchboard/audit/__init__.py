"""Append-only audit trail, hash-chained so an edit or deletion is detectable."""
