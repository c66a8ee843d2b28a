"""Users, roles, password hashes and access tokens."""
