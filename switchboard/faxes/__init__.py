"""Fax routes: send a document to many recipients, the inbox and the outbox."""
