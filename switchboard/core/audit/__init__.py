"""Append-only audit trail, hash-chained so an edit or deletion is detectable. In core, because every
subsystem audits its state changes and subsystems import only core."""
