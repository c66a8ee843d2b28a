"""Public warnings: CAP 1.2, approval, durable outbox and delivery channels."""
