"""Backup and restore: one archive holding the database snapshot, the recordings its rows name, the secrets under
var/ and the configuration file, with a manifest of SHA-256s checked on restore."""
