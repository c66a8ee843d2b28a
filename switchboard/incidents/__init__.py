"""The incident record: what happened, its timeline, and the reports sent upward."""
