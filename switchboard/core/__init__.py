"""What every subsystem may import: configuration, database, events, errors, identifiers, divisions."""
