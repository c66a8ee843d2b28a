"""The Asterisk layer: AMI session, engine and provisioning, dialplan rendering, dial vocabulary, calls, fax."""
