"""Audio bridges on ConfBridge, video rooms on Janus, camera feeds."""
