"""Notices (通知) with confirmation: compose, deliver through the outbox, confirm on any channel, escalate."""
