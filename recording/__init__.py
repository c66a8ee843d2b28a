"""Recording store: files, metadata, SHA-256 ledger, retention, search, playback."""
