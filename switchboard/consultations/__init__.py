"""Multi-site video consultation (异地会商): rooms, invites with expiring join links, the join page, moderation,
camera feeds and recording."""
