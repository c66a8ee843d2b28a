"""Audio conference bridges on Asterisk ConfBridge: sessions, roll call, convene, moderator controls."""
