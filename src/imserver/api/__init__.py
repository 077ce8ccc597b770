"""REST routes for users, under /api/v1. Routes parse and call a service; nothing more."""
