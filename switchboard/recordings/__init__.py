"""Recordings as the API offers them: search, playback with HTTP Range, export per incident."""
